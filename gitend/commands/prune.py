"""`gitend prune`: apply the retention (snapshot.keep_days, snapshot.keep) now."""
from __future__ import annotations

import time

from gitend import config, queue, retention
from gitend.git import Repo


def run(directory: str, *, dry_run: bool) -> int:
    repo = Repo.find(directory)
    settings = config.load(repo.root).snapshot
    results = retention.prune_repository(repo, settings, now=time.time(), dry_run=dry_run)
    rule = f"keep_days {settings.keep_days}, keep {settings.keep}"
    if not results:
        print(f"no WIP branches in {repo.main_root}")
        return 0
    for result in results:
        name = result.ref.removeprefix("refs/heads/")
        if not result.dropped:
            print(f"{name}: {result.before} snapshot(s), none past the retention ({rule})")
        elif dry_run:
            print(f"{name}: would drop {len(result.dropped)} of {result.before} snapshot(s), keeping {result.after}")
        else:
            print(f"{name}: dropped {len(result.dropped)} of {result.before} snapshot(s), kept {result.after}")
    if any(result.dropped for result in results) and not dry_run:
        print("the dropped snapshots' space comes back at the next `git gc` (at once with `git gc --prune=now`)")
        if settings.push_remote:
            print(f"the pruned WIP branches are queued to be pushed to {settings.push_remote} again, "
                  "which prunes them there")
            queue.spawn_worker_if_due(config.load(None).push.background)
    return 0
