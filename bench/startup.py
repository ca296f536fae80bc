"""Start-up cost of what the hook imports, and of the two dependencies gitend chose not to use.

    .venv/bin/python bench/startup.py [--runs 21]

Prints the median wall time of a fresh interpreter importing each set (bytecode compiled
first, as after `pip install`). GitPython and filelock are imported only if installed.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (label, code, optional third-party module the case needs)
CASES = [
    ("python -c pass", "pass", None),
    ("gitend's hook path (cli, hook, snapshot, git, message, secrets, transcript)",
     "import gitend.cli, gitend.hook", None),
    ("  + GitPython (import git)", "import gitend.cli, gitend.hook, git", "git"),
    ("  + filelock", "import gitend.cli, gitend.hook, filelock", "filelock"),
]


def median_ms(code: str, runs: int, env: dict[str, str]) -> float:
    subprocess.run([sys.executable, "-c", code], env=env, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    package = Path(__file__).resolve().parents[1] / "gitend"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base = None
    for label, code, needs in CASES:
        if needs and importlib.util.find_spec(needs) is None:
            print(f"{label:75} (not installed)")
            continue
        ms = median_ms(code, args.runs, env)
        base = base if base is not None else ms
        print(f"{label:75} {ms:7.1f} ms  (+{ms - base:.1f})")


if __name__ == "__main__":
    main()
