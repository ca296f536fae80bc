"""Retention: which snapshots a WIP branch keeps, and the rewrite that lets the others go.

Each snapshot keeps its predecessor reachable through its fourth parent, so letting old
snapshots go means new commits for the kept ones: the same tree, base, index and untracked
commits, message, author and dates (so `git stash apply --index` and `gitend restore` work
as before), with the fourth parent pointing at the rewritten predecessor, or none for the
oldest kept. The branch then moves by compare-and-swap, under the lock the hook saves under;
a snapshot saved meanwhile is rewritten on top and the swap tried again. The dropped
commits are then unreachable (the branch's reflog is emptied too), so `git gc` reclaims them.
"""
from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from gitend import config, files, lock, paths, queue, snapshot
from gitend.errors import GitendError
from gitend.git import Repo

DAY_S = 86400
LOCK_WAIT_S = 10.0


def kept(chain: Sequence[tuple[str, float]], *, keep_days: int, keep: int, now: float) -> list[str]:
    """The commits a WIP branch keeps, newest first, from its chain of (commit, time), newest
    first: the newest `keep` whatever their age, and every one younger than `keep_days`
    (0: none is kept for its age)."""
    if keep < 1:
        raise ValueError("keep must be at least 1: the newest snapshot is never pruned")
    if keep_days < 0:
        raise ValueError("keep_days must not be negative")
    cutoff = now - keep_days * DAY_S
    return [sha for position, (sha, when) in enumerate(chain)
            if position < keep or (keep_days > 0 and when >= cutoff)]


@dataclass(frozen=True)
class Pruned:
    ref: str
    before: int  # snapshots on the branch before
    dropped: tuple[str, ...]  # commits let go, newest first
    tip: str | None  # the branch's tip afterwards (unchanged on a dry run)

    @property
    def after(self) -> int:
        return self.before - len(self.dropped)


def prune(repo: Repo, ref: str, *, keep_days: int, keep: int, now: float, dry_run: bool = False) -> Pruned:
    """Apply the retention to one WIP branch."""
    tip = repo.refs(ref).get(ref)
    chain = _walk(repo, ref, tip, [])
    keep_set = set(kept(_times(chain), keep_days=keep_days, keep=keep, now=now))
    if dry_run or len(keep_set) == len(chain):
        return Pruned(ref, len(chain), _dropped(chain, keep_set), tip)
    written: dict[tuple[str, str | None], str] = {}
    # The heavy part (walking, writing commits) outside the lock; under it, only what a save
    # added meanwhile is rewritten, then the swap.
    new_tip = _rewrite(repo, chain, keep_set, written)
    with _save_locks(repo):
        for _attempt in range(5):
            current = repo.refs(ref).get(ref)
            if current != tip:
                tip, chain = current, _walk(repo, ref, current, chain)
                keep_set = set(kept(_times(chain), keep_days=keep_days, keep=keep, now=now))
                if len(keep_set) == len(chain):
                    return Pruned(ref, len(chain), (), tip)
                new_tip = _rewrite(repo, chain, keep_set, written)
            if repo.update_ref(ref, new_tip, tip, f"gitend: prune to {len(keep_set)} snapshot(s)"):
                # The reflog would keep every dropped snapshot alive for git gc.
                repo.git("reflog", "expire", "--expire=now", ref)
                return Pruned(ref, len(chain), _dropped(chain, keep_set), new_tip)
    raise GitendError(f"{ref} kept moving while pruning; try again")


def _times(chain: list[snapshot.Snapshot]) -> list[tuple[str, float]]:
    return [(snap.commit.sha, snap.commit.committer_time) for snap in chain]


def _dropped(chain: list[snapshot.Snapshot], keep_set: set[str]) -> tuple[str, ...]:
    return tuple(snap.commit.sha for snap in chain if snap.commit.sha not in keep_set)


def _walk(repo: Repo, ref: str, tip: str | None, known: list[snapshot.Snapshot]) -> list[snapshot.Snapshot]:
    """The chain from `tip`, newest first; where it joins `known` (an earlier walk), the rest is taken from there."""
    where = {snap.commit.sha: position for position, snap in enumerate(known)}
    walked: list[snapshot.Snapshot] = []
    if tip is None:
        return walked
    for snap in snapshot.chain(repo, ref, tip):
        if snap.commit.sha in where:
            return walked + known[where[snap.commit.sha]:]
        walked.append(snap)
    return walked


def _rewrite(repo: Repo, chain: list[snapshot.Snapshot], keep_set: set[str],
             written: dict[tuple[str, str | None], str]) -> str:
    """Commits for the kept snapshots, oldest first, each on the rewritten one before it; the
    new tip. `written` remembers (commit, new previous) -> new commit across retries."""
    oldest = chain[-1]
    # Below the oldest snapshot read there may be more than `chain` shows (a commit that is not
    # a snapshot): left as it is, unless that snapshot itself goes.
    previous = oldest.previous if oldest.commit.sha in keep_set else None
    todo = [snap for snap in reversed(chain) if snap.commit.sha in keep_set]
    raw = _raw_commits(repo, [snap.commit.sha for snap in todo])
    new: list[bytes] = []
    for snap in todo:
        sha = snap.commit.sha
        if snap.previous != previous:
            key = (sha, previous)
            if key not in written:
                body = _with_previous(raw[sha], previous)
                written[key] = _object_id(body, len(sha))
                new.append(body)
            sha = written[key]
        previous = sha
    _write_commits(repo, new, len(oldest.commit.sha))
    assert previous is not None
    return previous


