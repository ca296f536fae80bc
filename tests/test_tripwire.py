"""The tripwire's check: which Bash command lines discard uncommitted work, and where they run."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitend import tripwire
from testing.repo import git, gitend, init_repo, write

CWD = "/work/proj"

# (command line, the directories of the destructive commands in it)
DESTRUCTIVE = [
    ("git reset --hard", [CWD]),
    ("git reset --hard HEAD~1", [CWD]),
    ("git   reset   --hard", [CWD]),
    ("git reset -q --hard origin/main", [CWD]),
    ("git reset --merge", [CWD]),
    ("git reset --keep HEAD^", [CWD]),
    ("git checkout -- .", [CWD]),
    ("git checkout -- src/app.py", [CWD]),
    ("git checkout HEAD -- src/app.py", [CWD]),
    ("git checkout .", [CWD]),
    ("git checkout -f main", [CWD]),
    ("git checkout --force feature", [CWD]),
    ("git checkout main src/app.py", [CWD]),
    ("git checkout --theirs conflicted.txt", [CWD]),
    ("git restore .", [CWD]),
    ("git restore src/app.py", [CWD]),
    ("git restore --source=HEAD~2 src/app.py", [CWD]),
    ("git restore --staged --worktree .", [CWD]),
    ("git restore -SW .", [CWD]),
    ("git clean -f", [CWD]),
    ("git clean -fd", [CWD]),
    ("git clean -xdf", [CWD]),
    ("git clean --force -d", [CWD]),
    ("git stash drop", [CWD]),
    ("git stash drop stash@{0}", [CWD]),
    ("git stash clear", [CWD]),
    ("git stash pop", [CWD]),
    ("git stash pop --index", [CWD]),
    ("git switch -f main", [CWD]),
    ("git switch --discard-changes main", [CWD]),
    ("git rebase --abort", [CWD]),
    ("git merge --abort", [CWD]),
    ("git cherry-pick --abort", [CWD]),
    # Prefixes, wrappers and other spellings of git.
    ("FOO=1 git reset --hard", [CWD]),
    ("FOO=1 BAR=x git reset --hard", [CWD]),
    ("env git reset --hard", [CWD]),
    ("env -u GIT_DIR FOO=1 git reset --hard", [CWD]),
    ("/usr/bin/git reset --hard", [CWD]),
    ("command git clean -fd", [CWD]),
    ("sudo -u me git reset --hard", [CWD]),
    ("nohup git reset --hard", [CWD]),
    ("timeout 10 git reset --hard", [CWD]),
    ("time git checkout -- .", [CWD]),
    ("git -c core.quotepath=off reset --hard", [CWD]),
    ("git --no-pager reset --hard", [CWD]),
    ("git -C other reset --hard", [f"{os.path.dirname(CWD)}/proj/other"]),
    ("git -C /elsewhere reset --hard", ["/elsewhere"]),
    ("git -C /a -C b reset --hard", ["/a/b"]),
    ("git --work-tree=/tree --git-dir=/tree/.git reset --hard", ["/tree"]),
    ("git --work-tree /tree reset --hard", ["/tree"]),
    # Chains, subshells, substitutions, shells.
    ("cd sub && git reset --hard", [f"{CWD}/sub"]),
    ("cd /other/repo && git stash drop", ["/other/repo"]),
    ("cd .. ; git clean -fd", ["/work"]),
    ("true; git reset --hard", [CWD]),
    ("git fetch || git reset --hard origin/main", [CWD]),
    ("git status | cat; git reset --hard", [CWD]),
    ("git reset --hard && ls", [CWD]),
    ("git reset --hard 2>&1 | tail -1", [CWD]),
    ("ls\ngit reset --hard", [CWD]),
    ("(cd sub; git reset --hard)", [f"{CWD}/sub"]),
    ("echo $(git reset --hard)", [CWD]),
    ("echo `git stash drop`", [CWD]),
    ("if git diff --quiet; then :; else git checkout -- .; fi", [CWD]),
    ("sh -c 'git reset --hard'", [CWD]),
    ("bash -c 'git reset --hard'", [CWD]),
    ('bash -lc "cd sub && git clean -fdx"', [f"{CWD}/sub"]),
    ("bash -o pipefail -c 'git reset --hard | cat'", [CWD]),
    ("sh -c \"bash -c 'git stash clear'\"", [CWD]),
    ("eval 'git reset --hard'", [CWD]),
    ("cd a && git reset --hard; cd /b && git clean -f", [f"{CWD}/a", "/b"]),
    ("git reset --hard; git reset --hard", [CWD]),  # one snapshot is enough
    ("cd ~/code/app && git reset --hard", ["~/code/app"]),
    ("cd $SOMEWHERE && git reset --hard", [CWD]),  # unknown until run: the project is the best guess
    ("git checkout -- 'it'\"'\"'s.txt'", [CWD]),
    ("git reset --hard 'unclosed", [CWD]),  # a broken quote still counts
]

HARMLESS = [
    "ls",
    "ls -la",
    "git status --short",
    "git diff",
    "git log --oneline -5",
    "git reset",
    "git reset --soft HEAD~1",
    "git reset --mixed",
    "git reset HEAD file.txt",
    "git clean -n",
    "git clean -nd",
    "git clean --dry-run -f",
    "git clean -fn",
    "git checkout -b feature",
    "git checkout -B feature origin/main",
    "git checkout --orphan fresh",
    "git checkout main",
    "git checkout -",
    "git switch main",
    "git switch -c feature",
    "git restore --staged file.txt",
    "git restore -S .",
    "git stash",
    "git stash push -m wip",
    "git stash list",
    "git stash show -p",
    "git stash apply",
    "git rebase main",
    "git rebase --continue",
    "git merge feature",
    "git commit -m 'git reset --hard'",
    "git commit -m \"undo with git checkout -- .\"",
    "echo 'git reset --hard'",
    "echo \"git clean -fdx\"",
    "grep -r 'reset --hard' docs/",
    "printf '%s\\n' 'git stash drop'",
    "cat <<'EOF'\nnot a command\nEOF",
    "make clean -j4",
    "npm run clean -- --force",
    "gitend restore latest --force",
    "git-lfs checkout .",
    "legit reset --hard",
    "bash script.sh reset --hard",
    "python -c 'import os; os.system(\"true\")'",
    "git -C other status",
    "cd /tmp && ls",
    "git config alias.hard 'reset --hard'",
    "",
    "   ",
]


@pytest.mark.parametrize(("command", "directories"), DESTRUCTIVE)
def test_tripwire_destructive_commands_are_caught_where_they_run(command: str, directories: list[str]) -> None:
    hits = tripwire.check(command, CWD)
    assert [hit.directory for hit in hits] == [os.path.expanduser(d) for d in directories], hits
    assert all(hit.command.startswith("git ") and "\n" not in hit.command for hit in hits)


@pytest.mark.parametrize("command", HARMLESS)
def test_tripwire_lookalikes_and_other_commands_pass(command: str) -> None:
    assert tripwire.check(command, CWD) == []


def test_tripwire_checkout_of_a_lone_name_is_decided_by_what_is_there() -> None:
    """`git checkout NAME` discards NAME's edits when it is a file, carries them when a branch."""
    files = {f"{CWD}/app.py", f"{CWD}/sub/x.txt"}
    assert tripwire.check("git checkout app.py", CWD, files.__contains__)
    assert tripwire.check("cd sub && git checkout x.txt", CWD, files.__contains__)
    assert tripwire.check("git checkout main", CWD, files.__contains__) == []
    assert tripwire.check("git checkout app.py", CWD) == []  # no way to tell: a branch switch is safe


