"""SIGKILL at every git step: the hook and the worker lose nothing and leave nothing in the way.

The kills come from a `git` wrapper on PATH (testing/kill.py), so the product carries no
test hooks. Each run is counted first, then killed at step 1, 2, ... in each mode.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing.kill import MODES, Killer
from testing.machine import Machine, bare_remote
from testing.repo import git, gitend, hook, init_repo, payload, state, write

# -- the hook -------------------------------------------------------------------


def dirty_repo(path: Path) -> Path:
    """A repository with an earlier snapshot, then every kind of change on top of it."""
    repo = init_repo(path, {"a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n", "sub/d.txt": "d\n"})
    write(repo / "a.txt", "a2\n")
    hook(repo, session_id="earlier")
    write(repo / "b.txt", "b staged\n")
    git(repo, "add", "b.txt")
    write(repo / "b.txt", "b staged, then edited\n")
    (repo / "c.txt").unlink()
    write(repo / "sub" / "new.txt", "untracked\n")
    os.symlink("a.txt", repo / "link")
    (repo / "sub" / "d.txt").chmod(0o755)
    return repo


def wip(repo: Path, branch: str = "main") -> str:
    return git(repo, "rev-parse", f"refs/heads/wip/{branch}").strip()


def assert_no_missing_objects(repo: Path) -> None:
    proc = subprocess.run(["git", "fsck", "--no-dangling", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def assert_latest_snapshot_is_the_work_tree(repo: Path, earlier: str) -> None:
    tip = wip(repo)
    quiet = ["--no-optional-locks", "diff", "--quiet", "--no-ext-diff"]
    assert subprocess.run(["git", *quiet, tip, "--"], cwd=repo).returncode == 0, "work tree differs from the snapshot"
    assert subprocess.run(["git", *quiet, "--cached", f"{tip}^2", "--"], cwd=repo).returncode == 0, "index differs"
    untracked = git(repo, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
    assert git(repo, "ls-tree", "-r", "-z", "--name-only", f"{tip}^3").split("\0") == untracked
    assert subprocess.run(["git", "merge-base", "--is-ancestor", earlier, tip], cwd=repo).returncode == 0, \
        "the earlier snapshot is no longer reachable from the WIP branch"


def run_hook(repo: Path, env: dict[str, str], session_id: str) -> subprocess.CompletedProcess[str]:
    return gitend("hook", "--strict", cwd=repo, input=payload(repo, session_id=session_id), env=env)


def fresh_copy(template: Path, path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(template, path, symlinks=True)
    return path


@pytest.mark.parametrize("mode", MODES)
def test_hook_killed_at_every_git_step_loses_nothing(tmp_path: Path, mode: str) -> None:
    template = dirty_repo(tmp_path / "template")
    killer = Killer(tmp_path / "killer")
    counted = fresh_copy(template, tmp_path / "count")
    proc = run_hook(counted, killer.env(), "counting")
    assert proc.returncode == 0 and "saved 6 file(s)" in proc.stdout, proc.stdout + proc.stderr
    steps = killer.steps()
    assert len(steps) >= 10, steps  # find, refs, status, trees, commits, update-ref at least

    for step, (_, what) in enumerate(steps, start=1):
        where = f"killed {mode} step {step} (git {what[:60]})"
        repo = fresh_copy(template, tmp_path / "repo")
        before, earlier = state(repo), wip(repo)
        proc = run_hook(repo, killer.env(step, mode), f"killed-at-{step}")
        assert proc.returncode == -9, f"{where}: the hook was not killed: {proc.stdout}{proc.stderr}"
        killer.wait_for_orphans()
        assert state(repo) == before, f"{where}: the user's index, files, HEAD or refs changed"
        assert_no_missing_objects(repo)

        proc = run_hook(repo, {}, "next")
        assert proc.returncode == 0 and not proc.stderr, f"{where}: the next run failed: {proc.stderr}"
        assert not list((repo / ".git").glob("gitend-index.*")), f"{where}: a temporary index was left behind"
        assert state(repo) == before
        assert_latest_snapshot_is_the_work_tree(repo, earlier)
        assert_no_missing_objects(repo)


# -- the worker -----------------------------------------------------------------


class Sync:
    """A machine whose queue holds a memory job and a WIP-push job, with the dotfile remote
    ahead (another machine pushed), so the worker fetches, rebases in its private worktree
    and pushes. Built at a fixed path, so a copy of it works in the same place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.machine = Machine(root / "home")
        self.remote = root / "dots.git"
        self.origin = root / "project.git"
        self.project = root / "project"
        self.pushes = root / "pushes.log"

    def build(self) -> None:
        self.machine.home.mkdir(parents=True)
        bare_remote(self.remote)
        bare_remote(self.origin, {"app.py": "print('hi')\n"})
        for remote in (self.remote, self.origin):
            write(remote / "hooks" / "post-receive", f"#!/bin/sh\necho {remote.name} >> {self.pushes}\n", mode=0o755)
        git(self.root, "clone", "-q", str(self.origin), str(self.project))
        self.machine.configure(self.remote, push={"background": False}, snapshot={"push_remote": "origin"})
        self.machine.note(self.project, "a.md", "note from this machine\n")
        write(self.project / "app.py", "print('work in progress')\n")
        other = self.root / "other-machine"
        git(self.root, "clone", "-q", str(self.remote), str(other))
        write(other / "vimrc", "set number\n")
        git(other, "add", "vimrc")
        git(other, "commit", "-q", "-m", "vimrc from another machine")
        git(other, "push", "-q", "origin", "main")
        self.machine.end_session(self.project)
        self.pushes.write_text("")
        assert len(self.machine.status()["pending"]) == 2

    def worker(self, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
        self.machine.state.mkdir(parents=True, exist_ok=True)
        return subprocess.run([sys.executable, "-m", "gitend", "_worker"], cwd=self.machine.state,
                              env={**os.environ, **self.machine.env, **env}, capture_output=True, timeout=120)

    def assert_all_delivered_once(self, where: str) -> None:
        dots = self.machine.dots
        assert not (dots / ".git" / "rebase-merge").exists() and not (dots / ".git" / "rebase-apply").exists(), where
        assert git(dots, "worktree", "list", "--porcelain").count("worktree ") == 1, f"{where}: stray worktree"
        assert not any((self.machine.state / "worktrees").glob("*")), f"{where}: private worktree left"
        report = self.machine.status()
        assert report["pending"] == report["failed"] == report["held"] == [], f"{where}: {report}"
        notes = [line for line in git(self.remote, "ls-tree", "-r", "--name-only", "main").split()
                 if line.endswith("/a.md")]
        assert len(notes) == 1 and git(self.remote, "show", f"main:{notes[0]}") == "note from this machine\n", where
        assert not any(".conflict-" in line for line in git(self.remote, "ls-tree", "-r", "--name-only", "main"))
        # The manifest says what this machine last synced: a stale one turns the next edit into a conflict.
        manifests = [json.loads(path.read_text())["notes"] for path in (self.machine.state / "memory").glob("*.json")]
        digest = hashlib.sha256(b"note from this machine\n").hexdigest()
        assert [manifest.get("a.md") for manifest in manifests] == [digest], f"{where}: manifest {manifests}"
        subjects = git(self.remote, "log", "--format=%s", "main").splitlines()
        assert sum(s.startswith("memory:") for s in subjects) == 1, f"{where}: duplicate commits: {subjects}"
        assert "vimrc from another machine" in subjects
        assert git(dots, "rev-parse", "HEAD") == git(self.remote, "rev-parse", "main"), f"{where}: checkout behind"
        assert git(dots, "status", "--porcelain") == "", where
        pushed = git(self.origin, "for-each-ref", "--format=%(objectname)", "refs/heads/wip/")
        assert pushed.strip() == wip(self.project), f"{where}: WIP branch not pushed"
        for repo in (dots, self.remote, self.project, self.origin):
            assert_no_missing_objects(repo)


@pytest.fixture
def sync_template(tmp_path: Path) -> tuple[Sync, Path]:
    sync = Sync(tmp_path / "sync")
    sync.build()
    template = tmp_path / "sync-template"
    shutil.copytree(sync.root, template, symlinks=True)
    return sync, template


SHARDS = 4


def kill_worker_at(sync: Sync, template: Path, killer: Killer, step: int, mode: str, what: str) -> None:
    where = f"worker killed {mode} step {step} (git {what[:70]})"
    fresh_copy(template, sync.root)
    proc = sync.worker(killer.env(step, mode))
    assert proc.returncode == -9, f"{where}: not killed: {proc.stderr.decode()}"
    killer.wait_for_orphans()
    report = sync.machine.status()
    assert report["pending"] or report["failed"], f"{where}: the jobs did not survive the kill"
    proc = sync.machine.gitend("push")
    assert proc.returncode == 0, f"{where}: gitend push failed: {proc.stdout}{proc.stderr}"
    sync.assert_all_delivered_once(where)


def sync_steps(sync: Sync, killer: Killer) -> list[tuple[int, str]]:
    """Every git step of one uninterrupted sync (on the copy in place, which it then uses up)."""
    proc = sync.worker(killer.env())
    assert proc.returncode == 0, proc.stderr
    steps = killer.steps()
    sync.assert_all_delivered_once("uninterrupted")
    assert sync.pushes.read_text().split() == ["dots.git", "project.git"]
    assert len(steps) >= 30, steps  # mirror, commit, fetch, rebase in a worktree, push, WIP push
    return steps


@pytest.mark.parametrize("shard", range(SHARDS))
def test_worker_killed_at_every_git_step_delivers_everything_once(sync_template: tuple[Sync, Path],
                                                                  shard: int) -> None:
    """Every git step of a sync, each killed in one of the modes (in turn)."""
    sync, template = sync_template
    killer = Killer(sync.root.parent / "killer")
    for step, (_, what) in enumerate(sync_steps(sync, killer), start=1):
        if (step - 1) % SHARDS == shard:
            kill_worker_at(sync, template, killer, step, MODES[step % len(MODES)], what)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_worker_killed_in_every_mode_at_every_git_step(sync_template: tuple[Sync, Path], mode: str) -> None:
    sync, template = sync_template
    killer = Killer(sync.root.parent / "killer")
    for step, (_, what) in enumerate(sync_steps(sync, killer), start=1):
        kill_worker_at(sync, template, killer, step, mode, what)
