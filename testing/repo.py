"""Helpers for tests: real git repositories and the real gitend CLI in subprocesses."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "transcripts"  # README.md there


def git(cwd: Path | str, *args: str, input: bytes | None = None, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def write(path: Path, content: str | bytes = "", mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    if mode is not None:
        path.chmod(mode)
    return path


def init_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A repository with one commit holding `files` (default: a README)."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in (files if files is not None else {"README.md": "hello\n"}).items():
        write(path / name, content)
    if files != {}:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def gitend(*args: str, cwd: Path | str = ".", input: bytes | None = None, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "gitend", *args], cwd=cwd, input=input, env=full_env,
                          capture_output=True, timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                                       proc.stderr.decode("utf-8", "replace"))


def commit(repo: Path, files: dict[str, str] | dict[str, bytes], message: str = "notes") -> str:
    """Write `files` into the repository and commit them: the new commit's id."""
    for name, content in files.items():
        write(repo / name, content)
    git(repo, "add", *files)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def pre_push(repo: Path, remote: Path, lines: str) -> tuple[int, str]:
    """Run the pre-push hook as git does, with git's `<local ref> <sha> <remote ref> <sha>` lines:
    its exit status and stderr."""
    proc = gitend("review", "--pre-push", "origin", str(remote), cwd=repo, input=lines.encode())
    return proc.returncode, proc.stderr


def payload(cwd: Path | str, *, session_id: str = "session-1", transcript: Path | str | None = None,
            reason: str = "other", event: str = "SessionEnd") -> bytes:
    data = {"session_id": session_id, "transcript_path": str(transcript) if transcript else None,
            "cwd": str(cwd), "hook_event_name": event, "reason": reason}
    return json.dumps(data).encode()


def hook(cwd: Path | str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run `gitend hook --strict` as Claude Code would, and insist it succeeded."""
    proc = gitend("hook", "--strict", cwd=cwd, input=payload(cwd, **kwargs))  # type: ignore[arg-type]
    assert proc.returncode == 0, proc.stderr
    return proc


def files_of(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root (not .git): (mode bits, bytes or link target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirnames and Path(dirpath) == root:
            dirnames.remove(".git")
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath, name)
            info = path.lstat()
            data = os.readlink(path).encode() if stat.S_ISLNK(info.st_mode) else path.read_bytes()
            found[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode) | (info.st_mode & 0o111), data)
    return found


def state(repo: Path) -> dict[str, object]:
    """Everything a snapshot must leave as it found it."""
    git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir").strip())
    index = git_dir / "index"
    return {
        "status": git(repo, "--no-optional-locks", "status", "--porcelain=v2", "-z", "--untracked-files=all", "--ignored"),
        "index_entries": git(repo, "ls-files", "-s", "-z"),
        "index_bytes": index.read_bytes() if index.exists() else None,
        "files": files_of(repo),
        "head": (git_dir / "HEAD").read_text(),
        "refs": [line for line in git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
                 if not line.startswith("refs/heads/wip/")],
        "stash": git(repo, "stash", "list"),
    }
