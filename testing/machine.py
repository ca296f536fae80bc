"""A "machine" for sync tests: its own HOME, XDG folders, Claude folder and gitend config,
sharing only the remotes with other machines."""
from __future__ import annotations

import fcntl
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from testing.repo import gitend, git, init_repo, payload, write


def encoded(path: Path) -> str:
    return "".join(c if c.isalnum() and c.isascii() else "-" for c in str(path.resolve()))


@dataclass
class Machine:
    home: Path

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_STATE_HOME": str(self.home / ".local/state"), "CLAUDE_CONFIG_DIR": str(self.home / ".claude")}

    @property
    def state(self) -> Path:
        return self.home / ".local" / "state" / "gitend"

    @property
    def dots(self) -> Path:
        return self.home / "dots"

    @classmethod
    def create(cls, home: Path, remote: Path, **sections: dict[str, object]) -> Machine:
        """Another machine of the same user (same git identity), syncing with `remote`."""
        home.mkdir(parents=True, exist_ok=True)
        machine = cls(home)
        machine.configure(remote, **sections)
        return machine

    def configure(self, remote: Path, memory: dict[str, object] | None = None, **sections: dict[str, object]) -> None:
        """Clone the dotfile remote to ~/dots and point memory.repo at it."""
        if not self.dots.exists():
            git(self.home, "clone", "-q", str(remote), str(self.dots))
        config = {"memory": {"repo": str(self.dots), **(memory or {})}, **sections}
        write(self.home / ".config" / "gitend" / "config.yaml", json.dumps(config))

    def memory_folder(self, project: Path) -> Path:
        return self.home / ".claude" / "projects" / encoded(project) / "memory"

    def note(self, project: Path, name: str, text: str) -> Path:
        return write(self.memory_folder(project) / name, text)

    def gitend(self, *args: str, cwd: Path | str = ".", input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return gitend(*args, cwd=cwd, input=input, env=self.env)

    def end_session(self, project: Path, reason: str = "other", session_id: str = "s1") -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = self.gitend("hook", "--strict", cwd=project, input=payload(project, reason=reason, session_id=session_id))
        proc.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
        assert proc.returncode == 0, proc.stderr
        return proc

    def sync(self, project: Path, reason: str = "other", session_id: str = "s1") -> None:
        """A session ends, and its background work is done."""
        self.end_session(project, reason=reason, session_id=session_id)
        self.wait_for_worker()

    def wait_for_worker(self, timeout: float = 60) -> None:
        """Until no worker holds its lock and nothing is due in the queue."""
        deadline = time.monotonic() + timeout
        lock = self.state / "worker.lock"
        while time.monotonic() < deadline:
            if lock.exists():
                with open(lock) as handle:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        time.sleep(0.05)
                        continue
                    fcntl.flock(handle, fcntl.LOCK_UN)
            report = self.status()
            if not report["pending"]:
                return
            time.sleep(0.05)
        raise AssertionError(f"the worker did not finish within {timeout} s: {self.status()}")

    def status(self) -> dict[str, object]:
        proc = self.gitend("status", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


def bare_remote(path: Path, initial: dict[str, str] | None = None) -> Path:
    """A bare repository with one commit on main (a dotfile repo usually has one)."""
    seed = init_repo(path.with_name(path.name + "-seed"), initial or {"README.md": "my dotfiles\n"})
    git(path.parent, "clone", "-q", "--bare", str(seed), str(path))
    return path


def remote_file(remote: Path, path: str, ref: str = "main") -> str | None:
    proc = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=remote, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def slow_pre_receive(remote: Path, seconds: float) -> None:
    write(remote / "hooks" / "pre-receive", f"#!/bin/sh\nsleep {seconds}\n", mode=0o755)


def project(path: Path, origin: str = "git@github.com:someone/project.git") -> Path:
    repo = init_repo(path, {"app.py": "print('hi')\n"})
    git(repo, "remote", "add", "origin", origin)
    return repo
