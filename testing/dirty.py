"""Random dirty work trees for property tests: staged, unstaged, both, deleted, untracked,
renamed, mode changes, symlinks, binary content, odd names, ignored files."""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import strategies as st

from testing.repo import git, init_repo, write

NAMES = ["a.txt", "sp ace.txt", "dir/nested.txt", "ünïcödé.txt", "new\nline.txt", "bin.dat",
         "deep/er/f", "-dash", "x.log"]  # x.log is ignored
CONTENT = st.one_of(st.binary(max_size=48), st.text(max_size=30).map(str.encode))
OPS = st.sampled_from(["write", "write_stage", "stage_then_write", "delete", "git_rm",
                       "rm_cached", "rename", "chmod", "symlink"])
EXAMPLES = int(os.environ.get("GITEND_EXAMPLES", "25"))


def apply(repo: Path, op: str, name: str, other: str, content: bytes) -> None:
    path = repo / name
    if op in ("write", "write_stage", "stage_then_write"):
        if path.is_symlink():
            path.unlink()
        write(path, content)
        if op != "write":
            git(repo, "add", "-f", "--", name)
        if op == "stage_then_write":
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


INITIAL = st.dictionaries(st.sampled_from(NAMES[:-1]), CONTENT, min_size=1, max_size=5)
STEPS = st.lists(st.tuples(OPS, st.sampled_from(NAMES), st.sampled_from(NAMES), CONTENT), min_size=1, max_size=8)


def make_dirty_repo(root: Path, initial: dict[str, bytes], steps: list[tuple[str, str, str, bytes]]) -> Path:
    """A repository whose base commit holds `initial` (and a .gitignore), then `steps` applied."""
    repo = init_repo(root, {".gitignore": "*.log\n"})
    for name, content in initial.items():
        write(repo / name, content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    for op, name, other, content in steps:
        apply(repo, op, name, other, content)
    return repo


def ignored(repo: Path) -> set[str]:
    return set(git(repo, "ls-files", "-z", "--others", "--ignored", "--exclude-standard").split("\0"))
