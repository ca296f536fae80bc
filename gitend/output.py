"""Terminal output: colour only on a terminal, and never when NO_COLOR is set; a pager as
git has one; questions."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, style: str, stream: TextIO = sys.stdout) -> str:
    return f"\033[{_CODES[style]}m{text}\033[0m" if use_color(stream) else text


def error(message: str) -> None:
    print(f"{paint('gitend:', 'red', sys.stderr)} {message}", file=sys.stderr)


def ask(question: str) -> str | None:
    """The answer, lower case; None at the end of input."""
    try:
        return input(question).strip().lower()
    except EOFError:
        return None


def page(text: str, core_pager: str | None = None) -> None:
    """Print `text`, through a pager when standard output is a terminal, chosen as git does:
    $GIT_PAGER, else git's core.pager, else $PAGER, else `less` (with LESS=FRX unless set:
    it quits when all fits on one screen and keeps colours). Empty or `cat`: no pager."""
    data = text.encode(sys.getfilesystemencoding(), "surrogateescape")  # as os.fsdecode made it
    command = None
    if sys.stdout.isatty():
        command = os.environ.get("GIT_PAGER", core_pager or os.environ.get("PAGER", "less"))
    sys.stdout.flush()
    if command and command != "cat":
        env = {**os.environ, "LESS": os.environ.get("LESS", "FRX"), "LV": os.environ.get("LV", "-c")}
        pager = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
        try:
            pager.communicate(data)  # a pager quit early (q in less) is no error
        except KeyboardInterrupt:
            pager.wait()
        if pager.returncode != 127:
            return
        # 127: the shell found no such pager; show the text without one.
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
