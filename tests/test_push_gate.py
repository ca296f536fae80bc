"""Every push gitend makes goes through the secret review, under names only the user chooses."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from testing.machine import Machine, bare_remote
from testing.repo import git, write
from testing.terminal import converse

KEY_ID, SECRET_KEY = "AKIAQ7XK2M4N6P3R5T2V", "Kq8vN2mX5pL9rT3wY6zA1bC4dE7fG0hJ2kM5nP8q"  # fake
ENV_FILE = f"AWS_ACCESS_KEY_ID={KEY_ID}\nAWS_SECRET_ACCESS_KEY={SECRET_KEY}\n"


def wip_machine(home: Path, **sections: dict[str, object]) -> Machine:
    snapshot = {"push_remote": "origin", **sections.pop("snapshot", {})}
    write(home / ".config" / "gitend" / "config.yaml", json.dumps({"snapshot": snapshot, **sections}))
    return Machine(home)


def clone(origin: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(origin), str(where))
    return where


def remote_refs(origin: Path) -> list[str]:
    return git(origin, "for-each-ref", "--format=%(refname)").split()


def every_object(origin: Path) -> str:
    """Everything the remote holds, reachable or not."""
    proc = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=origin, capture_output=True,
                          check=True)
    return proc.stdout.decode("utf-8", "replace")


def test_12_2_wip_push_held_on_aws_key(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = clone(origin, tmp_path / "clone")
    machine = wip_machine(hermetic)
    write(repo / "app.py", "work in progress\n")
    write(repo / ".env", ENV_FILE)  # untracked, not ignored
    machine.sync(repo)

    assert remote_refs(origin) == ["refs/heads/main"]
    assert KEY_ID not in every_object(origin) and SECRET_KEY not in every_object(origin)
    held = machine.status()["held"]
    assert len(held) == 1 and "aws" in held[0]["held"] and held[0]["kind"] == "wip"
    text = machine.gitend("status").stdout
    assert "held" in text and "WIP" in text and "gitend review" in text and SECRET_KEY not in text

    report = machine.gitend("review", cwd=repo)  # no terminal: the report, exit 1
    assert report.returncode == 1
    assert ".env:1 aws-access-key-id" in report.stdout and ".env:2 aws-secret-access-key" in report.stdout
    assert ".gitignore" in report.stdout  # what to do instead of redacting a WIP branch
    assert SECRET_KEY not in report.stdout + report.stderr and KEY_ID not in report.stdout

    code, shown = converse(["review"], ["a", "a"], machine.env, cwd=str(repo))
    assert code == 0, shown
    assert "[r]edact" not in shown and SECRET_KEY not in shown
    wip = [ref for ref in remote_refs(origin) if ref.startswith("refs/heads/wip/")]
    assert len(wip) == 1 and wip[0].endswith("/main")
    assert git(origin, "show", f"{wip[0]}^3:.env") == ENV_FILE  # untracked files: the third parent
    assert machine.status()["held"] == []


def test_12_2_a_second_snapshot_is_scanned_against_what_the_remote_has(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = clone(origin, tmp_path / "clone")
    machine = wip_machine(hermetic)
    write(repo / "app.py", "first\n")
    machine.sync(repo)
    (wip,) = [ref for ref in remote_refs(origin) if ref.startswith("refs/heads/wip/")]
    write(repo / "notes" / "deploy.txt", f"key {KEY_ID} secret {SECRET_KEY}\n")
    machine.sync(repo, session_id="s2")
    assert SECRET_KEY not in every_object(origin)
    assert len(machine.status()["held"]) == 1
    # Deleting the file releases it: the hold is looked at afresh.
    (repo / "notes" / "deploy.txt").unlink()
    write(repo / "app.py", "second\n")
    machine.sync(repo, session_id="s3")
    assert git(origin, "show", f"{wip}:app.py") == "second\n"
    assert machine.status()["held"] == []
    assert SECRET_KEY not in every_object(origin)


def test_12_3_repository_without_the_push_remote_is_decided_at_queue_time(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = clone(origin, tmp_path / "clone")
    git(repo, "remote", "remove", "origin")
    machine = wip_machine(hermetic)
    for session in ("s1", "s2"):
        write(repo / "app.py", f"work of {session}\n")
        machine.sync(repo, session_id=session)
    report = machine.status()
    assert report["failed"] == [] and report["pending"] == [] and report["held"] == []
    log = (machine.state / "gitend.log").read_text()
    said = [line for line in log.splitlines() if "not pushed" in line and "origin" in line]
    assert len(said) == 1, log


def test_12_10_repository_file_cannot_choose_the_remote_ref_names(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = clone(origin, tmp_path / "clone")
    write(repo / ".gitend.yaml", "snapshot:\n  branch_prefix: wip/release/\n")
    git(repo, "add", ".gitend.yaml")
    git(repo, "commit", "-q", "-m", "choose a prefix")
    machine = wip_machine(hermetic)
    write(repo / "app.py", "work\n")
    machine.sync(repo)
    assert git(repo, "rev-parse", "--verify", "-q", "refs/heads/wip/release/main")  # the local name is the repo's
    wip = [ref for ref in remote_refs(origin) if ref != "refs/heads/main"]
    assert len(wip) == 1, wip
    namespace, _, branch = wip[0].removeprefix("refs/heads/wip/").partition("/")
    assert branch == "main" and "release" not in namespace, wip  # the remote name is the user's


def test_13_8_two_clones_on_one_machine_push_under_different_names(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    first, second = clone(origin, tmp_path / "app"), clone(origin, tmp_path / "app-review")
    machine = wip_machine(hermetic)
    write(first / "app.py", "first clone\n")
    machine.sync(first)
    write(second / "app.py", "second clone\n")
    machine.sync(second)
    wip = [ref for ref in remote_refs(origin) if ref.startswith("refs/heads/wip/")]
    assert len(wip) == 2, wip
    assert {git(origin, "show", f"{ref}:app.py") for ref in wip} == {"first clone\n", "second clone\n"}
    # Stable: the next push of a clone goes to the same name.
    write(first / "app.py", "first clone, later\n")
    machine.sync(first, session_id="s2")
    assert len([ref for ref in remote_refs(origin) if ref.startswith("refs/heads/wip/")]) == 2


def test_13_8_push_host_names_the_machine(tmp_path: Path, hermetic: Path) -> None:
    origin = bare_remote(tmp_path / "project.git", {"app.py": "x\n"})
    repo = clone(origin, tmp_path / "clone")
    machine = wip_machine(hermetic, push={"host": "studio"})
    write(repo / "app.py", "work\n")
    machine.sync(repo)
    wip = [ref for ref in remote_refs(origin) if ref.startswith("refs/heads/wip/")]
    assert len(wip) == 1 and wip[0].startswith("refs/heads/wip/studio-") and wip[0].endswith("/main"), wip
