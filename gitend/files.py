"""Writing files so that a reader, a crash or a full disk never sees half of one, and reading
gitend's JSON state so that a damaged file is an empty one, never a crash; reading others'
files in bounded time, and writing into folders without following a symlink."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, TypeVar

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


def read_json(path: Path, empty: T) -> T:
    """The JSON in `path` if it is of `empty`'s type; `empty` when missing or damaged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty
    return data if isinstance(data, type(empty)) else empty


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
