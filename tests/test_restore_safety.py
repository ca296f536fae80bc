"""`gitend restore`: nothing it overwrites is lost (issue 13.1), merges that conflict say where
(13.22), a dry run fails as the real run would (13.17), `latest` is this machine's own work (12.8)."""
from __future__ import annotations

from pathlib import Path

import pytest

from testing.repo import git, gitend, hook, init_repo, payload, state, write


def restore(repo: Path, *args: str) -> tuple[int, str, str]:
    proc = gitend("restore", *args, cwd=repo)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"a.txt": "1\n2\n3\n", "b.txt": "b\n", "c.txt": "c\n"})


def backed_up(repo: Path) -> dict[str, bytes]:
    """Every file in every restore-backup folder, by its path inside the work tree."""
    top = repo / ".git" / "gitend" / "restore-backup"
    if not top.exists():
        return {}
    found = {}
    for folder in top.iterdir():
        for path in folder.rglob("*"):
            if path.is_file():
                found[str(path.relative_to(folder))] = path.read_bytes()
    return found


def snapshot_of_b(repo: Path) -> None:
    """A snapshot (an edit of b.txt) to restore, then the work tree wiped."""
    write(repo / "b.txt", "b from the snapshot\n")
    hook(repo)
    git(repo, "checkout", "-q", "--", "b.txt")


# -- 13.1: --force moves aside what no snapshot holds ---------------------------


def test_13_1_force_backs_up_an_ignored_env_that_was_rm_cached(repo: Path) -> None:
    write(repo / ".env", "TOKEN=committed by mistake\n")
    git(repo, "add", ".env")
    git(repo, "commit", "-qm", "oops, .env")
    snapshot_of_b(repo)
    git(repo, "rm", "-q", "--cached", ".env")
    write(repo / ".gitignore", ".env\n")
    write(repo / ".env", "TOKEN=the real one, never committed\n")  # ignored now: no snapshot holds it
    code, out, err = restore(repo, "latest", "--force")
    assert code == 0, err
    assert (repo / "b.txt").read_text() == "b from the snapshot\n"
    assert backed_up(repo)[".env"] == b"TOKEN=the real one, never committed\n"
    assert "restore-backup" in out and ".env" in out


def test_13_1_force_backs_up_ignored_files_in_a_folder_that_replaced_a_tracked_file(repo: Path) -> None:
    write(repo / ".gitignore", "*.log\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore logs")
    snapshot_of_b(repo)
    (repo / "c.txt").unlink()
    write(repo / "c.txt" / "build.log", "ignored output, in no snapshot\n")
    write(repo / "c.txt" / "notes.md", "untracked, saved by the --force snapshot\n")
    code, out, err = restore(repo, "latest", "--force")
    assert code == 0, err
    assert (repo / "c.txt").read_text() == "c\n"
    assert backed_up(repo)["c.txt/build.log"] == b"ignored output, in no snapshot\n"


def test_13_1_force_backs_up_assume_unchanged(repo: Path) -> None:
    snapshot_of_b(repo)
    git(repo, "update-index", "--assume-unchanged", "a.txt")
    write(repo / "a.txt", "edited behind git's back\n")  # `git status` does not see it: no snapshot has it
    write(repo / "b.txt", "a local edit, so --force is needed\n")
    code, out, err = restore(repo, "latest", "--force")
    assert code == 0, err
    assert backed_up(repo)["a.txt"] == b"edited behind git's back\n"


def test_13_1_without_force_a_hidden_edit_the_restore_would_overwrite_is_refused(repo: Path) -> None:
    snapshot_of_b(repo)
    for flag in ("--assume-unchanged", "--skip-worktree"):
        git(repo, "update-index", flag, "b.txt")
        write(repo / "b.txt", "edited behind git's back\n")
        before = state(repo)
        code, _, err = restore(repo, "latest")
        assert code == 1 and "b.txt" in err and "--force" in err, (flag, err)
        assert state(repo) == before, flag
        code, out, err = restore(repo, "latest", "--force")
        assert code == 0, err
        assert backed_up(repo)["b.txt"] == b"edited behind git's back\n", flag
        assert (repo / "b.txt").read_text() == "b from the snapshot\n"
        git(repo, "update-index", flag.replace("--", "--no-"), "b.txt")
        git(repo, "checkout", "-q", "--", "b.txt")


def test_13_1_force_leaves_a_skip_worktree_file_it_does_not_touch_where_it_is(repo: Path) -> None:
    snapshot_of_b(repo)
    git(repo, "update-index", "--skip-worktree", "a.txt")
    write(repo / "a.txt", "sparse local version\n")
    write(repo / "c.txt", "a local edit\n")
    code, _, err = restore(repo, "latest", "--force")
    assert code == 0, err
    assert (repo / "a.txt").read_text() == "sparse local version\n"
    assert "a.txt" not in backed_up(repo)