def _object_id(body: bytes, hex_length: int) -> str:
    """The id git gives a commit object (SHA-1, or SHA-256 in a SHA-256 repository)."""
    algo = hashlib.sha1 if hex_length == 40 else hashlib.sha256
    return algo(b"commit %d\0" % len(body) + body).hexdigest()


def _write_commits(repo: Repo, bodies: list[bytes], hex_length: int) -> None:
    """Store the commits as one pack, with one git process (a process per object costs ~7 ms
    each, and hundreds of loose objects)."""
    if not bodies:
        return
    algo = hashlib.sha1 if hex_length == 40 else hashlib.sha256
    pack = [b"PACK", struct.pack(">II", 2, len(bodies))]
    for body in bodies:
        size = len(body)
        header = bytearray([0x10 | (size & 0x0F)])  # type 1: commit; then the size, 7 bits a byte
        size >>= 4
        while size:
            header[-1] |= 0x80
            header.append(size & 0x7F)
            size >>= 7
        pack += [bytes(header), zlib.compress(body)]
    data = b"".join(pack)
    repo.git("index-pack", "--stdin", input=data + algo(data).digest())


def _raw_commits(repo: Repo, shas: list[str]) -> dict[str, bytes]:
    """The commit objects as stored, read by one process."""
    if not shas:
        return {}
    out = repo.git("cat-file", "--batch", input="".join(f"{sha}\n" for sha in shas).encode())
    found, at = {}, 0
    for sha in shas:
        end = out.index(b"\n", at)
        size = int(out[at:end].split()[2])
        found[sha] = out[end + 1:end + 1 + size]
        at = end + 1 + size + 1
    return found


def _with_previous(raw: bytes, previous: str | None) -> bytes:
    """The commit with its fourth parent (the previous snapshot) replaced, or removed."""
    header, _, message = raw.partition(b"\n\n")
    lines = header.split(b"\n")
    parents = [position for position, line in enumerate(lines) if line.startswith(b"parent ")]
    third = parents[2]
    rest = [line for position, line in enumerate(lines[third + 1:], third + 1) if position not in parents[3:4]]
    new = [b"parent " + previous.encode()] if previous else []
    return b"\n".join(lines[:third + 1] + new + rest) + b"\n\n" + message


@contextmanager
def _save_locks(repo: Repo) -> Iterator[None]:
    """Every work tree's snapshot lock (a hook takes the one of its work tree), in a fixed order."""
    git_dirs = [repo.common_dir, *sorted(p for p in (repo.common_dir / "worktrees").glob("*") if p.is_dir())]
    with ExitStack() as stack:
        for git_dir in git_dirs:
            stack.enter_context(lock.held(paths.repo_lock(git_dir), timeout=LOCK_WAIT_S,
                                          what=f"the snapshots of {repo.main_root}"))
        yield


# -- a whole repository --------------------------------------------------------------


def prune_repository(repo: Repo, settings: config.Snapshot, *, now: float, dry_run: bool = False) -> list[Pruned]:
    """Apply the retention to every local WIP branch (those of deleted branches too). A pruned
    branch that is pushed is queued to be pushed again, which prunes it on the remote: the
    worker force-pushes this machine's WIP branches only, under its own name."""
    results = [prune(repo, ref, keep_days=settings.keep_days, keep=settings.keep, now=now, dry_run=dry_run)
               for ref in snapshot.wip_refs(repo, settings.branch_prefix)]
    if dry_run:
        return results
    pruned = [result.ref for result in results if result.dropped]
    if pruned and settings.push_remote:
        queue.add("wip", str(repo.main_root), True, remote=settings.push_remote, refs=pruned, pruned=True)
    paths.pruned_stamp(repo.common_dir).touch()
    _remember(repo)
    return results


def summary(results: list[Pruned]) -> str:
    dropped = sum(len(result.dropped) for result in results)
    branches = sum(1 for result in results if result.dropped)
    if not dropped:
        return f"nothing to prune ({sum(r.before for r in results)} snapshot(s) kept)"
    return (f"pruned {dropped} snapshot(s) from {branches} WIP branch(es), "
            f"{sum(r.after for r in results)} kept")


def due(repo: Repo, now: float) -> bool:
    """True once a day per repository: when its last prune is a day old. A repository's first
    snapshot starts its clock (there is nothing to prune yet) and lists it for `gitend status`."""
    stamp = paths.pruned_stamp(repo.common_dir)
    try:
        return now - os.stat(stamp).st_mtime >= DAY_S
    except FileNotFoundError:
        stamp.touch()
        _remember(repo)
        return False


def _remember(repo: Repo) -> None:
    known = wip_repositories()
    if str(repo.main_root) not in known:
        files.write_json(paths.wip_repos_file(), sorted([*known, str(repo.main_root)]))


def wip_repositories() -> list[str]:
    """The repositories with WIP branches on this machine (as far as gitend saw them)."""
    return [root for root in files.read_json(paths.wip_repos_file(), []) if isinstance(root, str)]


def usage(repo: Repo, prefix: str) -> tuple[int, int]:
    """(snapshots, bytes on disk) of the local WIP branches: the objects only they hold."""
    refs = snapshot.wip_refs(repo, prefix)
    if not refs:
        return 0, 0
    count = sum(1 for ref in refs for _ in snapshot.chain(repo, ref))
    others = [sha for name, sha in repo.refs().items() if name not in refs]
    head = repo.resolve("HEAD")
    exclude = "".join(f"^{sha}\n" for sha in [*others, *([head] if head else [])])
    out = repo.text("rev-list", "--objects", "--disk-usage", "--stdin", *refs, input=exclude.encode())
    return count, int(out or 0)
