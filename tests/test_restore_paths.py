"""`gitend restore SNAPSHOT -- PATH...` (issue 16): only those paths, with a whole restore's
guarantees: refusals that change nothing, staged stays staged, modes and symlinks exact."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from testing.repo import files_of, git, gitend, hook, init_repo, state, write


def restore(repo: Path, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = gitend("restore", *args, cwd=cwd or repo)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A snapshot holding every kind of change, then a clean work tree."""
    repo = init_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n", "src/x.py": "x\n", "src/y.py": "y\n",
                                         "run.sh": "echo\n", "old.txt": "old\n", "gone.txt": "gone\n"})
    write(repo / "a.txt", "a staged\n")
    git(repo, "add", "a.txt")
    write(repo / "a.txt", "a staged, then edited\n")
    write(repo / "b.txt", "b unstaged\n")
    write(repo / "src" / "x.py", "x staged\n")
    git(repo, "add", "src/x.py")
    write(repo / "src" / "new.py", "untracked in src\n")
    os.symlink("src/y.py", repo / "link")
    (repo / "run.sh").chmod(0o755)
    git(repo, "mv", "old.txt", "renamed.txt")
    git(repo, "rm", "-q", "gone.txt")
    write(repo / "blob.bin", bytes(range(256)))
    hook(repo)
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfd")
    return repo


def index_of(repo: Path, *paths: str) -> str:
    return git(repo, "ls-files", "-s", "--", *paths)


def test_16_restore_one_file_keeps_its_staged_and_unstaged_parts(repo: Path) -> None:
    before = state(repo)
    code, out, err = restore(repo, "latest", "--", "a.txt")
    assert code == 0, err
    assert (repo / "a.txt").read_text() == "a staged, then edited\n"
    assert git(repo, "show", ":a.txt") == "a staged\n"
    assert (repo / "b.txt").read_text() == "b\n"  # not named: untouched
    assert git(repo, "status", "--porcelain").splitlines() == ["MM a.txt"]
    assert before["head"] == state(repo)["head"]


def test_16_restore_a_folder_brings_staged_and_untracked_files_in_it(repo: Path) -> None:
    code, out, err = restore(repo, "latest", "--", "src")
    assert code == 0, err
    assert git(repo, "status", "--porcelain").splitlines() == ["M  src/x.py", "?? src/new.py"]
    assert (repo / "src" / "new.py").read_text() == "untracked in src\n"


def test_16_modes_symlinks_binaries_renames_and_deletions_are_exact(repo: Path, tmp_path: Path) -> None:
    expected = tmp_path / "expected"
    git(tmp_path, "clone", "-q", str(repo), str(expected))
    git(expected, "fetch", "-q", "origin", "wip/main:wip/main")
    git(expected, "stash", "apply", "--index", "wip/main")
    names = ["run.sh", "link", "blob.bin", "old.txt", "renamed.txt", "gone.txt"]
    code, out, err = restore(repo, "--dry-run", "latest", "--", *names)
    assert code == 0, err
    for name in names:
        assert name in out
    assert git(repo, "status", "--porcelain") == ""
    code, out, err = restore(repo, "latest", "--", *names)
    assert code == 0, err
    got, want = files_of(repo), files_of(expected)
    for name in names:
        assert got.get(name) == want.get(name), name
    assert index_of(repo, *names) == index_of(expected, *names)


def test_16_paths_are_relative_to_the_current_folder_and_options_may_follow(repo: Path) -> None:
    code, out, err = restore(repo, "latest", "--", "x.py", "--dry-run", cwd=repo / "src")
    assert code == 1 and "src/--dry-run" in err  # after `--` everything is a path: there is no src/--dry-run
    code, _, err = restore(repo, "latest", "--force", "--", "x.py", cwd=repo / "src")
    assert code == 0, err
    assert git(repo, "status", "--porcelain").splitlines() == ["M  src/x.py"]


def test_16_local_changes_in_a_named_path_are_refused_and_force_saves_them(repo: Path) -> None:
    write(repo / "b.txt", "my local edit\n")
    write(repo / "src" / "new.py", "my own new file\n")
    before = state(repo)
    for args in ([], ["--dry-run"]):
        code, out, err = restore(repo, "latest", *args, "--", "b.txt", "src")
        assert code == 1, (args, err)
        assert "local changes in b.txt" in err and "src/new.py" in err and "--force" in err
        assert state(repo) == before
    write(repo / "c.txt", "an unrelated local change\n")
    code, out, err = restore(repo, "latest", "--", "a.txt")  # changes elsewhere do not block
    assert code == 0, err

    code, out, err = restore(repo, "latest", "--force", "--", "b.txt", "src")
    assert code == 0, err
    assert (repo / "b.txt").read_text() == "b unstaged\n" and (repo / "c.txt").exists()
    saved = out.split("saved your local changes first as ")[1].split(";")[0]
    assert "my local edit" in git(repo, "show", f"{saved}:b.txt")
    backup = next((repo / ".git" / "gitend" / "restore-backup").iterdir())
    assert (backup / "src" / "new.py").read_text() == "my own new file\n"


def test_16_a_path_the_snapshot_did_not_change_is_an_error(repo: Path) -> None:
    before = state(repo)
    code, _, err = restore(repo, "latest", "--", "no-such-file", "a.txt")
    assert code == 1 and "no-such-file" in err and err.count("\n") == 1
    assert state(repo) == before
