"""`gitend status`: what is queued, failed or held, and how the last syncs went."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from gitend import paths, queue
from gitend.output import paint

KEEP_RESULTS = 20


def _results_file() -> Any:
    return paths.state_dir() / "results.json"


def results() -> list[dict[str, Any]]:
    try:
        data = json.loads(_results_file().read_text(encoding="utf-8"))
        return data if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def record(kind: str, target: str, ok: bool, summary: str) -> None:
    """Remember the newest result per (kind, target) for `gitend status`."""
    kept = [r for r in results() if (r.get("kind"), r.get("target")) != (kind, target)]
    kept.insert(0, {"kind": kind, "target": target, "ok": ok, "summary": summary, "time": time.time()})
    queue.write_atomic(_results_file(), kept[:KEEP_RESULTS])


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
        "last": [{**r, "time": _iso(r["time"])} for r in results()],
        "set_aside": queue.set_aside(),
        "log": str(paths.log_file()),
    }


def _what(job: dict[str, Any]) -> str:
    if job["kind"] == "memory":
        return f"memory notes of {job['data'].get('project_root', '?')} -> {job['target']}"
    if job["kind"] == "snapshot":
        return f"snapshot of {job['target']} (too much to hash at session end)"
    return f"WIP branches of {job['target']} -> {job['data'].get('remote', '?')}"


def render(report: dict[str, Any]) -> list[str]:
    lines = []
    for job in report["held"]:
        lines.append(f"{paint('held', 'red')}     {_what(job)}: {job['held']}; run `gitend review`")
    for job in report["failed"]:
        wait = job["retry_in_s"]
        lines.append(f"{paint('failed', 'yellow')}   {_what(job)}: {job['last_error']} "
                     f"(attempt {job['attempts']}, retried {'now' if not wait else f'in {wait // 60}m{wait % 60:02d}s'} "
                     "or by `gitend push`)")
    for job in report["pending"]:
        push = "" if job["push"] else " (commit only: session ended with a skip reason)"
        lines.append(f"{paint('queued', 'cyan')}   {_what(job)}{push}")
    if not lines:
        lines.append(f"{paint('ok', 'green')}       nothing queued, failed or held")
    for name in report["set_aside"]:
        lines.append(f"{paint('corrupt', 'red')}  job file {name} could not be read and was set aside "
                     f"in {queue.folder() / 'corrupt'}")
    for result in report["last"][:5]:
        mark = paint("ok", "green") if result["ok"] else paint("error", "red")
        lines.append(f"last     {result['time'][:16].replace('T', ' ')} {result['kind']} {result['target']}: "
                     f"{mark} {result['summary']}")
    lines.append(f"log      {report['log']}")
    return lines
