"""Terminal output: colour only on a terminal, and never when NO_COLOR is set; questions."""
from __future__ import annotations

import os
import re
import sys
from typing import TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, style: str, stream: TextIO = sys.stdout) -> str:
    return f"\033[{_CODES[style]}m{text}\033[0m" if use_color(stream) else text


# Control characters (escape sequences, carriage return, backspace), C1 controls, the bidi
# overrides that reorder a line, and the bytes of undecodable names (surrogate escapes).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                     "\udc80-\udcff]")


def safe(text: str) -> str:
    """Text from a file, a commit, a note or a remote, made safe for a terminal: what the terminal
    would act on (an OSC 52 clipboard write, cursor moves that hide a line) is shown as `\\xNN`."""
    return _UNSAFE.sub(_shown, text)


def _shown(match: re.Match[str]) -> str:
    code = ord(match[0])
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def error(message: str) -> None:
    print(f"{paint('gitend:', 'red', sys.stderr)} {safe(message)}", file=sys.stderr)


def ask(question: str) -> str | None:
    """The answer, lower case; None at the end of input."""
    try:
        return input(question).strip().lower()
    except EOFError:
        return None
