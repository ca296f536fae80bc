"""Memory sync and pushes: the hook only queues; a detached worker commits, syncs and pushes."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from gitend import config, dotfiles, files, memsync
from testing.machine import Machine, bare_remote, encoded, project, remote_file, slow_pre_receive
from testing.repo import git, gitend, payload, write

FOLDER = "claude/memory/github.com+someone+project"
TOKEN = "ghp_R8x2Kq9ZtLm4Vb7Nc1Hd5Jf3Gs6Wp0Ya2Eu8"  # fake, fails GitHub's checksum
SECRET_NOTE = f"The CI uses the token {TOKEN}.\n"
REDACTED_NOTE = SECRET_NOTE.replace(TOKEN, "[REDACTED:github-token]")



def remote_log(remote: Path) -> list[str]:
    return git(remote, "log", "--format=%s", "main").splitlines()


def test_hook_returns_at_once_and_the_note_arrives_later(laptop: Machine, remote: Path, proj: Path) -> None:
    push_s = 5
    slow_pre_receive(remote, push_s)
    laptop.note(proj, "MEMORY.md", "- [Testing](testing.md) - how to run the tests\n")
    laptop.note(proj, "testing.md", "---\nname: testing\n---\nRun pytest -n 2.\n")
    proc = laptop.end_session(proj)
    # Measured against the push it must not wait for, not an absolute time a busy machine misses.
    assert proc.elapsed < push_s / 2, proc.elapsed  # type: ignore[attr-defined]
    assert remote_file(remote, f"{FOLDER}/testing.md") is None  # not yet: the push takes 5 s
    laptop.wait_for_worker(timeout=60)
    assert remote_file(remote, f"{FOLDER}/testing.md") == "---\nname: testing\n---\nRun pytest -n 2.\n"
    assert (laptop.dots / FOLDER / "MEMORY.md").exists()
    last = laptop.status()["last"][0]
    assert last["ok"] and "pushed to origin" in last["summary"]


def test_clear_pushes_nothing_and_the_next_session_end_pushes_it(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.note(proj, "a.md", "first note\n")
    laptop.sync(proj, reason="clear")
    assert remote_file(remote, f"{FOLDER}/a.md") is None
    assert (laptop.dots / FOLDER / "a.md").read_text() == "first note\n"  # committed locally
    assert "memory: github.com/someone/project" in git(laptop.dots, "log", "-1", "--format=%s")
    laptop.sync(proj, reason="logout")
    assert remote_file(remote, f"{FOLDER}/a.md") == "first note\n"


def test_unreachable_remote_stays_queued_and_push_delivers_later(laptop: Machine, remote: Path, proj: Path) -> None:
    moved = remote.with_name("moved.git")
    os.rename(remote, moved)
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    report = laptop.status()
    assert len(report["failed"]) == 1
    failed = report["failed"][0]
    assert failed["attempts"] == 1
    assert failed["last_error"].startswith("git fetch failed: ") and "moved.git" not in failed["last_error"]
    assert failed["retry_in_s"] > 0
    assert "failed" in "\n".join(laptop.gitend("status").stdout.splitlines())

    os.rename(moved, remote)
    proc = laptop.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pushed to origin" in proc.stdout
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"
    assert laptop.status()["failed"] == []


def test_worker_killed_mid_push_completes_next_time_without_duplicates(
    laptop: Machine, remote: Path, proj: Path
) -> None:
    slow_pre_receive(remote, 3)
    laptop.note(proj, "a.md", "note\n")
    laptop.end_session(proj)
    # Wait until the worker is inside its push (the remote's hook is sleeping), then kill it.
    deadline = time.monotonic() + 30
    pid = None
    while time.monotonic() < deadline and pid is None:
        for proc_dir in Path("/proc").iterdir():
            try:
                cmd = (proc_dir / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"_worker" in cmd and laptop.env["HOME"].encode() in (proc_dir / "environ").read_bytes():
                if any(b"push" in (p / "cmdline").read_bytes() for p in Path("/proc").iterdir()
                       if p.name.isdigit() and _parent(p) == int(proc_dir.name)):
                    pid = int(proc_dir.name)
                    break
        time.sleep(0.05)
    assert pid, "the worker never reached its push"
    os.kill(pid, signal.SIGKILL)
    time.sleep(4)  # the orphaned git push may still finish; either way nothing may be lost
    assert len(laptop.status()["pending"]) == 1  # the job survived its worker
    proc = laptop.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"
    memory_commits = [s for s in remote_log(remote) if s.startswith("memory:")]
    assert len(memory_commits) == 1
    assert laptop.status()["pending"] == [] and laptop.status()["failed"] == []


def _parent(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def test_nothing_outside_gitends_folder_is_touched(laptop: Machine, remote: Path, proj: Path) -> None:
    write(laptop.dots / "README.md", "my dotfiles, edited but not committed\n")
    write(laptop.dots / "vimrc", "set number\n")
    git(laptop.dots, "add", "vimrc")
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"
    assert remote_file(remote, "vimrc") is None
    assert (laptop.dots / "README.md").read_text() == "my dotfiles, edited but not committed\n"
    assert git(laptop.dots, "status", "--porcelain").splitlines() == [" M README.md", "A  vimrc"]


def test_user_notes_are_never_modified_and_only_notes_are_copied(laptop: Machine, remote: Path, proj: Path) -> None:
    note = laptop.note(proj, "a.md", "note\n")
    write(laptop.memory_folder(proj) / "session.jsonl", '{"secret": "transcript"}\n')
    write(laptop.memory_folder(proj) / "settings.json", "{}\n")
    before = note.stat().st_mtime_ns, note.read_bytes()
    laptop.sync(proj)
    assert (note.stat().st_mtime_ns, note.read_bytes()) == before
    assert sorted(p.name for p in (laptop.dots / FOLDER).iterdir()) == ["a.md"]


def test_two_machines_never_lose_a_note_and_keep_both_versions_of_a_conflict(
    tmp_path: Path, remote: Path
) -> None:
    laptop = Machine.create(tmp_path / "laptop-home", remote)
    desktop = Machine.create(tmp_path / "desktop-home", remote)
    # The same project (same origin) checked out at different paths.
    on_laptop = project(tmp_path / "laptop-home" / "code" / "project")
    on_desktop = project(tmp_path / "desktop-home" / "src" / "proj")
    laptop.note(on_laptop, "laptop.md", "from the laptop\n")
    laptop.note(on_laptop, "shared.md", "v1\n")
    desktop.note(on_desktop, "desktop.md", "from the desktop\n")
    laptop.sync(on_laptop)
    desktop.sync(on_desktop)
    assert remote_file(remote, f"{FOLDER}/laptop.md") == "from the laptop\n"
    assert remote_file(remote, f"{FOLDER}/desktop.md") == "from the desktop\n"
    assert remote_file(remote, f"{FOLDER}/shared.md") == "v1\n"

    # Both edit shared.md; the desktop brings in the laptop's notes first.
    proc = desktop.gitend("memory", "pull", "-C", str(on_desktop))
    assert proc.returncode == 0, proc.stderr
    assert (desktop.memory_folder(on_desktop) / "shared.md").read_text() == "v1\n"
    laptop.note(on_laptop, "shared.md", "v2 from the laptop\n")
    desktop.note(on_desktop, "shared.md", "v2 from the desktop\n")
    laptop.sync(on_laptop)
    desktop.sync(on_desktop)

    files = git(remote, "ls-tree", "-r", "--name-only", "main", FOLDER).split()
    versions = {remote_file(remote, path) for path in files if "shared" in path}
    assert versions == {"v2 from the laptop\n", "v2 from the desktop\n"}
    assert {f"{FOLDER}/laptop.md", f"{FOLDER}/desktop.md"} <= set(files)
    report = desktop.status()
    assert report["failed"] == [] and report["pending"] == []
    assert "both kept" in report["last"][0]["summary"]


def test_memory_pull_keeps_newer_local_notes(laptop: Machine, remote: Path, proj: Path, tmp_path: Path) -> None:
    laptop.note(proj, "a.md", "synced\n")
    laptop.note(proj, "b.md", "synced b\n")
    laptop.sync(proj)
    fresh = Machine.create(tmp_path / "new-machine", remote)
    there = project(tmp_path / "new-machine" / "project")
    fresh.note(there, "b.md", "written here after the sync\n")
    proc = fresh.gitend("memory", "pull", "-C", str(there))
    assert proc.returncode == 0, proc.stderr
    assert (fresh.memory_folder(there) / "a.md").read_text() == "synced\n"
    assert (fresh.memory_folder(there) / "b.md").read_text() == "written here after the sync\n"
    assert "kept" in proc.stdout and "b.md" in proc.stdout


def test_dotfile_repo_mid_rebase_fails_clearly_and_waits(laptop: Machine, proj: Path) -> None:
    git_dir = laptop.dots / ".git"
    (git_dir / "rebase-merge").mkdir()
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    failed = laptop.status()["failed"]
    assert len(failed) == 1 and "in the middle of a rebase" in failed[0]["last_error"]
    (git_dir / "rebase-merge").rmdir()
    assert laptop.gitend("push").returncode == 0


def test_foreign_local_commits_are_not_pushed(laptop: Machine, remote: Path, proj: Path) -> None:
    write(laptop.dots / "vimrc", "set number\n")
    git(laptop.dots, "add", "vimrc")
    git(laptop.dots, "commit", "-q", "-m", "my own change")
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    assert remote_file(remote, "vimrc") is None
    assert "not gitend's" in laptop.status()["failed"][0]["last_error"]


def test_wip_branches_are_pushed_once_per_repository(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(repo))
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "topic", str(linked))
    write(hermetic / ".config" / "gitend" / "config.yaml",
          json.dumps({"snapshot": {"push_remote": "origin"}, "push": {"background": False}}))
    machine = Machine(hermetic)
    write(repo / "app.py", "main work\n")
    write(linked / "app.py", "topic work\n")
    machine.end_session(repo)
    machine.end_session(linked)
    assert len(machine.status()["pending"]) == 2  # background off: they wait for `gitend push`
    proc = machine.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("pushed 2 WIP branch(es)") == 1
    host = git(origin, "for-each-ref", "--format=%(refname)", "refs/heads/wip/").split()
    assert len(host) == 2 and all(ref.endswith(("/main", "/topic")) for ref in host)
    assert remote_file(origin, "app.py", host[0].removeprefix("refs/heads/")) in {"main work\n", "topic work\n"}


def remote_notes(remote: Path) -> list[str]:
    return git(remote, "ls-tree", "-r", "--name-only", "main", FOLDER).split()


def test_pull_never_overwrites_a_note_with_its_redacted_copy(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.configure(remote, review={"on_finding": "redact"})
    note = laptop.note(proj, "deploy.md", SECRET_NOTE)
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/deploy.md") == REDACTED_NOTE
    proc = laptop.gitend("memory", "pull", "-C", str(proj))
    assert proc.returncode == 0, proc.stderr
    assert note.read_text() == SECRET_NOTE


def test_an_edit_of_a_redacted_note_is_an_ordinary_change(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.configure(remote, review={"on_finding": "redact"})
    laptop.note(proj, "deploy.md", SECRET_NOTE)
    laptop.sync(proj)
    laptop.note(proj, "deploy.md", SECRET_NOTE + "Rotate it yearly.\n")
    laptop.sync(proj, session_id="s2")
    assert remote_notes(remote) == [f"{FOLDER}/deploy.md"]  # no conflict copy
    assert remote_file(remote, f"{FOLDER}/deploy.md") == REDACTED_NOTE + "Rotate it yearly.\n"
    assert TOKEN not in git(remote, "log", "-p", "--all")
    laptop.sync(proj, session_id="s3")  # nothing changed since: nothing to commit
    assert len([s for s in remote_log(remote) if s.startswith("memory:")]) == 2


def test_notes_are_found_where_the_session_ended_not_where_the_worker_runs(
    laptop: Machine, remote: Path, proj: Path
) -> None:
    laptop.configure(remote, push={"background": False})
    custom = laptop.home / "custom-claude"
    write(custom / "projects" / encoded(proj) / "memory" / "a.md", "note\n")
    proc = gitend("hook", "--strict", cwd=proj, input=payload(proj), env={**laptop.env, "CLAUDE_CONFIG_DIR": str(custom)})
    assert proc.returncode == 0, proc.stderr
    proc = laptop.gitend("push")  # from a shell whose CLAUDE_CONFIG_DIR is ~/.claude, which has no notes
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"


def test_a_dotfile_repo_that_ignores_everything_still_gets_the_notes(
    tmp_path: Path, hermetic: Path, proj: Path
) -> None:
    remote = bare_remote(tmp_path / "ignoring.git", {".gitignore": "*\n!.gitignore\n!vimrc\n", "vimrc": "x\n"})
    laptop = Machine(hermetic)
    laptop.configure(remote)
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    laptop.gitend("push")
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"
    report = laptop.status()
    assert report["failed"] == [] and report["pending"] == [] and report["last"][0]["ok"]


def test_recovery_sees_notes_copied_into_an_ignored_folder(tmp_path: Path, hermetic: Path, proj: Path) -> None:
    """A run that copied the notes but could not commit them: the next one commits them."""
    remote = bare_remote(tmp_path / "ignoring.git", {".gitignore": "*\n!.gitignore\n"})
    laptop = Machine(hermetic)
    laptop.configure(remote)
    laptop.note(proj, "a.md", "note\n")
    write(laptop.dots / ".git" / "index.lock", "")  # the commit fails: the notes are copied, not committed
    laptop.sync(proj)
    assert (laptop.dots / FOLDER / "a.md").exists() and len(laptop.status()["failed"]) == 1
    (laptop.dots / ".git" / "index.lock").unlink()
    assert laptop.gitend("push").returncode == 0
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"


def test_a_held_extra_is_shown_and_not_reported_ok(laptop: Machine, remote: Path, proj: Path) -> None:
    claude_md = write(laptop.home / ".claude" / "CLAUDE.md", f"deploy with {TOKEN}\n")
    laptop.configure(remote, memory={"extra": [str(claude_md)]})
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/a.md") == "note\n"
    assert remote_file(remote, "claude/memory/_user/CLAUDE.md") is None
    report = laptop.status()
    assert [e["source"] for e in report["held_extras"]] == [str(claude_md)]
    assert "github-token" in report["held_extras"][0]["held"] and not report["last"][0]["ok"]
    text = laptop.gitend("status").stdout
    assert "nothing queued, failed or held" not in text and "CLAUDE.md" in text and TOKEN not in text

    claude_md.write_text("deploy with the token in the vault\n")
    laptop.sync(proj, session_id="s2")
    report = laptop.status()
    assert report["held_extras"] == [] and report["last"][0]["ok"]
    assert remote_file(remote, "claude/memory/_user/CLAUDE.md") == "deploy with the token in the vault\n"


def test_mirror_writes_exactly_the_scanned_bytes(laptop: Machine, remote: Path, proj: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    laptop.note(proj, "deploy.md", SECRET_NOTE)
    laptop.note(proj, "plain.md", "nothing secret\n")
    cfg = config.load(None)
    repo, _ = dotfiles.open_repo(str(laptop.dots))
    work = memsync.project_pending(repo, proj, proj, cfg)
    assert work is not None and {f.path for f in work.findings} == {"deploy.md"}
    # Edited between the scan and the copy: what was not scanned must not be copied.
    laptop.note(proj, "plain.md", f"now with {TOKEN}\n")
    laptop.note(proj, "deploy.md", SECRET_NOTE + "more\n")
    written: list[bytes] = []
    real = files.write_atomic

    def recording(path: Path, data: bytes, *args: object) -> None:
        written.append(data)
        real(path, data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "write_atomic", recording)
    memsync.mirror(repo, work, "memory: test", cfg, redacting=True)
    assert written and not any(TOKEN.encode() in data for data in written)
    assert (laptop.dots / FOLDER / "deploy.md").read_text() == REDACTED_NOTE
    assert (laptop.dots / FOLDER / "plain.md").read_text() == "nothing secret\n"
    assert TOKEN not in git(laptop.dots, "log", "-p", "--all")


def test_commits_left_by_clear_show_in_status_and_push_sends_them(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.note(proj, "a.md", "first note\n")
    laptop.sync(proj, reason="clear")
    report = laptop.status()
    assert report["pending"] == [] and report["unpushed"]["commits"] == 1
    assert "not yet on origin" in laptop.gitend("status").stdout
    proc = laptop.gitend("push")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pushed to origin" in proc.stdout
    assert remote_file(remote, f"{FOLDER}/a.md") == "first note\n"
    report = laptop.status()
    assert report["unpushed"] is None and report["pending"] == [] and report["failed"] == []


def test_status_keeps_the_last_successful_sync(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.note(proj, "a.md", "note\n")
    laptop.sync(proj)
    ok = laptop.status()["last"][0]
    assert ok["ok"] and ok["last_ok"] == ok["time"]
    os.rename(remote, remote.with_name("moved.git"))
    laptop.note(proj, "a.md", "edited\n")
    laptop.sync(proj, session_id="s2")
    failed = laptop.status()["last"][0]
    assert not failed["ok"] and failed["last_ok"] == ok["time"]
    assert f"last successful sync {ok['time'][:16].replace('T', ' ')}" in laptop.gitend("status").stdout
