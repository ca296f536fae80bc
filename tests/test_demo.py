"""A newcomer's first run: install from the checkout into a fresh virtual environment, run the demo."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from testing.repo import git

ROOT = Path(__file__).resolve().parents[1]


def test_fresh_install_runs_the_demo(tmp_path: Path) -> None:
    # A copy of the checkout, so the build leaves nothing in the real one.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".hypothesis"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)], capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr

    # The demo's sandboxes go to TMPDIR, which the hermetic fixture puts beside tmp_path (not /tmp).
    temp = Path(os.environ["TMPDIR"])
    assert temp.parent == tmp_path.parent and not any(temp.iterdir()), "pip left temporary files behind"
    kept = subprocess.run([str(venv / "bin" / "gitend"), "demo", "--keep"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    out = kept.stdout
    for step in range(1, 7):
        assert f"\n{step}. " in out
    assert "wip: Shop says hello with :shop" in out  # the subject, from the bundled transcript
    assert "- run the tests" in out and "- Put in notes.txt that we try the endpoint config next" in out
    assert "arrived on the remote" in out and "not on the remote" in out and "Done:" in out
    sandbox = Path(re.search(r"The sandbox is kept in (\S+) ", out).group(1))
    assert sandbox.parent == temp
    project = sandbox / "home" / "code" / "shop"
    transcript = next((sandbox / "home" / ".claude" / "projects").glob("*/*.jsonl")).read_text()
    assert f'"cwd":"{project}"' in transcript and "/home/demo" not in transcript  # the sandbox's own paths
    assert sorted(git(project, "status", "--short").splitlines()) == [" D config.exs", " M README.md",
                                                                     "?? notes.txt", "M  lib/shop.ex"]
    assert "Gitend-Reason: prompt_input_exit" in git(project, "log", "-1", "--format=%B", "wip/main")
    remote_log = git(sandbox / "dotfiles.git", "log", "--format=%s", "main")
    assert "memory: github.com/demo/shop" in remote_log
    assert "Seed data" not in git(sandbox / "dotfiles.git", "log", "-p", "main")  # the `clear` edit stayed local
    assert "Seed data" in git(sandbox / "home" / "dotfiles", "log", "-p", "-1")

    clean = subprocess.run([str(venv / "bin" / "gitend"), "demo"], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    gone = Path(re.search(r"A sandbox in (\S+):", clean.stdout).group(1))
    assert gone.parent == temp and not gone.exists()
    assert list(temp.iterdir()) == [sandbox], "the demo left temporary files behind"
