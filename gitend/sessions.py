"""Which Claude Code sessions are open, so that one that ended without SessionEnd is noticed.

Nothing in the next session's payload names a killed one, so gitend keeps its own record:
SessionStart writes one small file per session (its id, work tree, transcript, and Claude's
pid where the CLI sets CLAUDE_PID); a SessionEnd that saved the work removes it. A record
whose Claude is gone, found at the next start in the same work tree, is an unclean end.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gitend import files, paths
from gitend.errors import GitendError

STALE_DAYS = 30  # records of work trees nobody opened for this long are dropped


@dataclass(frozen=True)
class Record:
    session_id: str
    root: str  # the work tree's top directory
    transcript_path: str | None
    claude_pid: int | None
    started: float


def _path(session_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id)[:120] or "unknown"
    return paths.sessions_dir() / f"{safe}.json"


def opened(record: Record) -> None:
    """A session started in this work tree (a full disk only costs the catch-up later)."""
    try:
        files.write_json(_path(record.session_id), asdict(record))
    except GitendError:
        pass


def closed(session_id: str) -> None:
    """The session ended and its work was saved (or handed to the worker)."""
    try:
        _path(session_id).unlink(missing_ok=True)
    except OSError:
        pass


def forget(records: list[Record]) -> None:
    for record in records:
        closed(record.session_id)


def claude_pid() -> int | None:
    """Claude Code's pid, from CLAUDE_PID (2.1.214 and later)."""
    try:
        return int(os.environ["CLAUDE_PID"])
    except (KeyError, ValueError):
        return None


def unclean(root: Path, session_id: str, source: str) -> list[Record]:
    """Earlier sessions in this work tree that never recorded a clean end and are not running,
    newest first. The current session's own record counts only when it is being resumed
    (`--continue` after a kill); after /compact it is simply still running."""
    found = []
    now = time.time()
    for path in _all():
        record = _read(path)
        if record is None or now - record.started > STALE_DAYS * 86400:
            path.unlink(missing_ok=True)
            continue
        if record.root != str(root):
            continue
        if record.session_id == session_id and source != "resume":
            continue
        if record.claude_pid is not None and _running(record.claude_pid, record.started):
            continue  # another session in this work tree, still open
        found.append(record)
    return sorted(found, key=lambda r: r.started, reverse=True)


def _all() -> list[Path]:
    try:
        return list(paths.sessions_dir().glob("*.json"))
    except OSError:
        return []


def _read(path: Path) -> Record | None:
    data = files.read_json(path, {})
    transcript, pid = data.get("transcript_path"), data.get("claude_pid")
    if not (transcript is None or isinstance(transcript, str)) or not (pid is None or isinstance(pid, int)):
        return None
    try:
        return Record(str(data["session_id"]), str(data["root"]), transcript, pid, float(data["started"]))
    except (ValueError, KeyError, TypeError):
        return None


def _running(pid: int, since: float) -> bool:
    """Whether that pid is alive and is the same process (not a pid reused since the record)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    started = _start_time(pid)
    return started is None or started <= since + 1  # without /proc (macOS), alive is all we know


def _start_time(pid: int) -> float | None:
    """When the process started (Linux: /proc/<pid>/stat's starttime after the boot time)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def transcript_of(record: Record, current: str | None) -> str | None:
    """The ended session's transcript: the path it started with, else `<its id>.jsonl` in Claude's
    folder for this project, else the newest transcript there other than the current one."""
    if record.transcript_path and os.path.isfile(record.transcript_path):
        return record.transcript_path
    folders = {Path(p).parent for p in (current, record.transcript_path) if p}
    named = [folder / f"{record.session_id}.jsonl" for folder in folders]
    found = [path for path in named if path.is_file()]
    if not found:
        others = [path for folder in folders for path in _jsonl(folder) if str(path) != current]
        found = sorted(others, key=_mtime, reverse=True)[:1]
    return str(found[0]) if found else None


def _jsonl(folder: Path) -> list[Path]:
    try:
        return list(folder.glob("*.jsonl"))
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
