"""WIP snapshots: capture the uncommitted state, save it on `wip/<branch>`, read it back.

A snapshot is a stash-shaped commit W with parents [H, I, U, previous snapshot]:
H the HEAD it was taken on (an empty root commit when HEAD was unborn), I the index, U the
untracked files (a root commit), W's own tree the tracked work tree. `git stash apply
--index W` restores it; the fourth parent keeps every earlier snapshot reachable.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gitend import config, lock, paths
from gitend.errors import GitendError
from gitend.git import FALLBACK_IDENT, Commit, Repo, quote_path, show_bytes, zsplit

# Another snapshot of this work tree is running (it likely saves the same state): wait this
# long, a third of the session-end budget, then leave the save to the worker.
LOCK_WAIT_S = 0.5
# What a save costs, for deciding before it starts whether it fits in the time left. Measured
# inside the real CLI on 2 cores (issue 13): 1,500 new files 0.74-1.34 s, 1,017 files (27 MB)
# of git.git 0.89 s; bench/scale.py, quiet: ~0.12 ms a file, ~250 MB/s. Cautious figures:
HASH_S_PER_FILE = 0.0005
HASH_BYTES_PER_S = 100e6
AFTER_HASH_S = 0.15  # transcript, message, three commits, update-ref, queueing


def estimate_s(files: int, size: int) -> float:
    """Seconds to hash `files` changed files of `size` bytes and save the snapshot."""
    return AFTER_HASH_S + files * HASH_S_PER_FILE + size / HASH_BYTES_PER_S


# -- taking one: what the hook and the worker share -------------------------------


@dataclass(frozen=True)
class Taken:
    summary: str
    ref: str | None = None  # the WIP branch, when it exists
    deferred: bool = False  # too much to hash now: the worker takes the snapshot
    failed: bool = False  # not saved (the reason is among the caller's problems)


def take(repo: Repo, cfg: config.Config, session_id: str, transcript_path: str | None, reason: str, *,
         fits: Callable[[int, int], bool] | None = None, lock_wait_s: float = LOCK_WAIT_S) -> Taken:
    """Save the work tree, its message from the session's transcript. With `fits(files, bytes)`,
    what does not fit in the time left (too much to hash, or another gitend saving this work
    tree) is left to the worker instead."""
    may_defer = fits is not None
    try:
        with lock.held(paths.repo_lock(repo.git_dir), timeout=lock_wait_s, what=f"the work tree {repo.root}"):
            repo.remove_stale_temp_indexes()
            try:
                cap = capture(repo, cfg.snapshot, fits=fits)
            except TooBig as big:
                return Taken(f"{big} to save: the background worker saves them", big.ref, deferred=True)
            existing = cap.ref if cap.previous else None
            if cap.empty:
                return Taken("nothing to save: no uncommitted changes", existing)
            if cap.previous and unchanged_since_previous(repo, cap):
                return Taken(f"nothing new to save since {cap.previous.commit.sha[:10]}", existing)
            # Only when there is something to save: SessionStart's checks never load the secret scanner.
            from gitend import message, transcript

            session = transcript.read(transcript_path, cfg.transcript.head_kb, cfg.transcript.tail_kb)
            sha = save(repo, cap, message.compose(session, cap, session_id=session_id, reason=reason))
            size = message.human_size(sum(s for _, s, _ in cap.left_out))
            left_out = (f"; {len(cap.left_out)} file(s) left out ({size}), named in `gitend show {sha[:10]}`"
                        if cap.left_out else "")
            return Taken(f"saved {len(cap.files)} file(s) to {cap.ref.removeprefix('refs/heads/')} as {sha[:10]}"
                         f"{left_out}", cap.ref)
    except lock.Busy:
        if not may_defer:
            raise
        # The worker takes the work tree as it is then, so this session's last changes are in.
        ref = wip_ref(cfg.snapshot.branch_prefix, branch_name(repo, repo.head().ref))
        return Taken("another gitend is saving this work tree: the background worker saves it after", ref,
                     deferred=True)


# -- capturing ---------------------------------------------------------------


@dataclass
class Capture:
    """The uncommitted state of one work tree, written as trees but not yet committed."""

    branch: str  # the name the WIP branch is keyed on
    ref: str  # refs/heads/<prefix><branch>
    head: str | None  # HEAD commit, None when unborn
    previous: Snapshot | None  # the WIP branch's current tip
    index_tree: str = ""
    worktree_tree: str = ""
    untracked_tree: str = ""
    staged: list[tuple[str, str]] = field(default_factory=list)  # (status letter, path)
    unstaged: list[tuple[str, str]] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    left_out: list[tuple[str, int, str]] = field(default_factory=list)  # (path, bytes, why)
    notes: list[str] = field(default_factory=list)
    size_to_hash: int = 0

    @property
    def empty(self) -> bool:
        return not (self.staged or self.unstaged or self.untracked)

    @property
    def files(self) -> list[str]:
        return sorted({p for _, p in self.staged} | {p for _, p in self.unstaged} | set(self.untracked))


def branch_name(repo: Repo, head_ref: str | None) -> str:
    if head_ref and head_ref.startswith("refs/heads/"):
        return head_ref[len("refs/heads/"):]
    rebasing = _rebasing_branch(repo)
    if rebasing:
        return rebasing
    return f"detached-{repo.worktree_id}" if repo.worktree_id else "detached"


def _rebasing_branch(repo: Repo) -> str | None:
    """The branch a rebase in progress is rewriting: HEAD is detached meanwhile, but the work
    belongs to that branch."""
    for folder in ("rebase-merge", "rebase-apply"):
        try:
            name = (repo.git_dir / folder / "head-name").read_text().strip()
        except OSError:
            continue
        if name.startswith("refs/heads/"):
            return name.removeprefix("refs/heads/")
    return None


def wip_ref(prefix: str, branch: str) -> str:
    return f"refs/heads/{prefix}{branch}"


class TooBig(Exception):
    """More to hash than fits in the session-end budget: the worker takes the snapshot."""

    def __init__(self, ref: str, files: int, size: int) -> None:
        self.ref = ref
        super().__init__(f"{files} changed file(s), {size / 1048576:.0f} MiB")


def capture(repo: Repo, settings: config.Snapshot, *, fits: Callable[[int, int], bool] | None = None) -> Capture:
    """The uncommitted state as trees. With `fits(files, bytes)`, raise TooBig rather than hash
    more than fits: the caller hands the snapshot to the background."""
    head = repo.head()
    branch = branch_name(repo, head.ref)
    ref = wip_ref(settings.branch_prefix, branch)
    if ref == head.ref:
        raise GitendError(f"the checked-out branch {branch} is itself a WIP branch; "
                          "check out the branch you work on")
    refs = repo.refs(*[r for r in (head.ref, ref) if r])  # one process for both
    cap = Capture(branch, ref, refs.get(head.ref) if head.ref else head.sha, _tip(repo, ref, refs.get(ref)))
    limit = settings.max_file_mb * 1024 * 1024
    untracked_left_out = _untracked_left_out(repo, settings)
    if untracked_left_out:
        cap.notes.append(untracked_left_out)

    with repo.temp_index(seed=True) as index:
        wanted = not untracked_left_out and settings.include_untracked is not False
        entries = repo.status("--ignore-submodules=none", *([] if wanted else ["--untracked-files=no"]), index=index)
        unmerged = [e.path for e in entries if e.kind == "u"]
        changed, untracked = [], []
        sizes: dict[str, int] = {}
        for entry in entries:
            if entry.kind == "?":
                if entry.path.endswith("/"):
                    cap.notes.append(f"{quote_path(entry.path)} is a nested git repository; its content is not saved")
                elif _fits(repo, entry.path, limit, cap, sizes):
                    untracked.append(entry.path)
                continue
            x, y = entry.xy[0], entry.xy[1]
            if entry.kind == "u":
                cap.staged.append(("U", entry.path))
                continue
            if x != ".":
                cap.staged.append((x, entry.path))
            if entry.submodule.startswith("S"):
                # Only the submodule's checked-out commit (the gitlink) can be saved here.
                if "M" in entry.submodule[2:] or "U" in entry.submodule[2:]:
                    cap.notes.append(f"submodule {quote_path(entry.path)} has uncommitted changes inside it; "
                                     "only its checked-out commit is saved")
                if entry.submodule[1] != "C" and y != "D":
                    continue
            if y != "." and _fits(repo, entry.path, limit, cap, sizes):
                cap.unstaged.append((y, entry.path))
                changed.append(entry.path)
        over = _over_budget(repo, settings, sizes, cap)
        if over:
            changed = [p for p in changed if p not in over]
            untracked = [p for p in untracked if p not in over]
            cap.unstaged = [(y, p) for y, p in cap.unstaged if p not in over]
        cap.size_to_hash = sum(sizes[p] for p in changed + untracked if p in sizes)
        if fits and not fits(len(changed) + len(untracked), cap.size_to_hash):
            raise TooBig(ref, len(changed) + len(untracked), cap.size_to_hash)
        # Much to hash: into a quarantine, so a save that fails half-way (a full disk) leaves
        # nothing behind. A small save skips it (a rename per object; its garbage is small).
        with repo.quarantine() if cap.size_to_hash >= QUARANTINE_FROM else contextlib.nullcontext():
            if unmerged:
                # write-tree refuses conflict stages: save the work-tree files, markers and all.
                repo.update_index(index, unmerged, add=False)
            cap.index_tree = repo.write_tree(index)
            repo.update_index(index, changed, add=False)
            cap.worktree_tree = repo.write_tree(index) if changed else cap.index_tree
            cap.untracked = untracked
            cap.untracked_tree = _untracked_tree(repo, untracked)
    cap.notes[:0] = _in_progress(repo, unmerged)
    return cap


def _untracked_left_out(repo: Repo, settings: config.Snapshot) -> str | None:
    """Why untracked files are not saved here, when the user has not asked for them anyway.

    A home folder under git (dotfiles) holds keys and caches that are untracked on purpose,
    and `status.showUntrackedFiles=no` is how such a repository says so: saving (and maybe
    pushing) them needs `include_untracked: always` in the user's config."""
    if settings.include_untracked is not True:
        return None  # False: none anyway; "always": asked for
    home = Path(os.path.realpath(Path.home()))
    if home == repo.root or repo.root in home.parents:
        return ("untracked files are not saved: this repository's root is the home folder or above it "
                "(snapshot.include_untracked: always saves them)")
    shown = repo.text("config", "--get", "status.showUntrackedFiles", check=False).lower()
    if shown in ("no", "false", "off", "0"):
        return ("untracked files are not saved: the repository sets status.showUntrackedFiles=no "
                "(snapshot.include_untracked: always saves them)")
    return None


