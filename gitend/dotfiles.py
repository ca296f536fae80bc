"""The user's dotfile repository: gitend commits only inside its own folder there, then
fetches, rebases onto the remote and pushes, the way git-sync does, without ever leaving
the user's checkout in the middle of a rebase.

The rebase happens in a private linked worktree. A conflict (the same note changed on two
machines) aborts it and merges instead, keeping both versions: the remote's under the
note's name, this machine's beside it as `<note>.conflict-<host>-<time>.md`.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitend import config, files, paths
from gitend.errors import GitendError
from gitend.git import GitError, Repo, zsplit

TRAILER = "Gitend-Memory"


class PushRefused(GitendError):
    """The remote refused for a reason that retrying will not fix (e.g. secret push protection)."""


@dataclass
class Outcome:
    pushed: bool = False
    notes: list[str] = field(default_factory=list)


def conflict_copy(rel: str, taken: set[str], *, host_name: str | None = None, now: float | None = None) -> str:
    """`<stem>.conflict-<host>-<UTC time>.md` beside the note, not in `taken` (which it joins)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    stem = rel[:-3] if rel.lower().endswith(".md") else rel
    copy, n = f"{stem}.conflict-{host_name or config.host()}-{stamp}.md", 2
    while copy in taken:
        copy, n = f"{stem}.conflict-{host_name or config.host()}-{stamp}-{n}.md", n + 1
    taken.add(copy)
    return copy


def open_repo(path: str) -> tuple[Repo, str]:
    """The dotfile repo and its checked-out branch, if it is in a state gitend may work in."""
    expanded = Path(path).expanduser()
    if not expanded.is_dir():
        raise GitendError(f"memory.repo {expanded} does not exist; clone your dotfile repository there "
                          "(or run `gitend install --dotfiles DIR --remote URL`)")
    repo = Repo.find(expanded)
    marker = repo.in_progress()
    if marker:
        raise GitendError(f"the dotfile repo {repo.root} is in the middle of {marker}; finish or abort it "
                          "(e.g. git rebase --abort) and gitend will retry")
    head = repo.head()
    if not head.ref or not head.ref.startswith("refs/heads/"):
        raise GitendError(f"the dotfile repo {repo.root} has a detached HEAD; check out a branch")
    return repo, head.ref.removeprefix("refs/heads/")


def commit_folder(repo: Repo, folder: str, message: str) -> str | None:
    """Commit exactly what is in `folder` (nothing else the user has staged); None if unchanged.
    gitend owns that folder: it is added even where the repo's .gitignore ignores it (`*` + `!keep`)."""
    repo.git("add", "-A", "-f", "--", folder)
    if not repo.git("diff", "--cached", "--name-only", "-z", "--", folder):
        return None
    repo.git("commit", "-q", "--no-verify", "--no-gpg-sign", "-m", f"{message}\n\n{TRAILER}: {folder}\n",
             "--only", "--", folder, env=repo.identity_env())
    return repo.text("rev-parse", "HEAD")


def sync(repo: Repo, branch: str, remote: str, folder: str, timeout: float,
         check_outgoing: Callable[[list[str]], None] | None = None) -> Outcome:
    """Bring the remote's commits in and push gitend's out. `check_outgoing(rev-list args)`
    may raise to hold the push (the secret review)."""
    outcome = Outcome()
    if remote not in repo.text("remote").split():
        raise GitendError(f"the dotfile repo {repo.root} has no remote '{remote}' (memory.remote)")
    env = repo.batch_ssh_env()
    _remove_stale_worktrees(repo)
    upstream = f"refs/remotes/{remote}/{branch}"
    for _attempt in range(3):
        has_upstream = _fetch(repo, remote, branch, upstream, timeout, env)
        not_pushed = outgoing(repo, branch, remote)[1:]
        ahead = repo.text("rev-list", "HEAD", *not_pushed).split()
        behind = repo.text("rev-list", upstream, "^HEAD").split() if has_upstream else []
        foreign = [c for c in ahead if not _is_ours(repo, c, folder)]
        if foreign:
            raise GitendError(f"the dotfile repo {repo.root} has {len(foreign)} local commit(s) that are not "
                              "gitend's; gitend pushes only its own: push or drop them, and gitend will retry")
        if not ahead:
            if behind:
                _move_checkout(repo, upstream, outcome)
            return outcome
        tip = repo.text("rev-parse", "HEAD")
        if behind:
            tip = _rebase(repo, upstream, folder, outcome)
            _move_checkout(repo, tip, outcome)
        if check_outgoing:
            check_outgoing([tip, *not_pushed])
        if _push(repo, remote, f"{tip}:refs/heads/{branch}", timeout, env):
            outcome.pushed = True
            repo.git("update-ref", upstream, tip)
            return outcome
    raise GitendError(f"{remote} kept moving while pushing the dotfile repo; gitend will retry")


