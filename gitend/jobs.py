"""The background jobs: doing them (the detached worker and `gitend push`), and rebuilding
what the secret review holds among them (for `gitend review`)."""
from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitend import approvals, config, dotfiles, lock, log, memsync, paths, queue, retention, snapshot
from gitend.errors import GitendError
from gitend.git import Repo, is_url
from gitend.secrets import Finding, mask

Progress = Callable[[str], None]


WAIT_FOR_WORKER_S = 120


def run_now(progress: Progress) -> int:
    """`gitend push`: every queued or failed job now, in the foreground (held ones wait), logged
    as the worker's runs are. A worker at work is waited for, and what it tried meanwhile is
    not tried a second time."""
    def say(line: str) -> None:
        progress(line)
        log.record("push", line)

    cfg = config.load(None)
    started = time.time()
    if lock.held_elsewhere(paths.worker_lock()):
        say(f"waiting for the background worker to finish what it is doing (at most {WAIT_FOR_WORKER_S} s) ...")
    with lock.held(paths.worker_lock(), timeout=WAIT_FOR_WORKER_S, what="the background worker"):
        _queue_unpushed(cfg)
        left = run_jobs(force=True, progress=say, tried_since=started)
    queue.spawn_worker_if_due(cfg.push.background)
    held = sum(1 for job in queue.load() if job.held)
    if held:
        say(f"{held} job(s) held by the secret review: run `gitend review`")
    elif not left:
        say("nothing left in the queue")
    return 1 if left else 0


def _queue_unpushed(cfg: config.Config) -> None:
    """Commits a session that ended with a skip reason (/clear) left in the dotfile repo are
    pushed by `gitend push` too, though no job waits for them any more."""
    if not (cfg.memory.enabled and cfg.memory.repo):
        return
    target = os.path.expanduser(cfg.memory.repo)
    jobs = [j for j in queue.load() if j.kind == "memory" and j.target == target]
    if any((j.push and not j.held) or j.data.get("held_at") == "push" for j in jobs):
        return  # a job pushes them anyway, or the push waits for `gitend review`
    try:
        ahead = dotfiles.unpushed(cfg.memory)
    except GitendError:
        return  # the memory job reports what is wrong with the dotfile repo
    if ahead:
        queue.add("memory", target, True, reason="push")


class PartlyFailed(GitendError):
    """Some jobs of a group failed (one project's notes), the others were done."""

    def __init__(self, summary: str, errors: dict[str, str]) -> None:
        super().__init__(summary)
        self.errors = errors  # job id -> why it failed


def run_jobs(*, force: bool, progress: Progress, kinds: frozenset[str] | None = None,
             tried_since: float | None = None) -> list[queue.Job]:
    """Do the due jobs (all not held, with force, except those tried since `tried_since`; only of
    `kinds`, when given); returns the jobs that are still waiting."""
    cfg = config.load(None)
    queue.expand_waiting(cfg)
    now = time.time()
    jobs = []
    for job in queue.load():
        if job.kind not in _KINDS:
            queue.set_aside_job(job, f"a job of unknown kind {job.kind!r}, perhaps left by a newer gitend")
        elif (job.held is None if force else job.due(now)) and (kinds is None or job.kind in kinds):
            jobs.append(job)
    just_tried = [j for j in jobs if tried_since is not None and j.last_try >= tried_since]
    if just_tried:
        tried = sorted({f"{j.kind} {j.target}: {j.last_error}" for j in just_tried})
        progress(f"not trying again what the background worker just tried: {'; '.join(tried)}")
        jobs = [j for j in jobs if j not in just_tried]
    groups: dict[tuple[str, str], list[queue.Job]] = {}
    # Deferred snapshots first, then the retention, so the WIP pushes that follow include both.
    for job in sorted(jobs, key=lambda j: {"snapshot": 0, "prune": 1}.get(j.kind, 2)):
        groups.setdefault((job.kind, job.target), []).append(job)
    left = list(just_tried)
    for (kind, target), group in groups.items():
        what = {"snapshot": "snapshot of", "memory": "memory notes ->", "wip": "WIP branches ->",
                "prune": "retention of", "fetch": "dotfile repo <-"}[kind]
        progress(f"{what} {target} ...")
        try:
            summary, errors, ok = _KINDS[kind](target, group, cfg), {}, True
        except PartlyFailed as exc:
            summary, errors, ok = str(exc), exc.errors, False
        except Exception as exc:  # one job's failure, expected or not, never stops another
            summary = str(exc) if isinstance(exc, GitendError) else f"unexpected error: {type(exc).__name__}: {exc}"
            if not isinstance(exc, GitendError):
                log.record(kind, f"{target}: {summary}", traceback.format_exc())
            errors, ok = {job.id: summary for job in group}, False
        for job in group:
            if job.id in errors:
                job.failed(errors[job.id], time.time())
                queue.save(job)
            elif not job.held:
                queue.remove(job)
        waiting = [j for j in group if j.held or j.id in errors]
        left += waiting
        queue.record(kind, target, ok and not waiting and not (kind == "memory" and approvals.held_extras()), summary)
        progress(f"{what} {target}: {'failed: ' if len(errors) == len(group) else ''}{summary}")
    return left


