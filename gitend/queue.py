"""The durable job spool: one JSON file per job in <state>/queue/, written atomically.

A job file is created before the worker starts and deleted only after its work is done, so
a killed worker or a machine that loses power leaves the job to be done by the next run.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitend import files, log, paths
from gitend.errors import GitendError

BACKOFF_FIRST_S = 30
BACKOFF_MAX_S = 3600


@dataclass
class Job:
    id: str
    kind: str  # "memory": mirror notes into the dotfile repo; "wip": push WIP branches
    target: str  # the repository the job writes to (dotfile repo, or the project's repo)
    push: bool  # False for session ends in push.skip_reasons: commit locally, push later
    data: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    attempts: int = 0
    next_try: float = 0.0
    last_error: str | None = None
    held: str | None = None  # why a secret review holds it; never retried by itself

    def failed(self, error: str, now: float) -> None:
        self.attempts += 1
        self.last_error = error
        self.next_try = now + min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self.attempts - 1))

    def due(self, now: float) -> bool:
        return self.held is None and self.next_try <= now


def folder() -> Path:
    return paths.state_dir() / "queue"


def write_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically; a full disk is a one-line error and leaves the old file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError as exc:
        raise GitendError(f"cannot write {path} ({exc.strerror or exc}); is the disk full?") from None


def save(job: Job) -> None:
    write_atomic(folder() / f"{job.id}.json", asdict(job))


def add(kind: str, target: str, push: bool, **data: Any) -> Job:
    now = time.time()
    job = Job(f"{int(now * 1000):013d}-{kind}-{os.urandom(3).hex()}", kind, target, push, data, now)
    save(job)
    return job


def remove(job: Job) -> None:
    (folder() / f"{job.id}.json").unlink(missing_ok=True)


def load() -> list[Job]:
    """All jobs, oldest first. A file that cannot be read as a job is set aside, not lost."""
    jobs = []
    for path in sorted(folder().glob("*.json")):
        try:
            jobs.append(Job(**json.loads(path.read_text(encoding="utf-8"))))
        except FileNotFoundError:
            continue  # done by another worker meanwhile
        except (OSError, ValueError, TypeError) as exc:
            aside = path.parent / "corrupt" / path.name
            aside.parent.mkdir(exist_ok=True)
            os.replace(path, aside)
            log.record("queue", f"set aside unreadable job file {path.name} ({exc}) in {aside.parent}")
    return jobs


def set_aside() -> list[str]:
    return sorted(p.name for p in (folder() / "corrupt").glob("*.json"))
