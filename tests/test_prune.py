"""`gitend prune`: retention on real repositories. What is kept stays restorable by plain git
and by gitend, the chain stays whole, git fsck stays clean, what goes is reclaimed by git gc,
and a snapshot taken while pruning is never lost."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.machine import Machine
from testing.repo import git, gitend, init_repo, payload, write

DAY = 86400


def config(home: Path, **snapshot: object) -> None:
    write(home / ".config" / "gitend" / "config.yaml", json.dumps({"snapshot": snapshot}))


def save(repo: Path, text: str, session: str, days_ago: float = 0, reason: str = "other") -> None:
    """A session end `days_ago` (the snapshot's commit dates say so) with `a.txt` holding `text`."""
    write(repo / "a.txt", text)
    when = f"@{int(time.time() - days_ago * DAY)} +0000"
    # A budget no busy machine overruns: these saves set the scene, so the hook takes them itself
    # rather than hand them to the worker.
    proc = gitend("hook", "--strict", cwd=repo, input=payload(repo, session_id=session, reason=reason),
                  env={"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when,
                       "CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS": "600000"})
    assert proc.returncode == 0 and "saved" in proc.stdout, proc.stdout + proc.stderr


def listed(repo: Path, *args: str) -> list[dict[str, object]]:
    proc = gitend("list", "--json", *args, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def snapshot_parts(repo: Path, commit: str) -> tuple[str, ...]:
    """What restoring a snapshot depends on: its tree, base, index tree, untracked tree, message."""
    return (git(repo, "rev-parse", f"{commit}^{{tree}}", f"{commit}^1", f"{commit}^2^{{tree}}", f"{commit}^3^{{tree}}"),
            git(repo, "cat-file", "commit", commit).split("\n\n", 1)[1])


def fsck_clean(repo: Path) -> None:
    proc = subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"a.txt": "base\n", "b.txt": "b\n"})


def test_prune_keeps_newest_and_young_restorable_and_gc_reclaims_the_rest(repo: Path, hermetic: Path,
                                                                          tmp_path: Path) -> None:
    config(hermetic, keep_days=30, keep=2)
    for n, days in enumerate([90, 60, 45, 20, 10, 1]):
        save(repo, f"version {n} unique-{n}\n", f"session-{n}", days_ago=days)
    write(repo / "b.txt", "staged\n")
    git(repo, "add", "b.txt")
    write(repo / "new.bin", b"\x00\x01binary")
    save(repo, "version 6\n", "session-6")  # staged, unstaged and untracked parts
    before = listed(repo)
    assert len(before) == 7
    parts = {s["session_id"]: snapshot_parts(repo, str(s["commit"])) for s in before}
    dropped = [s for s in before if s["session_id"] in ("session-0", "session-1", "session-2")]

    dry = gitend("prune", "--dry-run", "-C", str(repo))
    assert dry.returncode == 0, dry.stderr
    assert "3" in dry.stdout and "would" in dry.stdout
    assert listed(repo) == before

    proc = gitend("prune", "-C", str(repo))
    assert proc.returncode == 0, proc.stderr
    after = listed(repo)
    assert [s["session_id"] for s in after] == [f"session-{n}" for n in (6, 5, 4, 3)]
    for snap in after:  # same content, message, dates and files; only the chain link changed
        assert snapshot_parts(repo, str(snap["commit"])) == parts[snap["session_id"]]
        old = next(s for s in before if s["session_id"] == snap["session_id"])
        assert {k: v for k, v in snap.items() if k not in ("commit", "name")} == \
               {k: v for k, v in old.items() if k not in ("commit", "name")}
    oldest = str(after[-1]["commit"])
    assert len(git(repo, "rev-list", "--parents", "-n1", oldest).split()) == 4  # no fourth parent any more
    fsck_clean(repo)

    # Plain git and gitend both bring each kept snapshot back.
    checkout = tmp_path / "checkout"
    git(repo, "worktree", "add", "-q", "--detach", str(checkout), "HEAD")
    git(checkout, "stash", "apply", "--index", str(after[0]["commit"]))
    assert (checkout / "b.txt").read_text() == "staged\n" and (checkout / "new.bin").read_bytes() == b"\x00\x01binary"
    assert "b.txt" in git(checkout, "diff", "--cached", "--name-only")
    git(checkout, "reset", "-q", "--hard")
    git(checkout, "clean", "-qfd")
    restored = gitend("restore", str(after[-1]["commit"]), cwd=checkout)
    assert restored.returncode == 0, restored.stderr
    assert (checkout / "a.txt").read_text() == "version 3 unique-3\n"

    # What was dropped is unreachable: git gc takes it.
    unique = git(repo, "rev-parse", f"{dropped[0]['commit']}:a.txt").strip()
    git(repo, "worktree", "remove", "--force", str(checkout))
    git(repo, "gc", "-q", "--prune=now")
    for snap in dropped:
        assert subprocess.run(["git", "cat-file", "-e", str(snap["commit"])], cwd=repo).returncode != 0
    assert subprocess.run(["git", "cat-file", "-e", unique], cwd=repo).returncode != 0
    fsck_clean(repo)

    again = gitend("prune", "-C", str(repo))
    assert again.returncode == 0 and listed(repo) == after


