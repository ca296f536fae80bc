"""The one line SessionStart shows the user, and how often: each problem at most once a day.

A problem is keyed by what it is about (`held`, `conflict:<copies>`, `snapshot:<commit>`, ...),
so a new conflict or a new lost snapshot is shown at once while an old one waits a day.
"""
from __future__ import annotations

import time

from gitend import config, files, paths, queue, snapshot
from gitend.errors import GitendError
from gitend.git import Repo

EVERY_S = 86400
PREFIX = "gitend: "


def due(problems: dict[str, str], now: float | None = None) -> list[str]:
    """The problems' texts not shown in the last day; they count as shown from now."""
    now = time.time() if now is None else now
    shown = _load()
    fresh = [key for key in problems if now - shown.get(key, float("-inf")) >= EVERY_S]
    if fresh:
        # Problems that went away are forgotten, so they are shown at once if they come back.
        kept = {key: when for key, when in shown.items() if key in problems}
        kept.update(dict.fromkeys(fresh, now))
        try:
            files.write_json(paths.notices_file(), kept)
        except GitendError:
            pass  # shown again next time rather than never
    return [problems[key] for key in fresh]


def line(texts: list[str]) -> str | None:
    """One line, whatever the number of problems."""
    return PREFIX + "; ".join(texts) if texts else None


def _load() -> dict[str, float]:
    data = files.read_json(paths.notices_file(), {})
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}


def problems(repo: Repo | None, cfg: config.Config, broken_config: str | None, now: float | None = None
             ) -> dict[str, str]:
    """What needs the user, keyed for `due`: held notes, pushes failing for over a day, a note
    conflict, a broken config, a newer snapshot of this branch that is not in the work tree."""
    now = time.time() if now is None else now
    found: dict[str, str] = {}
    if broken_config:
        found[f"config:{broken_config}"] = f"{broken_config}; run `gitend doctor`"
    jobs = queue.load()
    held = [job for job in jobs if job.held]
    if held:  # one problem however many session ends queued behind it
        found["held"] = f"{len(held)} memory push(es) held by the secret review; run `gitend review`"
    failing = [job for job in jobs if not job.held and job.last_error and now - job.created > EVERY_S]
    if failing:
        days = int((now - min(job.created for job in failing)) // EVERY_S)
        error = failing[-1].last_error or ""
        found["failing"] = f"syncing with the remote failing for {days} day(s) ({error[:80]}); see `gitend status`"
    if cfg.memory.enabled and cfg.memory.repo:
        from gitend import memsync

        conflicts = memsync.conflicts(cfg.memory)
        if conflicts:
            found["conflict:" + ",".join(conflicts)] = (
                f"{len(conflicts)} memory note conflict(s) in the dotfile repo ({conflicts[0]}): merge each "
                "into its note and delete the copy")
    if repo is not None and cfg.snapshot.enabled:
        try:
            lost = snapshot.not_in_work_tree(repo, cfg.snapshot.branch_prefix)
        except GitendError:
            lost = None
        if lost:
            found[f"snapshot:{lost.commit.sha}"] = (
                f"the newest snapshot of {lost.branch or 'this branch'} ({lost.commit.sha[:10]}) is not in the work "
                f"tree; `gitend show latest` shows it, `gitend restore latest` brings it back")
    return found
