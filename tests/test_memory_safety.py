"""Memory sync against hostile repositories, odd machines and interrupted runs (issues 12 and 13),
black-box: through `gitend hook`, the worker, `gitend memory pull` and `gitend status`."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.faults import small_disk
from testing.machine import Machine, project, remote_file
from testing.repo import git, init_repo, payload, write

FOLDER = "claude/memory/github.com+someone+project"


def remote_tree(remote: Path, under: str = "claude/memory") -> list[str]:
    return git(remote, "ls-tree", "-r", "--name-only", "main", "--", under).split()


# -- 12.1: a settings file git tracks is not the user's ------------------------------------


@pytest.mark.parametrize("how", ["committed", "staged"])
def test_12_1_tracked_settings_local_never_redirects_memory_sync(
        laptop: Machine, remote: Path, proj: Path, how: str) -> None:
    write(laptop.home / "notes" / "diary.md", "my private diary\n")
    write(proj / ".claude" / "settings.local.json", json.dumps({"autoMemoryDirectory": "~/notes"}))
    git(proj, "add", "-f", ".claude/settings.local.json")
    if how == "committed":
        git(proj, "commit", "-q", "-m", "the clone's settings")
    laptop.note(proj, "real.md", "the real note\n")
    laptop.sync(proj)
    tree = remote_tree(remote)
    assert f"{FOLDER}/real.md" in tree
    assert not any("diary" in path for path in tree), tree
    assert not any("diary" in str(p) for p in laptop.dots.rglob("*"))


def test_12_1_untracked_settings_local_is_the_users_own(laptop: Machine, remote: Path, proj: Path) -> None:
    mine = laptop.home / "my-memory"
    write(mine / "chosen.md", "from the folder I chose\n")
    write(proj / ".claude" / "settings.local.json", json.dumps({"autoMemoryDirectory": str(mine)}))
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/chosen.md") == "from the folder I chose\n"


@pytest.mark.parametrize("where", ["home", "projects"])
def test_12_1_auto_memory_directory_must_look_like_a_memory_folder(
        laptop: Machine, remote: Path, proj: Path, where: str) -> None:
    """Even the user's own setting: never ~ and never a folder that holds other projects."""
    other = init_repo(laptop.home / "src" / "other", {"README.md": "another project\n", "docs/plan.md": "plan\n"})
    write(laptop.home / "src" / "loose.md", "a file beside the projects\n")
    value = "~" if where == "home" else "~/src"
    write(laptop.home / ".claude" / "settings.json", json.dumps({"autoMemoryDirectory": value}))
    laptop.sync(proj)
    tree = remote_tree(remote)
    assert not any(path.endswith(("plan.md", "README.md", "loose.md")) for path in tree), tree
    assert (other / "docs" / "plan.md").read_text() == "plan\n"


def _limited() -> None:
    # Old code read /dev/zero until memory ran out: cap it, so that shows as a failure, not an OOM.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/stdin"])
def test_12_1_settings_that_are_not_a_regular_file_are_never_read(
        laptop: Machine, remote: Path, proj: Path, device: str) -> None:
    (proj / ".claude").mkdir()
    (proj / ".claude" / "settings.local.json").symlink_to(device)
    laptop.note(proj, "real.md", "the real note\n")
    env = {**os.environ, **laptop.env}
    proc = subprocess.Popen([sys.executable, "-m", "gitend", "hook", "--strict"], cwd=proj, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_limited)
    assert proc.stdin and proc.stderr
    proc.stdin.write(payload(proj))
    proc.stdin.flush()  # and left open: a read of /dev/stdin would wait for it forever
    try:
        _, status, usage = os.wait4(proc.pid, 0) if _exits_within(proc, 20) else (0, -1, None)
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 0, proc.stderr.read()
    assert usage is not None and usage.ru_maxrss < 300_000, usage  # KiB
    laptop.wait_for_worker()
    assert remote_file(remote, f"{FOLDER}/real.md") == "the real note\n"


def _exits_within(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.02)
    return False


# -- 12.7: no write into the dotfile repo follows a symlink --------------------------------


