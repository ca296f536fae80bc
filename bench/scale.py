"""How the hook's cost grows: repository size, number of changed files, transcript size.

Prints two tables: the hook's wall time (the console script, JSON on stdin, as Claude Code
runs it) on repositories of 1k, 10k and 100k files with 1, 100 and 10,000 changed files,
next to the raw git plumbing of the same snapshot (bench/hook_latency.py's shell script);
then the hook on transcripts of 1 MB to 1 GB.

"cold": every run first gives the changed files new content, so their blobs must be written,
as at a real session end; "warm": the same state again, its objects already stored (e.g. a
per-turn Stop hook when little changed).

    .venv/bin/python bench/scale.py [--runs 5] [--sizes 1000,10000,100000]
                                    [--changes 1,100,10000] [--transcripts-mb 1,10,100,1000]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count as counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hook_latency import RAW_PLUMBING, build_transcript, sh

from gitend import lock, paths

BUDGET_S = 1.5
PER_DIR = 100


def build_repo(root: Path, files: int) -> Path:
    repo = root / f"repo-{files}"
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "config", "gc.auto", "0")
    body = "content line\n" * 20
    for n in range(files):
        folder = repo / f"d{n // PER_DIR:04d}"
        if n % PER_DIR == 0:
            folder.mkdir()
        (folder / f"f{n % PER_DIR:02d}.txt").write_text(f"file {n}\n{body}")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "base")
    sh(repo, "git", "gc", "-q")
    settle(repo)
    return repo


def settle(repo: Path) -> None:
    """Files written in the same second as the index are "racily clean" and git hashes them all
    again; a user's files are older than that, so wait a second and let git refresh the index."""
    time.sleep(1.1)
    sh(repo, "git", "status", "--porcelain")


def path_of(n: int) -> str:
    return f"d{n // PER_DIR:04d}/f{n % PER_DIR:02d}.txt"


def change(repo: Path, files: int, count: int, salt: str) -> None:
    """`count` changes spread over the tree: 70% edited, 10% staged, 10% deleted, 10% new files.
    Each call gives the edited, staged and new files new content (`salt`), so their blobs are
    not in the object store yet, as when a session has just ended."""
    stride = max(1, files // count)
    picked = [n * stride for n in range(min(count, files))]
    tenth = len(picked) // 10
    edited, staged, deleted = picked[: 7 * tenth], picked[7 * tenth: 8 * tenth], picked[8 * tenth: 9 * tenth]
    for n in edited + staged:
        with open(repo / path_of(n), "a") as out:
            out.write(f"changed {salt}\n")
    for n in deleted:
        (repo / path_of(n)).unlink(missing_ok=True)
    for n in range(count - len(edited) - len(staged) - len(deleted)):
        (repo / "new" / f"d{n // PER_DIR:03d}").mkdir(parents=True, exist_ok=True)
        (repo / "new" / f"d{n // PER_DIR:03d}" / f"u{n}.txt").write_text(f"untracked {n} {salt}\n")
    if staged:
        subprocess.run(["git", "add", "--pathspec-from-file=-"], cwd=repo, check=True,
                       input="\n".join(path_of(n) for n in staged).encode())
    sh(repo, "git", "status", "--porcelain")  # the user's own git has refreshed the index, as usual


def revert(repo: Path) -> None:
    sh(repo, "git", "reset", "-q", "--hard")
    sh(repo, "git", "clean", "-fdq")
    settle(repo)


@dataclass
class Timing:
    times: list[float] = field(default_factory=list)
    worker: list[float] = field(default_factory=list)  # hand-overs: until the worker had saved


def timed(command: list[str], cwd: Path, stdin: bytes | None, reset: list[str], runs: int,
          prepare: Callable[[], None] = lambda: None) -> Timing:
    timing = Timing()
    for _ in range(runs):
        prepare()
        subprocess.run(reset, cwd=cwd, capture_output=True)
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True)
        timing.times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{command} failed in {cwd}: {proc.stderr.decode()}")
        if b"background worker saves" in proc.stdout:
            wait_for_worker()
            timing.worker.append(time.perf_counter() - start)
    return timing