def _fits(repo: Repo, path: str, limit: float, cap: Capture, sizes: dict[str, int]) -> bool:
    try:
        size = os.lstat(repo.root / path).st_size
    except OSError:
        return True  # gone already: git records the deletion
    if size > limit:
        cap.left_out.append((path, size, LEFT_OUT_LARGE))
        return False
    sizes[path] = size
    return True


LEFT_OUT_LARGE = "over snapshot.max_file_mb"
# One snapshot hashes at most this many times max_file_mb in all (500 MiB by default): a
# session end must not turn a stray dump folder into gigabytes of objects.
TOTAL_FILES_MB = 10
# Hashing stops short of a full disk: at least this share of it (at most 1 GiB) stays free.
FREE_SHARE = 0.05
# From this much to hash, objects go through a quarantine (see capture).
QUARANTINE_FROM = 8 << 20


def _on_disk(size: int, block: int) -> int:
    """What a loose object of a `size`-byte file takes at most: whole blocks."""
    return -(-(size + 64) // block) * block


def _over_budget(repo: Repo, settings: config.Snapshot, sizes: dict[str, int], cap: Capture) -> set[str]:
    """The files left out, largest first, so that what is hashed stays under the total cap
    and fits on the object store's disk (each loose object takes whole blocks)."""
    try:
        disk = os.statvfs(repo.common_dir / "objects")
    except OSError:
        return set()
    room = disk.f_bavail * disk.f_frsize - min(1 << 30, int(disk.f_blocks * disk.f_frsize * FREE_SHARE))
    cap_total = TOTAL_FILES_MB * settings.max_file_mb * 1024 * 1024
    block = disk.f_frsize or 4096
    total = sum(sizes.values())
    used = sum(_on_disk(size, block) for size in sizes.values())
    over: set[str] = set()
    for path in sorted(sizes, key=lambda p: (-sizes[p], p)):
        if total <= cap_total and used <= room:
            break
        from gitend import message  # only when something is left out: see take()

        why = (f"over the {message.human_size(cap_total)} one snapshot hashes in all "
               f"({TOTAL_FILES_MB} x snapshot.max_file_mb)" if total > cap_total
               else f"not enough free disk space: {message.human_size(max(room, 0))} to spare")
        cap.left_out.append((path, sizes[path], why))
        over.add(path)
        total -= sizes[path]
        used -= _on_disk(sizes[path], block)
    return over


def _untracked_tree(repo: Repo, paths: list[str]) -> str:
    if not paths:
        return repo.empty_tree
    with repo.temp_index(seed=False) as index:
        repo.update_index(index, paths, add=True)
        return repo.write_tree(index)


def _in_progress(repo: Repo, unmerged: list[str]) -> list[str]:
    what = repo.in_progress()
    notes = [f"{what} was in progress; restore does not resume it"] if what else []
    if unmerged:
        notes.append(f"saved with conflict markers: {', '.join(map(quote_path, unmerged))}")
    return notes


# -- saving ------------------------------------------------------------------


def unchanged_since_previous(repo: Repo, cap: Capture) -> bool:
    prev = cap.previous
    if prev is None or prev.commit.tree != cap.worktree_tree or prev.base != cap.head:
        return False
    trees = repo.text("rev-parse", f"{prev.index_commit}^{{tree}}", f"{prev.untracked_commit}^{{tree}}").split()
    return trees == [cap.index_tree, cap.untracked_tree]


def save(repo: Repo, cap: Capture, message: str) -> str:
    """Commit the captured trees and move the WIP branch to them (compare-and-swap)."""
    subject = message.split("\n", 1)[0]
    base = cap.head or _empty_base(repo)
    index_commit = repo.commit_tree(cap.index_tree, [base], f"index on {cap.branch}: {subject}\n")
    untracked_commit = repo.commit_tree(cap.untracked_tree, [], f"untracked files on {cap.branch}: {subject}\n")
    for _attempt in range(5):
        old = cap.previous.commit.sha if cap.previous else None
        parents = [base, index_commit, untracked_commit] + ([old] if old else [])
        commit = repo.commit_tree(cap.worktree_tree, parents, message)
        if repo.update_ref(cap.ref, commit, old, f"gitend: snapshot {subject}"):
            return commit
        cap.previous = _tip(repo, cap.ref, repo.refs(cap.ref).get(cap.ref))  # another writer won: chain onto it
    raise GitendError(f"{cap.ref} kept moving while saving; try again")


_EMPTY_BASE_MESSAGE = "gitend: empty base (HEAD was unborn)\n"


def _empty_base(repo: Repo) -> str:
    # Fixed identity and date, so every unborn-HEAD snapshot shares one base commit.
    env = {**FALLBACK_IDENT, "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z"}
    return repo.text("commit-tree", "--no-gpg-sign", repo.empty_tree, input=_EMPTY_BASE_MESSAGE.encode(), env=env)


def _tip(repo: Repo, ref: str, sha: str | None) -> Snapshot | None:
    if sha is None:
        return None
    with repo.reader() as reader:
        commit = reader.commit(sha)
    tip = _as_snapshot(commit, ref) if commit else None
    if tip is None:
        raise GitendError(f"{ref} exists but is not a gitend snapshot; rename that branch "
                          "or set snapshot.branch_prefix in the config")
    return tip


LOST_CHECK_MAX_PATHS = 200


def not_in_work_tree(repo: Repo, prefix: str) -> Snapshot | None:
    """The branch's newest snapshot when the work tree has lost its changes (say `git reset
    --hard` outside Claude): taken on the current HEAD, some of its changes undone (back to the
    base), none edited further. Committed work (HEAD moved) and work going on are not flagged.
    A few git calls, and only when such a snapshot exists and git has written the index since."""
    head = repo.head()
    ref = wip_ref(prefix, branch_name(repo, head.ref))
    try:
        # `git reset --hard`, `checkout`, `stash` and `clean`-then-`add` all rewrite the index: an
        # index untouched since the snapshot (a loose ref's time) means no git command undid it.
        if (repo.git_dir / "index").stat().st_mtime_ns <= (repo.common_dir / ref).stat().st_mtime_ns:
            return None
    except OSError:
        pass  # no index, or a packed ref: look properly
    refs = repo.refs(*[r for r in (head.ref, ref) if r])
    head_sha = refs.get(head.ref) if head.ref else head.sha
    tip = _tip(repo, ref, refs.get(ref)) if ref in refs else None
    if tip is None or tip.base != head_sha:
        return None
    # (path, blob at the base, blob in the snapshot); "" for absent.
    changes = []
    raw = zsplit(repo.git("diff-tree", "-r", "--no-renames", "-z", tip.base_commit, tip.commit.sha))
    for meta, path in zip(raw[::2], raw[1::2]):
        _, _, old, new, _ = meta.split(" ", 4)
        changes.append((path, old.strip("0") and old, new.strip("0") and new))
    for line in zsplit(repo.git("ls-tree", "-r", "-z", tip.untracked_commit)):
        info, _, path = line.partition("\t")
        changes.append((path, "", info.split()[2]))
    changes = [c for c in changes[:LOST_CHECK_MAX_PATHS] if not os.path.islink(repo.root / c[0])]
    present = [path for path, _, _ in changes if os.path.isfile(repo.root / path)]
    hashed = dict(zip(present, repo.text("hash-object", "--stdin-paths", input="\n".join(present).encode()).split()
                      if present else []))
    undone = edited = 0
    for path, base, saved in changes:
        now = hashed.get(path, "")
        if now == base and base != saved:
            undone += 1
        elif now not in (base, saved):
            edited += 1
    return tip if undone and not edited else None


# -- reading back ------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    commit: Commit
    ref: str
    branch: str
    session_id: str
    reason: str
    base: str | None
    position: int = 0  # how many snapshots newer than this one are on its branch

    @property
    def name(self) -> str:
        """`wip/<branch>~N`, the name `gitend restore` takes."""
        short = self.ref.removeprefix("refs/heads/").removeprefix("refs/remotes/")
        return f"{short}~{self.position}" if self.position else short

    @property
    def subject(self) -> str:
        return self.commit.message.split("\n", 1)[0]

    @property
    def created(self) -> str:
        sign = -1 if self.commit.committer_tz.startswith("-") else 1
        offset = timedelta(hours=int(self.commit.committer_tz[1:3]), minutes=int(self.commit.committer_tz[3:5]))
        when = datetime.fromtimestamp(self.commit.committer_time, timezone(sign * offset))
        return when.isoformat()

    @property
    def index_commit(self) -> str:
        return self.commit.parents[1]

    @property
    def untracked_commit(self) -> str:
        return self.commit.parents[2]

    @property
    def previous(self) -> str | None:
        return self.commit.parents[3] if len(self.commit.parents) > 3 else None

    @property
    def base_commit(self) -> str:
        """H: HEAD when taken, or the shared empty root for an unborn HEAD."""
        return self.commit.parents[0]


def trailers(message: str) -> dict[str, str]:
    last = message.rstrip("\n").rsplit("\n\n", 1)[-1]
    found = {}
    for line in last.splitlines():
        key, sep, value = line.partition(": ")
        if sep and re.fullmatch(r"[A-Za-z][A-Za-z-]*", key):
            found[key] = value.strip()
    return found


def _as_snapshot(commit: Commit, ref: str, position: int = 0) -> Snapshot | None:
    found = trailers(commit.message)
    if "Gitend-Session" not in found or len(commit.parents) < 3:
        return None
    base = found.get("Gitend-Base", "none")
    return Snapshot(commit, ref, found.get("Gitend-Branch", ""), found["Gitend-Session"],
                    found.get("Gitend-Reason", ""), None if base == "none" else base, position)


def chain(repo: Repo, ref: str, sha: str | None = None) -> Iterator[Snapshot]:
    """The snapshots on one WIP branch, newest first, following the fourth parents."""
    sha = sha or repo.refs(ref).get(ref)
    seen = set()
    with repo.reader() as reader:
        while sha and sha not in seen:
            seen.add(sha)
            commit = reader.commit(sha)
            snap = _as_snapshot(commit, ref, len(seen) - 1) if commit else None
            if snap is None:
                return
            yield snap
            sha = snap.previous


def wip_refs(repo: Repo, prefix: str) -> list[str]:
    # Filtered here, not by a for-each-ref pattern: a pattern matches whole path components
    # only, so a prefix such as `wip-` would find nothing.
    return sorted(ref for ref in repo.refs("refs/heads/") if ref.startswith(f"refs/heads/{prefix}"))


def _fetched(ref: str, prefix: str) -> str | None:
    """For refs/remotes/<remote>/<prefix><rest>: <rest>; None for other refs."""
    after_remote = ref.removeprefix("refs/remotes/").partition("/")[2]
    return after_remote.removeprefix(prefix) if after_remote.startswith(prefix) else None


def fetched_refs(repo: Repo, prefix: str, branch: str) -> list[str]:
    """Fetched WIP refs holding snapshots of `branch`, newest tip first: another clone's
    refs/remotes/<remote>/<prefix><branch>, or <prefix><host>/<branch> as the worker pushes them."""
    found = []
    with repo.reader() as reader:
        for ref, sha in repo.refs("refs/remotes/").items():
            rest = _fetched(ref, prefix)
            host, _, rest_branch = (rest or "").partition("/")
            if rest != branch and not (host and rest_branch == branch):
                continue
            commit = reader.commit(sha)
            tip = _as_snapshot(commit, ref) if commit else None
            if tip and tip.branch == branch:  # the trailer settles `<host>/<branch>` against a branch with a slash
                found.append((tip.commit.committer_time, ref))
    return [ref for _, ref in sorted(found, reverse=True)]


def branch_refs(repo: Repo, prefix: str, branch: str) -> list[str]:
    """Where the snapshots of `branch` are: its local WIP branch, else (a clone that has
    none) the fetched ones."""
    local = wip_ref(prefix, branch)
    if local in repo.refs(local):
        return [local]
    return fetched_refs(repo, prefix, branch) or [local]


def changed_files(repo: Repo, snap: Snapshot) -> list[str]:
    """Paths that differ from the base in the index, the work tree, or as untracked files."""
    base = snap.base_commit
    names: set[str] = set()
    for other in (snap.index_commit, snap.commit.sha):
        names.update(zsplit(repo.git("diff-tree", "-r", "--no-renames", "--name-only", "-z", base, other)))
    names.update(zsplit(repo.git("ls-tree", "-r", "--name-only", "-z", snap.untracked_commit)))
    return sorted(names)


class NotFound(GitendError):
    pass


def all_refs(repo: Repo, prefix: str) -> list[str]:
    """Local WIP branches, then fetched ones (refs/remotes/<remote>/<prefix>...)."""
    fetched = sorted(r for r in repo.refs("refs/remotes/") if _fetched(r, prefix) is not None)
    return wip_refs(repo, prefix) + fetched


class NotOwn(GitendError):
    """`latest` or `wip/<branch>` in a clone with no snapshots of its own for that branch, only
    other machines' fetched ones. gitend never picks one of those for the user: their dates are
    whatever the pusher wrote (a colleague's work, or a commit dated 2099 with a hook in it)."""

    def __init__(self, branch: str, prefix: str, others: list[Snapshot]) -> None:
        from gitend import message

        self.others = others
        self.headline = f"no snapshots of {branch} from this clone, only other machines' fetched ones"
        listing = "; ".join(f"{s.name} (machine {fetched_machine(s.ref, prefix)}, {s.created[:16].replace('T', ' ')}: "
                            f"{message.one_line(s.subject, 60)})" for s in others)
        super().__init__(f"{self.headline}: {listing}; "
                         f"name the one you want, e.g. `gitend restore {others[0].name}`")


def fetched_machine(ref: str, prefix: str) -> str:
    """The machine a fetched WIP ref came from: <host>[-<clone>] in <remote>/<prefix><host>/<branch>,
    else (a WIP branch pushed by hand) the remote's name."""
    rest = _fetched(ref, prefix) or ""
    remote = ref.removeprefix("refs/remotes/").partition("/")[0]
    return rest.partition("/")[0] if "/" in rest else remote


def own_ref(repo: Repo, prefix: str, branch: str, namespace: str | None) -> str | None:
    """The WIP branch that holds this clone's own snapshots of `branch`: the local one, else its
    copy fetched back from a remote (<prefix><namespace>/<branch>); None when there is neither.
    Raises NotOwn when only other machines' snapshots of that branch were fetched."""
    local = wip_ref(prefix, branch)
    if local in repo.refs(local):
        return local
    fetched = fetched_refs(repo, prefix, branch)
    mine = [r for r in fetched if namespace and _fetched(r, prefix) == f"{namespace}/{branch}"]
    if mine:
        return mine[0]
    if fetched:
        raise NotOwn(branch, prefix, [next(chain(repo, ref)) for ref in fetched])
    return None


def find(repo: Repo, spec: str, prefix: str, namespace: str | None = None) -> Snapshot:
    """A snapshot named by `latest`, `[<remote>/]wip/<branch>[~N]`, a commit, or a session id.
    `latest` and `wip/<branch>` mean this clone's own (`namespace`: its name on remotes)."""
    if spec == "latest":
        branch = branch_name(repo, repo.head().ref)
        for snap in chain(repo, own_ref(repo, prefix, branch, namespace) or wip_ref(prefix, branch)):
            return snap
        raise NotFound(f"no snapshots on {prefix}{branch}; `gitend list --all` shows every WIP branch")
    named = re.fullmatch(r"(.+?)(?:~(\d+))?", spec)
    if named and ("/" in named[1] or named[1].startswith(prefix)):
        name, steps = named[1], int(named[2] or 0)
        refs = repo.refs(f"refs/heads/{name}", f"refs/remotes/{name}", name)
        ref = next((r for r in (f"refs/heads/{name}", f"refs/remotes/{name}", name) if r in refs), None)
        if ref is None and name.startswith(prefix):
            # `wip/<branch>` in a clone that has it only fetched back from a remote.
            ref = own_ref(repo, prefix, name.removeprefix(prefix), namespace)
        if ref == f"refs/heads/{name}" and not name.startswith(prefix):
            ref = own_ref(repo, prefix, name, namespace) or wip_ref(prefix, name)  # a branch of the user's
        if ref:
            snaps = [snap for _, snap in zip(range(steps + 1), chain(repo, ref))]
            if not snaps:
                raise NotFound(f"no snapshots of branch {name.removeprefix(prefix)}; "
                               "`gitend list --all` shows every WIP branch")
            if len(snaps) <= steps:
                raise NotFound(f"{name} has {len(snaps)} snapshot(s), so there is no {spec}; "
                               "see `gitend list --all`")
            return snaps[-1]

    everything = [snap for ref in all_refs(repo, prefix) for snap in chain(repo, ref)]
    by_commit = [s for s in everything if len(spec) >= 4 and s.commit.sha.startswith(spec.lower())]
    by_session = [s for s in everything if s.session_id == spec or (len(spec) >= 4 and s.session_id.startswith(spec))]
    # A session may have saved many times (a Stop hook per turn): its newest snapshot stands for it.
    newest: dict[str, Snapshot] = {}
    for snap in sorted(by_session, key=lambda s: s.commit.committer_time):
        newest[snap.session_id] = snap
    candidates: dict[str, Snapshot] = {}
    for snap in [*by_commit, *newest.values()]:
        candidates.setdefault(snap.commit.sha, snap)  # local names come first
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    if len(candidates) > 1:
        listing = "; ".join(f"{s.commit.sha[:10]} ({s.name}, session {s.session_id})" for s in candidates.values())
        raise GitendError(f"'{spec}' is ambiguous: it matches {listing}; give more characters")
    sha = repo.resolve(spec)  # e.g. a reflog entry such as wip/main@{2}
    if sha:
        with repo.reader() as reader:
            commit = reader.commit(sha)
        found = _as_snapshot(commit, spec) if commit else None
        if found:
            return found
        raise GitendError(f"{spec} is a commit but not a gitend snapshot")
    raise NotFound(f"no snapshot matches '{spec}' here; `gitend list --all` shows them all")


STAGED, UNSTAGED, UNTRACKED = "Staged (index against base):", "Unstaged (work tree against index):", "Untracked:"


def diff_stats(repo: Repo, snap: Snapshot) -> list[tuple[str, str]]:
    """(title, git's diff --stat) for the staged, unstaged and untracked parts."""
    def stat(old: str, new: str) -> str:
        return show_bytes(diff(repo, old, new, "--stat=100", "--no-renames"))

    untracked = zsplit(repo.git("ls-tree", "-r", "--name-only", "-z", snap.untracked_commit))
    parts = [(STAGED, stat(snap.base_commit, snap.index_commit)),
             (UNSTAGED, stat(snap.index_commit, snap.commit.sha)),
             (UNTRACKED, "\n".join(f" {quote_path(path)}" for path in untracked))]
    return [(title, text) for title, text in parts if text]


# -- on a remote -------------------------------------------------------------------------


def remote_namespace(repo: Repo, host: str) -> str:
    """This clone's name on remotes, `<host>-<clone id>`: two clones on one machine, or two
    machines with one host name, never force-push to the same WIP branch."""
    return f"{host}-{clone_id(repo)}"


def clone_id(repo: Repo, *, create: bool = True) -> str | None:
    """Six hex digits, made once per clone and kept in its git dir (its worktrees share it);
    None when there is none yet and `create` is off."""
    path = paths.clone_id(repo.common_dir)
    for _ in range(2):
        try:
            found = path.read_text(encoding="ascii").strip()
            if re.fullmatch(r"[0-9a-f]{6}", found):
                return found
            path.unlink()  # damaged: a new one (the old name's branches stay on the remote)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            raise GitendError(f"cannot read {path}: {exc}") from None
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "x", encoding="ascii") as out:  # the first writer wins, the other reads it
                out.write(os.urandom(3).hex() + "\n")
        except FileExistsError:
            pass
    raise GitendError(f"cannot make a clone id in {path}")


