"""`gitend prune` on a WIP branch of many snapshots: its time, and the repository's size
before and after `git gc --prune=now`.

The branch is built fast with `git fast-import`: stash-shaped snapshots (base, index commit,
untracked commit, previous snapshot), each with new content in its index, work tree and
untracked file (about 3 KiB that does not compress), one every `--every-min` minutes back from
now, so the retention's defaults (keep_days 30, keep 20) keep the last 30 days of them.

    .venv/bin/python bench/prune.py [--snapshots 10000] [--every-min 30] [--keep-days 30] [--keep 20]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sh(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(args, cwd=cwd, input=input, capture_output=True, check=True).stdout.decode()


def build(repo: Path, snapshots: int, every_s: int) -> None:
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "config", "gc.auto", "0")
    (repo / "a.txt").write_text("a\n")
    (repo / "b.txt").write_text("b\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "base")
    base = sh(repo, "git", "rev-parse", "HEAD").strip()
    now = int(time.time())
    out = []

    def data(text: bytes) -> None:
        out.append(b"data %d\n" % len(text))
        out.append(text + b"\n")

    def blob(mark: int, text: bytes) -> None:
        out.append(b"blob\nmark :%d\n" % mark)
        data(text)

    mark = 0
    previous = 0
    for n in range(snapshots):
        when = now - (snapshots - n) * every_s
        who = b"committer Bench <bench@example.com> %d +0000\n" % when
        subject = b"bench snapshot %d" % n
        blob(mark + 1, b"index %d %s" % (n, os.urandom(512).hex().encode()))
        blob(mark + 2, b"work %d %s" % (n, os.urandom(512).hex().encode()))
        blob(mark + 3, b"untracked %d %s" % (n, os.urandom(512).hex().encode()))
        index, untracked, snap = mark + 4, mark + 5, mark + 6
        out.append(b"commit refs/bench/index\nmark :%d\n%s" % (index, who))
        data(b"index on main: " + subject)
        out.append(b"from %s\nM 100644 :%d a.txt\n" % (base.encode(), mark + 1))
        out.append(b"reset refs/bench/untracked\ncommit refs/bench/untracked\nmark :%d\n%s" % (untracked, who))
        data(b"untracked files on main: " + subject)
        out.append(b"M 100644 :%d untracked.txt\n" % (mark + 3))
        out.append(b"commit refs/heads/wip/main\nmark :%d\n%s" % (snap, who))
        data(subject + b"\n\nGitend-Session: bench-%d\nGitend-Reason: other\nGitend-Base: %s\nGitend-Branch: main"
             % (n, base.encode()))
        out.append(b"from %s\nmerge :%d\nmerge :%d\n" % (base.encode(), index, untracked))
        if previous:
            out.append(b"merge :%d\n" % previous)
        out.append(b"M 100644 :%d a.txt\nM 100644 :%d b.txt\n" % (mark + 1, mark + 2))
        previous, mark = snap, mark + 6
    sh(repo, "git", "fast-import", "--quiet", input=b"".join(out))
    for ref in ("refs/bench/index", "refs/bench/untracked"):
        sh(repo, "git", "update-ref", "-d", ref)
    sh(repo, "git", "gc", "-q", "--prune=now")


def size(repo: Path) -> int:
    stats = dict(line.split(": ") for line in sh(repo, "git", "count-objects", "-v").splitlines())
    return (int(stats["size"]) + int(stats["size-pack"])) * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=10000)
    parser.add_argument("--every-min", type=float, default=30)
    parser.add_argument("--keep-days", type=int, default=30)
    parser.add_argument("--keep", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitend-bench-prune-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "HOME": str(root), "XDG_CONFIG_HOME": str(root / "config"),
               "XDG_STATE_HOME": str(root / "state"), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": str(root / "gitconfig")}
        (root / "gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
        (root / "config" / "gitend").mkdir(parents=True)
        (root / "config" / "gitend" / "config.yaml").write_text(
            json.dumps({"snapshot": {"keep_days": args.keep_days, "keep": args.keep}}))
        os.environ.update(env)
        repo = root / "repo"
        started = time.monotonic()
        build(repo, args.snapshots, int(args.every_min * 60))
        print(f"built {args.snapshots} snapshots in {time.monotonic() - started:.1f} s "
              f"(one every {args.every_min:g} min, keep_days {args.keep_days}, keep {args.keep})")
        before = size(repo)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "gitend", "prune", "-C", str(repo)],
                              capture_output=True, text=True, env=env)
        took = time.monotonic() - started
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr)
            return 1
        print(f"gitend prune: {took:.2f} s")
        print("  " + proc.stdout.strip().replace("\n", "\n  "))
        started = time.monotonic()
        sh(repo, "git", "gc", "-q", "--prune=now")
        gc_took = time.monotonic() - started
        after = size(repo)
        print(f"repository: {before / 1048576:.1f} MiB before, {after / 1048576:.1f} MiB after "
              f"git gc --prune=now ({gc_took:.1f} s)")
        fsck = subprocess.run(["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True, text=True)
        print(f"git fsck: {'clean' if fsck.returncode == 0 and not fsck.stdout.strip() else fsck.stdout}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