@pytest.mark.parametrize("link", ["claude", "claude/memory", FOLDER])
def test_12_7_symlinked_dotfile_folder_is_refused(tmp_path: Path, link: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    seed = init_repo(tmp_path / "evil-seed", {"README.md": "dotfiles\n"})
    (seed / link).parent.mkdir(parents=True, exist_ok=True)
    (seed / link).symlink_to(outside)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "a symlink where gitend writes")
    remote = tmp_path / "evil.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(remote))
    laptop = Machine.create(tmp_path / "home", remote)
    proj = project(tmp_path / "project")
    laptop.note(proj, "a.md", "my note\n")
    laptop.sync(proj)
    assert list(outside.rglob("*")) == []
    report = laptop.status()
    assert not (report["last"][0]["ok"] and not report["failed"]), report
    assert "symlink" in json.dumps(report), report


# -- 13.3: a project key unique per project; a clone never deletes another's notes ----------


def test_13_3_two_clones_of_one_origin_never_delete_each_others_notes(
        laptop: Machine, remote: Path, tmp_path: Path) -> None:
    app = project(laptop.home / "app")
    review = project(laptop.home / "app-review")
    laptop.note(app, "from-app.md", "written in ~/app\n")
    laptop.note(review, "from-review.md", "written in ~/app-review\n")
    laptop.sync(app)
    laptop.sync(review)
    laptop.sync(app)
    laptop.sync(review)
    assert remote_file(remote, f"{FOLDER}/from-app.md") == "written in ~/app\n"
    assert remote_file(remote, f"{FOLDER}/from-review.md") == "written in ~/app-review\n"


def test_13_3_paths_that_differ_in_plus_and_minus_are_two_projects(laptop: Machine, remote: Path,
                                                                  tmp_path: Path) -> None:
    plus = init_repo(tmp_path / "x" / "b+c")
    minus = init_repo(tmp_path / "x" / "b-c")
    # Claude Code's own folder names are the same for both (-x-b-c): each chose a folder of its own.
    for repo, name in ((plus, "plus"), (minus, "minus")):
        write(tmp_path / f"notes-{name}" / "n.md", f"the {name} project\n")
        write(repo / ".claude" / "settings.local.json",
              json.dumps({"autoMemoryDirectory": str(tmp_path / f"notes-{name}")}))
    laptop.sync(plus)
    laptop.sync(minus)
    laptop.sync(plus)
    tree = remote_tree(remote)
    assert {remote_file(remote, path) for path in tree} == {"the plus project\n", "the minus project\n"}, tree
    assert len({path.rsplit("/", 1)[0] for path in tree}) == 2, tree


# -- 13.4: pull decides by content, never by clocks ------------------------------------------


def test_13_4_pull_never_overwrites_an_unsynced_local_edit_whatever_the_clocks(
        laptop: Machine, remote: Path, proj: Path, tmp_path: Path) -> None:
    laptop.note(proj, "n.md", "from the laptop\n")
    laptop.sync(proj)
    fresh = Machine.create(tmp_path / "new-machine", remote)
    there = project(tmp_path / "new-machine" / "project")
    mine = fresh.note(there, "n.md", "written here, never synced\n")
    os.utime(mine, (946684800, 946684800))  # this machine's clock was behind (year 2000)
    proc = fresh.gitend("memory", "pull", "-C", str(there))
    assert proc.returncode == 0, proc.stderr
    assert mine.read_text() == "written here, never synced\n"
    texts = {p.read_text() for p in fresh.memory_folder(there).rglob("*.md")}
    assert texts == {"written here, never synced\n", "from the laptop\n"}, texts  # both, where Claude looks


def one_note_on_two_machines(tmp_path: Path, remote: Path) -> tuple[Machine, Machine, Path, Path]:
    """Machines A and B, and their checkouts of one project: A wrote shared.md (v1) and synced, B pulled it."""
    a = Machine.create(tmp_path / "a-home", remote)
    b = Machine.create(tmp_path / "b-home", remote)
    on_a, on_b = project(tmp_path / "a-home" / "project"), project(tmp_path / "b-home" / "project")
    a.note(on_a, "shared.md", "v1\n")
    a.sync(on_a)
    assert b.gitend("memory", "pull", "-C", str(on_b)).returncode == 0
    return a, b, on_a, on_b