def remote_wip_ref(prefix: str, namespace: str, branch: str) -> str:
    """Where a WIP branch is pushed: the user's prefix only (a repository's own `.gitend.yaml`
    never chooses the names gitend force-pushes)."""
    return f"refs/heads/{prefix}{namespace}/{branch}"


def for_remote(repo: Repo, snap_sha: str, remote_tip: str | None) -> str:
    """The commit to push for the snapshot `snap_sha`: the same tree, base, index and untracked
    commits, with the remote's copy of the branch as its previous snapshot instead of the local
    chain. So a snapshot that never went out (one the secret review held) never goes out as
    history either, and the remote's chain only grows."""
    with repo.reader() as reader:
        snap = reader.commit(snap_sha)
        tip = reader.commit(remote_tip) if remote_tip else None
    if snap is None:
        raise GitendError(f"snapshot {snap_sha[:10]} cannot be read")
    if tip and tip.tree == snap.tree and tip.parents[:3] == snap.parents[:3]:
        return tip.sha  # the remote has this snapshot already
    parents = [*snap.parents[:3], *([tip.sha] if tip else [])]
    if tuple(parents) == snap.parents:
        return snap.sha
    who = repo.text("log", "-1", "--format=%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd", "--date=raw", snap.sha)
    names = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
             "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE")
    args = ["commit-tree", "--no-gpg-sign", snap.tree, *[a for p in parents for a in ("-p", p)]]
    message = repo.git("cat-file", "commit", snap.sha).partition(b"\n\n")[2]  # as it is, byte for byte
    return repo.text(*args, input=message, env=dict(zip(names, who.split("\0"))))
