"""Terminal output: colour only on a terminal, and never when NO_COLOR is set; a pager as
git has one; questions."""
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
_UNSAFE = ("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
           "\udc80-\udcff]")
_CONTROLS = re.compile(_UNSAFE)
_CONTROLS_BUT_COLORS = re.compile(f"\x1b\\[[0-9;]*m|{_UNSAFE}")  # colours: select graphic rendition only


def safe(text: str, *, colors: bool = False) -> str:
    """Text from a file, a commit, a note or a remote, made safe for a terminal: what the terminal
    would act on (an OSC 52 clipboard write, cursor moves that hide a line) is shown as `\\xNN`.
    With `colors`, colour sequences stay (git's coloured diff)."""
    return (_CONTROLS_BUT_COLORS if colors else _CONTROLS).sub(_shown, text)


def _shown(match: re.Match[str]) -> str:
    if len(match[0]) > 1:  # a colour sequence, kept
        return match[0]
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
        import subprocess  # only when paging

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
