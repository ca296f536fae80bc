"""The core promise, over random dirty states: the hook touches nothing, and plain
`git stash apply --index <snapshot>` on a clean checkout of the base brings back the exact
work tree and index."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testing.repo import files_of, git, hook, init_repo, state, write

NAMES = ["a.txt", "sp ace.txt", "dir/nested.txt", "ünïcödé.txt", "new\nline.txt", "bin.dat",
         "deep/er/f", "-dash", "x.log"]  # x.log is ignored
CONTENT = st.one_of(st.binary(max_size=48), st.text(max_size=30).map(str.encode))
OPS = st.sampled_from(["write", "write_stage", "stage_then_write", "delete", "git_rm",
                       "rm_cached", "rename", "chmod", "symlink"])
EXAMPLES = int(os.environ.get("GITEND_EXAMPLES", "25"))


def apply(repo: Path, op: str, name: str, other: str, content: bytes) -> None:
    path = repo / name
    if op == "write":
        if path.is_symlink():
            path.unlink()
        write(path, content)
    elif op == "write_stage":
        if path.is_symlink():
            path.unlink()
        write(path, content)
        git(repo, "add", "-f", "--", name)
    elif op == "stage_then_write":
        if path.is_symlink():
            path.unlink()
        write(path, content)
        git(repo, "add", "-f", "--", name)
        write(path, content + b"\nmore")
    elif op == "delete" and os.path.lexists(path):
        path.unlink()
    elif op == "git_rm":
        git(repo, "rm", "-q", "-f", "--ignore-unmatch", "--", name)
    elif op == "rm_cached":
        git(repo, "rm", "-q", "-f", "--cached", "--ignore-unmatch", "--", name)
    elif op == "rename" and os.path.lexists(path) and not os.path.lexists(repo / other) and other != name:
        git(repo, "mv", "-k", "--", name, other)
    elif op == "chmod" and path.is_file() and not path.is_symlink():
        path.chmod(0o644 if path.stat().st_mode & 0o100 else 0o755)
    elif op == "symlink":
        if os.path.lexists(path):
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(other, path)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    initial=st.dictionaries(st.sampled_from(NAMES[:-1]), CONTENT, min_size=1, max_size=5),
    ops=st.lists(st.tuples(OPS, st.sampled_from(NAMES), st.sampled_from(NAMES), CONTENT), min_size=1, max_size=8),
)
def test_hook_touches_nothing_and_stash_apply_restores_exactly(
    initial: dict[str, bytes], ops: list[tuple[str, str, str, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = init_repo(Path(tmp) / "repo", {".gitignore": "*.log\n"})
        for name, content in initial.items():
            write(repo / name, content)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "base")
        for op, name, other, content in ops:
            apply(repo, op, name, other, content)

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

        ignored = set(git(repo, "ls-files", "-z", "--others", "--ignored", "--exclude-standard").split("\0"))
        expected = {p: v for p, v in files_of(repo).items() if p not in ignored}
        restored = {p: v for p, v in files_of(checkout).items() if p != ".git"}
        assert restored == expected
        assert git(checkout, "ls-files", "-s", "-z") == git(repo, "ls-files", "-s", "-z")
