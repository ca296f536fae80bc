"""`gitend hook`: what happens when a Claude Code session ends (or a turn stops).

Read the payload, save the work tree on its WIP branch, hand the rest to the background.
Everything here runs inside Claude Code's SessionEnd budget (1.5 s by default).
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gitend import config, lock, log, paths, queue, retention, snapshot
from gitend.errors import GitendError
from gitend.git import Repo

MAX_PAYLOAD = 1 << 20
STDIN_WAIT_S = 1.0


@dataclass(frozen=True)
class Payload:
    session_id: str
    transcript_path: str | None
    cwd: str
    event: str
    reason: str


def read_payload(stream: BinaryIO) -> Payload:
    if stream.isatty():
        raise GitendError("gitend hook reads Claude Code's hook JSON on stdin; "
                          "register it as a SessionEnd hook (see hooks-examples/)")
    raw = _read_bounded(stream)
    try:
        data = json.loads(raw.decode("utf-8", "replace")) if raw.strip() else None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise GitendError("hook payload on stdin is not valid JSON") from None
    if not isinstance(data, dict):
        raise GitendError("hook payload on stdin must be a JSON object")

    def field(name: str, default: str | None) -> str | None:
        value = data.get(name, default)
        if value is not None and not isinstance(value, str):
            raise GitendError(f"hook payload field '{name}' must be a string, got {type(value).__name__}")
        return value

    event = field("hook_event_name", None) or "SessionEnd"
    return Payload(
        session_id=field("session_id", None) or "unknown",
        transcript_path=field("transcript_path", None) or None,
        cwd=field("cwd", None) or os.getcwd(),
        event=event,
        # Unknown reasons are kept as they are and treated as an ordinary exit.
        reason=field("reason", None) or ("other" if event == "SessionEnd" else event.lower()),
    )


def _read_bounded(stream: BinaryIO) -> bytes:
    """Up to MAX_PAYLOAD bytes, until end of input or a complete JSON object, waiting at most
    STDIN_WAIT_S (a writer that leaves stdin open must not cost the budget)."""
    fd = stream.fileno()
    deadline = time.monotonic() + STDIN_WAIT_S
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GitendError(f"no complete hook payload on stdin after {STDIN_WAIT_S:g} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk
        if len(data) > MAX_PAYLOAD:
            raise GitendError(f"hook payload on stdin is larger than {MAX_PAYLOAD // 1024} KiB")
        if data.rstrip().endswith(b"}") and _is_json(data):
            return data


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8", "replace"))
        return True
    except (ValueError, RecursionError):
        return False


@dataclass(frozen=True)
class Outcome:
    summary: str
    problems: tuple[str, ...] = ()


def run(stream: BinaryIO) -> Outcome:
    """Save the work tree, then queue the memory sync and pushes for the background.
    Each part goes ahead when another fails; every failure is reported."""
    # The worker waits while any session end is in flight, so sessions that end together
    # are pushed together.
    with lock.shared(paths.hooks_lock()):
        payload = read_payload(stream)
        problems: list[str] = []
        repo = _open_repo(payload, problems)
        cfg, sound = _load_config(repo, problems)
        taken = _take(repo, cfg, payload, problems)
        summary = taken.summary
        if taken.deferred and repo:
            _hand_over(problems, "could not hand the snapshot to the background", lambda: [
                queue.add("snapshot", str(repo.root), False, payload=dataclasses.asdict(payload))], True)
        if payload.event == "SessionEnd":  # per-turn (Stop) snapshots stay local
            root = repo.main_root if repo else Path(payload.cwd)
            jobs = _hand_over(problems, "could not queue the background sync",
                              lambda: enqueue(root, payload, cfg if sound else None, repo, taken.ref),
                              sound and cfg.push.background)
            summary += f"; {len(jobs)} background job(s) queued" if jobs and sound else ""
        if repo and taken.ref:
            _hand_over(problems, "could not queue the daily prune", lambda: _queue_prune_if_due(repo),
                       cfg.push.background)
        log.record("hook", f"{payload.event}/{payload.reason} session {payload.session_id} in {payload.cwd}: "
                           f"{summary}", "\n".join(problems))
        return Outcome(summary, tuple(problems))


def _open_repo(payload: Payload, problems: list[str]) -> Repo | None:
    try:
        return Repo.find(payload.cwd)
    except GitendError as exc:
        problems.append(str(exc))
        return None  # memory notes can still be synced outside a repository


def _load_config(repo: Repo | None, problems: list[str]) -> tuple[config.Config, bool]:
    """The config, and whether it is sound: a broken config must not cost the user their work,
    so the snapshot is saved with the defaults, nothing is pushed, and the user is told why."""
    try:
        return config.load(repo.root if repo else None), True
    except GitendError as exc:
        problems.append(f"{exc}; saved with the built-in defaults, nothing synced or pushed until it is fixed")
        return config.Config(), False


def _take(repo: Repo | None, cfg: config.Config, payload: Payload, problems: list[str]) -> snapshot.Taken:
    if not repo:
        return snapshot.Taken("no repository: nothing to snapshot")
    if not cfg.snapshot.enabled:
        return snapshot.Taken("snapshots are disabled")
    try:
        return snapshot.take(repo, cfg, payload.session_id, payload.transcript_path, payload.reason)
    except GitendError as exc:
        problems.append(str(exc))
        return snapshot.Taken(f"not saved: {exc}")


def _hand_over(problems: list[str], failure: str, add: Callable[[], list[queue.Job]],
               start: bool) -> list[queue.Job]:
    """Queue jobs and, with `start`, wake the worker; a failure is one more problem."""
    try:
        jobs = add()
        if jobs and start:
            queue.spawn_worker()
        return jobs
    except (GitendError, OSError) as exc:
        problems.append(f"{failure}: {exc}")
        return []


def _queue_prune_if_due(repo: Repo) -> list[queue.Job]:
    """The worker applies the retention once a day per repository (stamped now, so the hooks
    until then queue no other)."""
    if not retention.due(repo, time.time()):
        return []
    job = queue.add("prune", str(repo.main_root), False)
    paths.pruned_stamp(repo.common_dir).touch()
    return [job]


def enqueue(project_root: Path, payload: Payload, cfg: config.Config | None, repo: Repo | None,
            wip_ref: str | None) -> list[queue.Job]:
    """What a session end hands to the background: a few small job files, no network. With a
    broken config (None) one job that waits, to be turned into the others once it is fixed."""
    notes = None
    if cfg is None or (cfg.memory.enabled and cfg.memory.repo):
        from gitend import memsync  # only when memory sync may be on: it costs start-up time

        # Where the notes are is decided here, in Claude Code's environment (CLAUDE_CONFIG_DIR, ...):
        # the worker may run with another (`gitend push` from a shell). A few stat calls.
        notes = str(memsync.notes_dir(project_root, Path(payload.cwd)))
    prefix = f"refs/heads/{(cfg or config.Config()).snapshot.branch_prefix}"
    return queue.add_session_end(cfg, project_root=str(project_root), cwd=payload.cwd,
                                 session_id=payload.session_id, reason=payload.reason, memory_dir=notes,
                                 repo_root=str(repo.main_root) if repo else None,
                                 branch=wip_ref.removeprefix(prefix) if wip_ref else None)
