"""The real Claude Code CLI for end-to-end tests: installed from npm at a pinned version into a
cache outside the repository, run offline against `testing.fake_api` in a sandboxed HOME, as
`claude -p` or interactively under a private tmux server.

    python -m testing.claude install     # what .ci/run does; prints the binary's path
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VERSION = os.environ.get("GITEND_TEST_CLAUDE_VERSION", "2.1.332")
PACKAGE = "@anthropic-ai/claude-code"
# Only the key's last 20 characters are recorded as approved in ~/.claude.json.
API_KEY = "sk-ant-api03-gitend-end-to-end-test-key-0000000000"
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
                  "EHOSTUNREACH", "network", "socket hang up", "getaddrinfo")


class Unreachable(Exception):
    """The npm registry cannot be reached and the CLI is not cached: the only reason to skip."""


def cache_dir() -> Path:
    """Outside the repository and the tests' sandboxed HOME, so it survives between runs."""
    explicit = os.environ.get("GITEND_TEST_CACHE")
    if explicit:
        return Path(explicit)
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "gitend-tests"


def _platform_package() -> str:
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    system = {"linux": "linux", "darwin": "darwin"}[sys.platform if sys.platform != "linux2" else "linux"]
    musl = system == "linux" and not platform.libc_ver()[0].startswith("glibc")
    return f"{PACKAGE}-{system}-{machine}{'-musl' if musl else ''}"


def _folder(version: str) -> Path:
    return cache_dir() / f"claude-code-{version}"


def binary(version: str = VERSION) -> Path:
    """The native `claude` of the platform package (it runs without Node)."""
    return _folder(version) / "node_modules" / _platform_package() / "claude"


def install(version: str = VERSION) -> Path:
    """The pinned CLI, installed once into the cache (one installer at a time across test workers)."""
    target = binary(version)
    if target.exists():
        return target
    if not shutil.which("npm"):
        raise RuntimeError("npm is not installed: install Node.js and npm (see .ci/run)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        folder = _folder(version)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        # The platform package is named too: npm may skip optional dependencies.
        proc = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error",
                               "--prefix", str(partial), f"{PACKAGE}@{version}", f"{_platform_package()}@{version}"],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            why = [line for line in proc.stderr.splitlines() if any(word in line for word in NETWORK_ERRORS)]
            if why:
                raise Unreachable(f"the npm registry cannot be reached to install {PACKAGE}@{version} "
                                  f"({why[0].removeprefix('npm error').strip()})")
            raise RuntimeError(f"npm install {PACKAGE}@{version} failed:\n{proc.stderr}")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
    return target


# -- a sandboxed user ------------------------------------------------------------


