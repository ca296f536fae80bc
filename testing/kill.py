"""SIGKILL gitend at a chosen git step (or act just before one), without test hooks in the product.

A `git` wrapper put first on PATH counts the git processes that a gitend process starts
itself (not git's own children, not server-side hooks) and, at step N, kills that gitend
process with SIGKILL:

- before: the step never runs;
- after: the step runs to the end, then its caller dies before reading the result;
- orphan: the caller dies as the step starts, and the step runs on, orphaned (its output
  goes nowhere and its stdin may be cut short, as in a real kill).
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

MODES = ("before", "after", "orphan")

WRAPPER = r"""#!/bin/sh
# Counts only git started directly by a gitend process.
case "$(tr '\0' ' ' < /proc/$PPID/cmdline 2>/dev/null)" in
  *" -m gitend "*|*/gitend\ *) ;;
  *) exec "$GITEND_TEST_REAL_GIT" "$@" ;;
esac
if [ -n "$GITEND_TEST_RUN_BEFORE" ]; then
  case " $* " in *" $GITEND_TEST_RUN_BEFORE "*) sh -c "$GITEND_TEST_RUN" ;; esac
fi
printf '%s %s\n' "$$" "$(printf '%s' "$*" | tr '\n' ' ')" >> "$GITEND_TEST_GIT_LOG"
n=$(wc -l < "$GITEND_TEST_GIT_LOG")
if [ "$n" -ne "${GITEND_TEST_KILL_AT:-0}" ]; then
  exec "$GITEND_TEST_REAL_GIT" "$@"
fi
case "$GITEND_TEST_KILL_MODE" in
  before) kill -9 "$PPID"; exit 1 ;;
  after) "$GITEND_TEST_REAL_GIT" "$@"; status=$?; kill -9 "$PPID"; exit $status ;;
  orphan) kill -9 "$PPID"; exec "$GITEND_TEST_REAL_GIT" "$@" ;;
esac
exec "$GITEND_TEST_REAL_GIT" "$@"
"""


class Killer:
    """The wrapper and its step log in `folder`; `env(step, mode)` arms it for one run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.real_git = shutil.which("git")
        assert self.real_git, "git is not on PATH"
        wrapper = self.bin / "git"
        wrapper.write_text(WRAPPER)
        wrapper.chmod(0o755)
        self.log = folder / "git-steps.log"

    def env(self, step: int = 0, mode: str = "before") -> dict[str, str]:
        self.log.write_text("")
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "GITEND_TEST_REAL_GIT": self.real_git,
                "GITEND_TEST_GIT_LOG": str(self.log), "GITEND_TEST_KILL_AT": str(step),
                "GITEND_TEST_KILL_MODE": mode}

    def interpose(self, args: str, command: str) -> dict[str, str]:
        """Run the shell `command` before every git step whose arguments contain `args`."""
        return {**self.env(), "GITEND_TEST_RUN_BEFORE": args, "GITEND_TEST_RUN": command}

    def steps(self) -> list[tuple[int, str]]:
        """(pid, arguments) of every counted git step of the last run."""
        rows = [line.split(" ", 1) for line in self.log.read_text().splitlines()]
        return [(int(pid), re.sub(r"^(-c \S+ )*", "", args)) for pid, args in rows]

    def wait_for_orphans(self, timeout: float = 30) -> None:
        """Until every git step of the last run has ended (an orphan may still be working)."""
        deadline = time.monotonic() + timeout
        for pid, args in self.steps():
            while _running(pid):
                if time.monotonic() > deadline:
                    raise AssertionError(f"git {args} (pid {pid}) still running after {timeout} s")
                time.sleep(0.01)


def _running(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X")  # a zombie has finished; nobody may reap it
