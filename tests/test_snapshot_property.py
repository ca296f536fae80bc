"""The core promise, over random dirty states: the hook touches nothing, and plain
`git stash apply --index <snapshot>` on a clean checkout of the base brings back the exact
work tree and index."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from testing.dirty import EXAMPLES, INITIAL, STEPS, ignored, make_dirty_repo
from testing.repo import files_of, git, hook, state


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(initial=INITIAL, steps=STEPS)
def test_hook_touches_nothing_and_stash_apply_restores_exactly(
    initial: dict[str, bytes], steps: list[tuple[str, str, str, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_dirty_repo(Path(tmp) / "repo", initial, steps)
        before = state(repo)
        result = hook(repo)
        assert state(repo) == before

        if "saved" not in result.stdout:
            assert "nothing to save" in result.stdout
            assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
            return
        snapshot = git(repo, "rev-parse", "refs/heads/wip/main").strip()
        checkout = Path(tmp) / "checkout"
        git(repo, "worktree", "add", "-q", "--detach", str(checkout), "HEAD")
        git(checkout, "stash", "apply", "--index", snapshot)

        skip = ignored(repo)
        expected = {p: v for p, v in files_of(repo).items() if p not in skip}
        restored = {p: v for p, v in files_of(checkout).items() if p != ".git"}
        assert restored == expected
        assert git(checkout, "ls-files", "-s", "-z") == git(repo, "ls-files", "-s", "-z")
