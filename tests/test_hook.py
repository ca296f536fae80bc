"""`gitend hook` as Claude Code runs it: never in the way, and says why when it cannot help."""
from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from testing.machine import Machine
from testing.repo import TRANSCRIPTS, git, gitend, init_repo, payload, write


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo")
    write(repo / "README.md", "edited\n")
    return repo


def log_text(home: Path) -> str:
    path = home / ".local" / "state" / "gitend" / "gitend.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize(("stdin", "expected"), [
    (b"", "must be a JSON object"),
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"cwd": 5}', "field 'cwd' must be a string"),
    (b'{"session_id": ["x"]}', "field 'session_id' must be a string"),
    (b"\xff\xfe{", "not valid JSON"),
    (b'{"cwd": "' + b"x" * (2 << 20) + b'"}', "larger than 1024 KiB"),
])
def test_bad_payload_exits_0_with_one_line_reason_and_a_log_record(
    stdin: bytes, expected: str, tmp_path: Path, hermetic: Path
) -> None:
    proc = gitend("hook", cwd=tmp_path, input=stdin)
    assert proc.returncode == 0
    assert expected in proc.stderr and proc.stderr.count("\n") == 1
    assert expected in log_text(hermetic)
    strict = gitend("hook", "--strict", cwd=tmp_path, input=stdin)
    assert strict.returncode == 1 and expected in strict.stderr


def test_not_a_repository_or_missing_directory(tmp_path: Path) -> None:
    proc = gitend("hook", cwd=tmp_path, input=payload(tmp_path))
    assert proc.returncode == 0 and "is not inside a git work tree" in proc.stderr
    gone = tmp_path / "gone"
    proc = gitend("hook", cwd=tmp_path, input=payload(gone))
    assert proc.returncode == 0 and "is not a directory" in proc.stderr


def test_extra_fields_and_unknown_reason_are_fine(repo: Path) -> None:
    data = json.loads(payload(repo, reason="some_future_reason"))
    data.update(permission_mode="default", prompt_id="p", brand_new={"nested": True})
    proc = gitend("hook", "--strict", cwd=repo, input=json.dumps(data).encode())
    assert proc.returncode == 0, proc.stderr
    assert "Gitend-Reason: some_future_reason" in git(repo, "log", "-1", "--format=%B", "wip/main")


def test_missing_fields_fall_back_to_the_process_directory(repo: Path) -> None:
    proc = gitend("hook", "--strict", cwd=repo, input=b"{}")
    assert proc.returncode == 0, proc.stderr
    text = git(repo, "log", "-1", "--format=%B", "wip/main")
    assert "Gitend-Session: unknown" in text and "Gitend-Reason: other" in text


def test_stop_event_records_its_name_as_reason(repo: Path) -> None:
    data = {"session_id": "s", "cwd": str(repo), "hook_event_name": "Stop", "transcript_path": None}
    proc = gitend("hook", "--strict", cwd=repo, input=json.dumps(data).encode())
    assert proc.returncode == 0, proc.stderr
    assert "Gitend-Reason: stop" in git(repo, "log", "-1", "--format=%B", "wip/main")


@pytest.mark.parametrize("transcript", sorted(path.relative_to(TRANSCRIPTS).as_posix()
                                               for path in TRANSCRIPTS.rglob("*.jsonl")))
def test_every_transcript_fixture_gives_a_message(repo: Path, transcript: str) -> None:
    proc = gitend("hook", "--strict", cwd=repo, input=payload(repo, transcript=TRANSCRIPTS / transcript))
    assert proc.returncode == 0, proc.stderr
    subject = git(repo, "log", "-1", "--format=%s", "wip/main").strip()
    assert subject.startswith("wip: ") and 5 < len(subject) <= 72


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_unusable_transcript_still_saves(repo: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "t.jsonl"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x00\xff" * 1000 + b"\n{")
    proc = gitend("hook", "--strict", cwd=repo, input=payload(repo, transcript=path))
    assert proc.returncode == 0, proc.stderr
    assert git(repo, "log", "-1", "--format=%s", "wip/main").strip() == "wip: 1 changed file on main"


def test_secrets_in_the_transcript_are_redacted(repo: Path, tmp_path: Path) -> None:
    token = "ghp_" + "R8x2Kq9ZtLm4Vb7Nc1Hd5Jf3Gs6Wp0Ya2Eu8"
    line = {"type": "user", "message": {"role": "user", "content": f"deploy with token {token} please"},
            "uuid": "u1", "isSidechain": False}
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(line) + "\n")
    gitend("hook", "--strict", cwd=repo, input=payload(repo, transcript=path))
    text = git(repo, "log", "-1", "--format=%B", "wip/main")
    assert token not in text and "[REDACTED:" in text


def test_broken_config_still_saves_locally_and_says_so(repo: Path, hermetic: Path) -> None:
    config = hermetic / ".config" / "gitend" / "config.yaml"
    write(config, "snapshot:\n  enabeld: true\n")
    proc = gitend("hook", cwd=repo, input=payload(repo))
    assert proc.returncode == 0
    assert "unknown key 'snapshot.enabeld'" in proc.stderr and str(config) in proc.stderr
    assert git(repo, "rev-parse", "--verify", "-q", "wip/main").strip()
    assert gitend("hook", "--strict", cwd=repo, input=payload(repo)).returncode == 1


def test_disabled_snapshots(repo: Path) -> None:
    write(repo / ".gitend.yaml", "snapshot:\n  enabled: false\n")
    proc = gitend("hook", "--strict", cwd=repo, input=payload(repo))
    assert proc.returncode == 0 and "disabled" in proc.stdout
    assert git(repo, "branch", "--list", "wip/*") == ""


def test_stale_temporary_index_of_a_killed_run_is_removed(repo: Path) -> None:
    stale = repo / ".git" / "gitend-index.999999999.abc"
    stale.write_bytes(b"junk")
    proc = gitend("hook", "--strict", cwd=repo, input=payload(repo))
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()
    assert not list((repo / ".git").glob("gitend-index.*"))


def test_a_work_tree_busy_past_the_budget_is_saved_by_the_worker(repo: Path, hermetic: Path) -> None:
    # Another gitend holds the work tree's lock longer than a hook may wait: the session's
    # work is handed to the background worker, which saves it once the lock is free.
    with open(repo / ".git" / "gitend.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        write(repo / "late.txt", "written just before the session ended\n")
        proc = gitend("hook", "--strict", cwd=repo, input=payload(repo))
        assert proc.returncode == 0, proc.stderr
        assert "the background worker saves it" in proc.stdout
        assert git(repo, "branch", "--list", "wip/*") == ""
    Machine(hermetic).wait_for_worker()
    assert git(repo, "show", "wip/main^3:late.txt") == "written just before the session ended\n"
    assert git(repo, "show", "wip/main:README.md") == "edited\n"
