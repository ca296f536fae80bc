"""`gitend hook`: what happens when a Claude Code session ends (or a turn stops).

Read the payload, save the work tree on its WIP branch, hand the rest to the background.
Everything here runs inside Claude Code's SessionEnd budget (1.5 s by default).
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gitend import config, lock, log, message, paths, queue, snapshot, transcript
from gitend.errors import GitendError
from gitend.git import Repo

MAX_PAYLOAD = 1 << 20
STDIN_WAIT_S = 1.0
# Another snapshot of this work tree is running (it likely saves the same state): wait this
# long, a third of the budget, then leave the save to the worker.
LOCK_WAIT_S = 0.5
# Hashing more than this does not fit in the 1.5 s budget (bench/scale.py: ~0.12 ms a file,
# ~250 MB/s): the detached worker takes such a snapshot instead.
HASH_LIMIT = (2000, 100 << 20)


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
    saved: str | None  # the new snapshot commit
    summary: str
    ref: str | None = None  # the WIP branch, when it exists
    problems: tuple[str, ...] = ()
    deferred: bool = False  # too much to hash now: the worker takes the snapshot


def take_snapshot(repo: Repo, cfg: config.Config, payload: Payload, *, may_defer: bool = True,
                  lock_wait_s: float = LOCK_WAIT_S) -> Outcome:
    """Save the work tree. With `may_defer`, what does not fit in the session-end budget (too
    much to hash, or another gitend saving this work tree) is left to the worker instead."""
    try:
        with lock.held(repo.git_dir / "gitend.lock", timeout=lock_wait_s, what=f"the work tree {repo.root}"):
            return _take_snapshot(repo, cfg, payload, may_defer)
    except lock.Busy:
        if not may_defer:
            raise
        # The worker takes the work tree as it is then, so this session's last changes are in.
        ref = snapshot.wip_ref(cfg.snapshot.branch_prefix, snapshot.branch_name(repo, repo.head().ref))
        return Outcome(None, "another gitend is saving this work tree: the background worker saves it after",
                       ref, deferred=True)


def _take_snapshot(repo: Repo, cfg: config.Config, payload: Payload, may_defer: bool) -> Outcome:
    repo.remove_stale_temp_indexes()
    try:
        cap = snapshot.capture(repo, cfg.snapshot, hash_limit=HASH_LIMIT if may_defer else None)
    except snapshot.TooBig as big:
        return Outcome(None, f"{big} to save: the background worker saves them", big.ref, deferred=True)
    existing = cap.ref if cap.previous else None
    if cap.empty:
        return Outcome(None, "nothing to save: no uncommitted changes", existing)
    if snapshot.unchanged_since_previous(repo, cap):
        return Outcome(None, f"nothing new to save since {cap.previous.commit.sha[:10]}", existing)  # type: ignore[union-attr]
    session = transcript.read(payload.transcript_path, cfg.transcript.head_kb, cfg.transcript.tail_kb)
    text = message.compose(session, cap, session_id=payload.session_id, reason=payload.reason)
    sha = snapshot.save(repo, cap, text)
    ref = cap.ref.removeprefix("refs/heads/")
    return Outcome(sha, f"saved {len(cap.files)} file(s) to {ref} as {sha[:10]}", cap.ref)


def enqueue(project_root: Path, payload: Payload, cfg: config.Config, repo: Repo | None,
            wip_ref: str | None) -> list[queue.Job]:
    """What a session end hands to the background: a few small job files, no network."""
    push = payload.reason not in cfg.push.skip_reasons
    jobs = []
    if cfg.memory.enabled and cfg.memory.repo:
        from gitend import memory

        # Where the notes are is decided here, in Claude Code's environment (CLAUDE_CONFIG_DIR, ...):
        # the worker may run with another (`gitend push` from a shell). A few stat calls.
        notes = memory.notes_dir(project_root, Path(payload.cwd))
        jobs.append(queue.add("memory", os.path.expanduser(cfg.memory.repo), push, project_root=str(project_root),
                              cwd=payload.cwd, session_id=payload.session_id, reason=payload.reason,
                              memory_dir=str(notes)))
    if repo is not None and wip_ref and cfg.snapshot.push_remote and push:
        jobs.append(queue.add("wip", str(repo.main_root), push, remote=cfg.snapshot.push_remote, refs=[wip_ref],
                              session_id=payload.session_id))
    return jobs


def spawn_worker() -> None:
    """Start a worker that outlives Claude Code (new session, no inherited terminal), unless one
    is at work: it looks at the queue again before it exits, so it takes the new job too, and
    fifty sessions ending together start one worker, not fifty (each costs ~0.1 s of CPU)."""
    if lock.held_elsewhere(paths.state_dir() / "worker.lock"):  # worker.main's lock
        return
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    with open(paths.log_file(), "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "gitend", "_worker"], cwd=paths.state_dir(),
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True,
        )


def run(stream: BinaryIO) -> Outcome:
    """Save the work tree, then queue the memory sync and pushes for the background.
    Each part goes ahead when another fails; every failure is reported."""
    # The worker waits while any session end is in flight, so sessions that end together
    # are pushed together.
    with lock.shared(paths.state_dir() / "hooks.lock"):
        return _run(stream)


def _run(stream: BinaryIO) -> Outcome:
    payload = read_payload(stream)
    problems = []
    try:
        repo: Repo | None = Repo.find(payload.cwd)
    except GitendError as exc:
        repo = None  # memory notes can still be synced outside a repository
        problems.append(str(exc))
    try:
        cfg = config.load(repo.root if repo else None)
        sound = True
    except GitendError as exc:
        # A broken config must not cost the user their work: save locally with the
        # defaults, push nothing, and say why.
        problems.append(f"{exc}; saved with the built-in defaults, nothing pushed")
        cfg, sound = config.Config(), False

    outcome = Outcome(None, "snapshots are disabled" if repo else "no repository: nothing to snapshot")
    if repo and cfg.snapshot.enabled:
        try:
            outcome = take_snapshot(repo, cfg, payload)
        except GitendError as exc:
            problems.append(str(exc))
            outcome = Outcome(None, f"not saved: {exc}")
    summary = outcome.summary
    if outcome.deferred and repo:
        try:
            queue.add("snapshot", str(repo.root), False, payload=dataclasses.asdict(payload))
            spawn_worker()  # even with push.background off: this is the user's work, not a push
        except (GitendError, OSError) as exc:
            problems.append(f"could not hand the snapshot to the background: {exc}")
    if sound and payload.event == "SessionEnd":  # per-turn (Stop) snapshots stay local
        try:
            root = repo.main_root if repo else Path(payload.cwd)
            jobs = enqueue(root, payload, cfg, repo, outcome.ref)
            if jobs and cfg.push.background:
                spawn_worker()
            if jobs:
                summary += f"; {len(jobs)} background job(s) queued"
        except (GitendError, OSError) as exc:
            problems.append(f"could not queue the background sync: {exc}")
    log.record("hook", f"{payload.event}/{payload.reason} session {payload.session_id} in {payload.cwd}: "
                       f"{summary}", "\n".join(problems))
    return Outcome(outcome.saved, summary, outcome.ref, tuple(problems))
