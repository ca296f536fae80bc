"""`gitend hook`: what happens when a Claude Code session ends (or a turn stops).

Read the payload, save the work tree on its WIP branch, hand the rest to the background.
Everything here runs inside Claude Code's SessionEnd budget (1.5 s by default).
"""
from __future__ import annotations

import json
import os
import select
import time
from dataclasses import dataclass
from typing import BinaryIO

from gitend import config, lock, log, message, snapshot, transcript
from gitend.errors import GitendError
from gitend.git import Repo

MAX_PAYLOAD = 1 << 20
STDIN_WAIT_S = 2.0
LOCK_WAIT_S = 2.0


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
    except ValueError:
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
    """Up to MAX_PAYLOAD bytes, waiting at most STDIN_WAIT_S for the writer to finish."""
    fd = stream.fileno()
    deadline = time.monotonic() + STDIN_WAIT_S
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GitendError(f"no complete hook payload on stdin after {STDIN_WAIT_S:g} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_PAYLOAD:
            raise GitendError(f"hook payload on stdin is larger than {MAX_PAYLOAD // 1024} KiB")
        chunks.append(chunk)


@dataclass(frozen=True)
class Outcome:
    saved: str | None  # the new snapshot commit
    summary: str
    problems: tuple[str, ...] = ()


def take_snapshot(repo: Repo, cfg: config.Config, payload: Payload) -> Outcome:
    with lock.held(repo.git_dir / "gitend.lock", timeout=LOCK_WAIT_S, what=f"the work tree {repo.root}"):
        repo.remove_stale_temp_indexes()
        cap = snapshot.capture(repo, cfg.snapshot)
        if cap.empty:
            return Outcome(None, "nothing to save: no uncommitted changes")
        if snapshot.unchanged_since_previous(repo, cap):
            return Outcome(None, f"nothing new to save since {cap.previous.commit.sha[:10]}")  # type: ignore[union-attr]
        session = transcript.read(payload.transcript_path, cfg.transcript.head_kb, cfg.transcript.tail_kb)
        text = message.compose(session, cap, session_id=payload.session_id, reason=payload.reason)
        sha = snapshot.save(repo, cap, text)
        ref = cap.ref.removeprefix("refs/heads/")
        return Outcome(sha, f"saved {len(cap.files)} file(s) to {ref} as {sha[:10]}")


def run(stream: BinaryIO) -> Outcome:
    payload = read_payload(stream)
    repo = Repo.find(payload.cwd)
    problems = []
    try:
        cfg = config.load(repo.root)
    except GitendError as exc:
        # A broken config must not cost the user their work: save locally with the
        # defaults, push nothing, and say why.
        problems.append(f"{exc}; saved with the built-in defaults, nothing pushed")
        cfg = config.Config()
    outcome = take_snapshot(repo, cfg, payload) if cfg.snapshot.enabled else Outcome(None, "snapshots are disabled")
    log.record("hook", f"{payload.event}/{payload.reason} session {payload.session_id} in {repo.root}: "
                       f"{outcome.summary}", "\n".join(problems))
    return Outcome(outcome.saved, outcome.summary, tuple(problems))