def patches(repo: Repo, snap: Snapshot, *, color: bool = False) -> list[tuple[str, str]]:
    """(title, git's patch) for the staged, unstaged and untracked parts (untracked files as new)."""
    parts = [(STAGED, diff(repo, snap.base_commit, snap.index_commit, color=color)),
             (UNSTAGED, diff(repo, snap.index_commit, snap.commit.sha, color=color)),
             (UNTRACKED, diff(repo, repo.empty_tree, snap.untracked_commit, color=color))]
    return [(title, text) for title, text in parts if text]


def diff(repo: Repo, old: str, new: str, *options: str, paths: Sequence[str] = (), color: bool = False) -> str:
    """`git diff` of two trees (renames found), as text; `paths` relative to the top."""
    out = repo.git("diff", "-M", "--no-ext-diff", "--color=always" if color else "--no-color", *options,
                   old, new, "--", *paths)
    return os.fsdecode(out).rstrip("\n")


def whole_tree(repo: Repo, tracked: str, untracked: str) -> str:
    """One tree of a whole work tree: the tracked files' tree with the untracked ones added."""
    entries = repo.git("ls-tree", "-r", "-z", untracked)
    if not entries:
        return tracked
    with repo.temp_index(seed=False) as index:
        repo.git("read-tree", tracked, index=index)
        repo.git("update-index", "-z", "--index-info", input=entries, index=index)
        return repo.write_tree(index)


def work_tree_now(repo: Repo, settings: config.Snapshot) -> str:
    """The work tree as a snapshot would save it now, as one tree (nothing is committed)."""
    cap = capture(repo, settings)
    return whole_tree(repo, cap.worktree_tree, cap.untracked_tree)
