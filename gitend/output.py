"""Terminal output: colour only on a terminal, and never when NO_COLOR is set; questions."""
from __future__ import annotations

import os
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