def test_tripwire_reason_is_the_git_command_shortened_to_one_line() -> None:
    [hit] = tripwire.check("cd sub && FOO=1 git -C x reset --hard " + "a" * 200, CWD)
    assert hit.command.startswith("git reset --hard aaa") and hit.command.endswith("…")
    assert len(hit.command) <= tripwire.SHORTEN


# -- properties: any prefix, wrapper or chain position is caught; quoting makes it an argument

CORES = [c for c, dirs in DESTRUCTIVE[:33]]
PREFIXES = ["", "FOO=1 ", "env ", "env A=b ", "/usr/bin/", "command ", "nohup ", "time "]
BEFORE = ["", "ls && ", "true; ", "git status || ", "echo x | ", "cd . && "]
AFTER = ["", " && ls", "; echo done", " | cat", " 2>&1", " >/dev/null"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CORES), st.sampled_from(PREFIXES), st.sampled_from(BEFORE), st.sampled_from(AFTER),
       st.sampled_from(["plain", "sh", "bash"]))
def test_tripwire_property_destructive_anywhere_in_a_line(core: str, prefix: str, before: str, after: str,
                                                          shell: str) -> None:
    line = before + prefix + core + after
    if shell != "plain":
        line = f"{shell} -c {shlex.quote(line)}"
    assert [h.directory for h in tripwire.check(line, CWD)] == [CWD], line


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CORES), st.sampled_from(["echo", "printf '%s'", "grep -n", "git commit -m", "git log --grep"]),
       st.sampled_from(["'", '"']))
def test_tripwire_property_quoted_commands_are_only_text(core: str, verb: str, quote: str) -> None:
    text = core.replace(quote, "")
    assert tripwire.check(f"{verb} {quote}{text}{quote}", CWD) == []


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_tripwire_property_never_raises(line: str) -> None:
    for hit in tripwire.check(line, CWD):
        assert hit.command.startswith("git ")


# -- the PreToolUse hook -------------------------------------------------------------

