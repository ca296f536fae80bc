"""Inter-process locks on files, with flock: the kernel drops a killed holder's lock, so
no stale lock ever blocks the next run. (Plain fcntl rather than the filelock package: its
import costs ~15 ms of the hook's budget, measured in bench/startup.py.)"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitend.errors import GitendError


class Busy(GitendError):
    pass


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def held(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold the lock at `path`, waiting up to `timeout` seconds (0: do not wait)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise GitendError(f"cannot open the lock file {path} ({exc.strerror or exc})") from None
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise Busy(f"{what} is busy (another gitend is working on it); try again in a moment")
            time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def held_elsewhere(path: Path) -> bool:
    """True when another process holds the lock at `path`, exclusive or shared (probed: taken
    and let go at once)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False  # no lock file yet: nobody holds it
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)


@contextmanager
def shared(path: Path) -> Iterator[bool]:
    """Hold the lock at `path` shared with any number of others, best effort: never waits,
    never raises (yields False when it could not). `held_elsewhere` sees the holders."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)