def wait_for_worker(timeout_s: float = 120) -> None:
    """Until the detached worker has taken the handed-over snapshot and let go of its lock."""
    deadline = time.monotonic() + timeout_s
    while any(paths.queue_dir().glob("*.json")) or lock.held_elsewhere(paths.state_dir() / "worker.lock"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not finish within {timeout_s:g} s; see `gitend status`")
        time.sleep(0.02)


def payload(repo: Path, transcript: Path | None) -> bytes:
    return json.dumps({"session_id": "bench", "transcript_path": str(transcript) if transcript else None,
                       "cwd": str(repo), "hook_event_name": "SessionEnd", "reason": "other"}).encode()


def index_mb(repo: Path) -> float:
    return (repo / ".git" / "index").stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--changes", default="1,100,10000")
    parser.add_argument("--transcripts-mb", default="1,10,100,1000")
    parser.add_argument("--transcript-repo", type=int, default=10000, help="files in the repository used for the "
                        "transcript table (100 changed)")
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    changes = [int(v) for v in args.changes.split(",")]
    gitend = str(Path(sys.executable).with_name("gitend"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "gitend")],
                   check=True)
    reset_wip = ["git", "update-ref", "-d", "refs/heads/wip/main"]
    reset_raw = ["git", "update-ref", "-d", "refs/heads/raw/main"]

    with tempfile.TemporaryDirectory(prefix="gitend-scale-") as tmp:
        root = Path(tmp)
        os.environ.update(XDG_STATE_HOME=str(root / "state"), XDG_CONFIG_HOME=str(root / "config"))
        script = root / "raw.sh"
        script.write_text(RAW_PLUMBING)
        tiny = build_transcript(root / "tiny.jsonl", 0)
        print(f"git {sh(root, 'git', '--version').split()[-1]}, {os.cpu_count()} cores, {args.runs} runs each; "
              f"hook = `gitend hook --strict` with a tiny transcript; raw = the same snapshot as a shell script")
        print(f"{'files':>7} {'changed':>8} {'index MB':>8} {'hook cold':>9} {'max':>6} {'raw cold':>8} "
              f"{'x raw':>6} {'hook warm':>9}  budget")
        salts = counter()
        repos = {}
        for files in sizes:
            repo = repos[files] = build_repo(root, files)
            for count in changes:
                if count > files:
                    continue

                def fresh(repo: Path = repo, files: int = files, count: int = count) -> None:
                    change(repo, files, count, f"run {next(salts)}")

                fresh()
                timed([gitend, "hook", "--strict"], repo, payload(repo, tiny), reset_wip, 1)  # warm the caches
                cold = timed([gitend, "hook", "--strict"], repo, payload(repo, tiny), reset_wip, args.runs, fresh)
                raw = timed(["sh", str(script), str(repo)], repo, None, reset_raw, args.runs, fresh).times
                warm = timed([gitend, "hook", "--strict"], repo, payload(repo, tiny), reset_wip, args.runs).times
                med, raw_med = statistics.median(cold.times), statistics.median(raw)
                verdict = "ok" if max(cold.times) < BUDGET_S else "OVER"
                if cold.worker:
                    verdict += f", handed to the worker: saved after {statistics.median(cold.worker):.2f} s"
                print(f"{files:>7} {count:>8} {index_mb(repo):>8.1f} {med:>9.3f} {max(cold.times):>6.3f} "
                      f"{raw_med:>8.3f} {med / raw_med:>6.2f} {statistics.median(warm):>9.3f}  {verdict}", flush=True)
                revert(repo)

        files = args.transcript_repo
        repo = repos.get(files) or build_repo(root, files)

        def fresh_100(repo: Path = repo, files: int = files) -> None:
            change(repo, files, 100, f"run {next(salts)}")

        print(f"\ntranscripts, on the {files}-file repository with 100 changed files (cold)")
        print(f"{'transcript':>10} {'hook med':>9} {'hook max':>9} {'vs none':>8}")
        baseline = statistics.median(timed([gitend, "hook", "--strict"], repo, payload(repo, None), reset_wip,
                                           args.runs, fresh_100).times)
        print(f"{'none':>10} {baseline:>9.3f} {'':>9} {'':>8}")
        for megabytes in [int(v) for v in args.transcripts_mb.split(",")]:
            path = build_transcript(root / f"t{megabytes}.jsonl", megabytes)
            times = timed([gitend, "hook", "--strict"], repo, payload(repo, path), reset_wip, args.runs, fresh_100).times
            med = statistics.median(times)
            print(f"{megabytes:>7} MB {med:>9.3f} {max(times):>9.3f} {100 * (med / baseline - 1):>+7.1f}%", flush=True)
            subject = sh(repo, "git", "log", "-1", "--format=%s", "refs/heads/wip/main").strip()
            assert "upload retr" in subject.lower(), subject  # the title at the end was found
            path.unlink()


if __name__ == "__main__":
    main()
