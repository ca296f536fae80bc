"""What a snapshot takes and how it reads back, on odd input: malformed commits (issue 13.12),
file names that are not UTF-8 (13.21), a disk that fills (13.6), a home folder that is a
repository (12.4)."""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.faults import small_disk
from testing.machine import Machine
from testing.repo import git, gitend, hook, init_repo, payload, write


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"a.txt": "a\n"})


# -- 13.12: malformed commit dates ---------------------------------------------


def _forged_snapshot(repo: Path, committer_date: str, ref: str) -> str:
    """A snapshot-shaped commit whose committer line git itself would never write."""
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    untracked = git(repo, "commit-tree", git(repo, "mktree", input=b"").strip(), "-m", "untracked").strip()
    index = git(repo, "commit-tree", tree, "-p", head, "-m", "index").strip()
    raw = (f"tree {tree}\nparent {head}\nparent {index}\nparent {untracked}\n"
           f"author Mallory <m@example.com> 1700000000 +0000\n"
           f"committer Mallory <m@example.com> {committer_date}\n\n"
           f"wip: forged\n\nGitend-Session: forged\nGitend-Reason: other\n"
           f"Gitend-Base: {head}\nGitend-Branch: main\n")
    sha = git(repo, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=raw.encode()).strip()
    git(repo, "update-ref", ref, sha)
    return sha


@pytest.mark.parametrize("date", ["1700000000 +9999", "soon +0000", "99999999999999999999999 +0000",
                                  "-5 +0100", "1700000000", ""])
@pytest.mark.parametrize("ref", ["refs/heads/wip/main", "refs/remotes/origin/wip/main"])
def test_13_12_malformed_commit_dates_do_not_crash_list_show_or_restore(repo: Path, date: str, ref: str) -> None:
    sha = _forged_snapshot(repo, date, ref)
    for args in (["list"], ["list", "--all"], ["list", "--json"], ["show", sha], ["restore", "latest", "--dry-run"]):
        proc = gitend(*args, cwd=repo)
        assert "unexpected error" not in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        if args[0] == "restore" and ref.startswith("refs/remotes/"):  # another machine's: listed, not taken (12.8)
            assert proc.returncode == 1 and "origin/wip/main" in proc.stderr, proc.stderr
        else:
            assert proc.returncode == 0, (args, proc.stderr)
    listing = json.loads(gitend("list", "--all", "--json", cwd=repo).stdout)
    assert [s["commit"] for s in listing] == [sha]
    assert listing[0]["created"].startswith(("19", "20"))  # a real date, whatever was written


# -- 13.21: file names that are not UTF-8 ----------------------------------------

LATIN1 = "café.txt".encode("latin-1")  # b"caf\xe9.txt": not valid UTF-8


def test_13_21_latin1_file_name_is_saved_shown_escaped_and_restored_byte_exact(repo: Path) -> None:
    root = os.fsencode(repo)
    with open(os.path.join(root, LATIN1), "wb") as out:
        out.write(b"from an old zip\n")
    write(repo / "a.txt", "edited\n")
    proc = hook(repo)
    assert "saved 2 file(s)" in proc.stdout
    message = git(repo, "log", "-1", "--format=%B", "wip/main")
    assert '"caf\\351.txt"' in message  # escaped as git quotes it
    for args in (["show", "latest"], ["list", "--json"], ["restore", "latest", "--dry-run", "--force"]):
        shown = gitend(*args, cwd=repo)
        assert shown.returncode == 0 and "unexpected" not in shown.stderr, (args, shown.stderr)
        if args[0] != "list":
            assert '"caf\\351.txt"' in shown.stdout, args
    os.unlink(os.path.join(root, LATIN1))
    git(repo, "checkout", "-q", "--", "a.txt")
    proc = gitend("restore", "latest", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(root, LATIN1), "rb") as back:
        assert back.read() == b"from an old zip\n"


def test_13_21_latin1_file_name_among_many_is_saved_by_the_worker(repo: Path, hermetic: Path) -> None:
    root = os.fsencode(repo)
    for n in range(2001):  # more than the hook hashes itself: the worker takes the snapshot
        write(repo / "many" / f"f{n}.txt", f"{n}\n")
    with open(os.path.join(root, LATIN1), "wb") as out:
        out.write(b"from an old zip\n")
    proc = hook(repo)
    assert "background worker saves them" in proc.stdout
    Machine(hermetic).wait_for_worker()
    names = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", "wip/main^3"], cwd=repo,
                           capture_output=True, check=True).stdout.split(b"\0")
    assert LATIN1 in names and len([n for n in names if n]) == 2002


# -- 12.4: a home folder that is a git repository --------------------------------


