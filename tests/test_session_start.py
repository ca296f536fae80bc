"""SessionStart: catch-up after a session that ended without SessionEnd, the project's notes
on a new machine, and the one line the user sees about problems."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.machine import Machine, bare_remote, encoded, project
from testing.repo import git, gitend, write


def event(cwd: Path, name: str, session: str, transcript: Path | None = None, **fields: object) -> bytes:
    return json.dumps({"session_id": session, "transcript_path": str(transcript) if transcript else None,
                       "cwd": str(cwd), "hook_event_name": name, **fields}).encode()


def start(cwd: Path, session: str, *, source: str = "startup", pid: int | None = None,
          transcript: Path | None = None, env: dict[str, str] | None = None,
          strict: bool = True) -> subprocess.CompletedProcess[str]:
    """SessionStart as Claude Code sends it (CLAUDE_PID as 2.1.332 sets it, when given)."""
    extra = {"CLAUDE_PID": str(pid)} if pid else {}
    proc = gitend("hook", *(["--strict"] if strict else []), cwd=cwd,
                  input=event(cwd, "SessionStart", session, transcript, source=source), env={**extra, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc


def end(cwd: Path, session: str, reason: str = "other", transcript: Path | None = None,
        env: dict[str, str] | None = None) -> None:
    proc = gitend("hook", "--strict", cwd=cwd, input=event(cwd, "SessionEnd", session, transcript, reason=reason),
                  env=env)
    assert proc.returncode == 0, proc.stderr


def snapshots(repo: Path) -> list[dict[str, object]]:
    proc = gitend("list", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def transcript_of(folder: Path, session: str, prompt: str) -> Path:
    return write(folder / f"{session}.jsonl", json.dumps(
        {"type": "user", "sessionId": session, "message": {"role": "user", "content": prompt}}) + "\n")


@pytest.fixture
def dead_pid() -> int:
    """The pid of a Claude that was killed (a process that has exited)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a Claude that is still running."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def transcripts(hermetic: Path, proj: Path) -> Path:
    return hermetic / ".claude" / "projects" / encoded(proj)


# -- catch-up ------------------------------------------------------------------


def test_start_catches_up_the_work_a_killed_session_left(proj: Path, transcripts: Path, dead_pid: int) -> None:
    killed = transcript_of(transcripts, "s1", "Teach the parser about tabs")
    start(proj, "s1", pid=dead_pid, transcript=killed)
    write(proj / "app.py", "print('tabs')\n")
    write(proj / "new.txt", "untracked\n")
    proc = start(proj, "s2", transcript=transcript_of(transcripts, "s2", "Next"))
    assert proc.stdout == ""  # nothing to tell the user or the model
    [snap] = snapshots(proj)
    assert snap["reason"] == "catch-up" and snap["session_id"] == "s1"
    assert snap["files"] == ["app.py", "new.txt"]
    assert snap["subject"] == "wip: Teach the parser about tabs"
    body = git(proj, "log", "-1", "--format=%B", "wip/main")
    assert "did not end cleanly" in body
    assert git(proj, "status", "--porcelain") == " M app.py\n?? new.txt\n"  # untouched


def test_start_catch_up_finds_the_newest_other_transcript_when_the_record_has_none(
        proj: Path, transcripts: Path, dead_pid: int) -> None:
    start(proj, "s1", pid=dead_pid)  # no transcript path in the payload
    transcript_of(transcripts, "old", "An older session")
    time.sleep(0.05)
    transcript_of(transcripts, "s1", "Rename the config loader")
    write(proj / "app.py", "changed\n")
    start(proj, "s2", transcript=transcript_of(transcripts, "s2", "This session"))
    [snap] = snapshots(proj)
    assert snap["subject"] == "wip: Rename the config loader"


def test_start_catch_up_says_when_no_transcript_can_be_found(proj: Path, dead_pid: int, tmp_path: Path) -> None:
    start(proj, "s1", pid=dead_pid, transcript=tmp_path / "gone.jsonl")
    write(proj / "app.py", "changed\n")
    start(proj, "s2")
    [snap] = snapshots(proj)
    assert snap["reason"] == "catch-up"
    assert "transcript could not be found" in git(proj, "log", "-1", "--format=%B", "wip/main")


