"""`gitend status`: what is queued, failed or held, and how the last syncs went."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from gitend import approvals, config, dotfiles, memsync, paths, queue, retention
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.output import paint


def _unpushed() -> dict[str, Any] | None:
    """gitend's commits in the dotfile repo that its remote lacks (e.g. after /clear); local git only."""
    try:
        cfg = config.load(None)
        count = dotfiles.unpushed(cfg.memory)
    except (GitendError, OSError):
        return None
    return {"repo": cfg.memory.repo, "remote": cfg.memory.remote, "commits": count} if count else None


def _conflicts() -> list[str]:
    """Conflict copies in the dotfile repo: shown until they are resolved, whatever ran since."""
    try:
        return memsync.conflicts(config.load(None).memory)
    except (GitendError, OSError):
        return []


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
        "conflicts": _conflicts(),
        "last": [{**r, "time": _iso(r["time"]), "last_ok": _iso(r["last_ok"]) if r.get("last_ok") else None}
                 for r in queue.results()],
        "set_aside": queue.set_aside(),
        "wip_history": _wip_history(),
        "log": str(paths.log_file()),
    }


def _wip_history() -> list[dict[str, Any]]:
    """Per repository with WIP branches: its snapshots and the disk space only they hold."""
    found = []
    for root in retention.wip_repositories():
        try:
            repo = Repo.find(root)
            count, size = retention.usage(repo, config.load(repo.root).snapshot.branch_prefix)
        except GitendError:
            continue  # moved or deleted since
        found.append({"repo": root, "snapshots": count, "bytes": size})
    return found


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError


def _what(job: dict[str, Any]) -> str:
    if job["kind"] == "memory" and "project_root" not in job["data"]:
        return f"unpushed memory commits -> {job['target']}"
    if job["kind"] == "memory":
        return f"memory notes of {job['data'].get('project_root', '?')} -> {job['target']}"
    if job["kind"] == "snapshot":
        why = job["data"].get("why") or "handed over by a hook"
        return f"snapshot of {job['target']} ({why})"
    if job["kind"] == "fetch":
        return f"fetch of the dotfile repo {job['target']}"
    if job["kind"] == "prune":
        return f"daily retention of the WIP branches of {job['target']}"
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
        when = f"in {wait // 60}m{wait % 60:02d}s" if wait else "now"
        lines.append(f"{paint('failed', 'yellow')}   {_what(job)}: {job['last_error']} "
                     f"(attempt {job['attempts']}, retried {when} or by `gitend push`)")
    for job in report["pending"]:
        push = "" if job["push"] or job["kind"] != "memory" else " (commit only: session ended with a skip reason)"
        lines.append(f"{paint('queued', 'cyan')}   {_what(job)}{push}")
    unpushed = report.get("unpushed")
    if unpushed:
        lines.append(f"{paint('unpushed', 'cyan')} {unpushed['commits']} memory commit(s) in {unpushed['repo']} "
                     f"not yet on {unpushed['remote']}; the next session end or `gitend push` pushes them")
    conflicts = report.get("conflicts", [])
    for path in conflicts[:5]:
        lines.append(f"{paint('conflict', 'yellow')} {path}: a note two machines changed, both versions kept; "
                     "merge them into the note and delete this copy")
    if len(conflicts) > 5:
        lines.append(f"{paint('conflict', 'yellow')} ... and {len(conflicts) - 5} more conflict copies")
    if not lines:
        lines.append(f"{paint('ok', 'green')}       nothing queued, failed or held")
    for name in report["set_aside"]:
        lines.append(f"{paint('corrupt', 'red')}  job file {name} could not be read and was set aside "
                     f"in {paths.queue_dir() / 'corrupt'}")
    for history in report.get("wip_history", []):
        lines.append(f"wip      {history['repo']}: {history['snapshots']} snapshot(s), {_size(history['bytes'])} "
                     "held only by them (`gitend prune` applies the retention)")
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
