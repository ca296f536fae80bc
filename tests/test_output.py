"""Output conventions: colour only on a terminal, and never with NO_COLOR set."""
from __future__ import annotations

from pathlib import Path

import pytest

from testing.repo import gitend, write
from testing.terminal import converse

RED = "\x1b[31m"


@pytest.fixture
def leaky(tmp_path: Path) -> Path:
    return write(tmp_path / "note.md", "token ghp_R8x2Kq7LmZp4Tn9Wv3Ys6Hd1Jf5Bc0Ge2Ua7\n")


def test_colour_on_a_terminal(leaky: Path) -> None:
    code, shown = converse(["scan", str(leaky)], [], env={"NO_COLOR": "", "TERM": "xterm-256color"})
    assert code == 1 and RED in shown and "github" in shown


@pytest.mark.parametrize("env", [{"NO_COLOR": "1", "TERM": "xterm-256color"}, {"NO_COLOR": "", "TERM": "dumb"}])
def test_no_colour_with_no_color_or_a_dumb_terminal(leaky: Path, env: dict[str, str]) -> None:
    code, shown = converse(["scan", str(leaky)], [], env=env)
    assert code == 1 and "github" in shown and "\x1b[" not in shown


def test_no_colour_when_piped(leaky: Path) -> None:
    proc = gitend("scan", str(leaky), env={"NO_COLOR": "", "TERM": "xterm-256color"})
    assert proc.returncode == 1 and "github" in proc.stdout and "\x1b[" not in proc.stdout + proc.stderr
