"""Looking into snapshots: `gitend show --patch`, `gitend diff`, `gitend list`, against real
repositories with a rename, a deletion, a mode change, a symlink and an untracked binary."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from testing.repo import git, gitend, hook, init_repo, payload, write
from testing.terminal import converse

STAGED, UNSTAGED, UNTRACKED = "Staged (index against base):", "Unstaged (work tree against index):", "Untracked:"
BINARY = b"\x00\xff\x10binary\x00"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A snapshot of every kind of change, staged and unstaged apart."""
    repo = init_repo(tmp_path / "repo", {
        "a.txt": "alpha\n", "old.txt": "a file long enough\nto be found\nas a rename\nby git\n",
        "gone.txt": "delete me\n", "run.sh": "#!/bin/sh\necho hi\n", "both.txt": "one\n"})
    git(repo, "mv", "old.txt", "new.txt")  # staged rename
    (repo / "gone.txt").unlink()  # unstaged deletion
    (repo / "run.sh").chmod(0o755)  # unstaged mode change
    os.symlink("a.txt", repo / "link")
    git(repo, "add", "link")  # staged symlink
    write(repo / "both.txt", "two\n")
    git(repo, "add", "both.txt")
    write(repo / "both.txt", "three\n")  # staged one -> two, unstaged two -> three
    write(repo / "blob.bin", BINARY)  # untracked binary
    hook(repo, session_id="sess-1", reason="exit")
    return repo


def sections(text: str) -> dict[str, str]:
    """The patch output cut at its section titles."""
    found, current = {}, None
    for line in text.splitlines():
        if line in (STAGED, UNSTAGED, UNTRACKED):
            current = line
            found[current] = ""
        elif current:
            found[current] += line + "\n"
    return found


