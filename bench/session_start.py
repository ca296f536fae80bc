"""SessionStart and tripwire (PreToolUse) latency on a 20,000-file repository.

SessionStart delays the session: the first model request waits for it. With nothing to do it
should cost about what `git status` costs plus Python's start-up (target: median at most
1.3x that, never more than 0.3 s). Measured, interleaved in the same run:

- `git status` and `python -c pass` (the yardstick),
- SessionStart after a clean end (nothing to check but the records and the notes),
- SessionStart after an unclean end whose work a snapshot already holds (the catch-up check),
- PreToolUse for `git reset --hard` with 60 changed files (a snapshot first), next to the
  raw git plumbing of the same snapshot, and for a look-alike the filter let through
  (`git checkout -b x`: Python's start-up and the check, nothing else).

    .venv/bin/python bench/session_start.py [--runs 15] [--files 20000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hook_latency import RAW_PLUMBING, build_repo, dirty  # noqa: E402


def timed(command: list[str], cwd: Path, stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.decode()}")
    if proc.stderr.strip() and command[-1] == "--strict":
        raise SystemExit(f"{' '.join(command)} said: {proc.stderr.decode()}")
    return elapsed


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--files", type=int, default=20000)
    args = parser.parse_args()
    gitend = shutil.which("gitend", path=str(Path(sys.executable).parent)) or "gitend"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "gitend")],
                   check=True)

    with tempfile.TemporaryDirectory(prefix="gitend-bench-") as tmp:
        root = Path(tmp)
        os.environ.update(XDG_STATE_HOME=str(root / "state"), XDG_CONFIG_HOME=str(root / "config"),
                          CLAUDE_CONFIG_DIR=str(root / "claude"))
        repo = build_repo(root, args.files)
        dirty(repo, "bench")
        script = root / "raw.sh"
        script.write_text(RAW_PLUMBING)
        transcripts = root / "claude" / "projects" / "bench"
        transcripts.mkdir(parents=True)

        def payload(event: str, session: str, **extra: object) -> bytes:
            path = transcripts / f"{session}.jsonl"
            path.write_text(json.dumps({"type": "user", "message": {"role": "user", "content": "Bench prompt"}}) + "\n")
            return json.dumps({"session_id": session, "transcript_path": str(path), "cwd": str(repo),
                               "hook_event_name": event, **extra}).encode()

        hook = [gitend, "hook", "--strict"]
        n = 0

        def session(name: str, end: bool = True) -> float:
            """One session's start, timed; its end (saving the work tree), unless it was killed."""
            took = timed(hook, repo, payload("SessionStart", name, source="startup"))
            if end:
                timed(hook, repo, payload("SessionEnd", name, reason="other"))
            return took

        def start_after_clean_end() -> float:
            nonlocal n
            n += 1
            session(f"a{n}")
            return session(f"b{n}")

        def start_after_unclean_end() -> float:
            nonlocal n
            n += 1
            session(f"c{n}", end=False)  # killed: no SessionEnd
            timed(hook, repo, payload("SessionEnd", f"x{n}", reason="other"))  # another session saved its work
            return session(f"d{n}")

        def tripwire(command: str) -> float:
            data = {"tool_name": "Bash", "tool_input": {"command": command}}
            return timed(hook, repo, payload("PreToolUse", "t", **data))

        def reset_hard() -> float:
            dirty(repo, f"{time.time()}")  # new content, so the snapshot writes blobs
            return tripwire("git reset --hard")

        def raw() -> float:
            dirty(repo, f"{time.time()}")
            subprocess.run(["git", "update-ref", "-d", "refs/heads/raw/main"], cwd=repo, capture_output=True)
            return timed(["sh", str(script), str(repo)], repo)

        cases = {
            "git status": lambda: timed(["git", "status", "--porcelain"], repo),
            "python -c pass": lambda: timed([sys.executable, "-c", "pass"], repo),
            "SessionStart, previous end clean": start_after_clean_end,
            "SessionStart, unclean end, already saved": start_after_unclean_end,
            "PreToolUse git reset --hard (saves)": reset_hard,
            "raw plumbing of that snapshot (sh)": raw,
            "PreToolUse git checkout -b x (passes)": lambda: tripwire("git checkout -b x"),
        }
        for case in cases.values():  # warm caches
            case()
        results: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):  # interleaved, so machine noise hits every case alike
            for name, case in cases.items():
                results[name].append(case())

    print(f"repository: {args.files} files, 60 changed; {args.runs} runs each; "
          f"git {subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.split()[-1]}")
    print(f"{'':44} {'median':>8} {'p95':>8} {'max':>8}")
    for name, times in results.items():
        print(f"{name:44} {statistics.median(times):8.3f} {p95(times):8.3f} {max(times):8.3f}")
    yardstick = statistics.median(results["git status"]) + statistics.median(results["python -c pass"])
    for name in ("SessionStart, previous end clean", "SessionStart, unclean end, already saved"):
        median, worst = statistics.median(results[name]), max(results[name])
        verdict = "ok" if median <= 1.3 * yardstick and worst <= 0.3 else "OVER TARGET"
        print(f"{name}: {median / yardstick:.2f}x (git status + Python start-up = {yardstick:.3f} s), "
              f"max {worst:.3f} s: {verdict}")


if __name__ == "__main__":
    main()