# -- 13.22: a conflicting merge with a staged deletion or rename --------------


@pytest.mark.parametrize("staged", ["rename", "deletion"])
def test_13_22_conflicting_merge_with_staged_deletion_or_rename_names_the_conflicts(repo: Path, staged: str) -> None:
    if staged == "rename":
        git(repo, "mv", "c.txt", "moved.txt")
    else:
        git(repo, "rm", "-q", "c.txt")
    write(repo / "a.txt", "1\nmine\n3\n")
    hook(repo)
    git(repo, "reset", "-q", "--hard")
    write(repo / "a.txt", "1\ntheirs\n3\n")
    git(repo, "commit", "-qam", "conflicting")
    code, out, err = restore(repo, "latest")
    assert code == 1, err
    assert "conflicts in a.txt" in err and "did not match" not in err
    status = git(repo, "status", "--porcelain", "--no-renames").splitlines()
    assert "UU a.txt" in status and "D  c.txt" in status
    if staged == "rename":
        assert "A  moved.txt" in status


# -- 13.17: a dry run that would refuse fails like the real run ---------------


def test_13_17_dry_run_exits_1_with_the_refusal_when_the_real_run_would_refuse(repo: Path) -> None:
    snapshot_of_b(repo)
    write(repo / "b.txt", "local edit\n")
    real = restore(repo, "latest")
    dry = restore(repo, "latest", "--dry-run")
    assert real[0] == 1 and dry[0] == 1
    assert real[2] == dry[2] and "local changes in b.txt" in dry[2]
    assert "snapshot" in dry[1]  # what it would do is still shown


def test_13_17_dry_run_force_on_an_unborn_head_exits_1(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "fresh", {})
    write(repo / "a.txt", "snapshotted\n")
    hook(repo)
    write(repo / "a.txt", "local\n")
    real = restore(repo, "latest", "--force")
    dry = restore(repo, "latest", "--dry-run", "--force")
    assert real[0] == dry[0] == 1 and real[2] == dry[2] and "no commits yet" in dry[2]


# -- 12.8: `latest` is this machine's own work, never whoever's is newest ------------


def _other_machines_wip(tmp_path: Path, remote: Path, host: str, text: str, date: str) -> None:
    """Another machine (or anyone with push access) pushes a WIP branch dated `date`."""
    other = tmp_path / f"clone-{host}"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    write(other / "a.txt", text)
    config = write(tmp_path / f"{host}.yaml", "snapshot: {push_remote: null}\n")
    proc = gitend("hook", "--strict", cwd=other, input=payload(other, session_id=f"{host}-session"),
                  env={"GIT_COMMITTER_DATE": date, "GITEND_CONFIG": str(config)})
    assert proc.returncode == 0, proc.stderr
    git(other, "push", "-q", "origin", f"wip/main:refs/heads/wip/{host}/main")


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    seed = init_repo(tmp_path / "seed", {"a.txt": "a\n"})
    git(seed, "push", "-q", str(remote), "main")
    return remote


def test_12_8_latest_on_a_new_clone_lists_other_machines_snapshots_instead_of_picking_one(
        tmp_path: Path, remote: Path) -> None:
    _other_machines_wip(tmp_path, remote, "colleague-box", "a colleague's work\n", "2026-11-30T10:00:00Z")
    _other_machines_wip(tmp_path, remote, "evil-box", "[hooks] from 2099\n", "2099-01-01T00:00:00Z")
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(fresh))
    for spec in ("latest", "wip/main"):
        code, out, err = restore(fresh, spec, "--fetch")
        assert code == 1, (spec, out)
        assert (fresh / "a.txt").read_text() == "a\n"
        for shown in ("evil-box", "colleague-box", "2099-01-01", "2026-11-30", "origin/wip/evil-box/main"):
            assert shown in err, (spec, shown, err)
    code, _, err = restore(fresh, "origin/wip/colleague-box/main")  # an explicit name is taken
    assert code == 0, err
    assert (fresh / "a.txt").read_text() == "a colleague's work\n"


def test_12_8_latest_picks_this_machines_own_pushed_wip_over_a_newer_one(
        tmp_path: Path, remote: Path, hermetic: Path) -> None:
    from testing.machine import Machine

    laptop = tmp_path / "laptop"
    git(tmp_path, "clone", "-q", str(remote), str(laptop))
    write(hermetic / ".config" / "gitend" / "config.yaml", "snapshot: {push_remote: origin}\n")
    write(laptop / "a.txt", "my own work\n")
    hook(laptop, session_id="mine")
    Machine(hermetic).wait_for_worker()
    _other_machines_wip(tmp_path, remote, "evil-box", "[hooks] from 2099\n", "2099-01-01T00:00:00Z")
    git(laptop, "branch", "-D", "-q", "wip/main")  # the local WIP branch is gone: only the pushed one is left
    for spec in ("latest", "wip/main"):
        git(laptop, "checkout", "-q", "--", "a.txt")
        code, out, err = restore(laptop, spec, "--fetch")
        assert code == 0, (spec, err)
        assert (laptop / "a.txt").read_text() == "my own work\n", spec


