"""`gitend list` and `gitend show`: the snapshots, read back."""
from __future__ import annotations

import json

from gitend import config, snapshot
from gitend.git import Repo
from gitend.output import paint, safe
from gitend.snapshot import Snapshot


def _open(directory: str) -> tuple[Repo, config.Config]:
    repo = Repo.find(directory)
    return repo, config.load_or_defaults(repo.root)


def list_snapshots(directory: str, *, all_branches: bool, as_json: bool) -> int:
    repo, cfg = _open(directory)
    prefix = cfg.snapshot.branch_prefix
    branch = snapshot.branch_name(repo, repo.head().ref)
    # Local WIP branches first, so a snapshot also fetched is listed under its local name.
    refs = snapshot.all_refs(repo, prefix) if all_branches else snapshot.branch_refs(repo, prefix, branch)
    unique: dict[str, Snapshot] = {}
    for ref in refs:
        for snap in snapshot.chain(repo, ref):
            unique.setdefault(snap.commit.sha, snap)
    snaps = sorted(unique.values(), key=lambda s: (-s.commit.committer_time, s.ref, s.position))
    if as_json:
        print(json.dumps([_as_json(repo, snap) for snap in snaps], indent=2))
        return 0
    if not snaps:
        where = "any WIP branch" if all_branches else f"{prefix}{branch}"
        print(f"no snapshots on {where}" + ("" if all_branches else " (`gitend list --all` shows every branch)"))
        return 0
    width = max(len(s.name) for s in snaps)
    for snap in snaps:
        print(f"{paint(snap.commit.sha[:10], 'yellow')}  {safe(snap.name):<{width}}  "
              f"{snap.created[:16].replace('T', ' ')}  {safe(snap.reason):<17} {safe(snap.subject)}")
    return 0


def _as_json(repo: Repo, snap: Snapshot) -> dict[str, object]:
    return {
        "commit": snap.commit.sha,
        "ref": snap.ref,
        "name": snap.name,
        "branch": snap.branch,
        "session_id": snap.session_id,
        "reason": snap.reason,
        "created": snap.created,
        "subject": snap.subject,
        "base": snap.base,
        "files": snapshot.changed_files(repo, snap),
    }


def show(directory: str, spec: str) -> int:
    repo, cfg = _open(directory)
    snap = snapshot.find(repo, spec, cfg.snapshot.branch_prefix)
    rows = [("commit", snap.commit.sha), ("name", snap.name), ("session", snap.session_id),
            ("reason", snap.reason), ("created", snap.created), ("branch", snap.branch),
            ("base", snap.base or "none (HEAD was unborn)")]
    for key, value in rows:
        print(f"{paint(f'{key:<8}', 'bold')} {safe(value)}")
    print()
    print("\n".join(f"    {safe(line)}" for line in snap.commit.message.rstrip("\n").split("\n")))
    for title, diff in snapshot.diff_stats(repo, snap):
        print(f"\n{paint(title, 'bold')}\n{safe(diff)}")
    return 0