def outgoing(repo: Repo, branch: str, remote: str) -> list[str]:
    """rev-list arguments for the local commits the remote does not have yet."""
    upstream = f"refs/remotes/{remote}/{branch}"
    return ["HEAD", f"^{upstream}"] if repo.refs(upstream) else ["HEAD", "--not", f"--remotes={remote}"]


def unpushed(settings: config.Memory) -> int:
    """How many of gitend's commits the dotfile repo has that its remote lacks, as far as its
    remote-tracking refs know (local git only, no network); 0 when memory sync is off."""
    if not (settings.enabled and settings.repo):
        return 0
    repo, branch = open_repo(settings.repo)
    ahead = repo.text("rev-list", "--fixed-strings", f"--grep={TRAILER}: ",
                      *outgoing(repo, branch, settings.remote)).split()
    return sum(1 for commit in ahead if _is_ours(repo, commit, settings.path.strip("/")))


def update(repo: Repo, branch: str, remote: str, timeout: float) -> Outcome:
    """Bring the remote's commits into the checkout when it is simply behind (no push)."""
    outcome = Outcome()
    upstream = f"refs/remotes/{remote}/{branch}"
    if remote in repo.text("remote").split() and _fetch(repo, remote, branch, upstream, timeout,
                                                        repo.batch_ssh_env()):
        ahead = repo.text("rev-list", "HEAD", f"^{upstream}").split() if repo.resolve("HEAD") else []
        if not ahead:
            _move_checkout(repo, upstream, outcome)
        else:
            outcome.notes.append("the dotfile repo has commits the remote lacks; the notes are as they are locally")
    return outcome


def _fetch(repo: Repo, remote: str, branch: str, upstream: str, timeout: float, env: dict[str, str]) -> bool:
    """Update the remote-tracking branch; False when the remote has no such branch yet."""
    try:
        repo.git("fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{upstream}", timeout=timeout, env=env)
    except GitError as exc:
        if "couldn't find remote ref" not in exc.stderr:
            raise
        return False
    return True


def _is_ours(repo: Repo, commit: str, folder: str) -> bool:
    """A commit gitend made: its trailer, and changes only inside gitend's folder (against the
    last parent: for gitend's merges that is the remote side, so what the merge adds is ours)."""
    message = repo.text("log", "-1", "--format=%B", commit)
    if f"\n{TRAILER}: " not in message:
        return False
    parents = repo.text("rev-list", "--parents", "-n1", commit).split()[1:]
    against = parents[-1] if parents else repo.empty_tree
    changed = zsplit(repo.git("diff-tree", "-r", "--name-only", "-z", against, commit))
    inside = folder.strip("/") + "/"
    return all(path.startswith(inside) for path in changed)


def _move_checkout(repo: Repo, target: str, outcome: Outcome) -> None:
    """Move the user's branch to `target`, keeping their uncommitted changes (reset --keep).
    A clone of a remote that was empty has no commit to keep from: check the branch out instead
    (which refuses to overwrite files that are in the way)."""
    try:
        if repo.resolve("HEAD"):
            repo.git("reset", "-q", "--keep", target)
        else:
            branch = (repo.head().ref or "").removeprefix("refs/heads/")
            repo.git("checkout", "-q", "--no-track", "-B", branch, target)
    except GitError as exc:
        outcome.notes.append(f"your dotfile checkout was left as it is ({exc}); run `git pull --rebase` there")