def test_start_after_a_clean_end_saves_nothing(proj: Path, dead_pid: int) -> None:
    start(proj, "s1", pid=dead_pid)
    write(proj / "app.py", "changed\n")
    end(proj, "s1")
    write(proj / "app.py", "edited later, outside Claude\n")
    start(proj, "s2")
    assert [s["reason"] for s in snapshots(proj)] == ["other"]


def test_start_catch_up_of_work_a_snapshot_holds_adds_nothing(proj: Path, dead_pid: int) -> None:
    start(proj, "s1", pid=dead_pid)
    write(proj / "app.py", "changed\n")
    end(proj, "another")  # another session saved this very state
    start(proj, "s2")
    assert [s["reason"] for s in snapshots(proj)] == ["other"]
    end(proj, "s2")
    write(proj / "app.py", "changed again\n")
    start(proj, "s3")  # s1's record was settled at s2's start: nothing to catch up
    assert len(snapshots(proj)) == 1


def test_start_leaves_a_session_that_still_runs_alone(proj: Path, live_pid: int, dead_pid: int) -> None:
    start(proj, "s1", pid=live_pid)
    write(proj / "app.py", "changed\n")
    start(proj, "s2", pid=dead_pid)
    assert snapshots(proj) == []


def test_start_after_compact_is_the_same_session_going_on(proj: Path) -> None:
    start(proj, "s1")  # 2.1.197 sets no CLAUDE_PID: the record alone must tell
    write(proj / "app.py", "changed\n")
    start(proj, "s1", source="compact")
    assert snapshots(proj) == []


def test_start_resuming_a_killed_session_catches_it_up(proj: Path) -> None:
    start(proj, "s1")
    write(proj / "app.py", "changed\n")
    start(proj, "s1", source="resume")
    assert [s["reason"] for s in snapshots(proj)] == ["catch-up"]


def test_start_in_another_work_tree_does_not_catch_up_this_one(proj: Path, tmp_path: Path, dead_pid: int) -> None:
    other = project(tmp_path / "other")
    start(proj, "s1", pid=dead_pid)
    write(proj / "app.py", "changed\n")
    start(other, "s2")
    assert snapshots(proj) == []
    start(proj, "s3")
    assert [s["reason"] for s in snapshots(proj)] == ["catch-up"]


def test_start_outside_a_repository_is_quiet(tmp_path: Path) -> None:
    proc = start(tmp_path, "s1")
    assert proc.stdout == "" and proc.stderr == ""


# -- memory notes --------------------------------------------------------------


def sync_notes_from(laptop: Machine, proj: Path, notes: dict[str, str]) -> None:
    for name, text in notes.items():
        laptop.note(proj, name, text)
    laptop.sync(proj)


@pytest.fixture
def desktop(tmp_path: Path, remote: Path) -> Machine:
    return Machine.create(tmp_path / "desktop-home", remote)


