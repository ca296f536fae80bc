"""Hook latency on a 20,000-file repository with 60 changed files.

Prints the hook's median and max wall time (spawned as Claude Code spawns it: the console
script, JSON on stdin) with a tiny and with a 200 MB transcript, next to the raw git
plumbing of the same stash-shaped snapshot run from a shell script in the same run. Before
every run the 60 files get new content, so their blobs must be written, as at a real session end.

    .venv/bin/python bench/hook_latency.py [--runs 15] [--files 20000] [--transcript-mb 200]
                                           [--other PATH/TO/ANOTHER/gitend]

`--other` times a second gitend (another version's console script) in the same run, with
the tiny transcript, so two versions are compared under the same machine noise.
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

# The same stash-shaped snapshot in plain git: what gitend does, without Python.
RAW_PLUMBING = r"""
set -e
cd "$1"
gd=$(git rev-parse --absolute-git-dir)
idx="$gd/raw-index.$$"; uidx="$gd/raw-uindex.$$"; st="$gd/raw-status.$$"
cp "$gd/index" "$idx"
GIT_OPTIONAL_LOCKS=0 GIT_INDEX_FILE="$idx" git status --porcelain=v2 -z --untracked-files=all --no-renames > "$st"
i_tree=$(GIT_INDEX_FILE="$idx" git write-tree)
tr '\0' '\n' < "$st" | awk '$1=="1" && substr($2,2,1)!="." {print $9}' | tr '\n' '\0' \
  | GIT_INDEX_FILE="$idx" git update-index -z --remove --stdin
w_tree=$(GIT_INDEX_FILE="$idx" git write-tree)
tr '\0' '\n' < "$st" | awk '$1=="?" {print $2}' | tr '\n' '\0' \
  | GIT_INDEX_FILE="$uidx" git update-index -z --add --remove --stdin
