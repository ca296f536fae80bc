"""Writing files so that a reader, a crash or a full disk never sees half of one, and reading
gitend's JSON state so that a damaged file is an empty one, never a crash; reading others'
files in bounded time, and writing into folders without following a symlink."""
from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gitend import log, paths
from gitend.errors import GitendError

T = TypeVar("T", list[Any], dict[str, Any])


def write_atomic(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace `path` with `data`: written beside it, flushed to disk, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically; a full disk is a one-line error and leaves the old file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError as exc:
        raise GitendError(f"cannot write {path} ({exc.strerror or exc}); is the disk full?") from None


def read_json(path: Path, empty: T, entry: Callable[[Any], bool] | None = None) -> T:
    """The JSON in `path` if it is of `empty`'s type, keeping only the list items (or dict values)
    that `entry` accepts; `empty` when there is none. A state file that cannot be understood, whole
    or in part, is set aside beside it with one line in the log, and the rest goes on."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return empty
    except OSError as exc:
        log.record("state", f"cannot read {path} ({exc.strerror or exc}); going on without it")
        return empty
    except (ValueError, RecursionError):
        set_aside(path, "not valid JSON")
        return empty
    if not isinstance(data, type(empty)):
        set_aside(path, f"a JSON {type(data).__name__}, not the {type(empty).__name__} gitend keeps there")
        return empty
    if entry is None:
        return data
    kept: Any = ([item for item in data if entry(item)] if isinstance(data, list)
                 else {k: v for k, v in data.items() if isinstance(k, str) and entry(v)})
    if len(kept) != len(data):
        set_aside(path, f"{len(data) - len(kept)} of its {len(data)} entries were not understood")
    return kept  # type: ignore[no-any-return]


def set_aside(path: Path, why: str) -> None:
    """Move a state file gitend cannot understand out of the way (kept for a person to look at);
    a file that is not gitend's own state (Claude Code's settings) is only left unused."""
    if not path.is_relative_to(paths.state_dir()):
        log.record("state", f"ignored {path}: {why}")
        return
    aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.replace(path, aside)
    except OSError:
        return  # another process set it aside first
    log.record("state", f"set aside {path}: {why}; kept as {aside.name}")


def read_regular(path: Path, limit: int, *, follow: bool = True) -> bytes | None:
    """A regular file's bytes, or None: not there, not a regular file (a FIFO, /dev/zero or
    /dev/stdin is never read, and never waited on), or larger than `limit`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        with os.fdopen(os.open(path, flags), "rb") as f:
            data = f.read(limit + 1) if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else None
    except OSError:
        return None
    return data if data is not None and len(data) <= limit else None


def inside(root: Path, rel: str, *, make_parents: bool = False, folder: bool = False) -> Path:
    """root/rel, never through a symlink: refuses a path that leaves root, and any folder below
    root on the way (rel itself too, with `folder`) that is a symlink or not a folder; root is the
    caller's, trusted. With `make_parents`, missing folders are made one at a time, each checked."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise GitendError(f"refusing the unsafe path {rel!r} inside {root}")
    path = root
    for part in parts if folder else parts[:-1]:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            if not make_parents:
                break
            os.makedirs(path, exist_ok=True)  # one level: its parent was checked just now
            mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise GitendError(f"refusing to go through the symlink {path}; replace it with a folder")
        if not stat.S_ISDIR(mode):
            raise GitendError(f"{path} should be a folder but is not")
    return root / rel
