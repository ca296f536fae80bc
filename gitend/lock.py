"""Inter-process locks (flock-based: a killed holder never leaves a stale lock)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitend.errors import GitendError


class Busy(GitendError):
    pass


@contextmanager
def held(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold the lock at `path`, waiting up to `timeout` seconds (0: do not wait)."""
    import filelock  # deferred: ~30 ms of imports, and not every command locks

    lock = filelock.FileLock(str(path), timeout=timeout)
    try:
        lock.acquire(poll_interval=0.02)
    except filelock.Timeout:
        raise Busy(f"{what} is busy (another gitend is working on it); try again in a moment") from None
    try:
        yield
    finally:
        lock.release()
