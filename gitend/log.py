"""The log file in the state directory: one line per event, tracebacks indented below."""
from __future__ import annotations

import os
import time

from gitend import paths

MAX_BYTES = 1 << 20  # then the log moves to gitend.log.1


def record(event: str, message: str, detail: str = "") -> None:
    """Append to the log; never raise (a full disk must not turn into a crash)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    line = f"{stamp} [{os.getpid()}] {event}: {message}\n"
    if detail:
        line += "".join(f"    {row}\n" for row in detail.rstrip("\n").split("\n"))
    path = paths.log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.stat().st_size > MAX_BYTES:
                os.replace(path, path.with_name(path.name + ".1"))
        except FileNotFoundError:
            pass
        with open(path, "a", encoding="utf-8", errors="replace") as log:
            log.write(line)
    except OSError:
        pass
