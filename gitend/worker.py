"""The background worker: drains the job queue, off the session's clock.

The hook only writes job files and starts this as a fully detached process (its own
session, no terminal, output to the log). One worker runs at a time; a job that arrives
while it finishes is picked up, because the worker looks at the queue again after letting
go of its lock.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitend import config, dotfiles, files, lock, log, memory, paths, queue, review, snapshot, status
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.secrets import Finding

Progress = Callable[[str], None]

# Sessions often end together (a closed terminal, a logout): wait until no hook is running and
# none has queued a job for SETTLE_S (at most SETTLE_MAX_S), so each repository gets one push.
SETTLE_S = 0.5
SETTLE_MAX_S = 10.0


def main() -> int:
    """`gitend _worker`: drain until nothing is due, unless another worker is at it."""
    while True:
        try:
            with lock.held(_lock_path(), timeout=0, what="the background worker"):
                _settle()
                run_jobs(force=False, progress=lambda line: log.record("worker", line))
        except lock.Busy:
            return 0
        if not any(job.due(time.time()) for job in queue.load()):
            return 0


def _settle() -> None:
    deadline = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        # Job file names start with their creation time in milliseconds.
        newest = max((int(p.name[:13]) / 1000 for p in queue.folder().glob("*.json") if p.name[:13].isdigit()),
                     default=0.0)
        if time.time() - newest >= SETTLE_S and not lock.held_elsewhere(paths.state_dir() / "hooks.lock"):
            return
        time.sleep(0.05)


def _lock_path() -> Path:
    return paths.state_dir() / "worker.lock"


def run_now(progress: Progress) -> int:
    """`gitend push`: every queued or failed job now, in the foreground (held ones wait)."""
    with lock.held(_lock_path(), timeout=120, what="the background worker"):
        _queue_unpushed(config.load(None))
        left = run_jobs(force=True, progress=progress)
    _start_worker_if_due()
    held = sum(1 for job in queue.load() if job.held)
    if held:
        progress(f"{held} job(s) held by the secret review: run `gitend review`")
    elif not left:
        progress("nothing left in the queue")
    return 1 if left else 0


def _queue_unpushed(cfg: config.Config) -> None:
    """Commits a session that ended with a skip reason (/clear) left in the dotfile repo are
    pushed by `gitend push` too, though no job waits for them any more."""
    if not (cfg.memory.enabled and cfg.memory.repo):
        return
    target = os.path.expanduser(cfg.memory.repo)
    jobs = [j for j in queue.load() if j.kind == "memory" and j.target == target]
    if any(j.push and not j.held or j.data.get("held_at") == "push" for j in jobs):
        return  # a job pushes them anyway, or the push waits for `gitend review`
    try:
        ahead = dotfiles.unpushed(cfg.memory)
    except GitendError:
        return  # the memory job reports what is wrong with the dotfile repo
    if ahead:
        queue.add("memory", target, True, reason="push")


def _start_worker_if_due() -> None:
    """A hook that finds the worker's lock held starts no worker, trusting the holder to look at
    the queue again; `gitend push` and `gitend memory pull` do not, so they hand over here."""
    if config.load(None).push.background and any(job.due(time.time()) for job in queue.load()):
        from gitend import hook

        hook.spawn_worker()


class PartlyFailed(GitendError):
    """Some jobs of a group failed (one project's notes), the others were done."""

    def __init__(self, summary: str, errors: dict[str, str]) -> None:
        super().__init__(summary)
        self.errors = errors  # job id -> why it failed


def run_jobs(*, force: bool, progress: Progress) -> list[queue.Job]:
    """Do the due jobs (all not held, with force); returns the jobs that are still waiting."""
    cfg = config.load(None)
    now = time.time()
    jobs = [j for j in queue.load() if (j.held is None if force else j.due(now))]
    groups: dict[tuple[str, str], list[queue.Job]] = {}
    # Deferred snapshots first, so the WIP pushes that follow include them.
    for job in sorted(jobs, key=lambda j: j.kind != "snapshot"):
        groups.setdefault((job.kind, job.target), []).append(job)
    left = []
    for (kind, target), group in groups.items():
        what = {"snapshot": "snapshot of", "memory": "memory notes ->", "wip": "WIP branches ->"}[kind]
        progress(f"{what} {target} ...")
        try:
            summary, errors = _KINDS[kind](target, group, cfg), {}
        except PartlyFailed as exc:
            summary, errors = str(exc), exc.errors
        except GitendError as exc:
            summary, errors = str(exc), {job.id: str(exc) for job in group}
        for job in group:
            if job.id in errors:
                job.failed(errors[job.id], time.time())
                queue.save(job)
            elif not job.held:
                queue.remove(job)
        waiting = [j for j in group if j.held or j.id in errors]
        left += waiting
        status.record(kind, target, not waiting and not (kind == "memory" and status.held_extras()), summary)
        progress(f"{what} {target}: {'failed: ' if len(errors) == len(group) else ''}{summary}")
    return left


# -- snapshots too big for the session-end budget ----------------------------------


def _snapshot(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    """Take the snapshot a hook handed over (the work tree as it is now)."""
    from gitend import hook

    if not Path(target).is_dir():
        return "the work tree is gone; nothing to save"
    repo = Repo.find(target)
    payload = hook.Payload(**jobs[-1].data["payload"])
    outcome = hook.take_snapshot(repo, config.load(repo.root), payload, may_defer=False, lock_wait_s=30)
    return outcome.summary


# -- memory notes -------------------------------------------------------------


def _memory(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    repo, branch = dotfiles.open_repo(target)
    folder = cfg.memory.path.strip("/")
    lines = []
    with lock.held(repo.git_dir / "gitend.lock", timeout=30, what=f"the dotfile repo {repo.root}"):
        # One mirror per project (its newest job says where the notes are): two groups for one
        # dotfile folder would each take the other's notes for deleted ones.
        by_project: dict[str, list[queue.Job]] = {}
        for job in jobs:
            if "project_root" in job.data:  # not in a job that only pushes (`gitend push`)
                by_project.setdefault(job.data["project_root"], []).append(job)
        errors: dict[str, str] = {}
        for project_root, project_jobs in by_project.items():
            try:
                lines.append(_mirror_project(repo, folder, Path(project_root), project_jobs, cfg))
            except GitendError as exc:  # one project's notes never stop another's
                errors.update({job.id: str(exc) for job in project_jobs})
                lines.append(f"{project_root}: failed ({exc})")
        lines += _mirror_extras(repo, folder, cfg)
        pushing = [j for j in jobs if j.push and not j.held and j.id not in errors]
        if not pushing:
            lines.append("not pushed (session ended with a skip reason; the next session end pushes it)"
                         if not any(j.held or j.id in errors for j in jobs) else "")
        else:
            try:
                outcome = dotfiles.sync(repo, branch, cfg.memory.remote, folder, cfg.push.timeout_s,
                                        lambda revs: review.check_outgoing(repo, revs, cfg.review))
            except (review.Held, dotfiles.PushRefused) as exc:
                _hold(pushing, exc, "push")
                lines.append(f"push held ({exc})")
            else:
                lines.append(f"pushed to {cfg.memory.remote}" if outcome.pushed else "nothing to push")
                lines += outcome.notes
    summary = "; ".join(line for line in lines if line)
    if errors:
        raise PartlyFailed(summary, errors)
    return summary


def _hold(jobs: list[queue.Job], reason: Exception, stage: str) -> None:
    """Park jobs for `gitend review`; they are never retried on their own."""
    for job in jobs:
        job.held = str(reason)
        job.data["held_at"] = stage
        job.data["findings"] = [f.to_dict() for f in getattr(reason, "findings", [])]
        queue.save(job)


def project_folder(folder: str, key: str) -> str:
    """One flat folder per project (`github.com+owner+repo`): keys never contain "+", so no
    project's folder can sit inside another's. A long key (a deep GitLab group) is cut short with a
    hash of the whole key, as Claude Code names long project folders: a name fits in 255 bytes."""
    name = key.replace("/", "+")
    if len(name) > 200:
        name = f"{name[:200]}-{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"
    return f"{folder}/{name}"


def project_key(project_root: Path) -> str:
    origin = None
    if (project_root / ".git").exists():
        try:
            origin = Repo.find(project_root).text("config", "--get", "remote.origin.url", check=False) or None
        except GitendError:
            origin = None
    return memory.project_key(origin, project_root)


@dataclass
class Pending:
    """What mirroring one set of notes would change in the dotfile repo, and what it found."""

    key: str
    rel_folder: str
    source: Path
    only: str | None
    local: dict[str, memory.Note]
    plan: memory.MirrorPlan
    data: dict[str, bytes]  # the bytes of every note that would be written, read once and scanned
    texts: dict[str, str]  # the same, as text
    findings: list[Finding]  # unapproved ones
    synced: memory.Synced  # what this machine last synced (the manifest)

    def diff(self, repo: Repo) -> str:
        """A unified diff of the notes in the dotfile repo against what would be written."""
        chunks = []
        for path, text in sorted(self.texts.items()):
            old_path = repo.root / self.rel_folder / path
            old = old_path.read_text(encoding="utf-8", errors="replace") if old_path.is_file() else ""
            chunks += difflib.unified_diff(old.splitlines(keepends=True), text.splitlines(keepends=True),
                                           f"a/{self.rel_folder}/{path}", f"b/{self.rel_folder}/{path}")
        return "".join(chunks) + "".join(f"deleted: {self.rel_folder}/{p}\n" for p in self.plan.delete)


def pending(repo: Repo, rel_folder: str, source: Path, key: str, cfg: config.Config,
            only: str | None = None) -> Pending:
    target = repo.root / rel_folder
    local, there = memory.list_notes(source, only), memory.list_notes(target, only)
    synced = memory.load_manifest(key, source, there, local)
    plan = memory.plan_mirror(local, there, synced.notes, written=synced.written)
    data = {}
    for path in list(plan.write) + [path for path, _ in plan.conflicts]:
        # Read once: these very bytes are scanned, written and recorded, whatever happens to the note meanwhile.
        raw = memory.read_note(source / path)
        if raw is None:  # gone, or no longer a note
            local.pop(path, None)
            continue
        data[path] = raw
        local[path] = memory.Note(path, hashlib.sha256(raw).hexdigest(), len(raw))
    texts = {path: raw.decode("utf-8", errors="replace") for path, raw in data.items()}
    findings = review.unapproved(review.scan_notes(texts), cfg.review)
    return Pending(key, rel_folder, source, only, local, plan, data, texts, findings, synced)


def project_pending(repo: Repo, project_root: Path, cwd: Path, cfg: config.Config,
                    source: Path | None = None) -> Pending | None:
    """`source`: the memory folder the hook found (old jobs lack it: then it is looked for here)."""
    source = source or memory.memory_dir(project_root, cwd)
    if source is None or not source.is_dir():
        return None
    key = project_key(project_root)
    return pending(repo, project_folder(cfg.memory.path.strip("/"), key), source, key, cfg)


def job_pending(repo: Repo, job: queue.Job, cfg: config.Config) -> Pending | None:
    """What a memory job has to mirror, from the folder its hook found."""
    project_root = Path(job.data["project_root"])
    stored = job.data.get("memory_dir")
    return project_pending(repo, project_root, Path(job.data.get("cwd") or project_root), cfg,
                           Path(stored) if stored else None)


def _mirror_project(repo: Repo, folder: str, project_root: Path, jobs: list[queue.Job],
                    cfg: config.Config) -> str:
    work = job_pending(repo, jobs[-1], cfg)
    if work is None:
        return ""
    sessions = ", ".join(sorted({j.data.get("session_id", "?") for j in jobs}))
    try:
        return _mirror(repo, work, f"memory: {work.key} from {memory.host()} (session {sessions})", cfg,
                       redact=any(j.data.get("redact") for j in jobs))
    except review.Held as held:
        _hold(jobs, held, "notes")
        return f"{work.key}: held ({held})"


def _mirror_extras(repo: Repo, folder: str, cfg: config.Config) -> list[str]:
    """memory.extra: user-wide files or folders, e.g. ~/.claude/CLAUDE.md, under <path>/_user/."""
    lines, held_extras = [], {}
    for extra in cfg.memory.extra:
        source = Path(extra).expanduser()
        if not source.exists():
            continue
        only = None if source.is_dir() else source.name
        rel_folder = f"{folder}/_user/{source.name}" if only is None else f"{folder}/_user"
        work = pending(repo, rel_folder, source if only is None else source.parent, f"_user/{source.name}",
                       cfg, only)
        try:
            lines.append(_mirror(repo, work, f"memory: {source.name} from {memory.host()}", cfg))
        except review.Held as held:
            held_extras[str(source)] = str(held)
            lines.append(f"{extra}: held ({held}); it is skipped until the secret is gone or allowed")
    status.set_held_extras(held_extras)
    return lines


def _mirror(repo: Repo, work: Pending, message: str, cfg: config.Config, *, redact: bool = False) -> str:
    """Copy one set of notes into the dotfile repo and commit them, through the secret gate."""
    if work.plan.empty:
        # The plan compares with the files, so notes that a killed or failed run copied but did not
        # commit look done: finish that run's work. Ignored files count (gitend's folder is its own).
        done = memory.Synced({rel: note.digest for rel, note in work.local.items()}, work.synced.written)
        if done.record() != work.synced.record():
            memory.save_manifest(work.key, work.source, done)
        if not repo.git("status", "--porcelain", "-z", "--untracked-files=all", "--ignored", "--", work.rel_folder):
            return ""
        commit = dotfiles.commit_folder(repo, work.rel_folder, message)
        return f"{work.key}: committed the notes an interrupted run had copied" if commit else ""
    if work.findings and not (redact or cfg.review.on_finding == "redact"):
        raise review.Held(work.findings, f"the notes of {work.key}")
    out = dict(work.data)
    redacted = {f.path for f in work.findings}
    for path in redacted:
        out[path] = review.redact(work.texts[path], [f for f in work.findings if f.path == path]).encode("utf-8")
    rewritten = set(work.plan.write) | {rel for rel, _ in work.plan.conflicts}
    written = {rel: digest for rel, digest in work.synced.written.items() if rel not in rewritten}
    written.update({path: hashlib.sha256(out[path]).hexdigest() for path in redacted})
    done = memory.Synced({rel: note.digest for rel, note in work.local.items()}, written)
    # What this run will write is recorded first: if it stops halfway (a full disk, a kill), the
    # next run knows which copies are its own, and a note deleted meanwhile is not brought back.
    memory.save_manifest(work.key, work.source, work.synced, intent=done)
    memory.apply_mirror(work.plan, work.source, repo.root / work.rel_folder, out, root=repo.root)
    # Recorded before the commit: a run that stops here leaves an empty plan, and the next commits.
    memory.save_manifest(work.key, work.source, done)
    commit = dotfiles.commit_folder(repo, work.rel_folder, message)
    changes = len(work.plan.write) + len(work.plan.delete)
    redacted_note = f", {len(work.findings)} secret(s) redacted" if work.findings else ""
    return f"{work.key}: {changes} note change(s) committed{redacted_note}" if commit else ""


# -- WIP branches -------------------------------------------------------------


def _wip(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    """One push per repository for all its WIP branches, under this machine's name on the
    remote (refs/heads/<prefix><host>/<branch>), so machines never overwrite each other."""
    repo = Repo.find(target)
    remote = jobs[-1].data["remote"]
    prefix = cfg.snapshot.branch_prefix
    refs = sorted({ref for job in jobs for ref in job.data.get("refs", [])} & set(snapshot.wip_refs(repo, prefix)))
    if not refs:
        return "no WIP branches to push"
    host = memory.host()
    specs = [f"+{ref}:refs/heads/{prefix}{host}/{ref.removeprefix(f'refs/heads/{prefix}')}" for ref in refs]
    repo.git("push", "--quiet", "--porcelain", remote, *specs, timeout=cfg.push.timeout_s, env=repo.batch_ssh_env())
    return f"pushed {len(refs)} WIP branch(es) to {remote} as {prefix}{host}/..."


def pull_notes(settings: config.Memory, project_root: Path, cwd: Path | None = None, *,
               lock_timeout: float = 30) -> memory.PullResult:
    """This project's notes from the local clone of the dotfile repo into Claude Code's memory
    folder (no network). Decided by content, never by clocks: a note changed here since it was
    last synced is never replaced; where both sides changed, both versions end up here."""
    if not (settings.enabled and settings.repo):
        raise GitendError("memory.repo is not set in the config; nothing to pull from")
    key = project_key(project_root)
    repo, _ = dotfiles.open_repo(settings.repo)
    with lock.held(repo.git_dir / "gitend.lock", timeout=lock_timeout, what=f"the dotfile repo {repo.root}"):
        rel_folder = project_folder(settings.path.strip("/"), key)
        source = files.inside(repo.root, rel_folder, folder=True)  # nothing read through a symlink either
        if not source.is_dir():
            raise GitendError(f"the dotfile repo has no notes for {key} (looked in {source})")
        target = memory.notes_dir(project_root, cwd)
        there, here = memory.list_notes(source), memory.list_notes(target)
        result, synced = memory.pull_notes(source, target, memory.load_manifest(key, target, there, here))
        memory.save_manifest(key, target, synced)
    return result


def pull(directory: str, progress: Progress) -> int:
    """`gitend memory pull`: fetch the dotfile repo, then this project's notes into Claude Code's
    memory folder, for a new machine."""
    cfg = config.load(None)
    if not cfg.memory.repo:
        raise GitendError("memory.repo is not set in the config; nothing to pull from")
    try:
        root = Repo.find(directory).main_root
    except GitendError:
        root = Path(directory).resolve()
    with lock.held(_lock_path(), timeout=120, what="the background worker"):
        repo, branch = dotfiles.open_repo(cfg.memory.repo)
        for note in dotfiles.update(repo, branch, cfg.memory.remote, cfg.push.timeout_s).notes:
            progress(note)
        result = pull_notes(cfg.memory, root, Path(directory).resolve())
    _start_worker_if_due()
    for path in result.copied:
        progress(f"copied {path}")
    for path in result.kept_local:
        progress(f"kept the local {path} (changed here; the next session end syncs it)")
    for path, copy in result.conflicts:
        progress(f"{path} was changed here and on another machine: kept this machine's, the other is {copy}")
    progress(f"{len(result.copied)} note(s) copied into {memory.notes_dir(root, Path(directory).resolve())}")
    return 0


_KINDS: dict[str, Callable[[str, list[queue.Job], config.Config], str]] = {
    "snapshot": _snapshot, "memory": _memory, "wip": _wip}
