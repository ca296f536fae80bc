"""The durable job spool: one JSON file per job in <state>/queue/, written atomically; the
detached worker that drains it is started here, and the last results are kept here.

A job file is created before the worker starts and deleted only after its work is done, so
a killed worker or a machine that loses power leaves the job to be done by the next run.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitend import config, files, lock, log, paths
from gitend.errors import GitendError
from gitend.git import Repo, is_url

BACKOFF_FIRST_S = 30
BACKOFF_MAX_S = 3600
KEEP_RESULTS = 20


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
    last_try: float = 0.0  # when it last failed

    def failed(self, error: str, now: float) -> None:
        self.attempts += 1
        self.last_try = now
        self.last_error = error
        self.next_try = now + min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self.attempts - 1))

    def due(self, now: float) -> bool:
        return self.held is None and self.next_try <= now


def save(job: Job) -> None:
    files.write_json(paths.queue_dir() / f"{job.id}.json", asdict(job))


def add(kind: str, target: str, push: bool, **data: Any) -> Job:
    now = time.time()
    job = Job(f"{int(now * 1000):013d}-{kind}-{os.urandom(3).hex()}", kind, target, push, data, now)
    save(job)
    return job


def remove(job: Job) -> None:
    (paths.queue_dir() / f"{job.id}.json").unlink(missing_ok=True)


def load() -> list[Job]:
    """All jobs, oldest first. A file that cannot be read as a job is set aside, not lost."""
    jobs = []
    for path in sorted(paths.queue_dir().glob("*.json")):
        try:
            job = Job(**json.loads(path.read_text(encoding="utf-8")))
            problem = _problem(job)
        except FileNotFoundError:
            continue  # done by another worker meanwhile
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            problem = f"unreadable: {exc}"
        if problem is None:
            jobs.append(job)
            continue
        _set_aside(path, problem)
    return jobs


def set_aside_job(job: Job, why: str) -> None:
    """Move a job gitend cannot do out of the queue, kept in corrupt/ for a person to look at."""
    _set_aside(paths.queue_dir() / f"{job.id}.json", why)


def _set_aside(path: Path, why: str) -> None:
    aside = path.parent / "corrupt" / path.name
    try:
        aside.parent.mkdir(exist_ok=True)
        os.replace(path, aside)
    except OSError:
        return  # set aside by another process meanwhile, or the disk refuses: skip it this time
    log.record("queue", f"set aside job file {path.name} ({why}) in {aside.parent}")


def _problem(job: Job) -> str | None:
    """Why a job file cannot be read as a job (None: it can): fields of the wrong type."""
    wrong = [name for name, ok in [
        ("id", isinstance(job.id, str)), ("target", isinstance(job.target, str)), ("push", isinstance(job.push, bool)),
        ("data", isinstance(job.data, dict)), ("created", _is_number(job.created)),
        ("attempts", isinstance(job.attempts, int) and not isinstance(job.attempts, bool)),
        ("next_try", _is_number(job.next_try)), ("last_try", _is_number(job.last_try)),
        ("last_error", job.last_error is None or isinstance(job.last_error, str)),
        ("held", job.held is None or isinstance(job.held, str))] if not ok]
    return f"wrong type of {', '.join(wrong)}" if wrong else None


def add_session_end(cfg: config.Config | None, *, project_root: str, cwd: str, session_id: str, reason: str,
                    memory_dir: str | None, repo_root: str | None, branch: str | None) -> list[Job]:
    """The jobs a session end hands to the background: its memory notes and WIP branches. While
    the config is broken (None), one "session" job that waits to be turned into them (`gitend
    push` or the worker does, once the config is fixed), so nothing is lost to a typo."""
    if cfg is None:
        return [add("session", project_root, True, project_root=project_root, cwd=cwd, session_id=session_id,
                    reason=reason, memory_dir=memory_dir, repo_root=repo_root, branch=branch)]
    push = reason not in cfg.push.skip_reasons
    jobs = []
    if cfg.memory.enabled and cfg.memory.repo and memory_dir:
        jobs.append(add("memory", os.path.expanduser(cfg.memory.repo), push, project_root=project_root, cwd=cwd,
                        session_id=session_id, reason=reason, memory_dir=memory_dir))
    remote = cfg.snapshot.push_remote
    if repo_root and branch and remote and push and _has_remote(repo_root, remote):
        jobs.append(add("wip", repo_root, push, branches=[branch], session_id=session_id))
    return jobs


def expand_waiting(cfg: config.Config) -> None:
    """Sessions that ended while the config was broken: queue what they would have, now."""
    for job in [j for j in load() if j.kind == "session"]:
        data: dict[str, Any] = job.data
        add_session_end(cfg, project_root=str(data.get("project_root") or job.target),
                        cwd=str(data.get("cwd") or job.target), session_id=str(data.get("session_id") or "unknown"),
                        reason=str(data.get("reason") or "other"), memory_dir=data.get("memory_dir"),
                        repo_root=data.get("repo_root"), branch=data.get("branch"))
        remove(job)


def _has_remote(root: str, remote: str) -> bool:
    """Whether WIP branches can be pushed to `remote` from this repository, decided locally; the
    first session end that finds it cannot says so in the log (a failing job nobody can fix helps no one)."""
    try:
        found = is_url(remote) or bool(
            Repo.find(root).text("config", "--get", f"remote.{remote}.url", check=False))
    except GitendError:
        return False  # the repository is gone
    said = files.read_json(paths.no_push_remote_file(), {})
    if found == (root not in said):
        return found
    if found:
        del said[root]
    else:
        said[root] = remote
        log.record("queue", f"WIP branches of {root} are not pushed: it has no remote {remote!r} "
                            "(snapshot.push_remote); add that remote to push them")
    files.write_json(paths.no_push_remote_file(), said)
    return found


def set_aside() -> list[str]:
    return sorted(p.name for p in (paths.queue_dir() / "corrupt").glob("*.json"))


def spawn_worker() -> None:
    """Start a worker that outlives Claude Code, unless one is at work: it looks at the queue
    again before it exits, so it takes the new job too, and fifty sessions ending together start
    one worker, not fifty (each costs ~0.1 s of CPU)."""
    if lock.held_elsewhere(paths.worker_lock()):
        return
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    _detached([sys.executable, "-m", "gitend", "_worker"], paths.state_dir())


def _detached(argv: list[str], cwd: Path) -> None:
    """Run argv double-forked: re-parented to init at once, in its own session, stdin from
    /dev/null, output to the log. Claude Code kills a cancelled hook's descendants, its own
    session's children included, and 2.1.197 waits for any child that holds the hook's stdout
    (research: claude-code-facts.md §5.2, §5.6); a grandchild that let go of both survives."""
    out = os.open(paths.log_file(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked child, which never returns
            try:
                os.setsid()
                if os.fork() == 0:
                    os.chdir(cwd)
                    for fd, target in ((null, 0), (out, 1), (out, 2)):
                        os.dup2(fd, target)
                    os.closerange(3, 1 << 16)
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a cancelled hook ignores it from then on
                    os.execv(argv[0], argv)
            except BaseException as exc:
                os.write(2, f"gitend: could not start the worker: {exc}\n".encode())
            finally:
                os._exit(0)
        os.waitpid(child, 0)
    finally:
        os.close(out)
        os.close(null)


def spawn_worker_if_due(background: bool) -> None:
    """A hook that finds the worker's lock held starts no worker, trusting the holder to look at
    the queue again; `gitend push` and `gitend memory pull` do not, so they hand over here."""
    if background and any(job.due(time.time()) for job in load()):
        spawn_worker()


# -- how the last runs went, for `gitend status` ----------------------------------------------


def results() -> list[dict[str, Any]]:
    return files.read_json(paths.results_file(), [], _is_result)


def _is_result(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("kind"), str) and isinstance(entry.get("target"), str)
            and isinstance(entry.get("ok"), bool) and isinstance(entry.get("summary"), str)
            and _is_number(entry.get("time")) and (entry.get("last_ok") is None or _is_number(entry["last_ok"])))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record(kind: str, target: str, ok: bool, summary: str) -> None:
    """Remember the newest result per (kind, target), and when it last went well."""
    now, previous, kept = time.time(), None, []
    for r in results():
        if (r.get("kind"), r.get("target")) == (kind, target):
            previous = r
        else:
            kept.append(r)
    last_ok: Any
    if ok:
        last_ok = now
    elif previous:
        last_ok = previous.get("time") if previous.get("ok") else previous.get("last_ok")
    else:
        last_ok = None
    kept.insert(0, {"kind": kind, "target": target, "ok": ok, "summary": summary, "time": now,
                    "last_ok": last_ok if isinstance(last_ok, (int, float)) else None})
    files.write_json(paths.results_file(), kept[:KEEP_RESULTS])