def test_prune_keep_days_zero_keeps_only_the_newest_keep(repo: Path, hermetic: Path) -> None:
    config(hermetic, keep_days=0, keep=1)
    for n in range(3):
        save(repo, f"v{n}\n", f"s{n}")
    assert gitend("prune", "-C", str(repo)).returncode == 0
    assert [s["session_id"] for s in listed(repo)] == ["s2"]
    fsck_clean(repo)


def test_prune_after_prune_identical_state_still_makes_no_snapshot(repo: Path, hermetic: Path) -> None:
    config(hermetic, keep_days=0, keep=1)
    save(repo, "one\n", "s1")
    save(repo, "two\n", "s2")
    assert gitend("prune", "-C", str(repo)).returncode == 0
    again = gitend("hook", "--strict", cwd=repo, input=payload(repo, session_id="s3"))
    assert again.returncode == 0 and "nothing new to save" in again.stdout
    assert len(listed(repo)) == 1


def test_prune_deleted_branch_leaves_its_wip_branch_to_retention(repo: Path, hermetic: Path) -> None:
    config(hermetic, keep_days=0, keep=2)
    git(repo, "switch", "-q", "-c", "feature")
    for n in range(4):
        save(repo, f"feature {n}\n", f"f{n}")
    git(repo, "checkout", "-q", "-f", "main")
    git(repo, "branch", "-q", "-D", "feature")
    assert gitend("prune", "-C", str(repo)).returncode == 0
    kept = [s for s in listed(repo, "--all") if s["ref"] == "refs/heads/wip/feature"]
    assert [s["session_id"] for s in kept] == ["f3", "f2"]


@pytest.mark.parametrize("value", [0, -1, "3"])
def test_prune_config_keep_must_be_a_whole_number_at_least_one(repo: Path, hermetic: Path, value: object) -> None:
    config(hermetic, keep=value)
    proc = gitend("prune", "-C", str(repo))
    assert proc.returncode == 1
    assert "snapshot.keep" in proc.stderr and "config.yaml" in proc.stderr


def test_prune_config_keep_days_must_not_be_negative(repo: Path, hermetic: Path) -> None:
    config(hermetic, keep_days=-1)
    proc = gitend("prune", "-C", str(repo))
    assert proc.returncode == 1 and "snapshot.keep_days" in proc.stderr and "config.yaml" in proc.stderr