# -- the kinds of job ----------------------------------------------------------------


def _snapshot(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    """Take the snapshot a hook handed over (the work tree as it is now)."""
    if not Path(target).is_dir():
        return "the work tree is gone; nothing to save"
    repo = Repo.find(target)
    payload = jobs[-1].data["payload"]
    return snapshot.take(repo, config.load(repo.root), payload["session_id"], payload.get("transcript_path"),
                         payload["reason"], lock_wait_s=30).summary


def _fetch(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    """Bring the dotfile repo up to date, so the next session start copies fresh notes."""
    repo, branch = dotfiles.open_repo(target)
    with lock.held(paths.repo_lock(repo.git_dir), timeout=30, what=f"the dotfile repo {repo.root}"):
        notes = dotfiles.update(repo, branch, cfg.memory.remote, cfg.push.timeout_s).notes
    return "; ".join(["fetched", *notes])


def _memory(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    repo, branch = dotfiles.open_repo(target)
    folder = cfg.memory.path.strip("/")
    lines = []
    with lock.held(paths.repo_lock(repo.git_dir), timeout=30, what=f"the dotfile repo {repo.root}"):
        # One mirror per project (its newest job says where the notes are): two groups for one
        # dotfile folder would each take the other's notes for deleted ones.
        by_project: dict[str, list[queue.Job]] = {}
        for job in jobs:
            if "project_root" in job.data:  # not in a job that only pushes (`gitend push`)
                by_project.setdefault(job.data["project_root"], []).append(job)
        errors: dict[str, str] = {}
        extras = ""
        for project_root, project_jobs in by_project.items():
            try:
                lines.append(_mirror_project(repo, project_jobs, cfg))
            except GitendError as exc:  # one project's notes never stop another's
                errors.update({job.id: str(exc) for job in project_jobs})
                lines.append(f"{project_root}: failed ({exc})")
        try:
            lines += memsync.mirror_extras(repo, folder, cfg)
        except GitendError as exc:  # nor do the user-wide extras stop the projects' notes
            extras = f"memory.extra: failed ({exc})"
            lines.append(extras)
        pushing = [j for j in jobs if j.push and not j.held and j.id not in errors]
        if not pushing:
            lines.append("not pushed (session ended with a skip reason; the next session end pushes it)"
                         if not any(j.held or j.id in errors for j in jobs) else "")
        else:
            try:
                outcome = dotfiles.sync(repo, branch, cfg.memory.remote, folder, cfg.push.timeout_s,
                                        lambda revs: approvals.check_outgoing(repo, revs, cfg.review))
            except (approvals.Held, dotfiles.PushRefused) as exc:
                _hold(pushing, exc, "push")
                lines.append(f"push held ({exc})")
            else:
                lines.append(f"pushed to {cfg.memory.remote}" if outcome.pushed else "nothing to push")
                lines += outcome.notes
    summary = "; ".join(line for line in lines if line)
    if errors or extras:
        raise PartlyFailed(summary, errors)
    return summary


def _hold(jobs: list[queue.Job], reason: Exception, stage: str) -> None:
    """Park jobs for `gitend review`; they are never retried on their own."""
    for job in jobs:
        job.held = str(reason)
        job.data["held_at"] = stage
        job.data["findings"] = [f.to_dict() for f in getattr(reason, "findings", [])]
        queue.save(job)


def _mirror_project(repo: Repo, jobs: list[queue.Job], cfg: config.Config) -> str:
    work = memsync.job_pending(repo, jobs[-1], cfg)
    if work is None:
        return ""
    sessions = ", ".join(sorted({j.data.get("session_id", "?") for j in jobs}))
    try:
        return memsync.mirror(repo, work, f"memory: {work.key} from {config.host(cfg.push)} (session {sessions})", cfg,
                              redacting=any(j.data.get("redact") for j in jobs))
    except approvals.Held as held:
        _hold(jobs, held, "notes")
        return f"{work.key}: held ({held})"


def _wip(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    """One push per repository for all its WIP branches, through the secret review, as
    <prefix><host>-<clone id>/<branch>, so clones and machines never overwrite each other."""
    remote = cfg.snapshot.push_remote
    if not remote:
        return "not pushed: snapshot.push_remote is off now, so the queued WIP push is dropped"
    repo = Repo.find(target)
    # A hold the newest snapshots no longer need goes with them (their push supersedes it).
    held = [j for j in queue.load() if j.kind == "wip" and j.target == target and j.held]
    branches = wip_branches(repo, jobs + held, cfg)
    if not branches:
        return "no WIP branches to push"
    try:
        pushes = wip_pushes(repo, branches, remote, cfg.review)
    except approvals.Held as exc:
        _hold(jobs, exc, "wip")
        return f"held ({exc})"
    specs = [f"+{sha}:{ref}" for ref, sha in pushes.items()]
    repo.git("push", "--quiet", "--porcelain", remote, *specs, timeout=cfg.push.timeout_s, env=repo.batch_ssh_env())
    for job in held:
        queue.remove(job)
    if any(job.data.get("pruned") for job in jobs):
        # Their remote-tracking copies' reflogs would keep the dropped snapshots from git gc.
        tracking = [f"refs/remotes/{remote}/{ref.removeprefix('refs/heads/')}" for ref in pushes]
        present = [ref for ref in tracking if repo.resolve(ref)]
        if present:
            repo.git("reflog", "expire", "--expire=now", *present)
    names = sorted({ref.removeprefix("refs/heads/").rpartition("/")[0] for ref in pushes})
    return f"pushed {len(pushes)} WIP branch(es) to {remote} as {', '.join(names)}/..."


def wip_branches(repo: Repo, jobs: list[queue.Job], cfg: config.Config) -> dict[str, tuple[str, str | None]]:
    """{remote ref: (local snapshot, the remote's copy as last fetched or pushed)} for the WIP
    branches these jobs push. The local names may follow the repository's `.gitend.yaml`; the
    remote names come from the user's config only."""
    try:
        local_prefix = config.load(repo.root).snapshot.branch_prefix
    except GitendError:
        local_prefix = cfg.snapshot.branch_prefix
    names = {b for job in jobs for b in job.data.get("branches", [])}
    names |= {ref.removeprefix(f"refs/heads/{local_prefix}") for job in jobs for ref in job.data.get("refs", [])
              if ref.startswith(f"refs/heads/{local_prefix}")}  # jobs an older gitend queued
    namespace = snapshot.remote_namespace(repo, config.host(cfg.push))
    found = {}
    for name in sorted(names):
        local = repo.resolve(snapshot.wip_ref(local_prefix, name))
        if local:
            ref = snapshot.remote_wip_ref(cfg.snapshot.branch_prefix, namespace, name)
            tracking = f"refs/remotes/{cfg.snapshot.push_remote}/{ref.removeprefix('refs/heads/')}"
            found[ref] = (local, repo.resolve(tracking))
    return found


def wip_pushes(repo: Repo, branches: dict[str, tuple[str, str | None]], remote: str,
               settings: config.Review) -> dict[str, str]:
    """{remote ref: commit} to push, through the secret review: each branch as it is, with its
    whole history; else, when older snapshots never pushed have a finding, only the newest on top
    of what the remote has (so deleting or ignoring the file is enough); else Held."""
    whole = {ref: local for ref, (local, _) in branches.items()}
    try:
        approvals.check_outgoing(repo, [*whole.values(), "--not", *_remote_has(remote)], settings)
        return whole
    except approvals.Held:
        newest = {ref: snapshot.for_remote(repo, local, tip) for ref, (local, tip) in branches.items()}
        if newest == whole:
            raise
    approvals.check_outgoing(repo, [*newest.values(), "--not", *_remote_has(remote)], settings)
    return newest


def _remote_has(remote: str) -> list[str]:
    """rev-list arguments for what a remote has, as far as this clone knows (a URL: any remote)."""
    return ["--remotes"] if is_url(remote) else [f"--remotes={remote}"]


def _prune(target: str, jobs: list[queue.Job], cfg: config.Config) -> str:
    """The daily retention of one repository's WIP branches."""
    if not Path(target).is_dir():
        return "the repository is gone; nothing to prune"
    repo = Repo.find(target)
    results = retention.prune_repository(repo, config.load(repo.root).snapshot, now=time.time())
    return retention.summary(results)


_KINDS: dict[str, Callable[[str, list[queue.Job], config.Config], str]] = {
    "snapshot": _snapshot, "memory": _memory, "wip": _wip, "prune": _prune, "fetch": _fetch}


# -- what is held, for `gitend review` -----------------------------------------------


@dataclass
class Item:
    """One thing waiting for a decision: a project's notes, a push, or a blocked manual push."""

    title: str
    kind: str  # "notes": redactable copies; "push", "wip" and "blocked": commits, approve or hold only
    diff: str
    findings: list[Finding]  # re-found now, so the secrets themselves are never stored
    contexts: list[list[str]]  # a few masked lines around each finding
    jobs: list[queue.Job] = field(default_factory=list)
    repo_root: str = ""


def held_items(cfg: config.Config) -> list[Item]:
    """Everything held, inspected afresh; a hold whose finding has gone away is released."""
    items = []
    groups: dict[tuple[str, str, str], list[queue.Job]] = {}
    for job in queue.load():
        if job.held:
            stage = job.data.get("held_at", "notes")
            groups.setdefault((job.target, stage, job.data.get("project_root", "") if stage == "notes" else ""),
                              []).append(job)
    for (target, stage, _project), jobs in groups.items():
        if stage == "wip":
            item = _wip_item(target, jobs, cfg)
            if item is None:
                release(jobs)
            else:
                items.append(item)
            continue
        repo, branch = dotfiles.open_repo(target)
        if stage == "notes":
            work = memsync.job_pending(repo, jobs[-1], cfg)
            if work is None or not work.findings:
                release(jobs)
                continue
            contexts = [approvals.context(work.texts[f.path], f) for f in work.findings]
            items.append(Item(f"memory notes of {work.key} -> {repo.root}", "notes", mask(work.diff(repo)),
                              work.findings, contexts, jobs, str(repo.root)))
        else:
            revs = dotfiles.outgoing(repo, branch, cfg.memory.remote)
            item = _commits_item(repo, [revs], f"push of {repo.root} to {cfg.memory.remote}", "push", cfg)
            if item is None:
                release(jobs)
                continue
            item.jobs = jobs
            items.append(item)
    for root, entry in approvals.blocked().items():
        try:
            repo = Repo.find(root)
        except GitendError:
            approvals.set_blocked(root, None)
            continue
        item = _commits_item(repo, entry["ranges"], f"your push of {root} to {entry['remote']} (pre-push hook)",
                             "blocked", cfg)
        if item is None:
            approvals.set_blocked(root, None)
        else:
            items.append(item)
    return items


def _wip_item(target: str, jobs: list[queue.Job], cfg: config.Config) -> Item | None:
    """A held WIP push, looked at afresh: what pushing the newest snapshots would add."""
    remote = cfg.snapshot.push_remote
    try:
        repo = Repo.find(target)
    except GitendError:
        return None
    branches = wip_branches(repo, jobs, cfg) if remote else {}
    if not remote or not branches:
        return None
    newest = [snapshot.for_remote(repo, local, tip) for local, tip in branches.values()]
    item = _commits_item(repo, [[*newest, "--not", *_remote_has(remote)]], f"WIP branches of {repo.root} -> {remote}",
                         "wip", cfg, diff=False)
    if item:
        item.jobs = jobs
    return item


def _commits_item(repo: Repo, ranges: list[list[str]], title: str, kind: str, cfg: config.Config, *,
                  diff: bool = True) -> Item | None:
    """The findings in commit ranges (rev-list arguments, one list per pushed ref); with `diff`,
    their patches (not for a WIP push: its commits carry the whole work tree)."""
    found = [f for revs in ranges for f in approvals.unapproved(approvals.outgoing_findings(repo, revs), cfg.review)]
    if not found:
        return None
    patches = "\n".join(repo.text("log", "-p", "--cc", "--no-color", "--no-ext-diff", "--format=commit %H%n%s%n",
                                  *revs, "--") for revs in ranges) if diff else ""
    contexts = []
    for f in found:
        commit, _, path = f.path.partition(":")
        text = repo.git("show", f"{commit}:{path}", check=False).decode("utf-8", "replace") if path else ""
        contexts.append(approvals.context(text, f) if text else [f"> {f.excerpt}"])
    return Item(title, kind, mask(patches), found, contexts, repo_root=str(repo.root))


def release(jobs: list[queue.Job], *, redact: bool = False) -> None:
    for job in jobs:
        job.held = None
        job.next_try = 0.0
        job.data.pop("findings", None)
        if redact:
            job.data["redact"] = True
        queue.save(job)


