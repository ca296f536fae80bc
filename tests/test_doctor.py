"""`gitend doctor` names each problem with its fix; `gitend status` reads at a glance."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gitend import installed
from testing.machine import Machine, bare_remote, project
from testing.repo import gitend, write


def doctor(home: Path) -> tuple[int, str]:
    proc = gitend("doctor", cwd=home)
    return proc.returncode, proc.stdout


def test_fresh_machine_is_told_to_install(hermetic: Path) -> None:
    code, out = doctor(hermetic)
    assert code == 1
    assert "problem no SessionEnd hook for gitend" in out and "fix: run `gitend install`" in out
    assert "ok      git version" in out


def test_installed_with_a_reachable_dotfile_remote_is_all_ok(hermetic: Path, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "dots.git")
    proc = gitend("install", "--dotfiles", str(hermetic / "dots"), "--remote", str(remote), cwd=hermetic)
    assert proc.returncode == 0, proc.stderr
    code, out = doctor(hermetic)
    assert code == 0, out
    assert "SessionEnd hook in" in out and "(timeout 10 s)" in out
    assert f"dotfile repo {hermetic / 'dots'} on main, origin reachable" in out
    assert "everything looks right" in out


def test_each_problem_has_its_fix(hermetic: Path, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "dots.git")
    assert gitend("install", "--dotfiles", str(hermetic / "dots"), "--remote", str(remote), cwd=hermetic).returncode == 0
    settings = hermetic / ".claude" / "settings.json"
    data = json.loads(settings.read_text())
    del data["hooks"]["SessionEnd"][0]["hooks"][0]["timeout"]
    data["disableAllHooks"] = True
    settings.write_text(json.dumps(data))
    os.rename(remote, tmp_path / "gone.git")
    code, out = doctor(hermetic)
    assert code == 1
    assert "the hook has no timeout" in out and "disableAllHooks is true" in out
    assert "origin of" in out and "is not reachable" in out and "credentials" in out
    assert out.count("fix:") == 3

    write(hermetic / ".config" / "gitend" / "config.yaml", "memory:\n  repoo: x\n")
    code, out = doctor(hermetic)
    assert "unknown key 'memory.repoo'" in out and "fix or remove that file" in out


def test_status_at_a_glance(hermetic: Path, tmp_path: Path) -> None:
    machine = Machine(hermetic)
    assert "ok       nothing queued, failed or held" in machine.gitend("status").stdout
    remote = bare_remote(tmp_path / "dots.git")
    machine.configure(remote, push={"background": False})
    proj = project(tmp_path / "p")
    machine.note(proj, "a.md", "note\n")
    machine.end_session(proj)
    text = machine.gitend("status").stdout
    assert "queued   memory notes of" in text and "log      " in text
    machine.end_session(proj, reason="clear")
    assert "(commit only: session ended with a skip reason)" in machine.gitend("status").stdout
    assert machine.gitend("push").returncode == 0
    text = machine.gitend("status").stdout
    assert "nothing queued" in text and "last" in text and "pushed to origin" in text


def settings_with(home: Path, example: str) -> Path:
    """A hooks example as the user's settings, running this very gitend."""
    data = json.loads((Path(__file__).parents[1] / "hooks-examples" / example).read_text())
    for group in data["hooks"]["SessionEnd"]:
        for hook in group["hooks"]:
            hook["command"] = installed.gitend_command()
    return write(home / ".claude" / "settings.json", json.dumps(data, indent=2) + "\n")


def test_per_reason_entries_covering_every_reason_are_fine(hermetic: Path) -> None:
    settings_with(hermetic, "settings-per-reason.json")
    code, out = doctor(hermetic)
    assert code == 0, out
    assert "everything looks right" in out


def test_per_reason_entries_missing_reasons_are_pointed_out(hermetic: Path) -> None:
    path = settings_with(hermetic, "settings-clear-only.json")
    assert gitend("install", cwd=hermetic).returncode == 0  # leaves the user's entry alone...
    code, out = doctor(hermetic)
    assert code == 0, out  # ...a choice hooks-examples/ shows, so not a problem, but doctor says what it misses
    assert (f'note: your gitend entries in {path} run for the matchers "clear" only, so a session ending with '
            "resume, logout, prompt_input_exit, other is not saved") in out


def test_a_missing_pre_push_hook_is_a_problem(hermetic: Path, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "dots.git")
    proc = gitend("install", "--dotfiles", str(hermetic / "dots"), "--remote", str(remote), cwd=hermetic)
    assert proc.returncode == 0, proc.stderr
    hook = hermetic / "dots" / ".git" / "hooks" / "pre-push"
    hook.unlink()
    code, out = doctor(hermetic)
    assert code == 1
    assert f"problem {hook} is not gitend's pre-push hook" in out
    assert f"fix: run `gitend install --dotfiles {hermetic / 'dots'}`" in out
    assert out.count("fix:") == 1
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    assert f"problem {hook} is not gitend's pre-push hook" in doctor(hermetic)[1]
    assert gitend("install", "--dotfiles", str(hermetic / "dots"), cwd=hermetic).returncode == 0
    assert doctor(hermetic)[0] == 0


def test_a_damaged_install_record_is_one_problem_among_the_checks(hermetic: Path) -> None:
    assert gitend("install", cwd=hermetic).returncode == 0
    record = hermetic / ".local" / "state" / "gitend" / "install.json"
    record.write_text("{ not json")
    code, out = doctor(hermetic)
    assert code == 1 and "Traceback" not in out
    assert f"problem {record}, gitend's install record, is unreadable or damaged" in out
    assert "fix: remove it, then run `gitend install` again" in out
    assert "ok      git version" in out and "SessionEnd hook in" in out and "queue:" in out
    assert out.count("fix:") == 1


def test_a_shell_form_entry_of_your_own_is_found(hermetic: Path) -> None:
    path = settings_with(hermetic, "settings-per-reason.json")
    data = json.loads(path.read_text())
    for group in data["hooks"]["SessionEnd"]:
        for hook in group["hooks"]:
            hook["command"] = f"{installed.gitend_command()} hook"
            del hook["args"]
    path.write_text(json.dumps(data))
    code, out = doctor(hermetic)
    assert code == 0 and "not found" not in out, out


def test_doctor_checks_session_start_and_the_tripwire(hermetic: Path) -> None:
    assert gitend("install", cwd=hermetic).returncode == 0
    code, out = doctor(hermetic)
    assert code == 0, out
    assert "SessionStart hook in" in out and "PreToolUse tripwire in" in out
    path = hermetic / ".claude" / "settings.json"
    data = json.loads(path.read_text())
    del data["hooks"]["PreToolUse"]
    data["hooks"]["SessionStart"][0]["hooks"][0]["if"] = "Bash(x)"
    path.write_text(json.dumps(data))
    code, out = doctor(hermetic)
    assert code == 1
    assert "no PreToolUse tripwire for gitend" in out and "has an `if`, so Claude Code never runs it" in out


@pytest.mark.parametrize(("value", "problem"), [("150", True), ("1500", False), ("30000", False), ("soon", True)])
def test_doctor_warns_when_the_sessionend_budget_is_set_too_low(hermetic: Path, value: str, problem: bool) -> None:
    assert gitend("install", cwd=hermetic).returncode == 0
    proc = gitend("doctor", cwd=hermetic, env={"CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS": value})
    assert ("CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS" in proc.stdout) == problem, proc.stdout
    assert proc.returncode == (1 if problem else 0)
