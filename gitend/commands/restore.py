"""`gitend restore`: bring a snapshot back, or refuse and say why; --fetch looks on the remote."""
from __future__ import annotations

import os
import sys

from gitend import config, message, restore, snapshot
from gitend.errors import GitendError
from gitend.git import Repo, quote_path
from gitend.output import ask, safe


def run(directory: str, spec: str, *, dry_run: bool, force: bool, fetch: bool, paths: list[str] | None = None) -> int:
    repo = Repo.find(directory)
    scope = [_in_repo(repo, directory, path) for path in paths] if paths else None
    cfg = config.load_or_defaults(repo.root)
    prefix = cfg.snapshot.branch_prefix
    if fetch:
        _fetch(repo, cfg)
    namespace = snapshot.remote_namespace(repo, config.host(cfg.push))
    try:
        snap = snapshot.find(repo, spec, prefix, namespace)
    except snapshot.NotOwn as exc:
        snap = _choose(exc)
    except snapshot.NotFound as exc:
        remote = _remote(repo, cfg)
        if fetch or remote is None:
            raise
        question = f"{exc}. Fetch the WIP branches from {remote} and look there? [y/N] "
        if not (sys.stdin.isatty() and ask(question) in ("y", "yes")):
            raise GitendError(f"{exc}; `gitend restore {spec} --fetch` looks on {remote} too") from None
        _fetch(repo, cfg)
        try:
            snap = snapshot.find(repo, spec, prefix, namespace)
        except snapshot.NotOwn as other:
            snap = _choose(other)

    plan = restore.make_plan(repo, snap, scope)
    if plan.in_progress:
        raise GitendError(f"{plan.in_progress} is in progress; finish or abort it before restoring")
    if plan.head is None and plan.snap.base is not None:
        raise GitendError(f"this branch has no commits yet and the snapshot was taken on "
                          f"{plan.snap.base[:10]}; check that commit out first (git checkout {plan.snap.base[:10]})")
    if plan.under_tracked_file:
        path = plan.under_tracked_file[0]
        raise GitendError(f"the snapshot's untracked file(s) {', '.join(plan.under_tracked_file)} need a folder "
                          "where HEAD now tracks a file; restore onto the snapshot's base instead, or read the file "
                          f"with `git show {snap.untracked_commit[:10]}:{path}`")
    if plan.nested:
        raise GitendError(f"the snapshot has files in {', '.join(map(quote_path, sorted(set(plan.nested))))}, which is "
                          "a git repository of its own now; gitend does not write into another repository: move it "
                          f"away first, or read the files with `git show {snap.untracked_commit[:10]}:PATH`")
    if plan.ignored_collisions:
        raise GitendError(f"ignored files are in the way: {', '.join(plan.ignored_collisions)}; "
                          "gitend does not save ignored files, so move them away first")

    refused = None  # what the real run refuses with, and so the dry run too
    if plan.blocked and not force:
        refused = restore.refusal(plan)
    elif plan.blocked and plan.head is None:
        refused = _UNBORN_FORCE
    if dry_run:
        print(safe("\n".join(restore.describe(plan))))
        if refused:
            raise GitendError(refused)
        if plan.blocked:
            moved = f", move {', '.join(plan.collisions)} into {_BACKUP_PLACE}" if plan.collisions else ""
            print(f"would save the local state first{moved} (and anything else it would overwrite that no "
                  "snapshot holds), then restore (--force): "
                  + restore.refusal(plan).removeprefix("refusing to restore over "))
        else:
            print("nothing else would change; run without --dry-run to restore")
        return 0
    if refused:
        raise GitendError(refused)

    if plan.blocked:
        cleared = restore.clear_the_way(repo, plan, cfg.snapshot)
        if cleared.saved:
            print(f"saved your local changes first as {cleared.saved[:10]}; "
                  f"`gitend restore {cleared.saved[:10]}` brings them back")
        if cleared.moved:
            print(f"moved what was in the way ({', '.join(map(quote_path, cleared.moved))}) to {cleared.backup}")

    conflicted, notes = restore.apply(repo, plan)
    counts = f"{len(plan.staged)} staged, {len(plan.unstaged)} unstaged, {len(plan.untracked)} untracked"
    where = f" merged onto {plan.head[:10]}" if plan.moved and plan.head and scope is None else ""
    if scope is not None:
        where += f" (only {', '.join(quote_path(p or '.') for p in scope)})"
    print(safe(f"restored {snap.commit.sha[:10]} ({snap.name}){where}: {counts}"))
    for note in notes:
        print(safe(f"note: {note}"))
    if conflicted:
        raise GitendError(f"conflicts in {', '.join(map(quote_path, conflicted))}: both sides are kept between "
                          f"conflict markers; resolve them and `git add` (the snapshot stays on {snap.name})")
    return 0


def _choose(found: snapshot.NotOwn) -> snapshot.Snapshot:
    """Only other machines' snapshots: on a terminal the user picks one by number, else the
    error lists them (never the newest by date: the pusher sets the date)."""
    if not sys.stdin.isatty():
        raise found
    print(f"{found.headline}:")
    for n, snap in enumerate(found.others, 1):
        print(safe(f"  {n}. {snap.name}  {snap.created[:16].replace('T', ' ')}  {message.one_line(snap.subject, 60)}"))
    answer = ask(f"restore which one? [1-{len(found.others)}, Enter for none] > ") or ""
    if not answer.isdigit() or not 1 <= int(answer) <= len(found.others):
        raise GitendError("nothing restored; name a snapshot to restore it (see `gitend list --all`)")
    return found.others[int(answer) - 1]


def _in_repo(repo: Repo, directory: str, path: str) -> str:
    """A path given on the command line (relative to `directory`), relative to the work tree's
    root. Symlinks in the folders above it are resolved, never the path itself (it may be a
    symlink the snapshot holds)."""
    absolute = os.path.normpath(os.path.join(os.path.abspath(directory), path))
    real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    relative = os.path.relpath(real, repo.root)
    if relative == os.curdir:
        return ""
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise GitendError(f"{path} is outside the repository {repo.root}")
    return relative


_UNBORN_FORCE = "this branch has no commits yet: commit or move the local files, then restore"
_BACKUP_PLACE = "<git dir>/gitend/restore-backup/"


def _remote(repo: Repo, cfg: config.Config) -> str | None:
    remotes = repo.text("remote").split()
    wanted = cfg.snapshot.push_remote or "origin"
    return wanted if wanted in remotes else None


def _fetch(repo: Repo, cfg: config.Config) -> None:
    remote = _remote(repo, cfg)
    if remote is None:
        raise GitendError("no remote to fetch WIP branches from (set snapshot.push_remote, or add an origin)")
    prefix = cfg.snapshot.branch_prefix
    print(f"fetching {prefix}* from {remote} ...", file=sys.stderr)
    repo.git("fetch", "--no-tags", remote, f"+refs/heads/{prefix}*:refs/remotes/{remote}/{prefix}*",
             timeout=cfg.push.timeout_s, env=repo.batch_ssh_env())
