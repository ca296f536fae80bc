"""The background worker: drains the job queue, off the session's clock.

The hook only writes job files and starts this as a fully detached process (its own
session, no terminal, output to the log). One worker runs at a time; a job that arrives
while it finishes is picked up, because the worker looks at the queue again after letting
go of its lock.
"""
from __future__ import annotations

import time

from gitend import jobs, lock, log, paths, queue

# Sessions often end together (a closed terminal, a logout): wait until no hook is running and
# none has queued a job for SETTLE_S (at most SETTLE_MAX_S), so each repository gets one push.
SETTLE_S = 0.5
SETTLE_MAX_S = 10.0


def main() -> int:
    """`gitend _worker`: drain until nothing is due, unless another worker is at it."""
    while True:
        try:
            with lock.held(paths.worker_lock(), timeout=0, what="the background worker"):
                # The user's work first and at once: only pushes wait for sessions ending together.
                jobs.run_jobs(force=False, progress=_log, kinds=frozenset({"snapshot"}))
                _settle()
                jobs.run_jobs(force=False, progress=_log)
        except lock.Busy:
            return 0
        if not any(job.due(time.time()) for job in queue.load()):
            return 0


def _log(line: str) -> None:
    log.record("worker", line)


def _settle() -> None:
    deadline = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        # Job file names start with their creation time in milliseconds.
        newest = max((int(p.name[:13]) / 1000 for p in paths.queue_dir().glob("*.json") if p.name[:13].isdigit()),
                     default=0.0)
        if time.time() - newest >= SETTLE_S and not lock.held_elsewhere(paths.hooks_lock()):
            return
        time.sleep(0.05)