@dataclass
class Sandbox:
    """A user of Claude Code with its own HOME, Claude folder, runtime and temp folders."""

    root: Path
    api_url: str
    claude: Path
    extra_env: dict[str, str] | None = None

    def __post_init__(self) -> None:
        for folder in (self.home, self.claude_dir, self.root / "run", self.root / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.root / "run").chmod(0o700)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def claude_dir(self) -> Path:
        return self.home / ".claude"

    @property
    def env(self) -> dict[str, str]:
        """What the CLI (and the hooks it starts) see: nothing of the real user."""
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM", "USER", "LOGNAME",
                                                             "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")}
        bin_dir = str(Path(sys.executable).parent)  # the venv's `gitend`, as `gitend install` registers it
        return {
            **keep,
            "PATH": f"{bin_dir}{os.pathsep}{keep.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home), "CLAUDE_CONFIG_DIR": str(self.claude_dir),
            "XDG_CONFIG_HOME": str(self.home / ".config"), "XDG_STATE_HOME": str(self.home / ".local/state"),
            "XDG_CACHE_HOME": str(self.home / ".cache"), "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"), "TMPDIR": str(self.root / "tmp"),
            "ANTHROPIC_BASE_URL": self.api_url, "ANTHROPIC_API_KEY": API_KEY,
            "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
            "TERM": "xterm-256color", "NO_COLOR": "1", "LC_ALL": "C.UTF-8",
            **(self.extra_env or {}),
        }

    def trust(self, *folders: Path) -> None:
        """~/.claude.json as a user who onboarded, trusts these folders and approved the key."""
        state = {
            "hasCompletedOnboarding": True,
            "theme": "dark",
            "projects": {str(f.resolve()): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}
                         for f in folders},
            "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        }
        for where in (self.claude_dir / ".claude.json", self.home / ".claude.json"):
            where.write_text(json.dumps(state, indent=1))

    def print_mode(self, cwd: Path, prompt: str, *args: str, timeout: float = 60,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`claude -p PROMPT` with the debug log in the sandbox."""
        return subprocess.run([str(self.claude), "-p", prompt, "--debug-file", str(self.debug_log), *args],
                              cwd=cwd, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    @property
    def debug_log(self) -> Path:
        return self.root / "claude-debug.log"

    def debug_lines(self, word: str) -> list[str]:
        try:
            return [line for line in self.debug_log.read_text(errors="replace").splitlines() if word in line]
        except FileNotFoundError:
            return []

    def interactive(self, cwd: Path, *args: str) -> Terminal:
        # Auto mode (2.1.332's default) asks the server to review commands, which the fake API
        # cannot: the ordinary mode runs what --allowedTools allows.
        return Terminal(self, cwd, ["--permission-mode", "default", *args])


def version_of(claude: Path) -> str:
    return subprocess.run([str(claude), "--version"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(cache_dir())}).stdout.strip()


# -- an interactive session under tmux ---------------------------------------------


class Terminal:
    """`claude` in a private tmux server (its own socket): type, read the screen, kill."""

    def __init__(self, sandbox: Sandbox, cwd: Path, args: list[str]) -> None:
        self.sandbox = sandbox
        self.socket = sandbox.root / "tmux.sock"
        script = sandbox.root / "start-claude.sh"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sandbox.env.items())
        script.write_text(f"{exports}cd {shlex.quote(str(cwd))}\n"
                          f"exec {shlex.quote(str(sandbox.claude))} --debug-file {shlex.quote(str(sandbox.debug_log))} "
                          f"{' '.join(shlex.quote(a) for a in args)}\n")
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "claude", "-x", "160", "-y", "50",
                   f"sh {shlex.quote(str(script))}")
        self._tmux("set-option", "-t", "claude", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "TMUX": ""})
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "claude", "-S", "-200")

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 30) -> str:
        test = what if callable(what) else (lambda text: what in text)
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {what!r} in {timeout} s:\n{text}")
            time.sleep(0.1)

    def type(self, text: str) -> None:
        """Type like a person: the text, then Enter, again if the input box was not ready for it
        (a box that has just appeared can swallow the first Enter)."""
        self._tmux("send-keys", "-t", "claude", "-l", text)
        for _ in range(8):
            time.sleep(0.3)
            self._tmux("send-keys", "-t", "claude", "Enter")
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                lines = self._prompt_lines()
                if (lines and lines[-1] == "" and text in lines[:-1]) or self._dead() is not None:
                    return
                time.sleep(0.1)
        raise AssertionError(f"Enter did not submit {text!r}:\n{self.screen()}")

    def _prompt_lines(self) -> list[str]:
        """Lines that start with the prompt sign: the prompts sent, then the input box's."""
        return [line[1:].split("│")[0].strip() for line in self.screen().splitlines() if line.startswith("❯")]

    def pid(self) -> int:
        return int(self._tmux("display-message", "-p", "-t", "claude", "#{pane_pid}").strip())

    def _dead(self) -> int | None:
        """claude's exit status once it has ended (128+N for a signal), else None."""
        server, dead, status, killed_by = (self._tmux("display-message", "-p", "-t", "claude",
                                                      "#{pid}:#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}")
                                           .strip().split(":") + ["", ""])[:4]
        if dead != "1":
            return None
        if not (status or killed_by):
            # The pane closed but tmux has not reaped claude: it misses the SIGCHLD when claude exits
            # while libutempter's own handler is in (tmux/tmux#311), and the zombie waits forever.
            os.kill(int(server), signal.SIGCHLD)
            return None
        return 128 + int(killed_by) if killed_by else int(status)

    def exit_status(self, timeout: float = 30) -> int:
        """Wait for claude to end; its exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._dead()
            if status is not None:
                return status
            time.sleep(0.1)
        raise AssertionError(f"claude did not end within {timeout} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=30)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        try:
            print(install())
        except Unreachable as exc:
            print(f"not installed: {exc}", file=sys.stderr)
    else:
        raise SystemExit("usage: python -m testing.claude install")
