"""`gitend restore`: exact round trips, merges onto a moved HEAD, and refusals that change nothing."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from testing.dirty import EXAMPLES, INITIAL, STEPS, ignored, make_dirty_repo
from testing.machine import Machine
from testing.repo import files_of, git, gitend, hook, init_repo, state, write


def restore(repo: Path, *args: str) -> tuple[int, str, str]:
    proc = gitend("restore", *args, cwd=repo)
    return proc.returncode, proc.stdout, proc.stderr


def wipe(repo: Path) -> None:
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-q", "-fd")


def save_and_wipe(repo: Path) -> None:
    """A session ends, then the work tree is lost (a bad rewind, an rm, a reset)."""
    hook(repo)
    wipe(repo)


def worktree_and_index(repo: Path) -> tuple[dict[str, tuple[int, bytes]], str]:
    skip = ignored(repo) | {".git"}
    return {p: v for p, v in files_of(repo).items() if p not in skip}, git(repo, "ls-files", "-s", "-z")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(initial=INITIAL, steps=STEPS)
def test_round_trip_restores_work_tree_index_and_modes(
    initial: dict[str, bytes], steps: list[tuple[str, str, str, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_dirty_repo(Path(tmp) / "repo", initial, steps)
        before = worktree_and_index(repo)
        if "saved" not in hook(repo).stdout:
            return
        wipe(repo)
        code, out, err = restore(repo, "latest")
        assert code == 0, err
        assert worktree_and_index(repo) == before


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"a.txt": "1\n2\n3\n", "b.txt": "b\n", "c.txt": "c\n"})


def dirty(repo: Path) -> None:
    write(repo / "a.txt", "1\n2\n3\nstaged\n")
    git(repo, "add", "a.txt")
    write(repo / "b.txt", "b unstaged\n")
    (repo / "c.txt").unlink()
    write(repo / "new.txt", "untracked\n")


def test_head_moved_clean_merge_keeps_the_split(repo: Path) -> None:
    dirty(repo)
    save_and_wipe(repo)
    write(repo / "other.txt", "committed later\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "moved on")
    code, out, err = restore(repo, "latest")
    assert code == 0, err
    assert "merged onto" in out
    assert git(repo, "status", "--porcelain").splitlines() == ["M  a.txt", " M b.txt", " D c.txt", "?? new.txt"]
    assert (repo / "other.txt").read_text() == "committed later\n"


def test_head_moved_conflicting_merge_keeps_both_sides_and_names_files(repo: Path) -> None:
    write(repo / "a.txt", "1\nmine\n3\n")
    write(repo / "b.txt", "b unstaged\n")
    hook(repo)
    git(repo, "reset", "-q", "--hard")
    write(repo / "a.txt", "1\ntheirs\n3\n")
    git(repo, "commit", "-qam", "conflicting")
    code, out, err = restore(repo, "latest")
    assert code == 1
    assert "conflicts in a.txt" in err
    text = (repo / "a.txt").read_text()
    assert "<<<<<<<" in text and "mine" in text and "theirs" in text
    status = git(repo, "status", "--porcelain").splitlines()
    assert "UU a.txt" in status and " M b.txt" in status  # the unstaged change stays unstaged


def test_staged_changes_that_no_longer_apply_are_merged_then_restaged(repo: Path) -> None:
    write(repo / "a.txt", "1\n2\n3\nstaged\n")
    git(repo, "add", "a.txt")
    hook(repo)
    git(repo, "reset", "-q", "--hard")
    write(repo / "a.txt", "0\n1\n2\n3\n")
    git(repo, "commit", "-qam", "prepend")
    code, out, err = restore(repo, "latest")
    assert code == 0, err
    assert (repo / "a.txt").read_text() == "0\n1\n2\n3\nstaged\n"
    assert git(repo, "status", "--porcelain").splitlines() == ["M  a.txt"]


def test_local_edits_are_refused_and_nothing_changes(repo: Path) -> None:
    dirty(repo)
    save_and_wipe(repo)
    write(repo / "b.txt", "local edit\n")
    before = state(repo)
    code, out, err = restore(repo, "latest")
    assert code == 1
    assert "local changes in b.txt" in err and "--force" in err and "commit or stash" in err
    assert err.count("\n") == 1
    assert state(repo) == before


def test_untracked_collision_is_refused_before_any_write(repo: Path) -> None:
    dirty(repo)
    save_and_wipe(repo)
    write(repo / "new.txt", "my own new file\n")
    before = state(repo)
    code, out, err = restore(repo, "latest")
    assert code == 1 and "untracked files in the way: new.txt" in err
    assert state(repo) == before  # plain `git stash apply` would have half-applied here


def test_ignored_file_in_the_way_is_refused_even_with_force(repo: Path) -> None:
    write(repo / "build.out", "snapshotted\n")
    hook(repo)
    (repo / "build.out").unlink()
    write(repo / ".git" / "info" / "exclude", "*.out\n")
    write(repo / "build.out", "precious ignored output\n")
    code, _, err = restore(repo, "latest", "--force")
    assert code == 1 and "ignored files are in the way: build.out" in err
    assert (repo / "build.out").read_text() == "precious ignored output\n"


def test_force_saves_local_edits_first_and_that_save_is_restorable(repo: Path) -> None:
    dirty(repo)
    hook(repo)
    target = git(repo, "rev-parse", "wip/main").strip()
    wipe(repo)
    write(repo / "b.txt", "local edit\n")
    write(repo / "new.txt", "colliding local file\n")
    local = worktree_and_index(repo)
    code, out, err = restore(repo, target[:12], "--force")
    assert code == 0, err
    saved = out.split("saved your local changes first as ")[1].split(";")[0]
    assert (repo / "new.txt").read_text() == "untracked\n"
    assert (repo / "b.txt").read_text() == "b unstaged\n"

    wipe(repo)
    code, out, err = restore(repo, saved)
    assert code == 0, err
    assert worktree_and_index(repo) == local


def test_dry_run_changes_nothing_and_says_what_would(repo: Path) -> None:
    dirty(repo)
    save_and_wipe(repo)
    write(repo / "a.txt", "1\n2\n3\nconflicting line\n")
    git(repo, "commit", "-qam", "moved")
    before = state(repo)
    code, out, err = restore(repo, "latest", "--dry-run")
    assert code == 0, err
    assert state(repo) == before
    assert "HEAD has moved" in out and "conflicts expected in: a.txt" in out
    assert "staged: M a.txt" in out and "unstaged: M b.txt, D c.txt" in out and "untracked: new.txt" in out
    write(repo / "b.txt", "local\n")
    before = state(repo)
    code, out, err = restore(repo, "latest", "--dry-run")
    assert code == 1 and "refusing to restore over local changes in b.txt" in err
    assert state(repo) == before


def test_unborn_head(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "fresh", {})
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")
    write(repo / "staged.txt", "staged then edited\n")
    write(repo / "loose.txt", "untracked\n")
    before = worktree_and_index(repo)
    hook(repo)
    git(repo, "rm", "-q", "-f", "--cached", "staged.txt")
    for name in ("staged.txt", "loose.txt"):
        (repo / name).unlink()
    code, out, err = restore(repo, "latest")
    assert code == 0, err
    assert worktree_and_index(repo) == before


def test_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    dirty(repo)
    before = worktree_and_index(repo)
    save_and_wipe(repo)
    code, _, err = restore(repo, "wip/detached")
    assert code == 0, err
    assert worktree_and_index(repo) == before


def test_restore_into_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "topic", str(linked))
    dirty(linked)
    before = worktree_and_index(linked)
    save_and_wipe(linked)
    main_before = state(repo)
    code, _, err = restore(linked, "latest")
    assert code == 0, err
    assert worktree_and_index(linked) == before
    assert state(repo) == main_before


def test_names_snapshots_by_branch_offset_commit_and_session(repo: Path) -> None:
    for n in range(3):
        write(repo / "b.txt", f"version {n}\n")
        hook(repo, session_id=f"sess-{n}-{'abcd'[n]}")
    listing = json.loads(gitend("list", "--json", cwd=repo).stdout)
    assert [s["session_id"] for s in listing] == ["sess-2-c", "sess-1-b", "sess-0-a"]
    assert listing[0]["files"] == ["b.txt"] and listing[2]["name"] == "wip/main~2"
    for spec, version in [("wip/main~1", 1), ("sess-0-a", 0), (listing[1]["commit"][:8], 1), ("latest", 2)]:
        git(repo, "checkout", "-q", "--", "b.txt")
        code, _, err = restore(repo, spec)
        assert code == 0, (spec, err)
        assert (repo / "b.txt").read_text() == f"version {version}\n", spec
    git(repo, "checkout", "-q", "--", "b.txt")

    code, _, err = restore(repo, "sess-")
    assert code == 1 and "ambiguous" in err and "sess-0-a" in err and "sess-2-c" in err
    code, _, err = restore(repo, "wip/main~7")
    assert code == 1 and "3 snapshot(s)" in err
    code, _, err = restore(repo, "nothing-like-it")
    assert code == 1 and "no snapshot matches 'nothing-like-it'" in err and "gitend list --all" in err


def test_snapshot_only_on_the_remote_is_fetched_then_restored(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    laptop = init_repo(tmp_path / "laptop", {"a.txt": "a\n"})
    git(laptop, "remote", "add", "origin", str(remote))
    git(laptop, "push", "-q", "origin", "main")
    write(laptop / "a.txt", "work from the laptop\n")
    hook(laptop, session_id="laptop-session")
    git(laptop, "push", "-q", "origin", "wip/main")

    desktop = tmp_path / "desktop"
    git(tmp_path, "clone", "-q", "--single-branch", "-b", "main", str(remote), str(desktop))
    code, _, err = restore(desktop, "laptop-session")
    assert code == 1 and "--fetch" in err
    code, out, err = restore(desktop, "laptop-session", "--fetch")
    assert code == 0, err
    assert (desktop / "a.txt").read_text() == "work from the laptop\n"
    git(desktop, "checkout", "-q", "--", "a.txt")
    code, _, err = restore(desktop, "origin/wip/main", "--dry-run")
    assert code == 0, err


def backups(repo: Path) -> list[Path]:
    return sorted((repo / ".git" / "gitend" / "restore-backup").iterdir())


def test_force_moves_what_is_in_the_way_aside_with_the_ignored_files_in_it(repo: Path) -> None:
    write(repo / ".gitignore", ".env\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore .env")
    write(repo / "config", "snapshotted file\n")
    hook(repo)
    (repo / "config").unlink()
    write(repo / "config" / ".env", "SECRET=1\n")  # ignored: the --force snapshot leaves it out
    write(repo / "config" / "notes.txt", "notes\n")
    code, out, err = restore(repo, "latest", "--dry-run", "--force")
    assert code == 0 and "move config into <git dir>/gitend/restore-backup/" in out
    code, out, err = restore(repo, "latest", "--force")
    assert code == 0, err
    assert (repo / "config").read_text() == "snapshotted file\n"
    [backup] = backups(repo)
    assert f"moved what was in the way (config) to {backup}" in out
    assert (backup / "config" / ".env").read_text() == "SECRET=1\n"
    assert (backup / "config" / "notes.txt").read_text() == "notes\n"


def test_force_moves_a_nested_repository_in_the_way_aside_with_its_uncommitted_work(repo: Path) -> None:
    write(repo / "lib", "snapshotted file\n")
    hook(repo)
    (repo / "lib").unlink()
    nested = init_repo(repo / "lib", {"n.txt": "committed\n"})
    write(nested / "n.txt", "uncommitted in the nested repository\n")
    code, out, err = restore(repo, "latest", "--force")
    assert code == 0, err
    assert (repo / "lib").read_text() == "snapshotted file\n"
    [backup] = backups(repo)
    assert (backup / "lib" / "n.txt").read_text() == "uncommitted in the nested repository\n"
    assert git(backup / "lib", "log", "--format=%s").strip() == "initial"


def test_untracked_file_committed_since_with_other_content_comes_back_as_an_unstaged_change(repo: Path) -> None:
    write(repo / "a.txt", "1\n2\n3\nedited\n")
    write(repo / "new.txt", "the snapshot's new file\n")
    write(repo / "same.txt", "the same on both sides\n")
    save_and_wipe(repo)
    write(repo / "new.txt", "my own new file\n")
    write(repo / "same.txt", "the same on both sides\n")
    git(repo, "add", "new.txt", "same.txt")
    git(repo, "commit", "-qm", "commit new.txt and same.txt")
    code, out, err = restore(repo, "latest", "--dry-run")
    assert code == 0, err
    assert "untracked in the snapshot but tracked on HEAD now: new.txt" in out
    assert "same content: same.txt" in out
    code, out, err = restore(repo, "latest")
    assert code == 0, err
    assert "note: untracked in the snapshot but tracked on HEAD now: new.txt" in out
    assert (repo / "a.txt").read_text() == "1\n2\n3\nedited\n"
    assert (repo / "new.txt").read_text() == "the snapshot's new file\n"
    assert git(repo, "show", "HEAD:new.txt") == "my own new file\n"
    assert git(repo, "status", "--porcelain").splitlines() == [" M a.txt", " M new.txt"]
    assert git(repo, "stash", "list") == ""


def test_a_folder_that_became_a_file_restores_onto_a_clean_tree(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"d/x": "in a folder\n", "keep.txt": "k\n"})
    (repo / "d" / "x").unlink()
    (repo / "d").rmdir()
    write(repo / "d", "now a file\n")
    before = worktree_and_index(repo)
    save_and_wipe(repo)
    code, out, err = restore(repo, "latest")
    assert code == 0, err
    assert worktree_and_index(repo) == before


def test_a_folder_that_became_a_file_is_in_the_way_while_it_holds_other_files(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"d/x": "in a folder\n", ".gitignore": "*.log\n"})
    (repo / "d" / "x").unlink()
    (repo / "d").rmdir()
    write(repo / "d", "now a file\n")
    save_and_wipe(repo)
    write(repo / "d" / "build.log", "ignored, not saved by anything\n")
    before = state(repo)
    code, _, err = restore(repo, "latest")
    assert code == 1 and "untracked files in the way: d" in err
    assert state(repo) == before


def test_branch_prefix_without_a_slash(repo: Path) -> None:
    write(repo / ".gitend.yaml", 'snapshot: {branch_prefix: "wip-"}\n')
    git(repo, "add", ".gitend.yaml")
    git(repo, "commit", "-qm", "gitend config")
    for n in range(2):
        write(repo / "b.txt", f"version {n}\n")
        hook(repo, session_id=f"s-{n}")
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/wip-main").strip() == "refs/heads/wip-main"
    for args in (["--json"], ["--all", "--json"]):
        listing = json.loads(gitend("list", *args, cwd=repo).stdout)
        assert [s["name"] for s in listing] == ["wip-main", "wip-main~1"], args
    git(repo, "checkout", "-q", "--", "b.txt")
    code, _, err = restore(repo, "wip-main~1")
    assert code == 0, err
    assert (repo / "b.txt").read_text() == "version 0\n"


def test_restore_and_list_on_another_clone(tmp_path: Path, hermetic: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    url = remote.as_uri()
    laptop = tmp_path / "laptop"
    git(tmp_path, "clone", "-q", url, str(laptop))
    write(laptop / "a.txt", "a\n")
    git(laptop, "add", "a.txt")
    git(laptop, "commit", "-qm", "initial")
    git(laptop, "push", "-q", "origin", "main")
    write(hermetic / ".config" / "gitend" / "config.yaml", "snapshot: {push_remote: origin}\n")
    write(laptop / "a.txt", "work from the laptop\n")
    hook(laptop, session_id="laptop-session")
    Machine(hermetic).wait_for_worker()  # pushes wip/main as wip/<host>/main
    pushed = git(remote, "for-each-ref", "--format=%(refname)", "refs/heads/wip/").split()
    assert len(pushed) == 1 and pushed[0].endswith("/main") and pushed[0] != "refs/heads/wip/main"

    desktop = tmp_path / "desktop"
    git(tmp_path, "clone", "-q", url, str(desktop))  # fetches refs/remotes/origin/wip/<host>/main too
    fetched = "refs/remotes/origin/" + pushed[0].removeprefix("refs/heads/")
    for args in ([], ["--all"]):
        listing = json.loads(gitend("list", "--json", *args, cwd=desktop).stdout)
        assert [(s["ref"], s["session_id"]) for s in listing] == [(fetched, "laptop-session")], args
    # Another clone's snapshot is taken only by its name (issue 12.8: `latest` is this clone's own).
    name = fetched.removeprefix("refs/remotes/")
    code, out, err = restore(desktop, name, "--dry-run")
    assert code == 0 and "origin/wip/" in out, err
    code, out, err = restore(desktop, name, "--fetch")
    assert code == 0, err
    assert (desktop / "a.txt").read_text() == "work from the laptop\n"


def test_untracked_file_under_a_file_committed_since_is_refused_before_any_write(repo: Path) -> None:
    write(repo / "a.txt", "1\n2\n3\nedited\n")
    write(repo / "d" / "x", "needs d to be a folder\n")
    save_and_wipe(repo)
    write(repo / "d", "now a tracked file\n")
    git(repo, "add", "d")
    git(repo, "commit", "-qm", "d is a file")
    before = state(repo)
    for args in ([], ["--force"], ["--dry-run"]):
        code, _, err = restore(repo, "latest", *args)
        assert code == 1 and "untracked file(s) d/x need a folder where HEAD now tracks a file" in err, args
        assert state(repo) == before


def test_a_file_untracked_with_git_rm_cached_comes_back_untracked(repo: Path) -> None:
    git(repo, "rm", "-q", "--cached", "a.txt")  # staged deletion, the same file left untracked
    before = worktree_and_index(repo)
    save_and_wipe(repo)
    code, _, err = restore(repo, "latest")
    assert code == 0, err
    assert worktree_and_index(repo) == before
