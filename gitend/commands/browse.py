"""`gitend list`, `gitend show` and `gitend diff`: the snapshots, read back."""
from __future__ import annotations

import json
import os
import sys
import time

from gitend import config, snapshot
from gitend.git import Repo
from gitend.output import page, paint, safe, use_color
from gitend.snapshot import Snapshot


def _open(directory: str) -> tuple[Repo, config.Config]:
    repo = Repo.find(directory)
    return repo, config.load_or_defaults(repo.root)


def list_snapshots(directory: str, *, all_branches: bool, as_json: bool, limit: int | None = None) -> int:
    repo, cfg = _open(directory)
    prefix = cfg.snapshot.branch_prefix
    branch = snapshot.branch_name(repo, repo.head().ref)
    # Local WIP branches first, so a snapshot also fetched is listed under its local name.
    refs = snapshot.all_refs(repo, prefix) if all_branches else snapshot.branch_refs(repo, prefix, branch)
    unique: dict[str, Snapshot] = {}
    for ref in refs:
        for snap in snapshot.chain(repo, ref):
            unique.setdefault(snap.commit.sha, snap)
    snaps = sorted(unique.values(), key=lambda s: (-s.commit.committer_time, s.ref, s.position))[:limit]
    if as_json:
        print(json.dumps([_as_json(repo, snap) for snap in snaps], indent=2))
        return 0
    if not snaps:
        where = "any WIP branch" if all_branches else f"{prefix}{branch}"
        print(f"no snapshots on {where}" + ("" if all_branches else " (`gitend list --all` shows every branch)"))
        return 0
    now, relative = time.time(), sys.stdout.isatty()
    rows = [[safe(snap.name), ago(now - snap.commit.committer_time) if relative else snap.created, safe(snap.reason),
             _count(len(snapshot.changed_files(repo, snap)), "file")] for snap in snaps]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    # Grouped by session (a session that saved at every turn), where its newest snapshot is.
    sessions: dict[str, list[tuple[Snapshot, list[str]]]] = {}
    for snap, row in zip(snaps, rows):
        sessions.setdefault(snap.session_id, []).append((snap, row))
    for session, group in sessions.items():
        if len(group) > 1:
            print(paint(f"session {safe(session)}: {len(group)} snapshots", "bold"))
        for snap, row in group:
            cells = "  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths))
            indent = "  " if len(group) > 1 else ""
            print(f"{indent}{paint(snap.commit.sha[:10], 'yellow')}  {cells}  {safe(snap.subject)}")
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def ago(seconds: float) -> str:
    """How long ago, as git says it: `3 hours ago`."""
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600),
                       ("minute", 60)):
        if seconds >= size:
            return f"{_count(int(seconds // size), unit)} ago"
    return "just now" if seconds < 1 else f"{_count(int(seconds), 'second')} ago"


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


def show(directory: str, spec: str, *, patch: bool = False) -> int:
    repo, cfg = _open(directory)
    snap = snapshot.find(repo, spec, cfg.snapshot.branch_prefix)
    rows = [("commit", snap.commit.sha), ("name", snap.name), ("session", snap.session_id),
            ("reason", snap.reason), ("created", snap.created), ("branch", snap.branch),
            ("base", snap.base or "none (HEAD was unborn)")]
    lines = [f"{paint(f'{key:<8}', 'bold')} {safe(value)}" for key, value in rows]
    lines += ["", *(f"    {safe(line)}" for line in snap.commit.message.rstrip("\n").split("\n"))]
    parts = snapshot.patches(repo, snap, color=use_color(sys.stdout)) if patch else snapshot.diff_stats(repo, snap)
    for title, text in parts:
        lines += ["", paint(title, "bold"), safe(text, colors=True)]
    if patch:
        page("\n".join(lines) + "\n", _core_pager(repo))
    else:
        print("\n".join(lines))
    return 0


def diff(directory: str, specs: list[str], paths: list[str], *, stat: bool, name_only: bool) -> int:
    """The first snapshot against the second, or against the work tree as it is now."""
    repo, cfg = _open(directory)
    prefix = cfg.snapshot.branch_prefix
    old, *new = [snapshot.find(repo, spec, prefix) for spec in specs]
    old_tree = snapshot.whole_tree(repo, old.commit.tree, old.untracked_commit)
    new_tree = (snapshot.whole_tree(repo, new[0].commit.tree, new[0].untracked_commit) if new
                else snapshot.work_tree_now(repo, cfg.snapshot))
    # Paths are relative to where the command runs (or -C), as git takes them.
    top = [os.path.relpath(os.path.join(os.path.abspath(directory), path), repo.root) for path in paths]
    options = ["--stat"] if stat else ["--name-only"] if name_only else []
    text = snapshot.diff(repo, old_tree, new_tree, *options, paths=top, color=use_color(sys.stdout))
    page(safe(text, colors=True) + "\n" if text else "", _core_pager(repo))
    return 0


def _core_pager(repo: Repo) -> str | None:
    """git's core.pager (GIT_PAGER comes first, PAGER after), looked up only for a terminal."""
    return repo.text("config", "core.pager", check=False) or None if sys.stdout.isatty() else None
