"""`gitend restore`: bring a snapshot back into the work tree, safely.

Everything is checked before anything is written: local changes and files the restore
would overwrite make it refuse (naming them) unless --force, which first saves the current
state as a snapshot of its own. The writing itself is `git stash apply --index`, which
three-way merges onto a HEAD that has moved since the snapshot.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gitend import config, message, snapshot
from gitend.errors import GitendError
from gitend.git import GitError, Repo, zsplit
from gitend.transcript import Session


@dataclass
class Plan:
    snap: snapshot.Snapshot
    head: str | None  # current HEAD commit
    staged: list[tuple[str, str]]  # (status letter, path): base -> index
    unstaged: list[tuple[str, str]]  # index -> work tree
    untracked: list[str]
    local_changes: list[str] = field(default_factory=list)
    collisions: list[str] = field(default_factory=list)  # untracked or ignored files in the way
    ignored_collisions: list[str] = field(default_factory=list)
    in_progress: str | None = None
    predicted_conflicts: list[str] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return self.head != self.snap.base

    @property
    def blocked(self) -> bool:
        return bool(self.local_changes or self.collisions)


def _name_status(repo: Repo, old: str, new: str) -> list[tuple[str, str]]:
    fields = zsplit(repo.git("diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new))
    return list(zip(fields[0::2], fields[1::2]))


def make_plan(repo: Repo, snap: snapshot.Snapshot) -> Plan:
    head = repo.head()
    head_sha = repo.resolve(head.ref) if head.ref else head.sha
    plan = Plan(
        snap, head_sha,
        staged=_name_status(repo, snap.base_commit, snap.index_commit),
        unstaged=_name_status(repo, snap.index_commit, snap.commit.sha),
        untracked=zsplit(repo.git("ls-tree", "-r", "-z", "--name-only", snap.untracked_commit)),
    )
    plan.in_progress = next((what for marker, what in snapshot.IN_PROGRESS.items()
                             if (repo.git_dir / marker).exists()), None)

    status = zsplit(repo.git("status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"))
    for record in status:
        kind = record[0]
        if kind == "1":
            fields = record.split(" ", 8)
            submodule_content_only = fields[2].startswith("S") and fields[2][1] == "." and fields[1] == ".M"
            if not submodule_content_only:
                plan.local_changes.append(fields[8])
        elif kind == "u":
            plan.local_changes.append(record.split(" ", 10)[10])

    tracked = set(zsplit(repo.git("ls-files", "-z")))
    written = {p for letter, p in plan.staged + plan.unstaged if letter != "D"} | set(plan.untracked)
    in_the_way = set()
    for path in written:
        parts = Path(path).parts
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            on_disk = repo.root / prefix
            is_last = depth == len(parts)
            if prefix in tracked or not os.path.lexists(on_disk):
                continue
            if is_last or not on_disk.is_dir() or on_disk.is_symlink():
                in_the_way.add(prefix)
                break
    if in_the_way:
        ignored = set(zsplit(repo.git("ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                                      "--directory", "--", *sorted(in_the_way))))
        for path in sorted(in_the_way):
            is_ignored = path in ignored or f"{path}/" in ignored
            (plan.ignored_collisions if is_ignored else plan.collisions).append(path)
    if plan.moved and plan.head:
        plan.predicted_conflicts = _predict_conflicts(repo, plan)
    return plan


def _predict_conflicts(repo: Repo, plan: Plan) -> list[str]:
    """Files a merge onto the current HEAD would conflict in (changes nothing visible)."""
    # A stand-in commit with only the base as parent, so the merge base is the snapshot's.
    tree = repo.text("rev-parse", f"{plan.snap.commit.sha}^{{tree}}")
    stand_in = repo.commit_tree(tree, [plan.snap.base_commit], "gitend restore: conflict check\n")
    proc = repo.git("merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", plan.head or "", stand_in,
                    check=False)
    return zsplit(proc)[1:]


def describe(plan: Plan) -> list[str]:
    snap = plan.snap
    lines = [f"snapshot {snap.commit.sha[:10]} ({snap.name}, session {snap.session_id}): {snap.subject}"]
    if plan.moved:
        lines.append(f"HEAD has moved since the snapshot (taken on {(snap.base or 'an unborn HEAD')[:10]}, "
                     f"now {(plan.head or 'unborn')[:10]}): its changes are merged onto HEAD (three-way)")
        if plan.predicted_conflicts:
            lines.append(f"conflicts expected in: {', '.join(plan.predicted_conflicts)}")
    for title, entries in [("staged", plan.staged), ("unstaged", plan.unstaged)]:
        if entries:
            lines.append(f"{title}: " + ", ".join(f"{letter} {path}" for letter, path in entries))
    if plan.untracked:
        lines.append("untracked: " + ", ".join(plan.untracked))
    return lines


def _refusal(plan: Plan) -> str:
    parts = []
    if plan.local_changes:
        parts.append(f"local changes in {', '.join(sorted(plan.local_changes))}")
    if plan.collisions:
        parts.append(f"untracked files in the way: {', '.join(plan.collisions)}")
    return ("refusing to restore over " + "; ".join(parts) +
            ". Either commit or stash them yourself, or run again with --force, "
            "which saves them as a snapshot first (restorable with gitend restore)")


def save_current_state(repo: Repo, settings: config.Snapshot, about: str) -> str | None:
    """Snapshot everything in the work tree (no size limit) before --force writes over it."""
    everything = config.Snapshot(enabled=True, branch_prefix=settings.branch_prefix, include_untracked=True,
                                 max_file_mb=float("inf"))
    cap = snapshot.capture(repo, everything)
    if cap.empty:
        return None
    session = Session(title=about, title_source=None, prompts=(), problems=())
    return snapshot.save(repo, cap, message.compose(session, cap, session_id="restore", reason="restore"))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _unborn_apply(repo: Repo, snap: snapshot.Snapshot) -> None:
    """No HEAD to apply onto (`git stash` refuses): write the trees with plumbing."""
    for commit in (snap.commit.sha, snap.untracked_commit):
        with repo.temp_index(seed=False) as index:
            repo.git("read-tree", commit, index=index)
            repo.git("checkout-index", "-a", index=index)  # without -f: never overwrites
    repo.git("read-tree", snap.index_commit)


def _apply(repo: Repo, plan: Plan) -> tuple[list[str], list[str]]:
    """Write the snapshot; returns (conflicted paths, notes)."""
    sha = plan.snap.commit.sha
    if plan.head is None:
        _unborn_apply(repo, plan.snap)
        return [], []
    try:
        repo.git("stash", "apply", "--index", sha)
        return [], []
    except GitError as exc:
        if "conflicts in index" in exc.stderr:
            # The staged changes no longer apply to the moved index by themselves: merge
            # the whole work tree, then put the staging back where it can be.
            try:
                repo.git("stash", "apply", sha)
            except GitError:
                if not _conflicted(repo):
                    raise
        elif not _conflicted(repo):
            raise
    conflicted = _conflicted(repo)
    partly = _resplit(repo, plan, conflicted)
    notes = [f"partly staged in the snapshot, now left unstaged: {', '.join(partly)}"] if partly else []
    return conflicted, notes


def _conflicted(repo: Repo) -> list[str]:
    return zsplit(repo.git("diff", "--name-only", "-z", "--diff-filter=U"))


def _resplit(repo: Repo, plan: Plan, conflicted: list[str]) -> list[str]:
    """After a merged apply, stage what the snapshot had staged and unstage the rest.

    Returns the paths that were partly staged (staged and then changed again), which can
    only be left unstaged."""
    staged = {p for _, p in plan.staged}
    unstaged = {p for _, p in plan.unstaged}
    skip = set(conflicted)
    to_stage = sorted(staged - unstaged - skip)
    to_unstage = sorted(unstaged - staged - skip)
    if to_unstage:
        repo.git("reset", "-q", "--", *to_unstage)
    if to_stage:
        repo.git("add", "-A", "--", *to_stage)
    return sorted((staged & unstaged) - skip)


def run(directory: str, spec: str, *, dry_run: bool, force: bool, fetch: bool) -> int:
    repo = Repo.find(directory)
    cfg = config.load(repo.root)
    prefix = cfg.snapshot.branch_prefix
    if fetch:
        _fetch(repo, cfg)
    try:
        snap = snapshot.find(repo, spec, prefix)
    except snapshot.NotFound as exc:
        remote = _remote(repo, cfg)
        if fetch or remote is None:
            raise
        if not (sys.stdin.isatty() and _ask(f"{exc}. Fetch the WIP branches from {remote} and look there? [y/N] ")):
            raise GitendError(f"{exc}; `gitend restore {spec} --fetch` looks on {remote} too") from None
        _fetch(repo, cfg)
        snap = snapshot.find(repo, spec, prefix)

    plan = make_plan(repo, snap)
    if plan.in_progress:
        raise GitendError(f"{plan.in_progress} is in progress; finish or abort it before restoring")
    if plan.head is None and plan.snap.base is not None:
        raise GitendError(f"this branch has no commits yet and the snapshot was taken on "
                          f"{plan.snap.base[:10]}; check that commit out first (git checkout {plan.snap.base[:10]})")
    if plan.ignored_collisions:
        raise GitendError(f"ignored files are in the way: {', '.join(plan.ignored_collisions)}; "
                          "gitend does not save ignored files, so move them away first")

    if dry_run:
        print("\n".join(describe(plan)))
        if plan.blocked:
            print(("would save the local state first, then restore (--force): " if force else "would refuse: ")
                  + _refusal(plan).removeprefix("refusing to restore over "))
        else:
            print("nothing else would change; run without --dry-run to restore")
        return 0

    saved = None
    if plan.blocked:
        if not force:
            raise GitendError(_refusal(plan))
        if plan.head is None:
            raise GitendError("this branch has no commits yet: commit or move the local files, then restore")
        saved = save_current_state(repo, cfg.snapshot, f"saved by gitend restore before restoring {snap.commit.sha[:10]}")
        repo.git("reset", "-q", "--hard")
        for path in plan.collisions:
            _remove(repo.root / path)
        if saved:
            print(f"saved your local changes first as {saved[:10]}; `gitend restore {saved[:10]}` brings them back")

    conflicted, notes = _apply(repo, plan)
    counts = f"{len(plan.staged)} staged, {len(plan.unstaged)} unstaged, {len(plan.untracked)} untracked"
    where = f" merged onto {plan.head[:10]}" if plan.moved and plan.head else ""
    print(f"restored {snap.commit.sha[:10]} ({snap.name}){where}: {counts}")
    for note in notes:
        print(f"note: {note}")
    if conflicted:
        raise GitendError(f"conflicts in {', '.join(conflicted)}: both sides are kept between conflict markers; "
                          f"resolve them and `git add` (the snapshot stays on {snap.name})")
    return 0


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


def _ask(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False
