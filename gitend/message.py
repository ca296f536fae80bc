"""The snapshot's commit message: what the session was about, from the transcript, redacted."""
from __future__ import annotations

import re
from typing import Protocol

from gitend.git import quote_path
from gitend.secrets import redact
from gitend.transcript import Session


class Capture(Protocol):
    """What a message tells of a snapshot's capture (snapshot.Capture has it)."""

    branch: str
    head: str | None
    staged: list[tuple[str, str]]
    unstaged: list[tuple[str, str]]
    untracked: list[str]
    left_out: list[tuple[str, int, str]]  # (path, bytes, why)
    notes: list[str]

    @property
    def files(self) -> list[str]: ...

SUBJECT_WIDTH = 72
PROMPTS_SHOWN = 3
PROMPT_WIDTH = 200
FILES_SHOWN = 100

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str, width: int) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def human_size(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


def compose(session: Session, cap: Capture, *, session_id: str, reason: str) -> str:
    # A per-turn snapshot is about that turn, not about the session as a whole.
    about = session.prompts[-1] if reason == "stop" and session.prompts else session.about
    if about:
        subject = "wip: " + one_line(redact(about), SUBJECT_WIDTH - 5)
    else:
        count = len(cap.files)
        subject = f"wip: {count} changed file{'s' * (count != 1)} on {cap.branch}"

    body = []
    prompts = session.prompts[-PROMPTS_SHOWN:]
    if prompts:
        body.append("Prompts:\n" + "\n".join(f"- {one_line(redact(p), PROMPT_WIDTH)}" for p in prompts))
    body.append(_files(cap))
    for why in dict.fromkeys(why for _, _, why in cap.left_out):
        body.append(f"Left out ({why}):\n" + "\n".join(f"- {quote_path(path)} ({human_size(size)})"
                                                      for path, size, reason in cap.left_out if reason == why))
    if cap.notes:
        body.append("Notes:\n" + "\n".join(f"- {note}" for note in cap.notes))
    body.append(_occasion(reason, session))

    trailer_values = {
        "Gitend-Session": one_line(session_id, 200) or "unknown",
        "Gitend-Reason": one_line(reason, 60) or "other",
        "Gitend-Base": cap.head or "none",
        "Gitend-Branch": cap.branch,
    }
    trailers = "\n".join(f"{key}: {value}" for key, value in trailer_values.items())
    return "\n\n".join([subject, *body, trailers]) + "\n"


def _occasion(reason: str, session: Session) -> str:
    """When and why the snapshot was taken."""
    if reason == "stop":
        return "Turn ended: a snapshot after one of Claude's turns (Stop hook), not the end of the session"
    if reason == "catch-up":
        lost = "" if session.title or session.prompts else "; its transcript could not be found"
        return f"The session did not end cleanly (no SessionEnd ran): saved at the next session's start{lost}"
    if reason.startswith("before: "):
        return f"Saved before a command that discards uncommitted work: {one_line(reason[8:], PROMPT_WIDTH)}"
    return f"Session ended: {one_line(reason, 60)}"


def _files(cap: Capture) -> str:
    codes: dict[str, list[str]] = {}
    for letter, path in cap.staged:
        codes.setdefault(path, [".", "."])[0] = letter
    for letter, path in cap.unstaged:
        codes.setdefault(path, [".", "."])[1] = letter
    lines = [f"{''.join(c if c != '.' else ' ' for c in codes[p])} {quote_path(p)}" for p in sorted(codes)]
    lines += [f"?? {quote_path(path)}" for path in cap.untracked]
    counts = [(len(cap.staged), "staged"), (len(cap.unstaged), "unstaged"), (len(cap.untracked), "untracked")]
    summary = ", ".join(f"{n} {what}" for n, what in counts if n)
    shown = lines[:FILES_SHOWN]
    if len(lines) > FILES_SHOWN:
        shown.append(f"... and {len(lines) - FILES_SHOWN} more")
    return f"Files ({summary}):\n" + "\n".join(f"  {line}" for line in shown)