def test_show_patch_keeps_staged_unstaged_and_untracked_apart(repo: Path) -> None:
    proc = gitend("show", "latest", "--patch", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    parts = sections(proc.stdout)
    staged, unstaged, untracked = parts[STAGED], parts[UNSTAGED], parts[UNTRACKED]
    assert "rename from old.txt" in staged and "rename to new.txt" in staged
    assert "new file mode 120000" in staged and "+a.txt" in staged  # the symlink and its target
    assert "-one\n+two" in staged and "three" not in staged
    assert "deleted file mode 100644" in unstaged and "-delete me" in unstaged
    assert "old mode 100644\nnew mode 100755" in unstaged
    assert "-two\n+three" in unstaged and "-one" not in unstaged
    assert "new file mode 100644" in untracked and "blob.bin" in untracked and "Binary files" in untracked
    assert "Session" in proc.stdout or "session" in proc.stdout  # the metadata is still there
    assert "\x1b[" not in proc.stdout  # not a terminal: no colour, no pager


def test_show_patch_on_a_terminal_is_coloured_and_paged(repo: Path, tmp_path: Path) -> None:
    code, shown = converse(["show", "latest", "--patch"], [], cwd=str(repo),
                           env={"NO_COLOR": "", "TERM": "xterm-256color", "GIT_PAGER": "sed 's/^/PAGED:/'"})
    assert code == 0
    assert "PAGED:" in shown and "\x1b[32m" in shown  # through the pager, with git's colours
    code, shown = converse(["show", "latest", "--patch"], [], cwd=str(repo),
                           env={"NO_COLOR": "", "TERM": "xterm-256color", "PAGER": "sed 's/^/VIA-PAGER:/'"})
    assert code == 0 and "VIA-PAGER:" in shown
    code, shown = converse(["show", "latest", "--patch"], [], cwd=str(repo),
                           env={"NO_COLOR": "", "TERM": "xterm-256color", "GIT_PAGER": "no-such-pager-here"})
    assert code == 0 and "rename from" in shown  # a pager that is not there: shown without one


def test_show_patch_default_pager_is_less_with_frx(repo: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GIT_PAGER", "PAGER", "LESS"):
        monkeypatch.delenv(var, raising=False)
    bin_dir = tmp_path / "bin"
    write(bin_dir / "less", '#!/bin/sh\necho "fake less LESS=$LESS"\ncat >/dev/null\n', mode=0o755)
    env = {"NO_COLOR": "", "TERM": "xterm-256color", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    code, shown = converse(["show", "latest", "--patch"], [], cwd=str(repo), env=env)
    assert code == 0 and "fake less LESS=FRX" in shown and "rename from" not in shown
    # As in git, an empty GIT_PAGER (or `cat`) means no pager.
    code, shown = converse(["show", "latest", "--patch"], [], cwd=str(repo), env={**env, "GIT_PAGER": ""})
    assert code == 0 and "fake less" not in shown and "rename from" in shown


def test_show_patch_pager_not_used_when_piped(repo: Path) -> None:
    proc = gitend("show", "latest", "--patch", cwd=repo, env={"GIT_PAGER": "sed 's/^/PAGED:/'"})
    assert proc.returncode == 0 and "PAGED:" not in proc.stdout and "rename from old.txt" in proc.stdout


def test_diff_snapshot_against_the_work_tree_includes_untracked(repo: Path) -> None:
    same = gitend("diff", "latest", cwd=repo)
    assert same.returncode == 0 and same.stdout == "", same.stdout + same.stderr
    write(repo / "a.txt", "alpha changed\n")
    write(repo / "c.txt", "brand new\n")
    (repo / "blob.bin").unlink()
    proc = gitend("diff", "latest", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "+alpha changed" in proc.stdout and "+brand new" in proc.stdout
    assert "deleted file mode 100644" in proc.stdout and "blob.bin" in proc.stdout
    names = gitend("diff", "latest", "--name-only", cwd=repo)
    assert names.stdout.split() == ["a.txt", "blob.bin", "c.txt"]
    stat = gitend("diff", "latest", "--stat", cwd=repo)
    assert re.search(r"a\.txt\s+\|\s+2 \+-", stat.stdout) and "3 files changed" in stat.stdout
    only = gitend("diff", "latest", "--name-only", "--", "c.txt", cwd=repo)
    assert only.stdout.split() == ["c.txt"]


def test_diff_two_snapshots_by_any_name(repo: Path) -> None:
    first = json.loads(gitend("list", "--json", cwd=repo).stdout)[0]
    write(repo / "a.txt", "second version\n")
    write(repo / "d.txt", "d\n")
    hook(repo, session_id="sess-2")
    second = json.loads(gitend("list", "--json", cwd=repo).stdout)[0]
    expected = ["a.txt", "d.txt"]
    for old, new in [("wip/main~1", "wip/main"), (str(first["commit"])[:8], "latest"),
                     ("sess-1", "sess-2"), (str(first["commit"]), str(second["commit"]))]:
        proc = gitend("diff", old, new, "--name-only", cwd=repo)
        assert proc.returncode == 0 and proc.stdout.split() == expected, (old, new, proc.stdout, proc.stderr)
    patch = gitend("diff", "wip/main~1", "wip/main", "--", "a.txt", cwd=repo)
    assert "-alpha\n+second version" in patch.stdout and "d.txt" not in patch.stdout


def test_diff_unknown_snapshot_is_a_one_line_error(repo: Path) -> None:
    proc = gitend("diff", "nosuchthing", cwd=repo)
    assert proc.returncode == 1 and "nosuchthing" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    usage = gitend("diff", cwd=repo)
    assert usage.returncode == 2


def test_list_lines_show_files_reason_and_iso_time_when_piped(repo: Path) -> None:
    write(repo / "a.txt", "b\n")
    hook(repo, session_id="sess-2", reason="clear")
    write(repo / "a.txt", "c\n")
    hook(repo, session_id="sess-2", event="Stop", reason="stop")
    write(repo / "a.txt", "d\n")
    hook(repo, session_id="sess-3", reason="before: git reset --hard")
    proc = gitend("list", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", proc.stdout) and "ago" not in proc.stdout
    for reason in ("exit", "clear", "stop", "before: git reset --hard"):
        assert reason in proc.stdout
    first = next(line for line in lines if "exit" in line)
    assert "7 files" in first  # old.txt new.txt gone.txt run.sh link both.txt blob.bin
    # The two snapshots of sess-2 are grouped under one heading.
    assert sum("sess-2" in line for line in lines) == 1
    limited = gitend("list", "-n", "2", cwd=repo)
    assert limited.returncode == 0
    assert sum(bool(re.match(r"\s*[0-9a-f]{10}\s", line)) for line in limited.stdout.splitlines()) == 2
    as_json = json.loads(gitend("list", "--json", "-n", "1", cwd=repo).stdout)
    assert len(as_json) == 1 and {"commit", "ref", "branch", "session_id", "reason", "created", "subject",
                                  "base", "files"} <= set(as_json[0])


def test_list_on_a_terminal_says_how_long_ago(repo: Path) -> None:
    code, shown = converse(["list"], [], cwd=str(repo), env={"NO_COLOR": "", "TERM": "xterm-256color"})
    assert code == 0 and re.search(r"(seconds?|minutes?) ago|just now", shown), shown


def test_identical_state_never_makes_a_second_snapshot(repo: Path) -> None:
    again = gitend("hook", "--strict", cwd=repo, input=payload(repo, session_id="sess-again"))
    assert again.returncode == 0 and "nothing new to save" in again.stdout
    assert len(json.loads(gitend("list", "--json", cwd=repo).stdout)) == 1


def test_diff_paths_are_relative_to_where_it_runs(repo: Path) -> None:
    write(repo / "sub" / "x.txt", "x\n")
    write(repo / "a.txt", "alpha changed\n")
    proc = gitend("diff", "latest", "--name-only", "--", "x.txt", "../a.txt", cwd=repo / "sub")
    assert proc.returncode == 0 and proc.stdout.split() == ["a.txt", "sub/x.txt"], proc.stdout + proc.stderr
    usage = gitend("list", "--", "a.txt", cwd=repo)
    assert usage.returncode == 2 and "takes no paths" in usage.stderr
