"""The README's plain-git recovery commands, run literally against a real repository."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from testing.repo import git, hook, init_repo, write

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def recovery_commands() -> list[str]:
    section = README.split("**Without gitend**", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block
    return [line for line in block.group(1).splitlines() if line.strip()]


def sh(repo: Path, command: str) -> str:
    proc = subprocess.run(["sh", "-c", command], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, (command, proc.stderr)
    return proc.stdout


def test_13_20_readme_plain_git_recovery_works_literally(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"app.py": "v1\n", "lib.py": "lib\n"})
    for n in range(1, 3):  # commits on the branch between snapshots, as in real work
        write(repo / "lib.py", f"lib {n}\n")
        git(repo, "commit", "-q", "-am", f"branch commit {n}")
    write(repo / "app.py", "first snapshot\n")
    write(repo / "staged.txt", "staged first\n")
    git(repo, "add", "staged.txt")
    write(repo / "new.txt", "untracked first\n")
    hook(repo, session_id="first-session")
    first = git(repo, "rev-parse", "wip/main").strip()
    write(repo / "app.py", "second snapshot\n")
    hook(repo, session_id="second-session")
    second = git(repo, "rev-parse", "wip/main").strip()

    commands = recovery_commands()
    listing = [sh(repo, c) for c in commands if not c.startswith("git stash apply") and "fetch" not in c]
    everything = "".join(listing)
    assert first[:7] in everything and second[:7] in everything
    assert "branch commit" not in everything and "index on" not in everything and "untracked files on" not in everything
    every = next(out for out in listing if first[:7] in out and second[:7] in out)
    assert every.index(second[:7]) < every.index(first[:7])  # newest first

    apply = next(c for c in commands if c.startswith("git stash apply") and "^4" in c)
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfd")
    sh(repo, apply.split("#")[0])
    assert (repo / "app.py").read_text() == "first snapshot\n"  # the earlier snapshot, not the base commit
    assert (repo / "new.txt").read_text() == "untracked first\n"
    assert git(repo, "diff", "--cached", "--name-only").split() == ["staged.txt"]


def test_13_19_readme_says_claude_p_fires_session_end_depending_on_the_version() -> None:
    text = " ".join(README.split())
    assert "does not fire SessionEnd for `claude -p`" not in text
    said = text[text.index("`claude -p`"):][:300]
    assert "reason `other`" in said and "version" in said and "macOS" in said, said