def test_12_8_on_a_terminal_the_choice_is_offered(tmp_path: Path, remote: Path) -> None:
    from testing.terminal import converse

    _other_machines_wip(tmp_path, remote, "colleague-box", "a colleague's work\n", "2026-11-30T10:00:00Z")
    _other_machines_wip(tmp_path, remote, "evil-box", "[hooks] from 2099\n", "2099-01-01T00:00:00Z")
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(fresh))
    code, shown = converse(["restore", "latest"], ["2"], env={}, cwd=str(fresh))
    assert code == 0, shown
    assert shown.index("evil-box") < shown.index("colleague-box")  # newest first, numbered
    assert (fresh / "a.txt").read_text() == "a colleague's work\n"


@pytest.mark.parametrize("paths", [(), ("--", "b.txt")])
def test_review_force_over_a_skip_worktree_edit_clears_the_flag_and_leaves_no_stray_files(
        repo: Path, paths: tuple[str, ...]) -> None:
    """git's update-index applies only the first of --no-assume-unchanged and --no-skip-worktree:
    a skip-worktree file stayed hidden, reset --hard left it out, and the apply wrote a stray
    `b.txt.stash.XXXXXX` beside it (whole restore) or a change git status never shows (paths)."""
    snapshot_of_b(repo)
    git(repo, "update-index", "--skip-worktree", "b.txt")
    write(repo / "b.txt", "edited behind git's back\n")
    code, _, err = restore(repo, "latest", "--force", *paths)
    assert code == 0, err
    assert backed_up(repo)["b.txt"] == b"edited behind git's back\n"
    assert (repo / "b.txt").read_text() == "b from the snapshot\n"
    assert git(repo, "ls-files", "-v", "b.txt") == "H b.txt\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == " M b.txt\n"


@pytest.mark.parametrize("paths", [(), ("--", "d")])
def test_review_force_never_moves_a_file_beyond_a_tracked_symlink(
        repo: Path, tmp_path: Path, paths: tuple[str, ...]) -> None:
    """The snapshot changed d/x.txt; HEAD has since made `d` a symlink to a folder outside the
    repository. The file there is not in the work tree: --force used to move it into the backup."""
    write(repo / "d" / "x.txt", "x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "d")
    write(repo / "d" / "x.txt", "x from the snapshot\n")
    hook(repo)
    git(repo, "checkout", "-q", "--", "d")
    outside = write(tmp_path / "elsewhere" / "x.txt", "not the repository's\n").parent
    git(repo, "rm", "-rq", "d")
    (repo / "d").symlink_to(outside)
    git(repo, "add", "d")
    git(repo, "commit", "-qm", "d is a link now")
    restore(repo, "latest", "--force", *paths)
    assert (outside / "x.txt").read_text() == "not the repository's\n"
    assert "d/x.txt" not in backed_up(repo)


def test_review_force_while_another_git_holds_the_index_lock_changes_nothing(repo: Path) -> None:
    """--force used to save, move the files in the way into the backup, and only then fail on
    `git reset` ("index.lock: File exists"), saying nothing of what it had moved."""
    snapshot_of_b(repo)
    write(repo / "b.txt", "a local edit\n")
    write(repo / "new.txt", "untracked, in the way\n")
    git(repo, "rm", "-q", "--cached", "c.txt")
    hook(repo, session_id="second")  # a snapshot holding new.txt to restore
    git(repo, "reset", "-q", "--hard")
    write(repo / "new.txt", "another untracked version\n")
    write(repo / "b.txt", "another local edit\n")
    (repo / ".git" / "index.lock").write_text("")
    before = state(repo)
    code, _, err = restore(repo, "latest", "--force")
    assert code == 1 and "index.lock" in err and "Traceback" not in err, err
    assert state(repo) == before
    assert backed_up(repo) == {}


def test_review_restore_never_writes_into_a_nested_repository(repo: Path) -> None:
    """The snapshot's untracked vendor/lib.txt, restored after `vendor` became a git repository
    of its own: --force used to write over that repository's file (its edit into the backup)."""
    write(repo / "vendor" / "lib.txt", "from the snapshot\n")
    hook(repo)
    (repo / "vendor" / "lib.txt").unlink()
    nested = init_repo(repo / "vendor", {"lib.txt": "committed there\n"})
    write(nested / "lib.txt", "uncommitted work there\n")
    write(repo / "b.txt", "a local edit\n")
    before = state(repo)
    code, _, err = restore(repo, "latest", "--force")
    assert code == 1 and "vendor" in err and "repository" in err, err
    assert state(repo) == before
    assert (nested / "lib.txt").read_text() == "uncommitted work there\n"
