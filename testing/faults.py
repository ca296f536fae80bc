"""Faults the file system can throw at gitend: a full disk, a read-only folder.

Both need mount(2) (root, or CAP_SYS_ADMIN). Where that is refused the test is skipped with
the reason; setpriv and RLIMIT_FSIZE cannot stand in (see each helper).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"needs mount(2) (root or CAP_SYS_ADMIN): mount {' '.join(args)}: {proc.stderr.strip()}")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


class SmallDisk:
    """A tmpfs mounted over a folder, its content carried over; grow() frees the disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> None:
        """Leave no free block (a few bytes may still fit in a partly used page)."""
        # Unbuffered: a buffered file would raise ENOSPC again when closed, with what it still holds.
        with open(self.path / ".filler", "wb", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * 4096)
            except OSError:
                pass

    def grow(self, size: str = "256m") -> None:
        (self.path / ".filler").unlink(missing_ok=True)
        _mount("-o", f"remount,size={size}", str(self.path))


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[SmallDisk]:
    """`path` on a tmpfs of `size` (e.g. "2m"), with its content before and after. RLIMIT_FSIZE
    is no substitute: it fails a write by the size of one file (EFBIG), not by free space."""
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as keep:
        before, after = Path(keep) / "before", Path(keep) / "after"
        shutil.copytree(path, before, symlinks=True)
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        try:
            shutil.copytree(before, path, symlinks=True, dirs_exist_ok=True)
            yield SmallDisk(path)
        finally:
            (path / ".filler").unlink(missing_ok=True)
            shutil.copytree(path, after, symlinks=True)
            _unmount(path)
            shutil.copytree(after, path, symlinks=True, dirs_exist_ok=True)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` read-only even for root (a read-only bind mount; chmod does not stop root, and
    running the hook as another user would also change whose git config applies)."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield
    finally:
        _unmount(path)
