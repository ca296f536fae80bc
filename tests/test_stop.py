"""Stop (per turn): a local snapshot whose subject is that turn's prompt, not the session's title."""
from __future__ import annotations

import json
from pathlib import Path

from testing.repo import git, gitend, write


def test_stop_subject_is_the_turns_prompt_and_the_body_says_it_was_a_turn(proj: Path, tmp_path: Path) -> None:
    transcript = tmp_path / "s1.jsonl"
    lines = [{"type": "custom-title", "customTitle": "Parser rewrite"},
             {"type": "user", "message": {"role": "user", "content": "Rewrite the tokenizer"}},
             {"type": "user", "message": {"role": "user", "content": "Now handle tabs in the tokenizer"}}]
    write(transcript, "".join(json.dumps(line) + "\n" for line in lines))
    write(proj / "app.py", "tabs\n")
    data = {"session_id": "s1", "transcript_path": str(transcript), "cwd": str(proj), "hook_event_name": "Stop",
            "stop_hook_active": False}
    proc = gitend("hook", "--strict", cwd=proj, input=json.dumps(data).encode())
    assert proc.returncode == 0, proc.stderr
    message = git(proj, "log", "-1", "--format=%B", "wip/main")
    subject, body = message.split("\n", 1)
    assert subject == "wip: Now handle tabs in the tokenizer"
    assert "Turn ended" in body and "Session ended" not in body
    assert "Gitend-Reason: stop" in body
