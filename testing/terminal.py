"""Run gitend on a pseudo-terminal and answer its questions, as a person at a keyboard would."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time


def converse(args: list[str], answers: list[str], env: dict[str, str], cwd: str = ".",
             prompt: bytes = b" > ", timeout: float = 60) -> tuple[int, str]:
    """Answer each prompt in turn; returns the exit code and everything shown on the terminal."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gitend", *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "TERM": "dumb", **env}, cwd=cwd, close_fds=True)
    os.close(slave)
    shown, answered, deadline = b"", 0, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other side closed: the program ended
                    break
                if not chunk:
                    break
                shown += chunk
                if shown.count(prompt) > answered and answered < len(answers):
                    os.write(master, answers[answered].encode() + b"\n")
                    answered += 1
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"no end after {timeout} s; the terminal showed:\n{shown.decode(errors='replace')}")
        return proc.wait(timeout=10), shown.decode("utf-8", "replace").replace("\r\n", "\n")
    finally:
        os.close(master)
