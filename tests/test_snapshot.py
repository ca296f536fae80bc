"""Snapshots in the awkward states real repositories get into."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing.machine import Machine
from testing.repo import TRANSCRIPTS, git, gitend, hook, init_repo, payload, state, write


def wip(repo: Path, branch: str = "main") -> str:
    return git(repo, "rev-parse", f"refs/heads/wip/{branch}").strip()


def show(repo: Path, rev: str) -> str:
    return git(repo, "show", rev)


def message(repo: Path, rev: str) -> str:
    return git(repo, "log", "-1", "--format=%B", rev)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n"})


def test_snapshot_shape_trailers_and_reachability(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    write(repo / "a.txt", "a2\n")
    hook(repo, session_id="s-one", reason="logout")
    first = wip(repo)
    parents = git(repo, "rev-list", "--parents", "-n1", first).split()[1:]
    assert parents[0] == head and len(parents) == 3
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", first)
    assert f"Gitend-Base: {head}" in trailers
    assert "Gitend-Session: s-one" in trailers and "Gitend-Reason: logout" in trailers
    assert "Gitend-Branch: main" in trailers

    write(repo / "a.txt", "a3\n")
    hook(repo, session_id="s-two")
    second = wip(repo)
    assert git(repo, "rev-parse", f"{second}^4").strip() == first
    assert "Gitend-Session: s-two" in message(repo, second)


def test_identical_state_makes_no_new_snapshot(repo: Path) -> None:
    write(repo / "a.txt", "changed\n")
    hook(repo)
    first = wip(repo)
    result = hook(repo, event="Stop")
    assert "nothing new to save" in result.stdout
    assert wip(repo) == first
    write(repo / "a.txt", "changed again\n")
    hook(repo, event="Stop")
    assert wip(repo) != first


def test_clean_tree_saves_nothing(repo: Path) -> None:
    result = hook(repo)
    assert "nothing to save" in result.stdout
    assert git(repo, "branch", "--list", "wip/*") == ""


def test_unborn_head(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "fresh", {})
    write(repo / "first.txt", "first\n")
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")
    before = state(repo)
    hook(repo)
    assert state(repo) == before
    snap = wip(repo)
    assert "Gitend-Base: none" in message(repo, snap)
    assert git(repo, "ls-tree", "-r", "--name-only", f"{snap}^2").split() == ["staged.txt"]
    assert git(repo, "ls-tree", "-r", "--name-only", f"{snap}^3").split() == ["first.txt"]
    assert git(repo, "rev-parse", "HEAD", check=False).strip() == "HEAD"  # still unborn


def test_detached_head_uses_a_detached_wip_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    write(repo / "a.txt", "detached work\n")
    hook(repo)
    assert "Gitend-Branch: detached" in message(repo, "refs/heads/wip/detached")


def test_merge_in_progress_saves_conflicts_with_markers(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "other")
    write(repo / "a.txt", "theirs\n")
    git(repo, "commit", "-qam", "theirs")
    git(repo, "checkout", "-q", "main")
    write(repo / "a.txt", "ours\n")
    git(repo, "commit", "-qam", "ours")
    git(repo, "merge", "other", check=False)
    before = state(repo)
    hook(repo)
    assert state(repo) == before
    assert (Path(git(repo, "rev-parse", "--absolute-git-dir").strip()) / "MERGE_HEAD").exists()
    snap = wip(repo)
    assert "<<<<<<<" in git(repo, "show", f"{snap}:a.txt")
    text = message(repo, snap)
    assert "a merge was in progress" in text and "conflict markers: a.txt" in text


def test_racily_clean_edit_is_saved(repo: Path) -> None:
    # An edit in the same timestamp tick as the last `git add`, same size: only git's
    # racy-clean check (entry mtime >= index mtime) notices it. The copy must keep that.
    git(repo, "config", "core.trustctime", "false")
    tick = 1_700_000_000
    path = write(repo / "a.txt", "AAAA\n")
    os.utime(path, (tick, tick))
    git(repo, "add", "a.txt")
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(b"BBBB\n")
    os.utime(path, (tick, tick))
    os.utime(repo / ".git" / "index", (tick, tick))
    assert "M a.txt" in git(repo, "--no-optional-locks", "status", "--short")
    hook(repo)
    assert git(repo, "show", f"{wip(repo)}:a.txt") == "BBBB\n"


def test_index_lock_held_by_another_git(repo: Path) -> None:
    write(repo / "a.txt", "edited\n")
    lock = repo / ".git" / "index.lock"
    lock.write_bytes(b"")
    hook(repo)
    assert lock.exists() and lock.read_bytes() == b""
    assert git(repo, "show", f"{wip(repo)}:a.txt") == "edited\n"


def test_linked_worktree_has_its_own_wip_branch(repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    write(linked / "b.txt", "feature work\n")
    write(repo / "a.txt", "main work\n")
    before_linked, before_main = state(linked), state(repo)
    hook(linked)
    hook(repo)
    assert state(linked) == before_linked and state(repo) == before_main
    assert git(repo, "show", "refs/heads/wip/feature:b.txt") == "feature work\n"
    assert git(repo, "show", "refs/heads/wip/main:a.txt") == "main work\n"


def test_sparse_checkout_keeps_out_of_cone_files(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "sparse", {"in/a.txt": "a\n", "out/b.txt": "b\n"})
    git(repo, "sparse-checkout", "set", "in")
    assert not (repo / "out" / "b.txt").exists()
    write(repo / "in" / "a.txt", "edited\n")
    hook(repo)
    snap = wip(repo)
    assert git(repo, "show", f"{snap}:out/b.txt") == "b\n"
    assert "out/b.txt" not in git(repo, "diff-tree", "-r", "--name-only", "HEAD", snap)


def test_submodule_gitlink_recorded_and_dirty_submodule_noted(tmp_path: Path) -> None:
    lib = init_repo(tmp_path / "lib", {"lib.txt": "v1\n"})
    repo = init_repo(tmp_path / "app", {"app.txt": "app\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    git(repo, "commit", "-qm", "add lib")
    write(repo / "lib" / "lib.txt", "v2\n")
    git(repo / "lib", "commit", "-qam", "v2")
    write(repo / "lib" / "lib.txt", "dirty inside\n")
    before = state(repo)
    hook(repo)
    assert state(repo) == before
    snap = wip(repo)
    new_sub_head = git(repo / "lib", "rev-parse", "HEAD").strip()
    assert git(repo, "rev-parse", f"{snap}:lib").strip() == new_sub_head
    assert "submodule lib has uncommitted changes inside it" in message(repo, snap)


def test_nested_repository_is_noted_not_lost_or_moved(repo: Path) -> None:
    nested = init_repo(repo / "nested", {"n.txt": "n\n"})
    write(repo / "a.txt", "changed\n")
    hook(repo)
    assert (nested / ".git").is_dir()
    assert "nested/ is a nested git repository" in message(repo, wip(repo))


def test_large_files_are_left_out_and_listed(repo: Path, hermetic: Path) -> None:
    (hermetic / ".config" / "gitend").mkdir(parents=True)
    (hermetic / ".config" / "gitend" / "config.yaml").write_text("snapshot:\n  max_file_mb: 0.01\n")
    write(repo / "big.bin", os.urandom(20_000))
    write(repo / "small.txt", "small\n")
    hook(repo)
    snap = wip(repo)
    assert git(repo, "ls-tree", "-r", "--name-only", f"{snap}^3").split() == ["small.txt"]
    assert "- big.bin (19.5 KiB)" in message(repo, snap)


def test_symlinks_modes_deletions_binary_and_odd_names(repo: Path) -> None:
    os.symlink("a.txt", repo / "link")
    (repo / "b.txt").chmod(0o755)
    (repo / "a.txt").unlink()
    write(repo / "bin\x01ary \n ü.dat", bytes(range(256)))
    hook(repo)
    snap = wip(repo)
    untracked = git(repo, "ls-tree", "-r", "-z", f"{snap}^3").split("\0")
    assert any(entry.startswith("120000") and entry.endswith("\tlink") for entry in untracked)
    assert any(entry.endswith("\tbin\x01ary \n ü.dat") for entry in untracked)
    tracked = git(repo, "ls-tree", "-r", snap)
    assert "100755 blob" in tracked and "b.txt" in tracked and "a.txt" not in tracked


def test_git_hooks_do_not_run_and_signing_does_not_prompt(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    marker = repo.parent / "hook-ran"
    for name in ("reference-transaction", "post-index-change", "pre-commit", "post-commit"):
        write(hooks / name, f"#!/bin/sh\necho {name} >> '{marker}'\n", mode=0o755)
    git(repo, "config", "commit.gpgSign", "true")
    git(repo, "config", "gpg.program", "false")
    write(repo / "a.txt", "edited\n")
    hook(repo)
    assert not marker.exists()
    assert git(repo, "cat-file", "commit", wip(repo)).count("gpgsig") == 0


def test_inherited_git_variables_are_scrubbed(repo: Path, tmp_path: Path) -> None:
    write(repo / "a.txt", "edited\n")
    decoy = tmp_path / "decoy-index"
    env = {"GIT_INDEX_FILE": str(decoy), "GIT_DIR": str(tmp_path / "nowhere"), "GIT_WORK_TREE": str(tmp_path)}
    before = state(repo)
    proc = gitend("hook", "--strict", cwd=repo, input=payload(repo), env=env)
    assert proc.returncode == 0, proc.stderr
    assert state(repo) == before and not decoy.exists()
    assert git(repo, "show", f"{wip(repo)}:a.txt") == "edited\n"


def test_no_user_identity_still_saves(repo: Path, hermetic: Path) -> None:
    (hermetic / ".gitconfig").write_text("[user]\n\tuseConfigOnly = true\n")
    write(repo / "a.txt", "edited\n")
    hook(repo)
    assert git(repo, "log", "-1", "--format=%an <%ae>", wip(repo)).strip() == "gitend <gitend@localhost>"


def test_a_foreign_branch_with_the_wip_name_is_never_moved(repo: Path) -> None:
    git(repo, "branch", "wip/main")
    mine = wip(repo)
    write(repo / "a.txt", "edited\n")
    proc = gitend("hook", "--strict", cwd=repo, input=payload(repo))
    assert proc.returncode == 1
    assert "is not a gitend snapshot" in proc.stderr
    assert wip(repo) == mine


def test_snapshot_from_a_subdirectory_saves_the_whole_tree(repo: Path) -> None:
    write(repo / "sub" / "deep.txt", "deep\n")
    write(repo / "a.txt", "top\n")
    hook(repo / "sub")
    snap = wip(repo)
    assert git(repo, "show", f"{snap}:a.txt") == "top\n"
    assert git(repo, "show", f"{snap}^3:sub/deep.txt") == "deep\n"


def test_message_comes_from_the_transcript(repo: Path) -> None:
    write(repo / "a.txt", "edited\n")
    hook(repo, transcript=TRANSCRIPTS / "v2.0-rewind-branches.jsonl", reason="prompt_input_exit")
    text = message(repo, wip(repo))
    subject, _, body = text.partition("\n\n")
    assert subject.startswith("wip: ") and len(subject) <= 72
    assert "Prompts:" in body and "M a.txt" in body
    assert "Session ended: prompt_input_exit" in body


def test_too_much_to_hash_in_the_budget_is_handed_to_the_worker(repo: Path, hermetic: Path) -> None:
    write(hermetic / ".config" / "gitend" / "config.yaml", "push:\n  background: false\n")
    for n in range(2100):  # more than the estimate (snapshot.estimate_s) fits in 1.5 s
        write(repo / "generated" / f"f{n:04d}.txt", f"{n}\n")
    write(repo / "a.txt", "edited\n")
    before = state(repo)
    result = hook(repo)
    assert "2101 changed file(s)" in result.stdout and "the background worker saves them" in result.stdout
    assert state(repo) == before
    Machine(hermetic).wait_for_worker()  # started although background pushes are off
    snap = wip(repo)
    assert git(repo, "show", f"{snap}:a.txt") == "edited\n"
    assert len(git(repo, "ls-tree", "-r", "--name-only", f"{snap}^3").split()) == 2100
    assert state(repo) == before


def test_twelve_hooks_at_once(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "main", {"shared.txt": "base\n"})
    worktrees = []
    for n in range(6):
        path = tmp_path / f"wt{n}"
        git(repo, "worktree", "add", "-q", "-b", f"topic{n}", str(path))
        write(path / "shared.txt", f"work of {n}\n")
        write(path / f"new{n}.txt", f"untracked {n}\n")
        worktrees.append(path)
    write(repo / "shared.txt", "main work\n")
    targets = worktrees + [repo] * 6
    procs = [subprocess.Popen([sys.executable, "-m", "gitend", "hook", "--strict"], cwd=path,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for path in targets]
    for proc, path in zip(procs, targets):
        proc.stdin.write(payload(path, session_id=f"s-{path.name}"))  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    results = [(proc.wait(timeout=120), proc.stderr.read().decode()) for proc in procs]  # type: ignore[union-attr]
    assert all(code == 0 for code, _ in results), results
    for n, path in enumerate(worktrees):
        assert git(repo, "show", f"refs/heads/wip/topic{n}:shared.txt") == f"work of {n}\n"
        assert git(repo, "show", f"refs/heads/wip/topic{n}^3:new{n}.txt") == f"untracked {n}\n"
    assert git(repo, "show", "refs/heads/wip/main:shared.txt") == "main work\n"
    assert len(json.loads(gitend("list", "--json", cwd=repo).stdout)) == 1  # six identical states, one save
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr.strip() == "", fsck.stderr


def conflicting_topic(repo: Path) -> None:
    """main and topic both change a.txt; topic is checked out."""
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo / "a.txt", "topic\n")
    git(repo, "commit", "-qam", "topic change")
    git(repo, "checkout", "-q", "main")
    write(repo / "a.txt", "main\n")
    git(repo, "commit", "-qam", "main change")
    git(repo, "checkout", "-q", "topic")


def test_rebase_in_progress_saves_on_the_branch_being_rebased(repo: Path) -> None:
    conflicting_topic(repo)
    git(repo, "rebase", "main", check=False)  # stops on the conflict
    assert git(repo, "symbolic-ref", "-q", "HEAD", check=False) == ""  # detached while rebasing
    write(repo / "b.txt", "edited mid-rebase\n")
    before = state(repo)
    hook(repo)
    assert state(repo) == before
    snap = wip(repo, "topic")
    assert "<<<<<<<" in git(repo, "show", f"{snap}:a.txt")
    assert git(repo, "show", f"{snap}:b.txt") == "edited mid-rebase\n"
    text = message(repo, snap)
    assert "Gitend-Branch: topic" in text and "a rebase was in progress" in text
    assert git(repo, "branch", "--list", "wip/detached") == ""


def test_cherry_pick_in_progress_saves_conflicts_with_markers(repo: Path) -> None:
    conflicting_topic(repo)
    git(repo, "checkout", "-q", "main")
    git(repo, "cherry-pick", "topic", check=False)
    before = state(repo)
    hook(repo)
    assert state(repo) == before
    snap = wip(repo)
    shown = git(repo, "show", f"{snap}:a.txt")
    assert "<<<<<<<" in shown and "main" in shown and "topic" in shown
    text = message(repo, snap)
    assert "a cherry-pick was in progress" in text and "conflict markers: a.txt" in text


def test_review_tracked_folder_replaced_by_a_symlink_still_saves(repo: Path, tmp_path: Path) -> None:
    """A tracked folder swapped for a symlink (to a copy elsewhere, say): git refuses to read
    `d/x.txt` through it, and the whole save used to fail, taking every other edit with it."""
    write(repo / "d" / "x.txt", "x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add d")
    outside = write(tmp_path / "elsewhere" / "x.txt", "copy elsewhere\n").parent
    (repo / "d" / "x.txt").unlink()
    (repo / "d").rmdir()
    (repo / "d").symlink_to(outside)
    write(repo / "a.txt", "precious edit\n")
    before = state(repo)
    hook(repo)
    assert git(repo, "show", "wip/main:a.txt") == "precious edit\n"
    assert git(repo, "cat-file", "-p", "wip/main^3:d") == str(outside)  # the symlink itself, untracked
    assert "d/x.txt" not in git(repo, "ls-tree", "-r", "--name-only", "wip/main")
    assert state(repo) == before
    assert (outside / "x.txt").read_text() == "copy elsewhere\n"


def test_review_files_left_out_are_said_in_the_hook_line_and_log(repo: Path, hermetic: Path) -> None:
    """A snapshot that leaves files out says so where the user and the log see it, not only in
    its message."""
    (hermetic / ".config" / "gitend").mkdir(parents=True)
    (hermetic / ".config" / "gitend" / "config.yaml").write_text("snapshot:\n  max_file_mb: 0.01\n")
    write(repo / "big.bin", os.urandom(20_000))
    write(repo / "small.txt", "small\n")
    proc = hook(repo)
    line = (proc.stdout + proc.stderr).strip()
    assert "1 file(s) left out" in line and "gitend show" in line, line
    log = (hermetic / ".local" / "state" / "gitend" / "gitend.log").read_text()
    assert "1 file(s) left out" in log