def test_12_4_home_repository_leaves_untracked_files_out(hermetic: Path) -> None:
    init_repo(hermetic, {".bashrc": "alias ll='ls -l'\n"})
    write(hermetic / ".ssh" / "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    write(hermetic / "scratch" / "notes.txt", "scratch work\n")
    write(hermetic / ".bashrc", "alias ll='ls -la'\n")
    proc = hook(hermetic / "scratch")
    assert "saved 1 file(s)" in proc.stdout, proc.stdout
    assert git(hermetic, "ls-tree", "-r", "--name-only", "wip/main^3") == ""
    message = git(hermetic, "log", "-1", "--format=%B", "wip/main")
    assert "untracked files" in message and "home folder" in message

    write(hermetic / ".config" / "gitend" / "config.yaml", "snapshot: {include_untracked: always}\n")
    write(hermetic / ".bashrc", "alias ll='ls -lah'\n")
    hook(hermetic / "scratch")
    assert "scratch/notes.txt" in git(hermetic, "ls-tree", "-r", "--name-only", "wip/main^3").split()


def test_12_4_show_untracked_files_no_is_respected_and_said(repo: Path) -> None:
    git(repo, "config", "status.showUntrackedFiles", "no")
    write(repo / "secret.key", "private\n")
    write(repo / "a.txt", "edited\n")
    hook(repo)
    assert git(repo, "ls-tree", "-r", "--name-only", "wip/main^3") == ""
    assert "status.showUntrackedFiles=no" in git(repo, "log", "-1", "--format=%B", "wip/main")
    write(repo / ".gitend.yaml", "snapshot: {include_untracked: always}\n")  # a repository cannot overrule it
    proc = gitend("hook", cwd=repo, input=payload(repo, session_id="again"))
    assert "only your own config may set 'snapshot.include_untracked: always'" in proc.stderr
    assert "secret.key" not in git(repo, "ls-tree", "-r", "--name-only", "wip/main^3")


# -- 13.6: a session end never fills the disk ------------------------------------


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A real 48 MiB file system (tmpfs)."""
    with small_disk(tmp_path / "disk", "48m") as mounted:
        yield mounted.path


def _objects(repo: Path) -> set[str]:
    return {str(p.relative_to(repo / ".git" / "objects")) for p in (repo / ".git" / "objects").rglob("*")
            if p.is_file()}


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_13_6_untracked_files_that_would_fill_the_disk_are_left_out_and_named(disk: Path) -> None:
    repo = init_repo(disk / "repo", {"a.txt": "a\n"})
    for n in range(3):
        write(repo / f"dump{n}.bin", os.urandom(11 << 20))  # 33 MiB: fits, but not twice
    write(repo / "a.txt", "edited\n")
    hook(repo)
    saved = git(repo, "ls-tree", "-r", "--name-only", "wip/main^3").split()
    assert 0 < len(saved) < 3
    message = git(repo, "log", "-1", "--format=%B", "wip/main")
    assert "free disk space" in message
    assert all(f"dump{n}.bin" in message for n in range(3) if f"dump{n}.bin" not in saved)
    assert _free(disk) > 1 << 20


def test_13_6_a_failed_save_removes_the_objects_it_wrote(disk: Path) -> None:
    """A clean filter makes a small file a big object: the disk fills half-way through hashing."""
    repo = init_repo(disk / "repo", {"a.txt": "a\n", ".gitattributes": "*.grow filter=grow\n"})
    git(repo, "config", "filter.grow.clean", "head -c 60000000 /dev/urandom")
    before = _objects(repo)
    for n in range(5):
        write(repo / f"part{n}.bin", os.urandom(2 << 20))  # 10 MiB: fits, and is worth cleaning up
    write(repo / "z.grow", "tiny on disk\n")
    proc = gitend("hook", cwd=repo, input=payload(repo))
    assert proc.returncode == 0 and "No space left" in proc.stderr, proc.stderr
    assert _objects(repo) == before
    assert git(repo, "for-each-ref", "refs/heads/wip/") == ""
    assert _free(disk) > 16 << 20


def test_13_6_the_total_hashed_in_one_save_is_capped(repo: Path) -> None:
    write(repo / ".gitend.yaml", "snapshot: {max_file_mb: 1}\n")  # at most 10 MiB in all
    for n in range(12):
        write(repo / f"part{n:02}.bin", os.urandom(900 << 10))  # each under the limit, 10.5 MiB together
    hook(repo)
    saved = [p for p in git(repo, "ls-tree", "-r", "--name-only", "wip/main^3").split() if p.endswith(".bin")]
    assert 0 < len(saved) < 12
    message = git(repo, "log", "-1", "--format=%B", "wip/main")
    assert "10.0 MiB" in message and "max_file_mb" in message
    assert all(f"part{n:02}.bin" in message for n in range(12) if f"part{n:02}.bin" not in saved)
