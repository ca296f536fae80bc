"""Bringing a snapshot back into the work tree, safely (`gitend restore` is its command).

Everything is checked before anything is written: local changes (edits hidden from `git
status` by assume-unchanged or skip-worktree too) and files the restore would overwrite make
it refuse (naming them) unless --force, which first saves the current state as a snapshot of
its own and moves into a backup folder the files in the way and whatever else it would
overwrite that neither that snapshot nor HEAD holds (ignored files, hidden edits, nested
repositories): nothing is ever deleted. The writing itself is `git stash apply --index`,
which three-way merges onto a HEAD that has moved since the snapshot; restoring only some
paths writes the snapshot's version of them with plumbing instead.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from gitend import config, message, paths, snapshot
from gitend.errors import GitendError
from gitend.git import GitError, Repo, quote_path, zjoin, zsplit
from gitend.transcript import Session


@dataclass
class Plan:
    snap: snapshot.Snapshot
    head: str | None  # current HEAD commit
    staged: list[tuple[str, str]]  # (status letter, path): base -> index
    unstaged: list[tuple[str, str]]  # index -> work tree
    untracked: list[str]
    # Untracked in the snapshot, tracked on HEAD now: with other content (written over it as
    # an unstaged change), or with the same content (nothing to write).
    now_tracked: list[str] = field(default_factory=list)
    now_committed: list[str] = field(default_factory=list)
    local_changes: list[str] = field(default_factory=list)
    collisions: list[str] = field(default_factory=list)  # untracked or ignored files in the way
    ignored_collisions: list[str] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)  # untracked folders, now git repositories, it would write into
    under_tracked_file: list[str] = field(default_factory=list)  # untracked, needing a folder where a file is tracked
    in_progress: str | None = None
    predicted_conflicts: list[str] = field(default_factory=list)
    # Edited files git was told not to look at: {path: "assume-unchanged" or "skip-worktree"}.
    hidden: dict[str, str] = field(default_factory=dict)
    # `restore SNAPSHOT -- PATH...`: only the snapshot's changes under these (repository-relative)
    # paths, written as the snapshot has them; None: the whole snapshot, merged onto HEAD.
    scope: list[str] | None = None

    @property
    def moved(self) -> bool:
        return self.head != self.snap.base

    @property
    def blocked(self) -> bool:
        return bool(self.local_changes or self.collisions)

    @cached_property
    def deleted(self) -> set[str]:
        """Paths the snapshot deletes, staged or not."""
        return {path for letter, path in self.staged + self.unstaged if letter == "D"}

    @cached_property
    def selected(self) -> set[str]:
        """Every path the snapshot changes (in this plan's scope)."""
        return {p for _, p in self.staged + self.unstaged} | set(self.untracked)

    @cached_property
    def written(self) -> set[str]:
        """Paths the snapshot writes a file to."""
        return {p for letter, p in self.staged + self.unstaged if letter != "D"} | set(self.untracked)


def _name_status(repo: Repo, old: str, new: str) -> list[tuple[str, str]]:
    fields = zsplit(repo.git("diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new))
    return list(zip(fields[0::2], fields[1::2]))


def _tree_entries(repo: Repo, rev: str) -> dict[str, str]:
    """{path: "<mode> <type> <object>"} for every file in a commit's tree."""
    entries = {}
    for record in zsplit(repo.git("ls-tree", "-r", "-z", rev)):
        info, _, path = record.partition("\t")
        entries[path] = info
    return entries


def _within(path: str, scope: list[str] | None) -> bool:
    return scope is None or any(not s or path == s or path.startswith(f"{s}/") for s in scope)


def make_plan(repo: Repo, snap: snapshot.Snapshot, scope: list[str] | None = None) -> Plan:
    """What restoring `snap` would do here; with `scope`, only its changes under those paths."""
    head = repo.head()
    head_sha = repo.resolve(head.ref) if head.ref else head.sha
    untracked = {p: e for p, e in _tree_entries(repo, snap.untracked_commit).items() if _within(p, scope)}
    plan = Plan(
        snap, head_sha,
        staged=[c for c in _name_status(repo, snap.base_commit, snap.index_commit) if _within(c[1], scope)],
        unstaged=[c for c in _name_status(repo, snap.index_commit, snap.commit.sha) if _within(c[1], scope)],
        untracked=list(untracked),
        scope=scope,
    )
    for named in scope or []:
        if not any(_within(p, [named]) for p in plan.selected):
            raise GitendError(f"the snapshot changed nothing at {quote_path(named or '.')}; "
                              f"`gitend show {snap.commit.sha[:10]}` lists what it changed")
    if head_sha and untracked:
        # `git stash apply` refuses to write an untracked file over a tracked one, and only
        # after it has applied the rest: such files are set aside and written separately.
        # (A file the snapshot deletes, as `git rm --cached` does, is gone by then.)
        on_head = _tree_entries(repo, head_sha)
        for path, entry in untracked.items():
            if path in on_head and path not in plan.deleted:
                (plan.now_committed if on_head[path] == entry else plan.now_tracked).append(path)
    plan.in_progress = repo.in_progress()
    plan.hidden = _hidden_edits(repo)
    # Applying the snapshot writes over a hidden edit as if it were not there.
    plan.local_changes += sorted(p for p in plan.hidden if p in plan.written or p in plan.deleted)
    for change in repo.status():
        submodule_content_only = change.submodule[:2] == "S." and change.xy == ".M"
        if (change.kind == "u" or (change.kind == "1" and not submodule_content_only)) and _within(change.path, scope):
            plan.local_changes.append(change.path)

    tracked = set(zsplit(repo.git("ls-files", "-z")))
    tracked_dirs = {path.rsplit("/", depth)[0] for path in tracked for depth in range(1, path.count("/") + 1)}
    in_the_way = set()
    for path in plan.written:
        parts = Path(path).parts
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            on_disk = repo.root / prefix
            is_last = depth == len(parts)
            if prefix in tracked and not is_last and path in untracked:
                plan.under_tracked_file.append(path)  # no way to write it but over a tracked file
                break
            if prefix in tracked and not is_last and on_disk.is_symlink():
                break  # what lies beyond a symlink is not in the work tree: git writes no file there
            if prefix in tracked or not os.path.lexists(on_disk):
                continue
            if not is_last and os.path.lexists(on_disk / ".git"):
                plan.nested.append(prefix)  # another repository's files: not gitend's to write over
                break
            if is_last and prefix in tracked_dirs and _emptied_by_snapshot(repo, plan, prefix, tracked):
                break  # a folder that became a file: applying the snapshot removes the folder first
            if is_last or not on_disk.is_dir() or on_disk.is_symlink():
                in_the_way.add(prefix)
                break
    if in_the_way:
        ignored = set(zsplit(repo.git("ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                                      "--directory", "--", *sorted(in_the_way))))
        for path in sorted(in_the_way):
            is_ignored = path in ignored or f"{path}/" in ignored
            (plan.ignored_collisions if is_ignored else plan.collisions).append(path)
    if plan.moved and plan.head and scope is None:
        plan.predicted_conflicts = _predict_conflicts(repo, plan)
    return plan


def _hidden_edits(repo: Repo) -> dict[str, str]:
    """Files marked assume-unchanged or skip-worktree whose content differs from the index:
    `git status` does not show them, so no snapshot holds them."""
    flagged = {}
    for record in zsplit(repo.git("ls-files", "-v", "-s", "-z")):
        info, _, path = record.partition("\t")
        tag, _mode, sha, _stage = info.split(" ")
        if tag == "S" or tag.islower():
            flagged[path] = (sha, "skip-worktree" if tag == "S" else "assume-unchanged")
    if not flagged:
        return {}
    on_disk = blobs(repo, [p for p in flagged if os.path.lexists(repo.root / p)])
    return {p: flag for p, (sha, flag) in flagged.items() if p in on_disk and on_disk[p] != sha}


def blobs(repo: Repo, names: list[str]) -> dict[str, str]:
    """{path: the blob git would store for the file there} (clean filters applied; a symlink's
    target, not what it points to; folders left out)."""
    found, files = {}, []
    algo = "sha1" if len(repo.empty_tree) == 40 else "sha256"
    for name in names:
        path = repo.root / name
        if path.is_symlink():
            target = os.readlink(os.fsencode(path))
            found[name] = hashlib.new(algo, b"blob %d\0%s" % (len(target), target)).hexdigest()
        elif path.is_file():
            files.append(name)
    listed = [n for n in files if "\n" not in n]  # --stdin-paths reads one path a line
    if listed:
        out = repo.text("hash-object", "--stdin-paths", input=b"".join(os.fsencode(n) + b"\n" for n in listed))
        found.update(zip(listed, out.split()))
    for name in files:
        if "\n" in name:
            found[name] = repo.text("hash-object", "--path", name, "--", name)
    return found


def _emptied_by_snapshot(repo: Repo, plan: Plan, folder: str, tracked: set[str]) -> bool:
    """The snapshot deletes every tracked file in `folder`, and nothing else is in it."""
    if not all(p in plan.deleted for p in tracked if p.startswith(f"{folder}/")):
        return False
    others = repo.git("ls-files", "-z", "--others", "--directory", "--", folder, env=_LITERAL)  # ignored ones too
    return not zsplit(others)


_LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}  # paths as given: `*` or `:` in a name is no pattern


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
        how = ("the snapshot's version of these paths is written as it is" if plan.scope is not None
               else "its changes are merged onto HEAD (three-way)")
        lines.append(f"HEAD has moved since the snapshot (taken on {(snap.base or 'an unborn HEAD')[:10]}, "
                     f"now {(plan.head or 'unborn')[:10]}): {how}")
        if plan.predicted_conflicts:
            lines.append(f"conflicts expected in: {_names(plan.predicted_conflicts)}")
    for title, entries in [("staged", plan.staged), ("unstaged", plan.unstaged)]:
        if entries:
            lines.append(f"{title}: " + ", ".join(f"{letter} {quote_path(path)}" for letter, path in entries))
    if plan.untracked:
        lines.append(f"untracked: {_names(plan.untracked)}")
    if plan.now_tracked:
        lines.append(_now_tracked_note(plan))
    if plan.now_committed:
        lines.append(f"untracked in the snapshot, committed on HEAD since with the same content: "
                     f"{_names(plan.now_committed)}")
    return lines


def _names(paths: list[str]) -> str:
    return ", ".join(map(quote_path, paths))


def _now_tracked_note(plan: Plan) -> str:
    return (f"untracked in the snapshot but tracked on HEAD now: {_names(plan.now_tracked)}; "
            "the snapshot's version is written over HEAD's as an unstaged change (HEAD's stays in the commit)")


def refusal(plan: Plan) -> str:
    parts = []
    if plan.local_changes:
        parts.append(f"local changes in {_names(sorted(plan.local_changes))}")
    if plan.collisions:
        parts.append(f"untracked files in the way: {_names(plan.collisions)}")
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


@dataclass
class Cleared:
    """What `clear_the_way` did before a forced restore."""
    saved: str | None  # the snapshot of the local state
    backup: Path | None  # where what no snapshot holds was moved
    moved: list[str]


def clear_the_way(repo: Repo, plan: Plan, settings: config.Snapshot) -> Cleared:
    """For --force: save the local state as a snapshot, move into a backup folder whatever the
    restore would overwrite or delete that neither that snapshot nor HEAD holds (files in the
    way, ignored files where a tracked file comes back, hidden edits), then reset to HEAD.
    Nothing is ever deleted."""
    check_unlocked(repo)
    saved = save_current_state(repo, settings, f"saved by gitend restore before restoring {plan.snap.commit.sha[:10]}")
    if plan.scope is None:  # `git reset --hard`, then the apply
        touched = set(plan.local_changes) | {p for p, flag in plan.hidden.items() if flag == "assume-unchanged"}
    else:  # the named paths the snapshot changed are written over
        touched = plan.selected
    moved = plan.collisions + _unsaved(repo, plan, saved, touched)
    backup = move_aside(repo, moved) if moved else None
    hidden = [p for p in moved if p in plan.hidden]
    try:
        for flag in ("--no-assume-unchanged", "--no-skip-worktree") if hidden else ():
            # The edit is in the backup now: let git write these files again. One flag a call:
            # update-index applies only the first of the two.
            repo.git("update-index", "-z", flag, "--stdin", input=zjoin(hidden))
        if plan.scope is None:
            repo.git("reset", "-q", "--hard")
        else:  # only these paths' staging goes back to HEAD's; their files are written next
            repo.git("reset", "-q", "--pathspec-from-file=-", "--pathspec-file-nul",
                     input=zjoin(sorted(plan.selected)), env=_LITERAL)
    except GitError as exc:
        kept = [f"your local changes are saved as {saved[:10]}"] if saved else []
        kept += [f"what was in the way is in {backup}"] if backup else []
        raise GitendError("; ".join([str(exc), *kept])) from None
    return Cleared(saved, backup, moved)


def check_unlocked(repo: Repo) -> None:
    """Refuse before writing anything while another git process holds the index."""
    if (repo.git_dir / "index.lock").exists():
        raise GitendError(f"another git process is using this repository ({repo.git_dir / 'index.lock'} exists); "
                          "wait for it to finish (or remove that file if no git is running), then restore again")


def _unsaved(repo: Repo, plan: Plan, saved: str | None, touched: set[str]) -> list[str]:
    """Of the files at `touched` paths (and in folders there), those that neither the snapshot
    `saved` nor HEAD holds with that content."""
    in_the_way = tuple(f"{c}/" for c in plan.collisions)  # moved whole
    files = []
    for name in sorted(touched):
        path = repo.root / name
        if path.is_dir() and not path.is_symlink():
            files += _files_under(repo, name)  # a folder where a tracked file comes back
        elif os.path.lexists(path):
            files.append(name)
    files = [f for f in files if f not in plan.collisions and not f.startswith(in_the_way)]
    if not files:
        return []
    held: dict[str, set[str]] = {}
    for rev in [r for r in (saved, saved and f"{saved}^3", plan.head) if r]:
        for name, entry in _tree_entries(repo, rev).items():
            held.setdefault(name, set()).add(entry.split()[2])
    found = blobs(repo, files)
    return [f for f in files if found.get(f) not in held.get(f, set())]


def _files_under(repo: Repo, folder: str) -> list[str]:
    """Every file under `folder`; a nested repository counts as one (it is moved whole)."""
    found = []
    for top, dirs, names in os.walk(repo.root / folder):
        rel = os.path.relpath(top, repo.root)
        if ".git" in dirs or ".git" in names:
            found.append(rel)
            dirs.clear()
            continue
        found += [f"{rel}/{n}" for n in names]
        found += [f"{rel}/{d}" for d in dirs if os.path.islink(os.path.join(top, d))]
    return found


def _backup_folder(repo: Repo) -> Path:
    """A new folder in the git dir for the files --force moves out of the way."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = paths.restore_backups(repo.git_dir) / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = folder.with_name(f"{stamp}-{n}")
    return folder


def move_aside(repo: Repo, names: list[str]) -> Path:
    """Move `names` into a backup folder, never delete them: the snapshot --force takes first
    leaves out ignored files and nested repositories' content."""
    folder = _backup_folder(repo)
    for path in names:
        target = folder / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(repo.root / path, target)
            except OSError:
                shutil.move(repo.root / path, target)  # another filesystem: copy, then delete
        except OSError as exc:
            raise GitendError(f"could not move {path} aside ({exc.strerror or exc}); what was moved before it "
                              f"is in {folder}, your local changes are saved as a snapshot") from None
    return folder


def _unborn_apply(repo: Repo, snap: snapshot.Snapshot) -> None:
    """No HEAD to apply onto (`git stash` refuses): write the trees with plumbing."""
    for commit in (snap.commit.sha, snap.untracked_commit):
        with repo.temp_index(seed=False) as index:
            repo.git("read-tree", commit, index=index)
            repo.git("checkout-index", "-a", index=index)  # without -f: never overwrites
    repo.git("read-tree", snap.index_commit)


def _stand_in(repo: Repo, plan: Plan) -> str:
    """The snapshot with the files HEAD now tracks left out of its untracked part."""
    snap = plan.snap
    names = zjoin(plan.now_tracked + plan.now_committed)
    with repo.temp_index(seed=False) as index:
        repo.git("read-tree", snap.untracked_commit, index=index)
        repo.git("update-index", "-z", "--force-remove", "--stdin", input=names, index=index)
        untracked = repo.commit_tree(repo.write_tree(index), [], "gitend restore: untracked files not on HEAD\n")
    return repo.commit_tree(snap.commit.tree, [snap.base_commit, snap.index_commit, untracked], snap.commit.message)


def _write_now_tracked(repo: Repo, plan: Plan) -> None:
    """The snapshot's version of files HEAD tracks now, over HEAD's: an unstaged change."""
    names = zjoin(plan.now_tracked)
    with repo.temp_index(seed=False) as index:
        repo.git("read-tree", plan.snap.untracked_commit, index=index)
        repo.git("checkout-index", "-f", "-z", "--stdin", input=names, index=index)


def apply(repo: Repo, plan: Plan) -> tuple[list[str], list[str]]:
    """Write the snapshot; returns (conflicted paths, notes)."""
    check_unlocked(repo)
    if plan.scope is not None:
        _write_paths(repo, plan)
        return [], []
    if plan.head is None:
        _unborn_apply(repo, plan.snap)
        return [], []
    set_aside = plan.now_tracked or plan.now_committed
    sha = _stand_in(repo, plan) if set_aside else plan.snap.commit.sha
    conflicted, notes = _stash_apply(repo, plan, sha)
    if plan.now_tracked:
        _write_now_tracked(repo, plan)
        notes.append(_now_tracked_note(plan))
    return conflicted, notes


def _write_paths(repo: Repo, plan: Plan) -> None:
    """The snapshot's version of the paths in scope, exactly: what it staged into the index,
    its work-tree and untracked files onto the disk (modes and symlinks as they were), and
    what it deleted removed."""
    snap = plan.snap
    staged = _tree_entries(repo, snap.index_commit)
    on_disk = {**_tree_entries(repo, snap.untracked_commit), **_tree_entries(repo, snap.commit.sha)}

    def index_info(entries: list[tuple[str, str | None]]) -> bytes:
        records = []
        for path, entry in entries:
            mode, _, sha = entry.split() if entry else ("0", "", repo.null_sha)
            records.append(os.fsencode(f"{mode} {sha}\t{path}") + b"\0")
        return b"".join(records)

    for path in sorted(p for p in plan.selected if p not in on_disk):
        _remove(repo, path)
    written = sorted(p for p in plan.selected if p in on_disk)
    if written:
        with repo.temp_index(seed=False) as index:
            repo.git("update-index", "-z", "--index-info", input=index_info([(p, on_disk[p]) for p in written]),
                     index=index)
            repo.git("checkout-index", "-f", "-z", "--stdin", input=zjoin(written), index=index)
    if plan.staged:
        repo.git("update-index", "-z", "--index-info", input=index_info([(p, staged.get(p)) for _, p in plan.staged]))


def _remove(repo: Repo, path: str) -> None:
    """Delete a file the snapshot deleted, and the folders it leaves empty."""
    target = repo.root / path
    if os.path.lexists(target) and not (target.is_dir() and not target.is_symlink()):
        target.unlink()
    for folder in target.parents:
        if folder == repo.root:
            break
        try:
            folder.rmdir()
        except OSError:
            break


def _stash_apply(repo: Repo, plan: Plan, sha: str) -> tuple[list[str], list[str]]:
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
    notes = [f"partly staged in the snapshot, now left unstaged: {_names(partly)}"] if partly else []
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
        # Not `git add`: a staged deletion or rename leaves a path that is in neither the
        # index nor the work tree, which `git add` refuses as a pathspec matching nothing.
        repo.git("update-index", "-z", "--add", "--remove", "--stdin", input=zjoin(to_stage))
    return sorted((staged & unstaged) - skip)