def test_13_4_pull_after_two_machines_edited_one_note_keeps_both_on_the_last_editor(
        tmp_path: Path, remote: Path) -> None:
    a, b, on_a, on_b = one_note_on_two_machines(tmp_path, remote)
    a.note(on_a, "shared.md", "v2 from A\n")
    a.sync(on_a)
    b.note(on_b, "shared.md", "v2 from B, edited last\n")
    b.sync(on_b)
    proc = b.gitend("memory", "pull", "-C", str(on_b))
    assert proc.returncode == 0, proc.stderr
    texts = {p.read_text() for p in b.memory_folder(on_b).rglob("*.md")}
    assert {"v2 from A\n", "v2 from B, edited last\n"} <= texts, texts
    # And pulling again, or the next session end, changes nothing and loses nothing.
    assert b.gitend("memory", "pull", "-C", str(on_b)).returncode == 0
    b.sync(on_b)
    versions = {remote_file(remote, p) for p in remote_tree(remote) if "shared" in p}
    assert versions == {"v2 from A\n", "v2 from B, edited last\n"}, versions


# -- 13.5: what an interrupted run copied never brings a deleted note back --------------------


def test_13_5_a_note_deleted_after_a_failed_run_does_not_come_back(
        laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.note(proj, "keep.md", "kept\n")
    laptop.sync(proj)
    doomed = laptop.note(proj, "doomed.md", "delete me later\n")
    (laptop.state / "memory").mkdir(parents=True, exist_ok=True)
    with small_disk(laptop.state / "memory", "1m") as disk:  # where gitend records what it mirrored
        disk.fill()
        laptop.sync(proj)
        assert laptop.status()["failed"], laptop.status()
        disk.grow()
    doomed.unlink()
    laptop.gitend("push")
    laptop.sync(proj, session_id="s2")
    assert remote_file(remote, f"{FOLDER}/doomed.md") is None, remote_tree(remote)
    assert remote_file(remote, f"{FOLDER}/keep.md") == "kept\n"


# -- 13.7: only gitend's own worktrees of the dotfile repo are pruned --------------------------


def test_13_7_the_users_own_worktree_of_the_dotfile_repo_is_never_pruned(
        laptop: Machine, remote: Path, proj: Path, tmp_path: Path) -> None:
    other = Machine.create(tmp_path / "other-home", remote)
    git(laptop.dots, "worktree", "add", "-q", "-b", "side", str(tmp_path / "usb" / "dots-side"))
    os.rename(tmp_path / "usb", tmp_path / "usb-unmounted")  # a disk that is not mounted today
    # Another machine pushes first, so this one rebases (in a worktree of its own) before pushing.
    other_proj = project(tmp_path / "other-home" / "project")
    other.note(other_proj, "o.md", "from the other machine\n")
    other.sync(other_proj)
    laptop.note(proj, "a.md", "a\n")
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/a.md") == "a\n"
    assert (laptop.dots / ".git" / "worktrees" / "dots-side").is_dir()
    os.rename(tmp_path / "usb-unmounted", tmp_path / "usb")
    assert "side" in git(tmp_path / "usb" / "dots-side", "branch", "--show-current")


# -- 13.9: one project never blocks another -------------------------------------------------


def test_13_9_a_deep_gitlab_path_syncs_and_never_blocks_other_projects(
        laptop: Machine, remote: Path, proj: Path, tmp_path: Path) -> None:
    groups = "/".join(f"group-{i:02d}-with-a-rather-long-name" for i in range(12))
    deep = project(tmp_path / "deep", origin=f"git@gitlab.com:{groups}/project.git")
    laptop.note(deep, "deep.md", "from the deep project\n")
    laptop.note(proj, "plain.md", "from the plain project\n")
    laptop.end_session(deep)
    laptop.end_session(proj)
    laptop.wait_for_worker()
    assert remote_file(remote, f"{FOLDER}/plain.md") == "from the plain project\n"
    deep_notes = [p for p in remote_tree(remote) if p.endswith("/deep.md")]
    assert len(deep_notes) == 1, remote_tree(remote)
    assert all(len(part.encode()) <= 255 for part in deep_notes[0].split("/"))
    assert laptop.status()["failed"] == []


def test_13_9_one_projects_failure_never_stops_anothers(laptop: Machine, remote: Path, proj: Path,
                                                        tmp_path: Path) -> None:
    odd = tmp_path / "odd-notes"
    init_repo(odd / "inner")  # a folder that holds a git repository
    write(odd / "n.md", "a note\n")
    # Both jobs in one run of `gitend push`; a user-wide extra folder that fails too.
    laptop.configure(remote, push={"background": False}, memory={"extra": [str(odd)]})
    broken = project(tmp_path / "broken", origin="git@github.com:someone/broken.git")
    write(broken / ".claude" / "settings.local.json", json.dumps({"autoMemoryDirectory": str(odd)}))
    laptop.note(proj, "plain.md", "from the plain project\n")
    laptop.end_session(broken)
    laptop.end_session(proj)
    proc = laptop.gitend("push")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert remote_file(remote, f"{FOLDER}/plain.md") == "from the plain project\n"
    failed = laptop.status()["failed"]
    assert [job["data"]["project_root"] for job in failed] == [str(broken)], failed
    assert "does not look like a folder of memory notes" in failed[0]["last_error"]
    last = laptop.status()["last"][0]
    assert not last["ok"] and "memory.extra: failed" in last["summary"] and "pushed" in last["summary"], last


# -- 13.16: conflicts stay visible; a new, empty dotfile remote -------------------------------


def test_13_16_conflict_notice_stays_in_status_until_resolved(tmp_path: Path, remote: Path) -> None:
    a, b, on_a, on_b = one_note_on_two_machines(tmp_path, remote)
    a.note(on_a, "shared.md", "v2 from A\n")
    b.note(on_b, "shared.md", "v2 from B\n")
    a.sync(on_a)
    b.sync(on_b)
    b.note(on_b, "other.md", "an unrelated note\n")
    b.sync(on_b, session_id="s2")  # the next session end: nothing was resolved
    a.sync(on_a, session_id="s3")
    for machine in (b, a):
        shown = machine.gitend("status")
        assert any(line.startswith("conflict") and "shared" in line for line in shown.stdout.splitlines()), shown.stdout
        assert any("shared" in str(c) for c in machine.status()["conflicts"]), machine.status()
    # Resolved on B, where both versions are: merged into the note, the copy deleted.
    assert b.gitend("memory", "pull", "-C", str(on_b)).returncode == 0
    copies = list(b.memory_folder(on_b).glob("shared.conflict-*.md"))
    assert len(copies) == 1, copies
    copies[0].unlink()
    b.note(on_b, "shared.md", "v3, merged\n")
    b.sync(on_b, session_id="s4")
    a.sync(on_a, session_id="s5")
    for machine in (b, a):
        assert machine.status()["conflicts"] == [], machine.status()
        assert not any(line.startswith("conflict") for line in machine.gitend("status").stdout.splitlines())


def test_13_16_second_machine_pulls_from_a_new_empty_dotfile_remote(tmp_path: Path) -> None:
    remote = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    a = Machine.create(tmp_path / "a-home", remote)
    b = Machine.create(tmp_path / "b-home", remote)  # both cloned the empty remote
    on_a, on_b = project(tmp_path / "a-home" / "project"), project(tmp_path / "b-home" / "project")
    a.note(on_a, "n.md", "from A\n")
    a.sync(on_a)
    assert remote_file(remote, f"{FOLDER}/n.md") == "from A\n"
    proc = b.gitend("memory", "pull", "-C", str(on_b))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (b.memory_folder(on_b) / "n.md").read_text() == "from A\n"
    b.note(on_b, "m.md", "from B\n")
    b.sync(on_b)
    assert remote_file(remote, f"{FOLDER}/m.md") == "from B\n"
    assert remote_file(remote, f"{FOLDER}/n.md") == "from A\n"


# -- the one function a new machine's SessionStart calls ------------------------------------


def test_13_4_memsync_pull_brings_notes_to_a_new_machine_without_network(
        laptop: Machine, remote: Path, proj: Path) -> None:
    from gitend import config, lock, memsync, paths

    laptop.note(proj, "a.md", "synced\n")
    laptop.sync(proj)
    folder = laptop.memory_folder(proj)
    (folder / "a.md").unlink()
    folder.rmdir()
    os.rename(remote, remote.with_name("gone.git"))  # no network: only the local clone is read
    settings = config.load(None).memory
    # Deleted here since it was synced: not brought back (the next session end deletes it there).
    assert memsync.pull(settings, proj).copied == ()
    for manifest in (laptop.state / "memory").glob("*.json"):
        manifest.unlink()  # a new machine: nothing synced from here yet
    assert memsync.pull(settings, proj) == memsync.PullResult(("a.md",), ())
    assert (folder / "a.md").read_text() == "synced\n"
    with pytest.raises(memsync.NoNotes):
        memsync.pull(settings, project(proj.parent / "other", origin="git@github.com:someone/other.git"))
    with lock.held(paths.repo_lock(laptop.dots / ".git"), timeout=0, what="test"), pytest.raises(lock.Busy):
        memsync.pull(settings, proj, lock_timeout=0)
