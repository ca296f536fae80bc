"""Faults: a full disk, read-only objects, a corrupt index, a HEAD on no branch, a dotfile repo
mid-rebase, remotes that refuse. Each says what went wrong in one line, `gitend status` tells
the truth, and nothing is lost."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from testing.faults import read_only, small_disk
from testing.kill import Killer
from testing.machine import Machine, bare_remote, project
from testing.repo import files_of, git, gitend, hook, init_repo, payload, state, write


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The hook exited 0 and said why in exactly one line, with no traceback."""
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def ref(repo: Path, name: str) -> str | None:
    proc = subprocess.run(["git", "rev-parse", "-q", "--verify", name], cwd=repo, capture_output=True, text=True)
    return proc.stdout.strip() or None


def fsck(repo: Path) -> None:
    proc = subprocess.run(["git", "fsck", "--no-dangling", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def no_temporary_index(repo: Path) -> bool:
    return not list((repo / ".git").glob("gitend-index.*"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one snapshot already on wip/main, and more work since."""
    repo = init_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n"})
    write(repo / "a.txt", "first edit\n")
    hook(repo, session_id="earlier")
    write(repo / "b.txt", "second edit\n")
    git(repo, "add", "b.txt")
    write(repo / "new.txt", "untracked\n")
    return repo


# -- the repository ------------------------------------------------------------------


def test_disk_full_while_writing_the_snapshot(repo: Path) -> None:
    write(repo / "big.bin", os.urandom(3 << 20))  # random, so it does not compress below the disk
    before, earlier = state(repo), ref(repo, "wip/main")
    with small_disk(repo / ".git" / "objects", "2m") as disk:
        proc = hook(repo, session_id="small disk")  # what would not fit is left out, the rest saved
        assert "saved 3 file(s)" in proc.stdout and ref(repo, "wip/main^4") == earlier
        assert "big.bin" not in git(repo, "ls-tree", "--name-only", "wip/main^3")
        assert "not enough free disk space" in git(repo, "log", "-1", "--format=%B", "wip/main")
        earlier = ref(repo, "wip/main")
        write(repo / "b.txt", "third edit\n")
        git(repo, "add", "b.txt")
        before = state(repo)
        disk.fill()
        proc = gitend("hook", cwd=repo, input=payload(repo))
        one_line_error(proc, "No space left on device")
        assert state(repo) == before and ref(repo, "wip/main") == earlier and no_temporary_index(repo)
        assert not list((repo / ".git" / "objects").glob("gitend-incoming.*"))
        assert gitend("hook", "--strict", cwd=repo, input=payload(repo)).returncode == 1
        disk.grow()
        proc = hook(repo, session_id="after")
        assert "saved 4 file(s)" in proc.stdout
        assert ref(repo, "wip/main^4") == earlier
        assert "big.bin" in git(repo, "ls-tree", "--name-only", "wip/main^3")
        assert state(repo) == before
        fsck(repo)


def test_read_only_objects(repo: Path) -> None:
    before, earlier = state(repo), ref(repo, "wip/main")
    with read_only(repo / ".git" / "objects"):
        one_line_error(gitend("hook", cwd=repo, input=payload(repo)), "Read-only file system")
        assert state(repo) == before and ref(repo, "wip/main") == earlier and no_temporary_index(repo)
    hook(repo, session_id="after")
    assert ref(repo, "wip/main^4") == earlier
    fsck(repo)


@pytest.mark.parametrize("damage", ["random bytes", "cut in half", "garbage entries"])
def test_corrupt_index_is_reported_and_left_alone(repo: Path, damage: str) -> None:
    index = repo / ".git" / "index"
    data = index.read_bytes()
    index.write_bytes({"random bytes": os.urandom(len(data)), "cut in half": data[:len(data) // 2],
                       "garbage entries": data[:40] + b"\0garbage" * 8}[damage])
    before = index.read_bytes(), files_of(repo), ref(repo, "wip/main")
    one_line_error(gitend("hook", cwd=repo, input=payload(repo)), f"the index {index} is corrupt")
    assert (index.read_bytes(), files_of(repo), ref(repo, "wip/main")) == before
    assert no_temporary_index(repo)


def test_disk_full_for_the_temporary_index(repo: Path) -> None:
    before, earlier = state(repo), ref(repo, "wip/main")
    with small_disk(repo / ".git", "1m") as disk:
        disk.fill()
        one_line_error(gitend("hook", cwd=repo, input=payload(repo)), "No space left on device")
        assert state(repo) == before and ref(repo, "wip/main") == earlier and no_temporary_index(repo)
        disk.grow()
        hook(repo, session_id="after")
    assert ref(repo, "wip/main^4") == earlier
    fsck(repo)


def test_read_only_git_dir(repo: Path) -> None:
    before, earlier = state(repo), ref(repo, "wip/main")
    with read_only(repo / ".git"):
        one_line_error(gitend("hook", cwd=repo, input=payload(repo)), "Read-only file system")
        assert state(repo) == before and ref(repo, "wip/main") == earlier
    hook(repo, session_id="after")
    assert ref(repo, "wip/main^4") == earlier


def test_head_naming_a_branch_that_does_not_exist_still_saves(repo: Path) -> None:
    git(repo, "symbolic-ref", "HEAD", "refs/heads/gone")
    before = state(repo)
    proc = hook(repo)
    assert "saved" in proc.stdout and "wip/gone" in proc.stdout
    assert state(repo) == before
    # As git itself sees it: a branch with no commits yet, everything in the index staged.
    assert "Gitend-Base: none" in git(repo, "log", "-1", "--format=%B", "wip/gone")
    assert git(repo, "ls-tree", "-r", "--name-only", "wip/gone^2").split() == ["a.txt", "b.txt"]
    assert git(repo, "ls-tree", "-r", "--name-only", "wip/gone^3").split() == ["new.txt"]
    assert ref(repo, "wip/main") and ref(repo, "main")


# -- the queue and the worker ------------------------------------------------------------


@pytest.fixture
def proj(tmp_path: Path, laptop: Machine) -> Path:
    proj = project(tmp_path / "project")
    laptop.note(proj, "a.md", "a note worth keeping\n")
    write(proj / "app.py", "print('work in progress')\n")
    return proj


def remote_notes(remote: Path) -> dict[str, str]:
    names = [n for n in git(remote, "ls-tree", "-r", "--name-only", "main").split() if n.startswith("claude/")]
    return {Path(n).name: git(remote, "show", f"main:{n}") for n in names}


def status_text(machine: Machine) -> str:
    proc = machine.gitend("status")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_disk_full_while_writing_a_queue_file(laptop: Machine, remote: Path, proj: Path) -> None:
    with small_disk(laptop.state, "1m") as disk:
        disk.fill()
        proc = laptop.gitend("hook", cwd=proj, input=payload(proj))
        line = one_line_error(proc, "could not queue the background sync", "No space left on device")
        assert "is the disk full?" in line
        assert ref(proj, "wip/main"), "the snapshot does not need the state folder"
        assert not list((laptop.state / "queue").glob("*")), "half-written job files were left"
        report = laptop.status()
        assert report["pending"] == report["failed"] == []
        disk.grow()
        laptop.end_session(proj, session_id="next")
        laptop.wait_for_worker()
    assert remote_notes(remote) == {"a.md": "a note worth keeping\n"}


def dotfile_rebase_stopped_on_a_conflict(laptop: Machine, remote: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    write(other / "vimrc", "set number\n")
    git(other, "add", "vimrc")
    git(other, "commit", "-q", "-m", "vimrc there")
    git(other, "push", "-q", "origin", "main")
    write(laptop.dots / "vimrc", "set nonumber\n")
    git(laptop.dots, "add", "vimrc")
    git(laptop.dots, "commit", "-q", "-m", "vimrc here")
    proc = subprocess.run(["git", "pull", "-q", "--rebase"], cwd=laptop.dots, capture_output=True, text=True)
    assert proc.returncode != 0 and (laptop.dots / ".git" / "rebase-merge").is_dir(), proc.stderr


def test_dotfile_repo_left_mid_rebase_by_the_user(laptop: Machine, remote: Path, proj: Path, tmp_path: Path) -> None:
    dotfile_rebase_stopped_on_a_conflict(laptop, remote, tmp_path)
    before = state(laptop.dots)
    laptop.end_session(proj)
    laptop.wait_for_worker()
    assert state(laptop.dots) == before and (laptop.dots / ".git" / "rebase-merge").is_dir()
    [failed] = laptop.status()["failed"]
    assert "\n" not in failed["last_error"] and "in the middle of a rebase" in failed["last_error"]
    assert "failed" in status_text(laptop) and "rebase --abort" in status_text(laptop)

    write(laptop.dots / "vimrc", "set number\n")  # the user resolves and finishes the rebase
    git(laptop.dots, "add", "vimrc")
    subprocess.run(["git", "-c", "core.editor=true", "rebase", "--continue"], cwd=laptop.dots, check=True,
                   capture_output=True)
    proc = laptop.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert remote_notes(remote) == {"a.md": "a note worth keeping\n"}
    assert laptop.status()["failed"] == []


def refusing_hook(remote: Path, script: str) -> Path:
    return write(remote / "hooks" / "pre-receive", f"#!/bin/sh\n{script}\n", mode=0o755)


GH013 = """cat >&2 <<'EOF'
error: GH013: Repository rule violations found for refs/heads/main.
- GITHUB PUSH PROTECTION
  Resolve the following violations before pushing again
  - Push cannot contain secrets
EOF
exit 1"""


@pytest.mark.parametrize(("script", "expected"), [
    ("echo 'refusing: the dotfile repo is frozen until Monday' >&2; exit 1", "frozen until Monday"),
    ("exit 1", "refs/heads/main [remote rejected] (pre-receive hook declined)"),
])
def test_remote_hook_refuses_the_push(laptop: Machine, remote: Path, proj: Path, script: str, expected: str) -> None:
    hook_file = refusing_hook(remote, script)
    laptop.end_session(proj)
    laptop.wait_for_worker()
    [failed] = laptop.status()["failed"]
    assert "\n" not in failed["last_error"] and expected in failed["last_error"], failed["last_error"]
    assert failed["attempts"] == 1 and failed["retry_in_s"] > 0
    assert expected in status_text(laptop)
    assert remote_notes(remote) == {}
    assert "memory:" in git(laptop.dots, "log", "-1", "--format=%s"), "the local commit must stay"

    hook_file.unlink()
    proc = laptop.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert remote_notes(remote) == {"a.md": "a note worth keeping\n"}
    assert laptop.status()["failed"] == []


def test_push_protection_text_holds_the_push(laptop: Machine, remote: Path, proj: Path) -> None:
    refusing_hook(remote, GH013)
    laptop.end_session(proj)
    laptop.wait_for_worker()
    report = laptop.status()
    [held] = report["held"]
    assert report["failed"] == [] and "push protection" in held["held"] and "\n" not in held["held"]
    assert "gitend review" in status_text(laptop)
    assert remote_notes(remote) == {}
    assert "memory:" in git(laptop.dots, "log", "-1", "--format=%s")
    assert laptop.gitend("push").returncode == 0
    assert laptop.status()["held"] and remote_notes(remote) == {}, "a held job waits for `gitend review`"


def other_machine_pushes(remote: Path, tmp_path: Path, once: bool) -> str:
    """A shell command: another clone of the dotfile remote commits and pushes (once, or every time)."""
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    marker = tmp_path / "pushed-once"
    guard = f"[ -e {marker} ] && exit 0; touch {marker}; " if once else ""
    return (f"{guard}cd {other} && unset GIT_DIR GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY "
            "GIT_ALTERNATE_OBJECT_DIRECTORIES && date +%s%N >> vimrc && git add vimrc && "
            "git commit -q -m 'vimrc from the other machine' && git push -q origin main")


def end_session_with(machine: Machine, proj: Path, env: dict[str, str]) -> None:
    proc = gitend("hook", "--strict", cwd=proj, input=payload(proj), env={**machine.env, **env})
    assert proc.returncode == 0, proc.stderr
    machine.wait_for_worker()


def assert_delivered_after(remote: Path, other_commits: int) -> None:
    subjects = git(remote, "log", "--format=%s", "main").splitlines()
    assert subjects[0].startswith("memory:") and subjects.count("vimrc from the other machine") == other_commits
    assert remote_notes(remote) == {"a.md": "a note worth keeping\n"}


def test_remote_moving_between_fetch_and_push_is_fetched_and_pushed_again(
    laptop: Machine, remote: Path, proj: Path, tmp_path: Path
) -> None:
    killer = Killer(tmp_path / "wrapper")
    end_session_with(laptop, proj, killer.interpose("push", other_machine_pushes(remote, tmp_path, once=True)))
    report = laptop.status()
    assert report["failed"] == report["pending"] == [], report
    assert_delivered_after(remote, 1)


def test_remote_moving_during_the_push_is_fetched_and_pushed_again(
    laptop: Machine, remote: Path, proj: Path, tmp_path: Path
) -> None:
    """Another push lands while gitend's is being received: the remote says "cannot lock ref"."""
    refusing_hook(remote, other_machine_pushes(remote, tmp_path, once=True))
    laptop.end_session(proj)
    laptop.wait_for_worker()
    report = laptop.status()
    assert report["failed"] == report["pending"] == [], report
    assert_delivered_after(remote, 1)


def test_remote_that_keeps_moving_fails_clearly_and_keeps_the_job(
    laptop: Machine, remote: Path, proj: Path, tmp_path: Path
) -> None:
    killer = Killer(tmp_path / "wrapper")
    end_session_with(laptop, proj, killer.interpose("push", other_machine_pushes(remote, tmp_path, once=False)))
    [failed] = laptop.status()["failed"]
    assert failed["last_error"] == "origin kept moving while pushing the dotfile repo; gitend will retry"
    assert "kept moving" in status_text(laptop)
    assert remote_notes(remote) == {}
    proc = laptop.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_delivered_after(remote, 3)


def test_wip_push_refused_keeps_the_branch_and_the_job(hermetic: Path, tmp_path: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(repo))
    write(hermetic / ".config" / "gitend" / "config.yaml", json.dumps({"snapshot": {"push_remote": "origin"}}))
    refusing_hook(origin, "echo 'wip branches are not allowed here' >&2; exit 1")
    machine = Machine(hermetic)
    write(repo / "app.py", "work\n")
    machine.end_session(repo)
    machine.wait_for_worker()
    [failed] = machine.status()["failed"]
    assert "wip branches are not allowed here" in failed["last_error"] and "\n" not in failed["last_error"]
    snapshot = ref(repo, "wip/main")
    assert snapshot and git(origin, "for-each-ref", "refs/heads/wip/") == ""
    (origin / "hooks" / "pre-receive").unlink()
    assert machine.gitend("push").returncode == 0
    assert git(origin, "for-each-ref", "--format=%(objectname)", "refs/heads/wip/").strip() == snapshot
