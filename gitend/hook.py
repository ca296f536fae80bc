"""`gitend hook`: every Claude Code hook event gitend answers, told apart by `hook_event_name`.

SessionEnd and Stop save the work tree on its WIP branch (a session end also hands the memory
sync and pushes to the background, inside Claude Code's 1.5 s budget); SessionStart catches
up a session that ended without SessionEnd, brings the project's notes from the dotfile
clone and tells the user, in one line, what needs them; PreToolUse saves the work tree before
a Bash command that would discard it. No network here, ever.
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from gitend import config, lock, log, paths, queue
from gitend.errors import GitendError

if TYPE_CHECKING:
    from gitend import snapshot
    from gitend.git import Repo

MAX_PAYLOAD = 1 << 20
STDIN_WAIT_S = 1.0
DEFAULT_BUDGET_S = 1.5  # Claude Code's SessionEnd budget (research: claude-code-facts.md §1.5)
CATCH_UP_BUDGET_S = 5.0  # the first model request waits for SessionStart: more goes to the worker
STARTUP_S = 0.1  # Python and gitend's imports, before `run` starts the clock
SAFETY = 0.6  # plan to use this share of what is left: a loaded machine hashes slower
TRIPWIRE_LOCK_WAIT_S = 10.0
NOTES_LOCK_WAIT_S = 0.2  # the worker is mirroring the notes: they come at the next start
MAX_CONTEXT = 20_000  # characters of MEMORY.md given to the model (Claude Code loads about as much)


@dataclass(frozen=True)
class Payload:
    session_id: str
    transcript_path: str | None
    cwd: str
    event: str
    reason: str
    source: str = ""  # SessionStart: startup, resume, clear, compact
    command: str | None = None  # PreToolUse: the Bash command
    fields: str = ""  # every field as received, shortened, for the log


def read_payload(stream: BinaryIO) -> Payload:
    if stream.isatty():
        raise GitendError("gitend hook reads Claude Code's hook JSON on stdin; "
                          "register it with `gitend install` (see hooks-examples/)")
    raw = _read_bounded(stream)
    try:
        data = json.loads(raw.decode("utf-8", "replace")) if raw.strip() else None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise GitendError("hook payload on stdin is not valid JSON") from None
    if not isinstance(data, dict):
        raise GitendError("hook payload on stdin must be a JSON object")

    def field(name: str, value: object) -> str | None:
        if value is not None and not isinstance(value, str):
            raise GitendError(f"hook payload field '{name}' must be a string, got {type(value).__name__}")
        return value

    event = field("hook_event_name", data.get("hook_event_name")) or "SessionEnd"
    tool_input = data.get("tool_input")
    if tool_input is not None and not isinstance(tool_input, dict):
        raise GitendError(f"hook payload field 'tool_input' must be an object, got {type(tool_input).__name__}")
    return Payload(
        session_id=field("session_id", data.get("session_id")) or "unknown",
        transcript_path=field("transcript_path", data.get("transcript_path")) or None,
        cwd=field("cwd", data.get("cwd")) or os.getcwd(),
        event=event,
        # Unknown reasons are kept as they are and treated as an ordinary exit.
        reason=field("reason", data.get("reason")) or ("other" if event == "SessionEnd" else event.lower()),
        source=field("source", data.get("source")) or "",
        command=field("tool_input.command", (tool_input or {}).get("command")) if data.get("tool_name") == "Bash"
        else None,
        fields=" ".join(f"{key}={_short(value)}" for key, value in data.items() if key != "hook_event_name"),
    )


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(text if len(text) <= 120 else text[:119] + "…", ensure_ascii=False)


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
    stdout: str | None = None  # what Claude Code reads; None: a line for its debug log


class Cancelled(BaseException):
    """Claude Code stopped the hook (SIGTERM when its budget ran out, SIGHUP)."""


def run(stream: BinaryIO) -> Outcome:
    """Read the payload, do what its event asks, log the run: its fields, time and outcome."""
    started = time.monotonic()
    payload: Payload | None = None
    try:
        _cancel_on_signals()
        payload = read_payload(stream)
        # The worker waits while any hook runs, so sessions that end together push together.
        with lock.shared(paths.hooks_lock()):
            outcome = EVENTS.get(payload.event, _save)(payload, started)
    except Cancelled as cancelled:
        outcome = Outcome(f"cancelled by Claude Code ({cancelled})", stdout="")
    where = f"{payload.event} {payload.fields}" if payload else "(payload not read)"
    log.record("hook", f"{where} ({time.monotonic() - started:.2f} s): {outcome.summary}", "\n".join(outcome.problems))
    return outcome


def _cancel_on_signals() -> None:
    def cancel(signum: int, _frame: object) -> None:
        for each in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(each, signal.SIG_IGN)  # the hand-over below must not be cut short too
        raise Cancelled(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, cancel)


def _save(payload: Payload, started: float) -> Outcome:
    """SessionEnd and Stop: save the work tree; a session end also queues the memory sync and pushes."""
    from gitend import sessions
    problems: list[str] = []
    repo = _open_repo(payload, problems)
    cfg, broken = _load_config(repo, problems)
    with _worker_saves_if_cancelled(repo, payload):
        taken = _take(repo, cfg, payload, problems, fits=_time_left(started, _budget_s()))
    summary = taken.summary
    if taken.deferred and repo:
        _hand_over(problems, "could not hand the snapshot to the background",
                   lambda: [_snapshot_job(repo, payload, taken.summary)], True)
    if payload.event == "SessionEnd":
        if not taken.failed:
            sessions.closed(payload.session_id)  # a clean end: nothing for the next start to catch up
        # With a broken config, one job waits to be turned into the sync once it is fixed.
        root = repo.main_root if repo else Path(payload.cwd)
        jobs = _hand_over(problems, "could not queue the background sync",
                          lambda: enqueue(root, payload, None if broken else cfg, repo, taken.ref),
                          cfg.push.background and not broken)
        summary += f"; {len(jobs)} background job(s) queued" if jobs and not broken else ""
    if repo and taken.ref:
        _hand_over(problems, "could not queue the daily prune", lambda: _queue_prune_if_due(repo),
                   cfg.push.background)
    return Outcome(summary, tuple(problems))


def _session_start(payload: Payload, started: float) -> Outcome:
    """Catch up the work a session left without a clean end, bring the project's notes from the
    dotfile clone, and tell the user in one line what needs them."""
    from gitend import notices, sessions
    problems: list[str] = []
    repo = _open_repo(payload, [])  # outside a repository there is simply nothing to catch up
    cfg, broken = _load_config(repo, problems)
    summary, context = "nothing to catch up", None
    if repo and cfg.snapshot.enabled:
        with _worker_saves_if_cancelled(repo, payload, reason="catch-up"):
            summary = _catch_up(repo, cfg, payload, problems, started)
        sessions.opened(sessions.Record(payload.session_id, str(repo.root), payload.transcript_path,
                                        sessions.claude_pid(), time.time()))
    if not broken and cfg.memory.enabled and cfg.memory.repo:
        try:
            context = _notes_arrived(cfg, repo.main_root if repo else Path(payload.cwd), Path(payload.cwd))
        except GitendError as exc:
            problems.append(f"notes not copied from the dotfile repo: {exc}")
        _hand_over(problems, "could not queue a fetch of the dotfile repo", lambda: _fetch_job(cfg), True)
    if context:
        summary += "; notes copied from the dotfile repo"
    shown = notices.due(notices.problems(repo, cfg, broken))
    output: dict[str, object] = {}
    if shown:
        output["systemMessage"] = notices.line(shown)
    if context:
        output["hookSpecificOutput"] = {"hookEventName": "SessionStart", "additionalContext": context}
    return Outcome(summary, tuple(problems), json.dumps(output) if output else "")


def _catch_up(repo: Repo, cfg: config.Config, payload: Payload, problems: list[str], started: float) -> str:
    from gitend import sessions

    earlier = sessions.unclean(repo.root, payload.session_id, payload.source)
    if not earlier:
        return "nothing to catch up"
    last = earlier[0]
    transcript = sessions.transcript_of(last, payload.transcript_path)
    taken = _take(repo, cfg, dataclasses.replace(payload, session_id=last.session_id, transcript_path=transcript,
                                                 reason="catch-up"),
                  problems, fits=_time_left(started, CATCH_UP_BUDGET_S))
    if taken.deferred:
        _hand_over(problems, "could not hand the catch-up to the background", lambda: [
            _snapshot_job(repo, dataclasses.replace(payload, session_id=last.session_id,
                                                    transcript_path=transcript, reason="catch-up"), taken.summary)],
                   True)
    if not taken.failed:
        sessions.forget(earlier)
    return f"session {last.session_id} ended without SessionEnd: {taken.summary}"


def _notes_arrived(cfg: config.Config, root: Path, cwd: Path) -> str | None:
    """Copy the notes the dotfile clone has and this machine does not (memsync.pull: by content,
    never over a local edit), and return the index of those that arrived, for the model: Claude
    Code has read MEMORY.md by the time this ends (research: claude-code-facts.md §5.5)."""
    from gitend import memsync  # only when memory sync is on: it costs start-up time

    try:
        result = memsync.pull(cfg.memory, root, cwd, lock_timeout=NOTES_LOCK_WAIT_S)
    except (memsync.NoNotes, lock.Busy):
        return None  # none for this project yet; or the worker is at them: the next start
    if not result.copied:
        return None
    folder = memsync.notes_dir(root, cwd)
    index = memsync.read_note(folder / "MEMORY.md")
    listing = index.decode("utf-8", "replace")[:MAX_CONTEXT] if index else "\n".join(result.copied)
    return (f"gitend copied {len(result.copied)} memory note(s) of this project from the user's dotfile repo into "
            f"{folder} after this session read its memory. Their index (MEMORY.md):\n{listing}")


def _before_tool(payload: Payload, started: float) -> Outcome:
    """PreToolUse: save the work tree before a Bash command that would discard it. Never in the
    way: whatever happens, the command runs and Claude Code sees nothing (empty stdout, exit 0)."""
    from gitend import tripwire

    hits = tripwire.check(payload.command or "", payload.cwd, os.path.isfile)
    if not hits:
        return Outcome("not a command that discards work", stdout="")
    problems: list[str] = []
    summaries = []
    for hit in hits:
        repo = _open_repo(dataclasses.replace(payload, cwd=hit.directory), problems)
        cfg, _ = _load_config(repo, problems)
        # Locally, now, however long it takes: the command runs right after.
        taken = _take(repo, cfg, dataclasses.replace(payload, reason=f"before: {hit.command}"), problems,
                      fits=None, lock_wait_s=TRIPWIRE_LOCK_WAIT_S)
        summaries.append(f"before {hit.command!r} in {hit.directory}: {taken.summary}")
    return Outcome("; ".join(summaries), tuple(problems), stdout="")


EVENTS: dict[str, Callable[[Payload, float], Outcome]] = {
    "SessionEnd": _save, "Stop": _save, "SessionStart": _session_start, "PreToolUse": _before_tool}


def _open_repo(payload: Payload, problems: list[str]) -> Repo | None:
    from gitend.git import Repo  # only for events that touch a repository: a passing tripwire never does

    try:
        return Repo.find(payload.cwd)
    except GitendError as exc:
        problems.append(str(exc))
        return None  # memory notes can still be synced outside a repository


def _load_config(repo: Repo | None, problems: list[str]) -> tuple[config.Config, str | None]:
    """The config, and what is wrong with it: a broken config must not cost the user their work,
    so the snapshot is saved with the defaults, nothing is pushed, and the user is told why."""
    try:
        return config.load(repo.root if repo else None), None
    except GitendError as exc:
        problems.append(f"{exc}; saved with the built-in defaults, nothing synced or pushed until it is fixed")
        return config.Config(), str(exc)


def _take(repo: Repo | None, cfg: config.Config, payload: Payload, problems: list[str], *,
          fits: Callable[[int, int], bool] | None, lock_wait_s: float | None = None) -> snapshot.Taken:
    from gitend import snapshot

    if not repo:
        return snapshot.Taken("no repository: nothing to snapshot")
    if not cfg.snapshot.enabled:
        return snapshot.Taken("snapshots are disabled")
    try:
        return snapshot.take(repo, cfg, payload.session_id, payload.transcript_path, payload.reason, fits=fits,
                             lock_wait_s=snapshot.LOCK_WAIT_S if lock_wait_s is None else lock_wait_s)
    except GitendError as exc:
        problems.append(str(exc))
        return snapshot.Taken(f"not saved: {exc}", failed=True)


def _budget_s() -> float:
    """What Claude Code gives all SessionEnd hooks together: CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS
    when set (it is then the whole limit), else the 1.5 s default (a settings entry's larger
    timeout may raise it, which only makes the estimate cautious)."""
    try:
        return max(0.0, float(os.environ["CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS"]) / 1000)
    except (KeyError, ValueError):
        return DEFAULT_BUDGET_S


def _time_left(started: float, budget_s: float) -> Callable[[int, int], bool]:
    """Whether hashing `files` files of `size` bytes, and what follows, fits in what is left of
    the budget (counting Python's start-up before `started`)."""
    from gitend import snapshot

    def fits(files: int, size: int) -> bool:
        spent = time.monotonic() - started + STARTUP_S
        return snapshot.estimate_s(files, size) <= (budget_s - spent) * SAFETY

    return fits


@contextmanager
def _worker_saves_if_cancelled(repo: Repo | None, payload: Payload, reason: str | None = None) -> Iterator[None]:
    """Cancelled while saving: the worker takes the snapshot (spawned now, after Claude Code's
    kill, and double-forked, so it outlives the hook); one honest line in the log."""
    try:
        yield
    except Cancelled as cancelled:
        if repo is None:
            raise
        payload = dataclasses.replace(payload, reason=reason or payload.reason)
        try:
            _snapshot_job(repo, payload, f"cancelled by Claude Code ({cancelled})")
            queue.spawn_worker()
        except (GitendError, OSError) as exc:
            raise Cancelled(f"{cancelled}; could not hand the save to the worker: {exc}") from None
        raise Cancelled(f"{cancelled} while saving; the background worker saves the work tree") from None


def _snapshot_job(repo: Repo, payload: Payload, why: str) -> queue.Job:
    return queue.add("snapshot", str(repo.root), False, payload=dataclasses.asdict(payload), why=why)


def _fetch_job(cfg: config.Config) -> list[queue.Job]:
    """A background fetch of the dotfile repo, so the next start copies fresh notes (one at a time)."""
    target = os.path.expanduser(cfg.memory.repo or "")
    if any(job.kind == "fetch" and job.target == target for job in queue.load()):
        return []
    return [queue.add("fetch", target, False)]


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
    from gitend import retention

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
