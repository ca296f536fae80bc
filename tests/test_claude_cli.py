"""End to end with the real Claude Code CLI (pinned in testing/claude.py, installed from npm into
a cache outside the repository), offline against testing/fake_api.py, with gitend registered
by `gitend install` in a sandboxed Claude folder. Skipped only when the npm registry cannot
be reached to install the CLI the first time."""
from __future__ import annotations

import json
import os
import signal
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing import claude
from testing.fake_api import Bash, FakeAPI, Write
from testing.machine import Machine, bare_remote, project
from testing.repo import git, gitend, write


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    try:
        path = claude.install()
    except claude.Unreachable as exc:
        pytest.skip(str(exc))
    return path


@dataclass
class World:
    api: FakeAPI
    sandbox: claude.Sandbox
    machine: Machine
    proj: Path

    def gitend(self, *args: str) -> str:
        proc = gitend(*args, cwd=self.proj, env=self.sandbox.env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def snapshots(self) -> list[dict[str, object]]:
        return json.loads(self.gitend("list", "--json"))


@pytest.fixture
def world(tmp_path: Path, claude_bin: Path) -> Iterator[World]:
    """A user with gitend installed (memory synced to a bare dotfile remote) and a project."""
    with FakeAPI() as api:
        sandbox = claude.Sandbox(tmp_path / "user", api.url, claude_bin)
        machine = Machine(sandbox.home)
        machine.configure(bare_remote(tmp_path / "dots.git"))
        proj = project(tmp_path / "proj")
        sandbox.trust(proj)
        proc = gitend("install", cwd=proj, env=sandbox.env)
        assert proc.returncode == 0, proc.stderr
        yield World(api, sandbox, machine, proj)


def test_cli_version_is_the_pinned_one(claude_bin: Path) -> None:
    version = claude.version_of(claude_bin)
    print(f"Claude Code CLI under test: {version}")
    assert version.split()[0] == claude.VERSION


def test_cli_print_mode_exit_saves_the_session_work(world: World) -> None:
    world.api.script["Add a greeting module"] = [Write(str(world.proj / "greet.py"), "print('hello')\n"), "Added."]
    proc = world.sandbox.print_mode(world.proj, "Add a greeting module", "--allowedTools", "Write")
    assert proc.returncode == 0 and "Added." in proc.stdout, proc.stderr
    [snap] = world.snapshots()
    assert snap["reason"] == "other" and snap["files"] == ["greet.py"]
    assert snap["subject"] == "wip: Add a greeting module"
    assert git(world.proj, "status", "--porcelain") == "?? greet.py\n"  # the work tree as it was


def test_cli_clear_saves_and_pushes_nothing(world: World, tmp_path: Path) -> None:
    wip_remote = bare_remote(tmp_path / "wip.git")
    git(world.proj, "remote", "set-url", "origin", str(wip_remote))
    write(world.sandbox.home / ".config/gitend/config.yaml",
          json.dumps({"memory": {"repo": str(world.machine.dots)}, "snapshot": {"push_remote": "origin"}}))
    world.machine.note(world.proj, "MEMORY.md", "- [Style](style.md)\n")
    world.api.script["Start the parser"] = [Bash("echo 'def parse(): pass' > parser.py"), "Started."]

    def pushed() -> tuple[str, str]:
        return (git(wip_remote, "for-each-ref", "--format=%(refname)", "refs/heads/wip"),
                git(tmp_path / "dots.git", "ls-tree", "-r", "--name-only", "main"))

    with world.sandbox.interactive(world.proj, "--allowedTools", "Bash") as term:
        term.wait_for("❯")
        term.type("Start the parser")
        term.wait_for("Started.")
        term.type("/clear")
        term.wait_for(lambda _: any(s["reason"] == "clear" for s in world.snapshots()))
        world.machine.wait_for_worker()
        [snap] = world.snapshots()
        assert snap["files"] == ["parser.py"] and snap["subject"] == "wip: Start the parser"
        assert pushed() == ("", "README.md\n")  # saved locally, nothing pushed
        term.type("/exit")
        assert term.exit_status() == 0
    world.machine.wait_for_worker()
    wip, notes = pushed()
    assert "wip/" in wip and "MEMORY.md" in notes  # an ordinary exit then pushes both


def test_cli_install_says_unreachable_only_for_a_registry_it_cannot_reach(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The e2e tests skip for this reason alone; any other install failure fails them."""
    if not shutil.which("npm"):
        pytest.fail("npm is not installed: .ci/run installs it")
    monkeypatch.setenv("GITEND_TEST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    with pytest.raises(claude.Unreachable, match="cannot be reached"):
        claude.install("2.1.332")
    assert not claude.binary("2.1.332").exists() and not list((tmp_path / "cache").glob("claude-code-*"))


def gitend_log(world: World) -> str:
    path = world.machine.state / "gitend.log"
    return path.read_text() if path.exists() else ""


def test_cli_killed_session_is_caught_up_at_the_next_start(world: World) -> None:
    world.api.script["Write the changelog"] = [Bash("echo '## 1.1' > CHANGELOG.md"), "Written."]
    with world.sandbox.interactive(world.proj, "--allowedTools", "Bash") as term:
        term.wait_for("❯")
        term.type("Write the changelog")
        term.wait_for("Written.")
        os.kill(term.pid(), signal.SIGKILL)
        assert term.exit_status() == 128 + signal.SIGKILL
    assert world.snapshots() == []  # no SessionEnd ran
    proc = world.sandbox.print_mode(world.proj, "Carry on")
    assert proc.returncode == 0, proc.stderr
    [snap] = world.snapshots()
    assert snap["reason"] == "catch-up" and snap["files"] == ["CHANGELOG.md"]
    assert snap["subject"] == "wip: Write the changelog"  # from the killed session's transcript


TRIPWIRE_COMMANDS = ["git reset --hard", "git -C . reset --hard", "env git reset --hard",
                     "bash -c 'git reset --hard'", "/usr/bin/git reset --hard", "git checkout -- .",
                     "git clean -fd", "git stash drop"]


def test_cli_tripwire_saves_before_each_destructive_command_and_starts_nothing_for_others(world: World) -> None:
    steps: list[object] = [Bash("ls"), Bash("git status --short")]
    for n, command in enumerate(TRIPWIRE_COMMANDS):
        # New work before each (and a stash entry for `git stash drop` to drop).
        steps += [Bash(f"echo change {n} > app.py; echo new {n} > new-{n}.txt; git stash -q -u; "
                       f"echo change {n} > app.py; echo new {n} > new-{n}.txt"), Bash(command)]
    world.api.script["Tidy up"] = [*steps, "Tidied."]
    proc = world.sandbox.print_mode(world.proj, "Tidy up", "--allowedTools", "Bash", timeout=120)
    assert proc.returncode == 0 and "Tidied." in proc.stdout, proc.stderr
    reasons = [s["reason"] for s in world.snapshots() if str(s["reason"]).startswith("before:")]
    # Each saved once, named by its git command (-C, env, bash -c and the path left out).
    assert sorted(reasons) == sorted(["before: git reset --hard"] * 5 + ["before: git checkout -- .",
                                                                       "before: git clean -fd",
                                                                       "before: git stash drop"])
    runs = [line for line in gitend_log(world).splitlines() if "PreToolUse" in line]
    assert len(runs) == len(TRIPWIRE_COMMANDS)  # no gitend process for `ls`, the `git stash`/`git status` calls
    skipped = world.sandbox.debug_lines("Skipping hook due to if condition")
    assert skipped, "the debug log names the `if` filters that kept gitend from starting"


def test_cli_new_machine_gets_its_notes_at_session_start(world: World, tmp_path: Path) -> None:
    laptop = Machine.create(tmp_path / "laptop", tmp_path / "dots.git")
    laptop.note(world.proj, "MEMORY.md", "- [Deploys](deploys.md): deploy only on Tuesdays\n")
    laptop.note(world.proj, "deploys.md", "Deploy only on Tuesdays.\n")
    laptop.sync(world.proj)
    git(world.machine.dots, "pull", "-q")  # what an earlier start's background fetch did
    proc = world.sandbox.print_mode(world.proj, "When do we deploy?")
    assert proc.returncode == 0, proc.stderr
    assert (world.machine.memory_folder(world.proj) / "deploys.md").read_text() == "Deploy only on Tuesdays.\n"
    first = json.dumps(world.api.main_requests()[0])
    assert "deploy only on Tuesdays" in first  # the model knows from the first session, not the next


def test_cli_held_note_shows_one_line_at_start(world: World) -> None:
    world.machine.note(world.proj, "MEMORY.md", "- [Keys](keys.md)\n")
    world.machine.note(world.proj, "keys.md", "key AKIAIOSFODNN7EXAMPLQ wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
    world.machine.sync(world.proj)
    with world.sandbox.interactive(world.proj) as term:
        screen = term.wait_for("SessionStart:startup says:")
        print(f"\n--- what the user sees (held note) ---\n{screen}")
        [line] = [row for row in screen.splitlines() if "SessionStart:startup says:" in row]
        assert "gitend:" in line and "held" in line
        term.type("/exit")
        term.exit_status()


def test_cli_13_2_a_session_end_over_a_tight_budget_is_saved_by_the_worker(world: World) -> None:
    """1,500 new files and a SessionEnd budget of 1 s: Claude Code would cancel a save in the
    foreground; gitend hands it to the worker (before it starts, or when cancelled), which
    outlives the hook and saves them all within seconds. (Much less than that and a loaded
    machine may not even have started Python: then the next session start catches it up.)"""
    make = "mkdir -p gen && cd gen && for i in $(seq 1500); do echo $i > f$i.txt; done"
    world.api.script["Generate the fixtures"] = [Bash(make), "Generated."]
    proc = world.sandbox.print_mode(world.proj, "Generate the fixtures", "--allowedTools", "Bash",
                                    env={"CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS": "1000"})
    assert proc.returncode == 0, proc.stderr
    assert world.sandbox.debug_lines("SessionEnd"), "SessionEnd ran"
    world.machine.wait_for_worker(timeout=60)
    [snap] = world.snapshots()
    assert len(snap["files"]) == 1500
    assert "unexpected" not in gitend_log(world)