def pre_tool_use(cwd: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Claude Code's PreToolUse payload for a Bash command (2.1.332's fields)."""
    data = {"session_id": "s1", "transcript_path": None, "cwd": str(cwd), "prompt_id": "p1",
            "permission_mode": "default", "effort": {"level": "medium"}, "hook_event_name": "PreToolUse",
            "tool_name": "Bash", "tool_input": {"command": command, "description": "run it"},
            "tool_use_id": "toolu_1"}
    return gitend("hook", cwd=cwd, input=json.dumps(data).encode(), env=env)


def wip(repo: Path) -> list[dict[str, object]]:
    proc = gitend("list", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def dirty_repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo", {"app.py": "v1\n", "lib/util.py": "u1\n"})
    write(repo / "app.py", "v2, not committed\n")
    write(repo / "notes.txt", "untracked\n")
    return repo


def test_tripwire_saves_before_git_reset_hard_and_says_nothing(dirty_repo: Path) -> None:
    proc = pre_tool_use(dirty_repo, "git reset --hard")
    assert (proc.returncode, proc.stdout) == (0, "")  # exit 2 would block the command, stdout would show
    [snap] = wip(dirty_repo)
    assert snap["reason"] == "before: git reset --hard"
    assert snap["files"] == ["app.py", "notes.txt"]
    git(dirty_repo, "reset", "--hard")
    git(dirty_repo, "clean", "-fdq")
    restored = gitend("restore", "latest", cwd=dirty_repo)
    assert restored.returncode == 0, restored.stderr
    assert (dirty_repo / "app.py").read_text() == "v2, not committed\n"
    assert (dirty_repo / "notes.txt").read_text() == "untracked\n"


def test_tripwire_passes_other_commands_without_a_snapshot(dirty_repo: Path) -> None:
    for command in ("ls", "git status", "git checkout -b feature", "echo 'git reset --hard'", "git clean -n"):
        proc = pre_tool_use(dirty_repo, command)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert wip(dirty_repo) == []


def test_tripwire_saves_the_repository_the_command_runs_in(dirty_repo: Path, tmp_path: Path) -> None:
    other = init_repo(tmp_path / "other", {"a.txt": "a\n"})
    write(other / "a.txt", "edited\n")
    pre_tool_use(dirty_repo, f"cd {other} && git clean -fd && git checkout -- .")
    assert wip(dirty_repo) == []
    [snap] = wip(other)
    assert snap["reason"] == "before: git clean -fd" and snap["files"] == ["a.txt"]
    pre_tool_use(tmp_path, f"git -C {dirty_repo} stash drop")
    assert [s["reason"] for s in wip(dirty_repo)] == ["before: git stash drop"]


def test_tripwire_on_a_clean_tree_saves_nothing(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    proc = pre_tool_use(repo, "git stash pop")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert wip(repo) == []


def test_tripwire_checkout_of_a_file_saves_it(dirty_repo: Path) -> None:
    pre_tool_use(dirty_repo, "git checkout app.py")
    assert [s["reason"] for s in wip(dirty_repo)] == ["before: git checkout app.py"]


@pytest.mark.parametrize("stdin", [b"", b"not json", b'{"hook_event_name": "PreToolUse", "tool_input": 5}',
                                   b'{"hook_event_name": "PreToolUse", "tool_input": {"command": ["x"]}}'])
def test_tripwire_never_blocks_or_prints_whatever_happens(stdin: bytes, tmp_path: Path) -> None:
    proc = gitend("hook", cwd=tmp_path, input=stdin)
    assert proc.returncode == 0 and proc.stdout == ""


def test_tripwire_outside_a_repository_or_with_a_broken_config(tmp_path: Path, dirty_repo: Path,
                                                               hermetic: Path) -> None:
    proc = pre_tool_use(tmp_path, "git reset --hard")
    assert (proc.returncode, proc.stdout) == (0, "")
    write(hermetic / ".config/gitend/config.yaml", "snapshot: [oops\n")
    proc = pre_tool_use(dirty_repo, "git reset --hard")
    assert (proc.returncode, proc.stdout) == (0, "")
    # Saved with the built-in defaults.
    assert "Gitend-Reason: before: git reset --hard" in git(dirty_repo, "log", "-1", "--format=%B", "wip/main")


def test_tripwire_look_alike_costs_about_a_python_start(dirty_repo: Path) -> None:
    """A command the broad `if` filter let through but that is harmless runs no git at all."""
    killer_log = dirty_repo.parent / "git-calls"
    wrapper = write(dirty_repo.parent / "bin" / "git", f"#!/bin/sh\necho \"$@\" >> {killer_log}\n"
                    f"exec {shutil.which('git')} \"$@\"\n", mode=0o755)
    path = f"{wrapper.parent}:{os.environ['PATH']}"
    pre_tool_use(dirty_repo, "git checkout -b feature", PATH=path)
    assert not killer_log.exists()
