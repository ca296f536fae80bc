"""The queue and the state files: odd contents, broken configs, retries, `gitend push`, and the
small things `status`, `doctor`, `install` and `show` say."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.machine import Machine, bare_remote, project, remote_file
from testing.repo import git, gitend, init_repo, write

FOLDER = "claude/memory/github.com+someone+project"


def job_file(machine: Machine, name: str, **fields: object) -> Path:
    """A job file as another (newer, or damaged) gitend might have left it."""
    job = {"id": name, "kind": "memory", "target": str(machine.dots), "push": True, "data": {}, "created": 1.0,
           "attempts": 0, "next_try": 0.0, "last_error": None, "held": None, **fields}
    return write(machine.state / "queue" / f"{name}.json", json.dumps(job))


def log_text(machine: Machine) -> str:
    path = machine.state / "gitend.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("odd", [
    {"kind": "teleport"},  # left by a newer version
    {"next_try": "soon"},
    {"data": None},
    {"attempts": "many"},
])
def test_13_10_an_odd_job_file_is_set_aside_and_the_rest_goes_on(laptop: Machine, remote: Path, proj: Path,
                                                                   odd: dict[str, object]) -> None:
    odd_file = job_file(laptop, "0000000000001-odd-abcdef", **odd)
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"
    status = laptop.gitend("status")
    assert status.returncode == 0, status.stderr
    assert "0000000000001-odd-abcdef" in status.stdout  # shown as set aside
    assert not odd_file.exists()
    assert log_text(laptop).count("0000000000001-odd-abcdef") == 1
    push = laptop.gitend("push")
    assert push.returncode == 0 and "Traceback" not in push.stderr, push.stderr


@pytest.mark.parametrize("name, content", [
    ("results.json", [1, "x", {"kind": 3, "time": "yesterday"}, {"ok": True}]),
    ("results.json", {"not": "a list"}),
    ("blocked.json", {"DOTS": 1}),
    ("blocked.json", {"DOTS": {"ranges": 5, "remote": None}}),
    ("blocked.json", {"DOTS": {"ranges": [["--bogus-option"]], "remote": "origin"}}),
    ("blocked.json", ["a", "list"]),
    ("held-extras.json", ["a", "list"]),
])
def test_13_10_state_files_of_an_unexpected_shape_do_not_stop_status_or_review(
        laptop: Machine, name: str, content: object) -> None:
    write(laptop.state / name, json.dumps(content).replace("DOTS", str(laptop.dots)))
    for command in (["status"], ["status", "--json"], ["review"], ["doctor"]):
        proc = laptop.gitend(*command)
        assert proc.returncode in (0, 1) and "unexpected error" not in proc.stderr, (command, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_13_21_an_unexpected_error_in_one_job_never_stops_another(laptop: Machine, remote: Path,
                                                                  proj: Path) -> None:
    broken = job_file(laptop, "0000000000001-snapshot-abcdef", kind="snapshot", target=str(proj),
                      data={"payload": {"bogus": 1}})
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"  # the other job went ahead
    report = laptop.status()
    failed = [j for j in report["failed"] + report["pending"] if j["id"] == broken.stem]
    assert failed == [] or failed[0]["last_error"], report  # recorded against that job, or set aside
    assert broken.stem in json.dumps(report)


def test_13_11_an_invalid_allow_regex_is_a_config_error(laptop: Machine, remote: Path) -> None:
    laptop.configure(remote, review={"allow": ["token-(unclosed"]})
    out = laptop.gitend("doctor").stdout
    assert "review.allow" in out and "config.yaml" in out and "fix" in out
    proc = laptop.gitend("status")
    assert "review.allow" in proc.stdout + proc.stderr


def test_13_13_config_typo_is_shown_and_what_it_held_back_syncs_once_fixed(
        laptop: Machine, remote: Path, proj: Path) -> None:
    config_file = laptop.home / ".config" / "gitend" / "config.yaml"
    good = config_file.read_text()
    broken = json.loads(good)
    broken["push"] = {"skip_reason": ["clear"]}
    config_file.write_text(json.dumps(broken))
    laptop.note(proj, "a.md", "note\n")
    write(proj / "app.py", "work\n")
    laptop.gitend("hook", cwd=proj, input=json.dumps({"session_id": "s1", "cwd": str(proj),
                                                       "hook_event_name": "SessionEnd", "reason": "other"}).encode())
    laptop.wait_for_worker()

    status = laptop.gitend("status")
    assert "push.skip_reason" in status.stdout + status.stderr and "nothing queued, failed or held" not in status.stdout
    assert "push.skip_reason" in json.dumps(laptop.status())
    assert "push.skip_reason" in laptop.gitend("doctor").stdout
    for command in (["list"], ["show", "latest"], ["list", "--all", "--json"]):
        proc = laptop.gitend(*command, cwd=proj)
        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stderr.count("push.skip_reason") == 1, proc.stderr  # said once
    assert remote_file(remote, f"{FOLDER}/a.md") is None

    config_file.write_text(good)
    push = laptop.gitend("push")
    assert push.returncode == 0, push.stdout + push.stderr
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"


def failing_remote(laptop: Machine, remote: Path) -> Path:
    moved = remote.with_name("moved.git")
    os.rename(remote, moved)
    return moved


def test_13_14_retry_wording_is_true_and_a_push_attempt_is_logged(laptop: Machine, remote: Path,
                                                                  proj: Path) -> None:
    failing_remote(laptop, remote)
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    text = laptop.gitend("status").stdout
    assert "failed" in text and "retried in" not in text, text
    assert "session end" in text and "gitend push" in text
    before = log_text(laptop)
    laptop.gitend("push")
    added = log_text(laptop)[len(before):]
    assert "push" in added and "failed" in added, added


def counting_hook(remote: Path, counter: Path, seconds: float) -> None:
    """A pre-receive hook that counts its runs, writes its pid, then hangs."""
    write(remote / "hooks" / "pre-receive",
          f"#!/bin/sh\necho $$ >> {counter}\nexec sleep {seconds}\n", mode=0o755)


def test_13_15_push_after_a_session_end_says_what_it_waits_for_and_tries_once(
        laptop: Machine, remote: Path, proj: Path, tmp_path: Path) -> None:
    laptop.configure(remote, push={"timeout_s": 3})
    counter = tmp_path / "runs"
    counting_hook(remote, counter, 30)
    laptop.note(proj, "a.md", "note\n")
    laptop.end_session(proj)
    deadline = time.monotonic() + 20
    while not counter.exists() and time.monotonic() < deadline:  # the worker is inside its push
        time.sleep(0.05)
    push = laptop.gitend("push")
    assert "waiting for the background worker" in push.stdout, push.stdout
    assert len(counter.read_text().split()) == 1, push.stdout  # one attempt, not two
    assert push.returncode == 1


def test_13_15_ctrl_c_during_push_stops_the_git_children(laptop: Machine, remote: Path, proj: Path,
                                                        tmp_path: Path) -> None:
    laptop.configure(remote, push={"background": False})
    counter = tmp_path / "runs"
    counting_hook(remote, counter, 60)
    laptop.note(proj, "a.md", "note\n")
    laptop.end_session(proj)
    proc = subprocess.Popen([sys.executable, "-m", "gitend", "push"], env={**os.environ, **laptop.env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not counter.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground process group
    assert proc.wait(timeout=20) != 0
    hanging = int(counter.read_text().split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(hanging, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(hanging, signal.SIGKILL)
        raise AssertionError("the remote's hook (a child of git push) still runs after Ctrl-C")


def test_13_17_doctor_does_not_print_timeout_none(hermetic: Path) -> None:
    assert gitend("install", cwd=hermetic).returncode == 0
    settings = hermetic / ".claude" / "settings.json"
    data = json.loads(settings.read_text())
    del data["hooks"]["SessionEnd"][0]["hooks"][0]["timeout"]
    settings.write_text(json.dumps(data))
    out = gitend("doctor", cwd=hermetic).stdout
    assert "the hook has no timeout" in out and "None" not in out, out


def test_13_17_install_remote_without_dotfiles_is_a_usage_error(hermetic: Path, tmp_path: Path) -> None:
    proc = gitend("install", "--remote", str(tmp_path / "dots.git"), cwd=hermetic)
    assert proc.returncode == 2 and "--dotfiles" in proc.stderr
    assert not (hermetic / ".claude" / "settings.json").exists()


def test_13_17_the_internal_worker_command_is_not_in_the_usage_text(hermetic: Path) -> None:
    for args in (["--help"], []):
        proc = gitend(*args, cwd=hermetic)
        assert "_worker" not in proc.stdout + proc.stderr
    assert "_worker" not in gitend("nonsense", cwd=hermetic).stderr


def test_13_17_show_a_branch_without_snapshots_says_so(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"a.txt": "a\n"})
    git(repo, "branch", "feature/login")
    proc = gitend("show", "feature/login", cwd=repo)
    assert proc.returncode == 1 and "no snapshots of branch feature/login" in proc.stderr, proc.stderr


def test_13_17_a_queued_job_can_be_dropped(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.configure(remote, push={"background": False})
    laptop.note(proj, "a.md", "note\n")
    laptop.end_session(proj)
    (job,) = laptop.status()["pending"]
    text = laptop.gitend("status").stdout
    assert job["id"] in text and "--drop" in text
    proc = laptop.gitend("status", "--drop", job["id"])
    assert proc.returncode == 0 and job["id"] in proc.stdout
    assert laptop.status()["pending"] == []
    missing = laptop.gitend("status", "--drop", "no-such-job")
    assert missing.returncode == 1 and "no-such-job" in missing.stderr


def test_13_17_turning_push_remote_off_cancels_queued_wip_pushes(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(repo))
    config_file = write(hermetic / ".config" / "gitend" / "config.yaml",
                        json.dumps({"snapshot": {"push_remote": "origin"}, "push": {"background": False}}))
    machine = Machine(hermetic)
    write(repo / "app.py", "work\n")
    machine.end_session(repo)
    assert len(machine.status()["pending"]) == 1
    config_file.write_text(json.dumps({"push": {"background": False}}))
    proc = machine.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(origin, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
    assert machine.status()["pending"] == [] and machine.status()["failed"] == []
    assert "push_remote" in proc.stdout