def test_start_on_a_new_machine_brings_the_notes_and_tells_the_model_once(
        laptop: Machine, desktop: Machine, proj: Path) -> None:
    sync_notes_from(laptop, proj, {"MEMORY.md": "- [Style](style.md): tabs, not spaces\n",
                                   "style.md": "Use tabs.\n"})
    git(desktop.dots, "pull", "-q")  # what the background fetch of an earlier start did
    proc = start(proj, "d1", env=desktop.env)
    assert (desktop.memory_folder(proj) / "style.md").read_text() == "Use tabs.\n"
    out = json.loads(proc.stdout)
    context = out["hookSpecificOutput"]["additionalContext"]
    assert out["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert "[Style](style.md): tabs, not spaces" in context
    again = start(proj, "d2", env=desktop.env)
    assert again.stdout == ""  # they are in MEMORY.md now: Claude reads them itself


def test_start_never_copies_over_an_unsynced_local_edit(laptop: Machine, desktop: Machine, proj: Path) -> None:
    sync_notes_from(laptop, proj, {"MEMORY.md": "- [Style](style.md)\n", "style.md": "Use tabs.\n"})
    git(desktop.dots, "pull", "-q")
    desktop.note(proj, "style.md", "Use four spaces.\n")  # written on the desktop, never synced
    start(proj, "d1", env=desktop.env)
    folder = desktop.memory_folder(proj)
    assert (folder / "style.md").read_text() == "Use four spaces.\n"
    # Both versions where Claude and the user look: memsync.pull's conflict copy, as for `gitend memory pull`.
    assert "Use tabs.\n" in [p.read_text() for p in folder.iterdir()], sorted(p.name for p in folder.iterdir())


def test_start_queues_a_fetch_of_the_dotfile_repo(laptop: Machine, desktop: Machine, proj: Path) -> None:
    """No network in the foreground: the next start is fresh because a worker fetched."""
    start(proj, "d1", env=desktop.env)
    sync_notes_from(laptop, proj, {"MEMORY.md": "- [Later](later.md)\n", "later.md": "Written later.\n"})
    start(proj, "d2", env=desktop.env)  # queues the fetch (and the worker runs it)
    desktop.wait_for_worker()
    start(proj, "d3", env=desktop.env)
    assert (desktop.memory_folder(proj) / "later.md").read_text() == "Written later.\n"


# -- the one line the user sees ----------------------------------------------------


def shown(proc: subprocess.CompletedProcess[str]) -> str | None:
    return json.loads(proc.stdout).get("systemMessage") if proc.stdout else None


def test_start_says_nothing_when_all_is_well(laptop: Machine, proj: Path) -> None:
    sync_notes_from(laptop, proj, {"MEMORY.md": "- fine\n"})
    assert start(proj, "s1", env=laptop.env).stdout == ""


def test_start_shows_held_notes_in_one_line_once_a_day(laptop: Machine, proj: Path) -> None:
    laptop.note(proj, "MEMORY.md", "- [Keys](keys.md)\n")
    laptop.note(proj, "keys.md", "aws key AKIAIOSFODNN7EXAMPLQ secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
    laptop.sync(proj)
    line = shown(start(proj, "s1", env=laptop.env))
    assert line and line.startswith("gitend: ") and "\n" not in line
    assert "held" in line and "gitend review" in line
    assert start(proj, "s2", env=laptop.env).stdout == ""  # not again today


def test_start_shows_a_broken_config(laptop: Machine, proj: Path) -> None:
    write(laptop.home / ".config/gitend/config.yaml", "snapshot:\n  keep_dayz: 3\n")
    line = shown(start(proj, "s1", env=laptop.env, strict=False))
    assert line and "keep_dayz" in line and "gitend doctor" in line


def test_start_shows_a_newer_snapshot_that_is_not_in_the_work_tree(proj: Path) -> None:
    write(proj / "app.py", "precious work\n")
    end(proj, "s1")
    git(proj, "reset", "-q", "--hard")  # outside Claude
    line = shown(start(proj, "s2"))
    assert line and "not in the work tree" in line and "gitend restore" in line
    assert start(proj, "s3").stdout == ""  # once a day


def test_start_is_quiet_when_the_snapshot_was_committed_or_edited_on(proj: Path) -> None:
    write(proj / "app.py", "precious work\n")
    end(proj, "s1")
    git(proj, "commit", "-qam", "keep it")
    assert start(proj, "s2").stdout == ""
    write(proj / "app.py", "precious work, and more\n")
    end(proj, "s3")
    write(proj / "app.py", "precious work, and more, and more\n")
    assert start(proj, "s4").stdout == ""


def test_start_shows_pushes_failing_for_more_than_a_day(laptop: Machine, proj: Path, remote: Path) -> None:
    laptop.note(proj, "MEMORY.md", "- a note\n")
    write(remote / "hooks" / "pre-receive", "#!/bin/sh\nexit 1\n", mode=0o755)
    laptop.sync(proj)
    assert start(proj, "s1", env=laptop.env).stdout == ""  # failing, but not for a day yet
    for job in (laptop.state / "queue").glob("*.json"):
        data = json.loads(job.read_text())
        data["created"] -= 2 * 86400
        job.write_text(json.dumps(data))
    line = shown(start(proj, "s2", env=laptop.env))
    assert line and "failing for 2 day(s)" in line and "gitend status" in line


def test_notices_each_problem_at_most_once_a_day_and_a_new_one_at_once() -> None:
    from gitend import notices

    day = notices.EVERY_S
    assert notices.due({"held": "1 held"}, now=1000.0) == ["1 held"]
    assert notices.due({"held": "2 held"}, now=1000.0 + day - 1) == []
    assert notices.due({"held": "2 held", "snapshot:abc": "lost"}, now=1000.0 + day - 1) == ["lost"]
    assert notices.due({"held": "2 held", "snapshot:abc": "lost"}, now=1000.0 + day) == ["2 held"]
    assert notices.due({}, now=1000.0 + 3 * day) == []
    assert notices.line(["a", "b"]) == "gitend: a; b" and notices.line([]) is None
