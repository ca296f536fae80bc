"""Nothing from a file, a commit or a note reaches the terminal as a control sequence."""
from __future__ import annotations

from pathlib import Path

from gitend import output
from testing.machine import Machine
from testing.repo import git, gitend, hook, init_repo, write
from testing.terminal import converse

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # writes the clipboard
HIDE = "\x1b[1A\x1b[2K"  # cursor up, erase the line
TOKEN = "ghp_R8x2Kq9ZtLm4Vb7Nc1Hd5Jf3Gs6Wp0Ya2Eu8"  # fake


def raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0]


def test_12_9_safe_text_keeps_what_is_printable_and_shows_the_rest() -> None:
    assert output.safe("plain é 日本 text\twith tab\nand lines") == "plain é 日本 text\twith tab\nand lines"
    shown = output.safe(f"a{OSC52}b{HIDE}\r\x9b31m\x7f")
    assert raw_controls(shown) == [] and shown.startswith("a") and "b" in shown
    assert "\\x1b" in shown  # visible, so the user sees something odd was there


def test_12_9_file_names_in_show_are_made_safe(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo / f"evil{OSC52}.txt", "x\n")
    write(repo / "a.txt", f"changed\n{HIDE}\n")
    hook(repo)
    proc = gitend("show", "latest", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert raw_controls(proc.stdout) == [], repr(proc.stdout)
    assert "evil" in proc.stdout


def test_12_9_fetched_commit_subjects_in_list_all_are_made_safe(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo / "a.txt", "changed\n")
    hook(repo)
    snap = git(repo, "rev-parse", "wip/main").strip()
    parents = git(repo, "rev-list", "--parents", "-n1", snap).split()[1:]
    message = git(repo, "log", "-1", "--format=%B", snap)
    forged = git(repo, "commit-tree", f"{snap}^{{tree}}", *[a for p in parents for a in ("-p", p)],
                 input=(f"looks harmless{OSC52}{HIDE}\n" + message.partition("\n")[2]).encode()).strip()
    git(repo, "update-ref", "refs/remotes/origin/wip/someone/main", forged)
    proc = gitend("list", "--all", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "looks harmless" in proc.stdout and raw_controls(proc.stdout) == [], repr(proc.stdout)
    shown = gitend("show", forged, cwd=repo)
    assert raw_controls(shown.stdout) == [], repr(shown.stdout)


def test_12_9_note_text_in_review_is_made_safe(laptop: Machine, proj: Path) -> None:
    laptop.note(proj, "deploy.md", f"# Deploy{OSC52}\nThe token {TOKEN}.\n{HIDE}hidden line\n")
    laptop.sync(proj)
    report = laptop.gitend("review", cwd=proj)
    assert report.returncode == 1 and "github-token" in report.stdout
    assert raw_controls(report.stdout) == [], repr(report.stdout)
    _, shown = converse(["review"], ["h"], laptop.env, cwd=str(proj))
    assert "github-token" in shown
    assert "\x1b]52" not in shown and "\x1b[1A" not in shown, repr(shown)
