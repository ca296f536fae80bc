"""Writing files so that a reader, a crash or a full disk never sees half of one, and reading
gitend's JSON state so that a damaged file is an empty one, never a crash."""
from __future__ import annotations

import json
import os
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
