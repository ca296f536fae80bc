"""The transcript reader on transcripts recorded from the real CLI (testing/record_transcript.py:
this project's own prompts, a Write, a Bash command, /rename; Claude Code's system prompt elided)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitend import transcript

RECORDED = sorted((Path(__file__).parent / "data" / "transcripts").glob("recorded-cli-*.jsonl"))


def test_a_recorded_transcript_is_there() -> None:
    assert RECORDED, "run .venv/bin/python -m testing.record_transcript"


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recorded_cli_transcript_title_prompts_and_no_problems(path: Path) -> None:
    session = transcript.read(path)
    assert session.title == "Uploader retries" and session.title_source == "custom-title"
    # The "session named" reminder that /rename adds as a user line is no prompt.
    assert session.prompts == ("Add a retry helper to the uploader with exponential backoff", "Run the tests")
    assert session.problems == ()


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recorded_cli_transcript_from_the_tail_alone(path: Path) -> None:
    """A window too small for the head still finds the title and the last prompt."""
    session = transcript.read(path, head_kb=0, tail_kb=4)
    assert session.title == "Uploader retries"
    assert session.prompts[-1:] == ("Run the tests",)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recorded_cli_transcript_holds_the_newer_line_types(path: Path) -> None:
    """What makes the recording worth keeping: line types no hand-written fixture has."""
    types = {json.loads(line).get("type") for line in path.read_text().splitlines()}
    assert {"user", "assistant", "custom-title", "last-prompt", "attachment"} <= types
    assert types & {"api-request", "cost-state", "file-history-delta", "tools-used"}
