"""`gitend status`: what is queued, failed or held, and how the last syncs went."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from gitend import approvals, config, dotfiles, log, memsync, message, paths, queue, retention
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.output import paint, safe


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
        "config_error": config.error(),
        "pending": [_job(j) for j in jobs if not j.held and not j.last_error and j.kind != "session"],
        "waiting": [_job(j) for j in jobs if j.kind == "session"],  # for a working config
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
    return f"WIP branches of {job['target']}"


def _retry(job: dict[str, Any]) -> str:
    """When a failed job is tried again: nothing retries on a timer, so say what does."""
    if not job["retry_in_s"]:
        return "tried again by the next session end, or now by `gitend push`"
    return f"tried again by the first session end after {job['next_try'][11:16]}, or now by `gitend push`"


def render(report: dict[str, Any]) -> list[str]:
    lines = []
    if report.get("config_error"):
        lines.append(f"{paint('broken', 'red')}   {safe(report['config_error'])}; nothing is synced or pushed until "
                     "it is fixed (the session ends still save locally, and what they queue waits)")
    for job in report["held"]:
        lines.append(f"{paint('held', 'red')}     {safe(_what(job))}: {safe(job['held'])}; run `gitend review` "
                     f"[{job['id']}]")
    for extra in report.get("held_extras", []):
        lines.append(f"{paint('held', 'red')}     memory.extra {safe(extra['source'])}: {safe(extra['held'])}; skipped "
                     "until the secret is gone (or allowed by review.allow)")
    for job in report["failed"]:
        lines.append(f"{paint('failed', 'yellow')}   {safe(_what(job))}: {safe(job['last_error'])} "
                     f"(attempt {job['attempts']}; {_retry(job)}) [{job['id']}]")
    for job in report["pending"]:
        push = "" if job["push"] or job["kind"] != "memory" else " (commit only: session ended with a skip reason)"
        lines.append(f"{paint('queued', 'cyan')}   {safe(_what(job))}{push} [{job['id']}]")
    for job in report["waiting"]:
        lines.append(f"{paint('waiting', 'yellow')}  sync of session {safe(job['data'].get('session_id', '?'))} in "
                     f"{safe(job['target'])}: queued once the config is fixed (`gitend push` then) [{job['id']}]")
    if report["held"] or report["failed"] or report["pending"] or report["waiting"]:
        lines.append("         drop a job with `gitend status --drop ID` (ID in [brackets])")
    unpushed = report.get("unpushed")
    if unpushed:
        lines.append(f"{paint('unpushed', 'cyan')} {unpushed['commits']} memory commit(s) in {safe(unpushed['repo'])} "
                     f"not yet on {safe(unpushed['remote'])}; the next session end or `gitend push` pushes them")
    conflicts = report.get("conflicts", [])
    for path in conflicts[:5]:
        lines.append(f"{paint('conflict', 'yellow')} {safe(path)}: a note two machines changed, both versions kept; "
                     "merge them into the note and delete this copy")
    if len(conflicts) > 5:
        lines.append(f"{paint('conflict', 'yellow')} ... and {len(conflicts) - 5} more conflict copies")
    if not lines:
        lines.append(f"{paint('ok', 'green')}       nothing queued, failed or held")
    for name in report["set_aside"]:
        lines.append(f"{paint('corrupt', 'red')}  job file {safe(name)} could not be understood and was set aside "
                     f"in {paths.queue_dir() / 'corrupt'}")
    for history in report.get("wip_history", []):
        size = message.human_size(history["bytes"])
        lines.append(f"wip      {history['repo']}: {history['snapshots']} snapshot(s), {size} "
                     "held only by them (`gitend prune` applies the retention)")
    for result in report["last"][:5]:
        mark = paint("ok", "green") if result["ok"] else paint("error", "red")
        since = "" if result["ok"] else (f" (last successful sync {result['last_ok'][:16].replace('T', ' ')})"
                                         if result.get("last_ok") else " (no successful sync yet)")
        lines.append(f"last     {result['time'][:16].replace('T', ' ')} {result['kind']} {safe(result['target'])}: "
                     f"{mark} {safe(result['summary'])}{since}")
    lines.append(f"log      {report['log']}")
    return lines


def drop(job_id: str) -> int:
    """`gitend status --drop ID`: a job the user does not want done (the work it would push stays local)."""
    job = next((j for j in queue.load() if j.id == job_id), None)
    if job is None:
        raise GitendError(f"there is no job {safe(job_id)!r} in the queue; `gitend status` shows each job's id")
    queue.remove(job)
    log.record("status", f"dropped job {job.id} ({_what(_job(job))}) at the user's request")
    print(f"dropped job {job.id}: {safe(_what(_job(job)))}")
    return 0


def run(*, as_json: bool) -> int:
    report = collect()
    print(json.dumps(report, indent=2) if as_json else "\n".join(render(report)))
    return 0