u_tree=$(GIT_INDEX_FILE="$uidx" git write-tree)
head=$(git rev-parse HEAD)
i=$(echo index | git commit-tree --no-gpg-sign "$i_tree" -p "$head")
u=$(echo untracked | git commit-tree --no-gpg-sign "$u_tree")
w=$(echo wip | git commit-tree --no-gpg-sign "$w_tree" -p "$head" -p "$i" -p "$u")
git update-ref --create-reflog -m raw refs/heads/raw/main "$w" 0000000000000000000000000000000000000000
rm -f "$idx" "$uidx" "$st"
"""


def sh(cwd: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def build_repo(root: Path, files: int) -> Path:
    """`files` committed files, packed; then the user's index refreshed a second later, as a
    real one is (files written in the same second as the index are hashed again)."""
    repo = root / "repo"
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "config", "gc.auto", "0")  # pack once, below, not in the background
    per_dir = 100
    for n in range(files):
        d = repo / f"d{n // per_dir:03d}"
        d.mkdir(exist_ok=True)
        (d / f"f{n % per_dir:03d}.txt").write_text(f"file {n}\n" + "content line\n" * 20)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "base")
    sh(repo, "git", "gc", "-q")
    time.sleep(1.1)
    sh(repo, "git", "status", "--porcelain")
    return repo


def dirty(repo: Path, salt: str) -> None:
    """60 changed files with content the object store has not seen (a session has just ended):
    40 modified (10 of them staged), 5 deleted, 15 untracked."""
    for n in range(40):
        with open(repo / f"d{n:03d}" / "f000.txt", "a") as out:
            out.write(f"changed {salt}\n")
    sh(repo, "git", "add", *[f"d{n:03d}/f000.txt" for n in range(10)])
    for n in range(5):
        (repo / f"d{100 + n:03d}" / "f001.txt").unlink(missing_ok=True)
    (repo / "new").mkdir(exist_ok=True)
    for n in range(15):
        (repo / "new" / f"u{n}.txt").write_text(f"untracked {n} {salt}\n")
    sh(repo, "git", "status", "--porcelain")  # the user's own git has refreshed the index, as usual


def build_transcript(path: Path, megabytes: int) -> Path:
    """Realistic JSONL: prompts and a title at the ends, big tool results in between."""
    def line(obj: dict) -> str:
        return json.dumps(obj, separators=(",", ":")) + "\n"

    user = {"type": "user", "isSidechain": False, "userType": "external", "cwd": "/w", "sessionId": "bench",
            "version": "2.1.240", "message": {"role": "user", "content": "Make the upload retry configurable"},
            "uuid": "u-1", "timestamp": "2026-11-21T10:00:00.000Z"}
    tool = {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": "x" * 20000}]}, "uuid": "t-1"}
    assistant = {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "text", "text": "Working on it. " * 200}]}, "uuid": "a-1"}
    with open(path, "w") as out:
        out.write(line(user))
        written = 0
        while written < megabytes * 1024 * 1024:
            chunk = line(tool) + line(assistant)
            out.write(chunk)
            written += len(chunk)
        out.write(line({**user, "message": {"role": "user", "content": "Now add a test for the retry"}}))
        out.write(line({"type": "ai-title", "aiTitle": "Configurable upload retries", "sessionId": "bench"}))
    return path


def time_runs(runs: int, reset: list[str], command: list[str], cwd: Path, stdin: bytes | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        dirty(cwd, f"{time.time()}")
        subprocess.run(reset, cwd=cwd, check=False, capture_output=True)
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{command[0]} failed: {proc.stderr.decode()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--transcript-mb", type=int, default=200)
    parser.add_argument("--other", help="another gitend console script to time in the same run")
    args = parser.parse_args()
    gitend = shutil.which("gitend", path=str(Path(sys.executable).parent)) or "gitend"
    # As after `pip install`: bytecode compiled (PYTHONDONTWRITEBYTECODE would otherwise make
    # every run recompile the sources).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "gitend")],
                   check=True)

    with tempfile.TemporaryDirectory(prefix="gitend-bench-") as tmp:
        root = Path(tmp)
        os.environ.update(XDG_STATE_HOME=str(root / "state"), XDG_CONFIG_HOME=str(root / "config"))
        repo = build_repo(root, args.files)
        tiny = build_transcript(root / "tiny.jsonl", 0)
        big = build_transcript(root / "big.jsonl", args.transcript_mb)
        script = root / "raw.sh"
        script.write_text(RAW_PLUMBING)

        def payload(transcript: Path) -> bytes:
            return json.dumps({"session_id": "bench", "transcript_path": str(transcript), "cwd": str(repo),
                               "hook_event_name": "SessionEnd", "reason": "other"}).encode()

        reset_wip = ["git", "update-ref", "-d", "refs/heads/wip/main"]
        reset_raw = ["git", "update-ref", "-d", "refs/heads/raw/main"]
        time_runs(2, reset_wip, [gitend, "hook", "--strict"], repo, payload(tiny))  # warm caches
        time_runs(2, reset_raw, ["sh", str(script), str(repo)], repo)
        results = {}
        # Interleave the three so machine noise hits them alike.
        for _ in range(args.runs):
            for name, reset, command, stdin in [
                ("raw git plumbing (sh)", reset_raw, ["sh", str(script), str(repo)], None),
                ("gitend hook, tiny transcript", reset_wip, [gitend, "hook", "--strict"], payload(tiny)),
                (f"gitend hook, {args.transcript_mb} MB transcript", reset_wip, [gitend, "hook", "--strict"],
                 payload(big)),
                *([("--other, tiny transcript", reset_wip, [args.other, "hook", "--strict"], payload(tiny))]
                  if args.other else []),
            ]:
                results.setdefault(name, []).extend(time_runs(1, reset, command, repo, stdin))
        message = sh(repo, "git", "log", "-1", "--format=%s", "refs/heads/wip/main")

    print(f"repository: {args.files} files, 60 changed; {args.runs} runs each; git {sh(Path('.'), 'git', '--version').split()[-1]}")
    raw = statistics.median(results["raw git plumbing (sh)"])
    tiny_median = statistics.median(results["gitend hook, tiny transcript"])
    print(f"{'':38} {'median':>8} {'max':>8} {'x raw':>7}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:38} {median:8.3f} {max(times):8.3f} {median / raw:7.2f}")
    big_median = statistics.median(results[f"gitend hook, {args.transcript_mb} MB transcript"])
    print(f"cost of the {args.transcript_mb} MB transcript over a tiny one: {100 * (big_median / tiny_median - 1):+.1f}%")
    print(f"subject written: {message.strip()}")


if __name__ == "__main__":
    main()