def _push(repo: Repo, remote: str, refspec: str, timeout: float, env: dict[str, str]) -> bool:
    """True when pushed; False when the remote moved meanwhile (fetch and try again)."""
    try:
        repo.git("push", "--quiet", "--porcelain", remote, refspec, timeout=timeout, env=env)
        return True
    except GitError as exc:
        text = f"{exc.stderr}\n{exc.stdout}"  # with --porcelain, why a ref was rejected is on stdout
        if "GH013" in text or "push protection" in text.lower() or "cannot contain secrets" in text.lower():
            raise PushRefused(f"{remote} refused the push as containing a secret (push protection); "
                              "run `gitend review`") from None
        if "non-fast-forward" in text or "fetch first" in text or ("[rejected]" in text and "stale" not in text):
            return False
        if "cannot lock ref" in text and "but expected" in text:
            return False  # another push moved the branch while this one was being received
        raise


# -- rebasing in a private worktree ----------------------------------------------


def _remove_stale_worktrees(repo: Repo) -> None:
    """gitend's own worktrees that killed runs left (also those whose folder is gone): remove
    them, so no rebase is ever left half-done. Never `git worktree prune`: the user's worktree
    on a disk that is not mounted today would lose its metadata."""
    root = os.path.realpath(paths.worktrees_dir())
    listed = [field.removeprefix("worktree ") for field in zsplit(repo.git("worktree", "list", "--porcelain", "-z"))
              if field.startswith("worktree ")]
    found = [os.path.join(root, name) for name in os.listdir(root)] if os.path.isdir(root) else []
    for path in {os.path.realpath(p) for p in listed + found}:
        pid = os.path.basename(path).rsplit("-", 1)[-1]
        if os.path.dirname(path) == root and pid.isdigit() and int(pid) != os.getpid():
            repo.git("worktree", "remove", "--force", path, check=False)
            shutil.rmtree(path, ignore_errors=True)


def _rebase(repo: Repo, upstream: str, folder: str, outcome: Outcome) -> str:
    root = paths.worktrees_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{os.urandom(4).hex()}-{os.getpid()}"
    repo.git("worktree", "add", "--quiet", "--detach", str(path), "HEAD")
    private = Repo.find(path)
    editor = {"GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true", **repo.identity_env()}
    try:
        try:
            private.git("rebase", "--quiet", upstream, env=editor)
        except GitError:
            private.git("rebase", "--abort", check=False)
            _merge_keeping_both(private, upstream, outcome, editor)
        return private.text("rev-parse", "HEAD")
    finally:
        repo.git("worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(path, ignore_errors=True)


def _merge_keeping_both(private: Repo, upstream: str, outcome: Outcome, env: dict[str, str]) -> None:
    message = f"Merge {upstream.removeprefix('refs/remotes/')} into memory notes\n\n{TRAILER}: merge\n"
    try:
        private.git("merge", "--no-ff", "--no-edit", "-m", message, upstream, env=env)
        return
    except GitError:
        pass
    taken = set(zsplit(private.git("ls-files", "-z")))
    for path in zsplit(private.git("diff", "--name-only", "-z", "--diff-filter=U")):
        stages = {line.split()[2] for line in private.text("ls-files", "-u", "--", path).splitlines()}
        if "2" in stages and "3" in stages:
            copy = conflict_copy(path, taken)
            # Never through a symlink a remote commit put on the way.
            files.write_atomic(files.inside(private.root, copy, make_parents=True), private.git("show", f":2:{path}"))
            files.write_atomic(files.inside(private.root, path), private.git("show", f":3:{path}"))
            private.git("add", "--", path, copy)
            outcome.notes.append(f"{path} was changed on two machines: both kept, this machine's as {copy}")
        else:
            private.git("add", "-A", "--", path)  # changed on one side, deleted on the other: keep the change
    private.git("commit", "-q", "--no-verify", "--no-edit", "-m", message, env=env)
