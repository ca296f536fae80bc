"""`gitend status`: what is queued, failed or held, and how the last syncs went."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from gitend import approvals, config, dotfiles, paths, queue
from gitend.errors import GitendError
from gitend.output import paint


def _unpushed() -> dict[str, Any] | None:
    """gitend's commits in the dotfile repo that its remote lacks (e.g. after /clear); local git only."""
    try:
        cfg = config.load(None)
        count = dotfiles.unpushed(cfg.memory)
    except (GitendError, OSError):
        return None
    return {"repo": cfg.memory.repo, "remote": cfg.memory.remote, "commits": count} if count else None


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(stamp))


def _job(job: queue.Job) -> dict[str, Any]:
    data = asdict(job)
    data["created"] = _iso(job.created)
    data["next_try"] = _iso(job.next_try) if job.next_try else None
    data["retry_in_s"] = max(0, round(job.next_try - time.time()))
    return data


def collect() -> dict[str, Any]:
    jobs = queue.load()
    return {
        "pending": [_job(j) for j in jobs if not j.held and not j.last_error],
        "failed": [_job(j) for j in jobs if not j.held and j.last_error],
        "held": [_job(j) for j in jobs if j.held],
        "held_extras": [{"source": source, "held": why} for source, why in sorted(approvals.held_extras().items())],
        "unpushed": _unpushed(),
        "last": [{**r, "time": _iso(r["time"]), "last_ok": _iso(r["last_ok"]) if r.get("last_ok") else None}
                 for r in queue.results()],
        "set_aside": queue.set_aside(),
        "log": str(paths.log_file()),
    }


def _what(job: dict[str, Any]) -> str:
    if job["kind"] == "memory" and "project_root" not in job["data"]:
        return f"unpushed memory commits -> {job['target']}"
    if job["kind"] == "memory":
        return f"memory notes of {job['data'].get('project_root', '?')} -> {job['target']}"
    if job["kind"] == "snapshot":
        return f"snapshot of {job['target']} (too much to hash at session end)"
    return f"WIP branches of {job['target']} -> {job['data'].get('remote', '?')}"


def render(report: dict[str, Any]) -> list[str]:
    lines = []
    for job in report["held"]:
        lines.append(f"{paint('held', 'red')}     {_what(job)}: {job['held']}; run `gitend review`")
    for extra in report.get("held_extras", []):
        lines.append(f"{paint('held', 'red')}     memory.extra {extra['source']}: {extra['held']}; skipped until "
                     "the secret is gone (or allowed by review.allow)")
    for job in report["failed"]:
        wait = job["retry_in_s"]
        lines.append(f"{paint('failed', 'yellow')}   {_what(job)}: {job['last_error']} "
                     f"(attempt {job['attempts']}, retried {'now' if not wait else f'in {wait // 60}m{wait % 60:02d}s'} "
                     "or by `gitend push`)")
    for job in report["pending"]:
        push = "" if job["push"] else " (commit only: session ended with a skip reason)"
        lines.append(f"{paint('queued', 'cyan')}   {_what(job)}{push}")
    unpushed = report.get("unpushed")
    if unpushed:
        lines.append(f"{paint('unpushed', 'cyan')} {unpushed['commits']} memory commit(s) in {unpushed['repo']} not yet "
                     f"on {unpushed['remote']}; the next session end or `gitend push` pushes them")
    if not lines:
        lines.append(f"{paint('ok', 'green')}       nothing queued, failed or held")
    for name in report["set_aside"]:
        lines.append(f"{paint('corrupt', 'red')}  job file {name} could not be read and was set aside "
                     f"in {paths.queue_dir() / 'corrupt'}")
    for result in report["last"][:5]:
        mark = paint("ok", "green") if result["ok"] else paint("error", "red")
        since = "" if result["ok"] else (f" (last successful sync {result['last_ok'][:16].replace('T', ' ')})"
                                         if result.get("last_ok") else " (no successful sync yet)")
        lines.append(f"last     {result['time'][:16].replace('T', ' ')} {result['kind']} {result['target']}: "
                     f"{mark} {result['summary']}{since}")
    lines.append(f"log      {report['log']}")
    return lines


def run(*, as_json: bool) -> int:
    report = collect()
    print(json.dumps(report, indent=2) if as_json else "\n".join(render(report)))
    return 0
