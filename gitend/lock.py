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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise Busy(f"{what} is busy (another gitend is working on it); try again in a moment")
            time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing releases the lock