def test_prune_while_hooks_save_loses_nothing(repo: Path, hermetic: Path) -> None:
    """Prune and session ends truly at once, ten rounds, each with old snapshots to drop:
    every session's snapshot is there afterwards (with its own content), the chain is whole."""
    config(hermetic, keep_days=30, keep=1)
    sessions = []
    for round_ in range(10):
        for n in range(2):
            save(repo, f"old {round_}.{n}\n", f"old-{round_}.{n}", days_ago=100)
        write(repo / "a.txt", f"round {round_}\n")
        session = f"round-{round_}"
        sessions.append(session)
        hook = subprocess.Popen([sys.executable, "-m", "gitend", "hook", "--strict"], cwd=repo,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS": "600000"})
        # The prune starts a little later each round, so its window slides across the hook's save.
        prune = subprocess.Popen(["sh", "-c", f"sleep {round_ * 0.05:.2f}; exec \"$@\"", "sh", sys.executable,
                                  "-m", "gitend", "prune", "-C", str(repo)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, hook_err = hook.communicate(payload(repo, session_id=session), timeout=60)
        _, prune_err = prune.communicate(timeout=60)
        assert hook.returncode == 0, hook_err
        assert prune.returncode == 0, prune_err
        fsck_clean(repo)
    assert gitend("prune", "-C", str(repo)).returncode == 0
    final = listed(repo)
    assert [s["session_id"] for s in final] == sessions[::-1]
    for snap in final:
        assert git(repo, "show", f"{snap['commit']}:a.txt") == f"round {str(snap['session_id']).split('-')[1]}\n"


def test_prune_rewrites_on_top_of_a_snapshot_saved_meanwhile(repo: Path, hermetic: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The moment that matters, made certain: a session ends after prune has rewritten the chain
    and before it swaps the branch. The new snapshot is rewritten on top, not dropped."""
    from gitend import retention
    from gitend.git import Repo

    for n in range(3):
        save(repo, f"old {n}\n", f"old-{n}", days_ago=100 - n)
    real_locks = retention._save_locks

    def hook_then_lock(r: Repo):  # type: ignore[no-untyped-def]
        write(repo / "a.txt", "meanwhile\n")
        proc = gitend("hook", "--strict", cwd=repo, input=payload(repo, session_id="meanwhile"))
        assert proc.returncode == 0 and "saved" in proc.stdout, proc.stderr
        return real_locks(r)

    monkeypatch.setattr(retention, "_save_locks", hook_then_lock)
    result = retention.prune(Repo.find(repo), "refs/heads/wip/main", keep_days=30, keep=1, now=time.time())
    assert result.before == 4 and len(result.dropped) == 3
    assert [s["session_id"] for s in listed(repo)] == ["meanwhile"]
    assert git(repo, "show", "wip/main:a.txt") == "meanwhile\n"
    fsck_clean(repo)


def chain_length(repo: Path, ref: str) -> int:
    """Snapshots on a WIP branch, following the fourth parents with plain git."""
    length, rev = 0, ref
    while subprocess.run(["git", "rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], cwd=repo,
                         capture_output=True).returncode == 0:
        length, rev = length + 1, f"{rev}^4"
    return length


def test_worker_prunes_on_its_own_at_most_once_a_day(repo: Path, hermetic: Path) -> None:
    config(hermetic, keep_days=0, keep=1)
    machine = Machine(hermetic)
    for n in range(3):
        save(repo, f"v{n}\n", f"s{n}")
    machine.wait_for_worker()
    assert len(listed(repo)) == 3  # the first snapshot starts the day: nothing pruned yet
    stamp = repo / ".git" / "gitend-pruned"
    day_old = time.time() - 2 * DAY
    os.utime(stamp, (day_old, day_old))
    save(repo, "v3\n", "s3")
    machine.wait_for_worker()
    assert [s["session_id"] for s in listed(repo)] == ["s3"]
    assert any(r["kind"] == "prune" and r["ok"] for r in machine.status()["last"])  # type: ignore[union-attr, index]
    save(repo, "v4\n", "s4")  # pruned less than a day ago: not again
    machine.wait_for_worker()
    assert [s["session_id"] for s in listed(repo)] == ["s4", "s3"]
    fsck_clean(repo)


def test_prune_on_the_remote_touches_this_machines_wip_branches_only(repo: Path, hermetic: Path,
                                                                   tmp_path: Path) -> None:
    from gitend.config import host

    remote = tmp_path / "wip-remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "push", "-q", str(remote), "HEAD:refs/heads/wip/other-machine/main")
    other = git(remote, "rev-parse", "refs/heads/wip/other-machine/main").strip()
    git(repo, "remote", "add", "wipstore", str(remote))  # a named remote: pushes update its tracking refs
    config(hermetic, keep_days=0, keep=2, push_remote="wipstore")
    machine = Machine(hermetic)
    for n in range(4):
        save(repo, f"v{n}\n", f"s{n}")
    machine.wait_for_worker()
    clone_id = (repo / ".git" / "gitend" / "clone-id").read_text().strip()
    ours = f"refs/heads/wip/{host()}-{clone_id}/main"
    assert chain_length(remote, ours) == 4
    oldest = listed(repo)[-1]["commit"]
    proc = gitend("prune", "-C", str(repo))
    assert proc.returncode == 0 and "queued" in proc.stdout, proc.stdout + proc.stderr
    machine.wait_for_worker()
    assert chain_length(remote, ours) == 2
    assert git(remote, "rev-parse", ours).strip() == git(repo, "rev-parse", "refs/heads/wip/main").strip()
    assert git(remote, "rev-parse", "refs/heads/wip/other-machine/main").strip() == other
    fsck_clean(remote)
    # Nothing here keeps the dropped snapshots either, the remote-tracking copy's reflog included.
    assert git(repo, "rev-parse", f"refs/remotes/wipstore/{ours.removeprefix('refs/heads/')}").strip() == \
        git(repo, "rev-parse", "refs/heads/wip/main").strip()
    git(repo, "gc", "-q", "--prune=now")
    assert subprocess.run(["git", "cat-file", "-e", str(oldest)], cwd=repo).returncode != 0
    fsck_clean(repo)


def test_status_shows_each_repositorys_wip_history(repo: Path, hermetic: Path) -> None:
    save(repo, "one\n", "s1")
    save(repo, "two\n", "s2")
    report = json.loads(gitend("status", "--json").stdout)
    [history] = [h for h in report["wip_history"] if h["repo"] == str(repo.resolve())]
    assert history["snapshots"] == 2 and history["bytes"] > 0
    text = gitend("status").stdout
    assert f"{repo.resolve()}: 2 snapshot(s)" in text


def test_retention_cannot_be_lowered_by_a_repository_file(repo: Path) -> None:
    write(repo / ".gitend.yaml", "snapshot:\n  keep: 1\n")
    proc = gitend("prune", "-C", str(repo))
    assert proc.returncode == 1 and "snapshot.keep" in proc.stderr and ".gitend.yaml" in proc.stderr
