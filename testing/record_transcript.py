"""Record a transcript with the real Claude Code CLI for tests/data/transcripts/.

An interactive session in a throw-away sandbox, with this project's own prompts (a file
written, a command run, a slash command, a rename), against the fake API. The sandbox's
paths are replaced by /home/dev so the file reads like a real user's.

    .venv/bin/python -m testing.record_transcript   # writes recorded-cli-<version>-session.jsonl
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from testing import claude
from testing.fake_api import Bash, FakeAPI, Write

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "transcripts"
PROMPTS = [
    ("Add a retry helper to the uploader with exponential backoff", "Added retry to uploader.py."),
    ("Run the tests", "All tests pass."),
]


def record(version: str = claude.VERSION) -> Path:
    with tempfile.TemporaryDirectory(prefix="gitend-record-") as tmp, FakeAPI() as api:
        root = Path(tmp)
        proj = root / "uploader"
        proj.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(proj)], check=True)
        api.script[PROMPTS[0][0]] = [Write(str(proj / "uploader.py"), "def retry(fn, tries=3):\n    return fn()\n"),
                                     PROMPTS[0][1]]
        api.script[PROMPTS[1][0]] = [Bash("python3 -c 'import uploader' && echo ok"), PROMPTS[1][1]]
        sandbox = claude.Sandbox(root / "user", api.url, claude.install(version))
        sandbox.trust(proj)
        with sandbox.interactive(proj, "--allowedTools", "Bash", "Write") as term:
            term.wait_for("❯")
            for prompt, answer in PROMPTS:
                term.type(prompt)
                term.wait_for(answer)
            term.type("/rename Uploader retries")
            term.wait_for(lambda screen: "Uploader retries" in screen.split("/rename", 1)[-1])
            term.type("/exit")
            term.exit_status()
        [transcript] = (sandbox.claude_dir / "projects").glob("*/*.jsonl")
        text = transcript.read_text().replace(str(root / "user" / "home"), "/home/dev")
        text = text.replace(str(root), "/home/dev/code")
        out = OUT / f"recorded-cli-{version}-session.jsonl"
        out.write_text("".join(_elided(line) + "\n" for line in text.splitlines()))
        return out


def _elided(line: str) -> str:
    """Claude Code's own system prompt and tool listings (in the request records it keeps) are
    not ours to ship: long strings there are cut, every line keeps its type and keys."""
    entry = json.loads(line)
    if entry.get("type", "").startswith("api-request") or "prompt_snapshot" in line or "listing" in line:
        entry = _cut(entry)
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return f"[{len(value)} characters elided by testing/record_transcript.py]"
    if isinstance(value, list):
        return [_cut(v) for v in value]
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    print(record(*sys.argv[1:]))
