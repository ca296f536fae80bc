from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitend import transcript
from gitend.transcript import Session
from testing.repo import TRANSCRIPTS

# file under TRANSCRIPTS -> (title, title_source, prompts, problems)
TASK_PROMPT = ("Read /home/dev/src/recipes/units.py and add a one-line docstring to every function that says which"
               " units it converts between and gives one example call. Keep the code itself unchanged, and finish"
               " with a short list of the functions you documented.")
PLAN_PROMPT = ("Look at weather/cli.py and weather/table.py and draft a plan for a --json flag on the forecast command:"
               " which functions change and which tests to add.")
COMPACT_PROMPT = ("Your task is to create a detailed summary of the conversation so far, paying close attention to the"
                  " user's explicit requests and your previous actions.")
MANUAL_COMPACT_PROMPTS = (
    "list the files here with ls -la",
    "create greet.py that prints a greeting",
    "read it back with the Read tool",
    "run `cat missing.txt`",
    "now use several tools in one turn,",
)
REWIND_PROMPTS = (
    "Create a file units.py with a function that converts cups to millilitres",
    "add tablespoons and teaspoons too",
    "Now use a Task agent to write a docstring for every function, so I can see how agent threads look",
    "Add grams for flour; I will undo this with a checkpoint afterwards",
    "I restored the checkpoint, so add ounces instead",
    "Look at units.py again and tell me what changed since the docstrings",
    "thanks",
    "ultrathink: list every unit we could support and how they relate",
    "ultrathink and keep it to ten units",
)
NEWER_PROMPTS = ("Add retry logic with exponential backoff to the uploader", "Also cap the delay at 30 seconds",
                 "now run the tests")
EXPECTED = {
    "v2.0-after-clear.jsonl": (None, None, (), ()),
    "v2.0-agent-a3f9c21-task.jsonl": (TASK_PROMPT[:199] + "…", "prompt", (TASK_PROMPT,), ()),
    "v2.0-agent-a51d0e4-warmup.jsonl": ("Warmup", "prompt", ("Warmup",), ()),
    "v2.0-agent-ab40c7e-warmup-reply.jsonl": ("Warmup", "prompt", ("Warmup",), ()),
    "v2.0-empty.jsonl": (None, None, (), ("empty transcript",)),
    "v2.0-manual-compact.jsonl": (MANUAL_COMPACT_PROMPTS[0], "prompt", MANUAL_COMPACT_PROMPTS, ()),
    "v2.0-rewind-branches.jsonl": ("Kitchen unit conversions and agent threads", "summary", REWIND_PROMPTS, ()),
    "v2.0-summaries-and-snapshots.jsonl": (None, None, (), ()),
    "v2.0-summary-only.jsonl": (None, None, (), ()),
    "v2.1-auto-compact.jsonl": (
        "Import bank statements from CSV", "ai-title",
        ("import bank statements from CSV into the ledger",
         "here is a statement that fails, the date column looks like this"),
        ()),
    "v2.1-auto-compact/subagents/agent-acompact-3e9f1c.jsonl": (COMPACT_PROMPT, "prompt", (COMPACT_PROMPT,), ()),
    "v2.1-newer-types.jsonl": ("uploader: retry with backoff", "custom-title", NEWER_PROMPTS, ()),
    "v2.1-short.jsonl": ("the dev server will not start, port 8000 seems taken", "prompt",
                         ("the dev server will not start, port 8000 seems taken",), ()),
    "v2.1-subagent-parent.jsonl": ("go ahead and implement it", "prompt", ("go ahead and implement it",), ()),
    "v2.1-subagent-parent/subagents/agent-a7e2b90.jsonl": (PLAN_PROMPT, "prompt", (PLAN_PROMPT,), ()),
    "v2.1-tool-heavy.jsonl": (
        "run the dev server in the background",
        "prompt",
        (
            "run the dev server in the background",
            "the forecast table still wraps badly on narrow terminals search the web for how other CLIs handle"
            " column widths",
        ),
        (),
    ),
}


# --- helpers ---------------------------------------------------------------------------------

def user(content: object, uuid: str = "u-1", **flags: object) -> dict[str, object]:
    return {"parentUuid": None, "isSidechain": False, "userType": "external", "sessionId": "s-1",
            "type": "user", "message": {"role": "user", "content": content}, "uuid": uuid, **flags}


def assistant(text: str, uuid: str = "a-1") -> dict[str, object]:
    return {"parentUuid": None, "isSidechain": False, "sessionId": "s-1",
            "message": {"id": "msg_1", "type": "message", "role": "assistant",
                        "content": [{"type": "text", "text": text}]},
            "type": "assistant", "uuid": uuid}


def jsonl(*entries: object) -> bytes:
    return b"".join(json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for entry in entries)


def write(tmp_path: Path, data: bytes, name: str = "t.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def padding(size: int) -> bytes:
    """An assistant line of exactly `size` bytes, newline included."""
    frame = b'{"type":"assistant","pad":""}\n'
    return frame[:-3] + b"x" * (size - len(frame)) + frame[-3:]


def user_line(text: str, size: int | None = None) -> bytes:
    """A user prompt line, padded to exactly `size` bytes when given."""
    line = jsonl(user(text))
    if size is None:
        return line
    return line[:-2] + b',"pad":"' + b"x" * (size - len(line) - 9) + b'"}\n'


class ByteCounter:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.real = transcript._read_range

    def __call__(self, fd: int, offset: int, length: int) -> bytes:
        data = self.real(fd, offset, length)
        self.calls.append((offset, len(data)))
        return data

    @property
    def total(self) -> int:
        return sum(length for _, length in self.calls)


@pytest.fixture
def byte_counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[ByteCounter]:
    counter = ByteCounter()
    monkeypatch.setattr(transcript, "_read_range", counter)
    yield counter


# --- the transcript fixtures (tests/data/transcripts, README.md there) -------------------------

def fixture_names() -> list[str]:
    """The generated fixtures; those recorded from the real CLI have tests of their own
    (tests/test_transcript_recorded.py)."""
    return sorted(path.relative_to(TRANSCRIPTS).as_posix() for path in TRANSCRIPTS.rglob("*.jsonl")
                  if not path.name.startswith("recorded-cli-"))


def test_every_transcript_fixture_has_an_expectation() -> None:
    assert fixture_names() == sorted(EXPECTED)


def test_transcript_fixtures_are_what_their_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_transcripts", TRANSCRIPTS / "make_transcripts.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.write_all(check=True) == [], "run tests/data/transcripts/make_transcripts.py"


def test_transcript_fixtures_cover_every_structure_claude_code_writes() -> None:
    """The catalogue of claude-code-facts §2 that the fixtures stand in for (README.md there)."""
    kinds: set[str] = set()
    flags: set[str] = set()
    blocks: set[str] = set()
    children: dict[object, int] = {}
    for path in TRANSCRIPTS.rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            kind = entry["type"]
            kinds.add(kind)
            kinds.add(f"{kind}:{entry.get('subtype') or (entry.get('data') or {}).get('type') or ''}".rstrip(":"))
            if kind == "attachment":
                kinds.add(f"attachment:{entry['attachment']['type']}")
            flags.update(key for key in ("isMeta", "isCompactSummary", "isVisibleInTranscriptOnly", "isSidechain",
                                         "agentId", "logicalParentUuid", "leafUuid", "toolUseResult",
                                         "sourceToolAssistantUUID", "slug", "isSnapshotUpdate")
                         if entry.get(key))
            content = (entry.get("message") or {}).get("content")
            if isinstance(content, list):
                blocks.update(block["type"] + (":error" if block.get("is_error") else "") for block in content)
            elif isinstance(content, str):
                blocks.update(marker for marker in ("<command-name>", "<local-command-stdout>",
                                                    "<local-command-caveat>") if marker in content)
            if kind == "user" and content and not entry.get("toolUseResult"):
                children[entry["parentUuid"]] = children.get(entry["parentUuid"], 0) + 1
            if isinstance(content, list) and any("[Request interrupted by user" in str(b.get("text"))
                                                 for b in content):
                blocks.add("interrupt")
    assert kinds >= {
        "user", "assistant", "summary", "file-history-snapshot", "queue-operation", "ai-title", "custom-title",
        "agent-name", "last-prompt", "permission-mode", "mode", "pr-link", "agent-setting", "task-summary",
        "system:compact_boundary", "system:stop_hook_summary", "system:local_command", "system:turn_duration",
        "system:api_error", "progress:hook_progress", "progress:agent_progress", "progress:bash_progress",
        "attachment:hook_success", "attachment:hook_system_message", "attachment:hook_additional_context",
        "attachment:queued_command",
    }
    assert flags >= {"isMeta", "isCompactSummary", "isVisibleInTranscriptOnly", "isSidechain", "agentId",
                     "logicalParentUuid", "leafUuid", "toolUseResult", "sourceToolAssistantUUID", "slug",
                     "isSnapshotUpdate"}
    assert blocks >= {"text", "thinking", "tool_use", "tool_result", "tool_result:error", "image", "interrupt",
                      "<command-name>", "<local-command-stdout>", "<local-command-caveat>"}
    assert max(count for parent, count in children.items() if parent) >= 3, "rewind: one parent, several prompts"
    assert (TRANSCRIPTS / "v2.0-empty.jsonl").stat().st_size == 0
    assert sorted(path.name for path in TRANSCRIPTS.rglob("*.meta.json")) == ["agent-a7e2b90.meta.json"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_fixture(name: str) -> None:
    title, source, prompts, problems = EXPECTED[name]
    session = transcript.read(TRANSCRIPTS / name)
    assert (session.title, session.title_source, session.prompts, session.problems) == (
        title, source, prompts, problems)
    assert session.about == title


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("window_kb", [0, 1, 2, 7])
def test_transcript_fixture_through_small_windows_keeps_order_and_never_invents(name: str, window_kb: int) -> None:
    full = transcript.read(TRANSCRIPTS / name).prompts
    windowed = transcript.read(TRANSCRIPTS / name, head_kb=window_kb, tail_kb=window_kb).prompts
    remaining = iter(full)
    assert all(prompt in remaining for prompt in windowed), "windowed prompts must be a subsequence"


@pytest.mark.parametrize("name", ["v2.0-manual-compact.jsonl", "v2.1-auto-compact.jsonl"])
def test_compact_fixture_skips_summary_caveat_and_command_output(name: str) -> None:
    prompts = transcript.read(TRANSCRIPTS / name).prompts
    joined = " ".join(prompts)
    for leaked in ("This session is being continued", "Caveat:", "<command-name>", "Compacted"):
        assert leaked not in joined


def test_newer_line_types() -> None:
    session = transcript.read(TRANSCRIPTS / "v2.1-newer-types.jsonl")
    assert session == Session(title="uploader: retry with backoff", title_source="custom-title",
                              prompts=NEWER_PROMPTS, problems=())


# --- titles ----------------------------------------------------------------------------------

def test_custom_title_beats_ai_title_beats_summary(tmp_path: Path) -> None:
    summary = {"type": "summary", "summary": "From summary", "leafUuid": "u-1"}
    ai = {"type": "ai-title", "aiTitle": "From AI", "sessionId": "s-1"}
    custom = {"type": "custom-title", "customTitle": "From rename", "sessionId": "s-1"}
    prompt = user("the prompt")
    assert transcript.read(write(tmp_path, jsonl(summary, prompt, custom, ai))).title_source == "custom-title"
    assert transcript.read(write(tmp_path, jsonl(custom, summary, ai, prompt))).title == "From rename"
    assert transcript.read(write(tmp_path, jsonl(summary, prompt, ai))).title == "From AI"
    session = transcript.read(write(tmp_path, jsonl(summary, prompt)))
    assert (session.title, session.title_source) == ("From summary", "summary")
    session = transcript.read(write(tmp_path, jsonl(prompt)))
    assert (session.title, session.title_source) == ("the prompt", "prompt")


def test_last_ai_title_and_last_custom_title_win(tmp_path: Path) -> None:
    ai_titles = [{"type": "ai-title", "aiTitle": f"AI {n}", "sessionId": "s"} for n in range(3)]
    assert transcript.read(write(tmp_path, jsonl(*ai_titles, user("p")))).title == "AI 2"
    custom = [{"type": "custom-title", "customTitle": name} for name in ("first", "second", "  ")]
    session = transcript.read(write(tmp_path, jsonl(custom[0], *ai_titles, custom[1], custom[2])))
    assert (session.title, session.title_source) == ("second", "custom-title")


def test_summary_with_foreign_leaf_uuid_is_ignored(tmp_path: Path) -> None:
    foreign = {"type": "summary", "summary": "Another session", "leafUuid": "not-here"}
    own = {"type": "summary", "summary": "This session", "leafUuid": "a-7"}
    session = transcript.read(write(tmp_path, jsonl(foreign, user("fix the build"))))
    assert (session.title, session.title_source) == ("fix the build", "prompt")
    # the leaf is usually an assistant line, which the reader never parses
    session = transcript.read(write(tmp_path, jsonl(own, foreign, user("fix it"), assistant("ok", uuid="a-7"))))
    assert (session.title, session.title_source) == ("This session", "summary")


def test_last_matching_summary_wins(tmp_path: Path) -> None:
    summaries = [{"type": "summary", "summary": name, "leafUuid": "u-1"} for name in ("older", "newer")]
    data = jsonl(*summaries, {"type": "summary", "summary": "foreign", "leafUuid": "x"}, user("p"))
    assert transcript.read(write(tmp_path, data)).title == "newer"


def test_uninteresting_lines_are_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real_loads = json.loads

    def counting_loads(text: str, **kwargs: object) -> object:
        parsed.append(text)
        return real_loads(text, **kwargs)

    data = jsonl(
        assistant("a reply quoting {\"type\":\"user\"}"),
        {"parentUuid": None, "message": {"type": "message", "role": "assistant", "content": [
            {"type": "tool_use", "name": "mcp__db__insert", "input": {"row": {"type": "user"}}}]}, "type": "assistant"},
        {"parentUuid": None, "type": "progress", "data": {"type": "agent_progress", "message": user("nested")}},
        {"type": "file-history-snapshot", "snapshot": {"trackedFileBackups": {}}},
        {"type": "system", "subtype": "turn_duration", "durationMs": 5},
        {"type": "attachment", "attachment": {"type": "hook_success"}},
        user("the prompt"),
    )
    monkeypatch.setattr(transcript.json, "loads", counting_loads)
    assert transcript.read(write(tmp_path, data)).prompts == ("the prompt",)
    assert len(parsed) == 1 and "the prompt" in parsed[0]


def test_title_is_whitespace_collapsed_and_capped(tmp_path: Path) -> None:
    custom = {"type": "custom-title", "customTitle": "  many\n\tspaces   " + "t" * 400}
    title = transcript.read(write(tmp_path, jsonl(custom))).title
    assert title is not None and title.startswith("many spaces tttt") and len(title) == 200
    assert title.endswith("…")


# --- prompts ---------------------------------------------------------------------------------

def test_last_prompt_used_when_the_tail_has_no_real_prompt(tmp_path: Path) -> None:
    last = {"type": "last-prompt", "lastPrompt": "deploy it", "sessionId": "s"}
    session = transcript.read(write(tmp_path, jsonl(assistant("hi"), last)))
    assert (session.title, session.title_source, session.prompts) == ("deploy it", "prompt", ("deploy it",))
    # a real prompt in the tail makes it redundant
    assert transcript.read(write(tmp_path, jsonl(user("a"), user("b"), last))).prompts == ("a", "b")
    # a head prompt is not in the tail window, so the last prompt is added after it
    data = user_line("start") + padding(4096) * 4 + jsonl(assistant("working"), last)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1).prompts == ("start", "deploy it")
    # no duplicate when it repeats the last prompt seen
    data = user_line("deploy it") + padding(4096) * 4 + jsonl(assistant("done"), last)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1).prompts == ("deploy it",)


def test_last_prompt_that_is_a_bare_slash_command_or_command_xml_is_ignored(tmp_path: Path) -> None:
    for value in ("/exit", "<command-name>/clear</command-name>", "   "):
        last = {"type": "last-prompt", "lastPrompt": value}
        assert transcript.read(write(tmp_path, jsonl(last))).prompts == ()


def test_attachment_and_other_newer_lines_are_tolerated(tmp_path: Path) -> None:
    data = jsonl(
        {"type": "attachment", "attachment": {"type": "hook_success", "content": "x"}, "uuid": "x-1"},
        {"type": "attachment", "attachment": {"type": "queued_command", "prompt": "queued"}},
        {"type": "permission-mode", "permissionMode": "plan"},
        {"type": "agent-name", "agentName": "n"},
        {"type": "pr-link", "prNumber": 1},
        {"type": "queue-operation", "operation": "enqueue", "content": "typed early"},
        {"type": "progress", "data": {"type": "agent_progress", "message": user("nested subagent text")}},
        {"type": "file-history-snapshot", "snapshot": {}},
        {"type": "system", "subtype": "local_command", "content": "<command-name>/model</command-name>"},
        {"type": "some-future-type", "payload": {"type": "user"}},
        user("the real one"),
    )
    assert transcript.read(write(tmp_path, data)) == Session("the real one", "prompt", ("the real one",), ())


def test_sidechain_prompts_only_when_nothing_else(tmp_path: Path) -> None:
    assert transcript.read(write(tmp_path, jsonl(user("Warmup", isSidechain=True)))).prompts == ("Warmup",)
    data = jsonl(user("agent task", isSidechain=True), user("main ask"), user("agent 2", isSidechain=True))
    assert transcript.read(write(tmp_path, data)).prompts == ("main ask",)


@pytest.mark.parametrize("noise", [
    "[Request interrupted by user]",
    "[Request interrupted by user for tool use]",
    "<command-name>/clear</command-name>\n  <command-message>clear</command-message>\n  <command-args></command-args>",
    "<command-message>x:make</command-message>\n<command-name>/x:make</command-name>\n<command-args>a b</command-args>",
    "<command-args>only args</command-args>",
    "<local-command-stdout>\x1b[2mCompacted\x1b[22m</local-command-stdout>",
    "<local-command-stderr>boom</local-command-stderr>",
    "<local-command-caveat>Caveat: The messages below were generated by the user</local-command-caveat>",
    "<bash-input>ls</bash-input>",
    "<bash-stdout>a.txt</bash-stdout><bash-stderr></bash-stderr>",
    "<bash-stderr>oops</bash-stderr>",
    "<task-notification><task-id>1</task-id></task-notification>",
    "<system-reminder>You have a todo list.</system-reminder>",
    "  \n<system-reminder>one</system-reminder>\n<system-reminder>two</system-reminder>  ",
    "Caveat: The messages below were generated by the user while running local commands. DO NOT respond.",
    "This session is being continued from a previous conversation that ran out of context. Summary: ...",
    "",
])
def test_text_not_typed_by_the_user_is_skipped(tmp_path: Path, noise: str) -> None:
    for content in (noise, [{"type": "text", "text": noise}]):
        data = jsonl(user("real"), user(content))
        assert transcript.read(write(tmp_path, data)).prompts == ("real",)


@pytest.mark.parametrize("flag", ["isMeta", "isCompactSummary", "isVisibleInTranscriptOnly"])
def test_flagged_user_lines_are_skipped(tmp_path: Path, flag: str) -> None:
    data = jsonl(user("hidden", **{flag: True}), user("shown", **{flag: False}))
    assert transcript.read(write(tmp_path, data)).prompts == ("shown",)


def test_tool_results_are_not_prompts_even_with_text_beside_them(tmp_path: Path) -> None:
    result = [{"type": "tool_result", "tool_use_id": "t", "content": "file body"}, {"type": "text", "text": "x"}]
    assert transcript.read(write(tmp_path, jsonl(user(result), user("asked")))).prompts == ("asked",)


def test_system_reminder_is_stripped_from_a_real_prompt(tmp_path: Path) -> None:
    content = "fix the <b>parser</b>\n<system-reminder>\nsecret context\n</system-reminder>\nplease"
    blocks = [{"type": "text", "text": "add tests"}, {"type": "image", "source": {}},
              {"type": "text", "text": "<system-reminder>ide selection</system-reminder>"}]
    unclosed = "short answer<system-reminder>cut off"
    data = jsonl(user(content), user(blocks), user(unclosed))
    assert transcript.read(write(tmp_path, data)).prompts == (
        "fix the <b>parser</b> please", "add tests", "short answer")


def test_prompt_text_is_normalised_for_display(tmp_path: Path) -> None:
    data = jsonl(user("  line one\r\n\n\tline\u00a0two  \x1b[1mbold\x1b[0m\x07"), user("y" * 2000))
    prompts = transcript.read(write(tmp_path, data)).prompts
    assert prompts[0] == "line one line two bold"
    assert len(prompts[1]) == 500 and prompts[1].endswith("…")


def test_repeated_real_prompts_are_kept(tmp_path: Path) -> None:
    assert transcript.read(write(tmp_path, jsonl(user("go on"), user("go on")))).prompts == ("go on", "go on")


# --- malformed input -------------------------------------------------------------------------

@pytest.mark.parametrize("path, problem", [(None, "no transcript path"), ("", "no transcript path")])
def test_no_path(path: str | None, problem: str) -> None:
    assert transcript.read(path) == Session(None, None, (), (problem,))


def test_missing_file_directory_and_empty_file(tmp_path: Path) -> None:
    assert transcript.read(tmp_path / "nope.jsonl").problems == ("transcript not found",)
    assert transcript.read(str(tmp_path / "no" / "dir.jsonl")).problems == ("transcript not found",)
    assert transcript.read(tmp_path).problems == ("is a directory",)
    assert transcript.read(write(tmp_path, b"")).problems == ("empty transcript",)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path, jsonl(user("x")))
    path.chmod(0)
    try:
        assert transcript.read(path) == Session(None, None, (), ("permission denied",))
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    assert transcript.read(tmp_path / "pipe").problems == ("not a regular file",)


def test_odd_argument_types_do_not_raise(tmp_path: Path) -> None:
    assert transcript.read("bad\0path").prompts == ()
    assert transcript.read(write(tmp_path, jsonl(user("x"))), head_kb=-5, tail_kb=-1).problems == (
        "no complete lines read",)


def test_truncated_last_line_is_dropped(tmp_path: Path) -> None:
    data = jsonl(user("first")) + jsonl(user("second"))[:40]
    session = transcript.read(write(tmp_path, data))
    assert session.prompts == ("first",)
    assert session.problems == ("truncated last line skipped",)


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    data = jsonl(user("first"), user("second")).rstrip(b"\n")
    assert transcript.read(write(tmp_path, data)) == Session("first", "prompt", ("first", "second"), ())


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    data = jsonl(user("caf\u00e9 AAA")).replace("\u00e9".encode(), b"\xff\xfe") + b"\xc3\x28garbage\n"
    data += jsonl(user("ok"))
    session = transcript.read(write(tmp_path, data))
    assert session.prompts == ("caf\ufffd\ufffd AAA", "ok")
    assert session.problems == ("1 malformed line skipped", "1 line with invalid UTF-8")


def test_nul_bytes(tmp_path: Path) -> None:
    # a crash can leave a run of NULs where a line should be; Claude never writes raw NULs in strings
    raw_nul_in_string = jsonl(user("a\u0001b")).replace(b"\\u0001", b"\x00")
    data = b"\x00" * 500 + b"\n" + raw_nul_in_string + b'{"type":"user"\x00}\n' + jsonl(user("ok"))
    session = transcript.read(write(tmp_path, data))
    assert session.prompts == ("ab", "ok")
    assert session.problems == ("2 malformed lines skipped",)


def test_crlf_line_ends(tmp_path: Path) -> None:
    data = jsonl(user("one"), {"type": "custom-title", "customTitle": "named"}, user("two")).replace(b"\n", b"\r\n")
    assert transcript.read(write(tmp_path, data)) == Session("named", "custom-title", ("one", "two"), ())


def test_byte_order_mark_on_first_line(tmp_path: Path) -> None:
    assert transcript.read(write(tmp_path, b"\xef\xbb\xbf" + jsonl(user("bom")))).prompts == ("bom",)


def test_lines_that_are_not_json_objects(tmp_path: Path) -> None:
    data = b"not json\n[1,2]\n42\nnull\n\"type\"\n" + b'["type",{"type":"user"}]\n' + b"\n   \n" + jsonl(user("ok"))
    session = transcript.read(write(tmp_path, data))
    assert session.prompts == ("ok",)
    assert session.problems == ("6 malformed lines skipped",)


def test_wrong_field_types(tmp_path: Path) -> None:
    data = jsonl(
        user(42),
        user(None),
        user({"text": "dict content"}),
        user(["just a string", 7, None, {"type": "text", "text": 3}]),
        {"type": "user", "message": "a string"},
        {"type": "user"},
        {"type": "custom-title", "customTitle": 5},
        {"type": "ai-title", "aiTitle": ["x"]},
        {"type": "summary", "summary": "s", "leafUuid": 9},
        {"type": "summary", "summary": None, "leafUuid": "u-1"},
        {"type": "last-prompt", "lastPrompt": {"x": 1}},
        {"type": 7, "message": {"content": "x"}, "other": {"type": "user"}},  # unknown type: ignored
        user("fine", isSidechain="yes", isMeta=0),
    )
    session = transcript.read(write(tmp_path, data))
    assert (session.title, session.prompts) == ("fine", ("fine",))
    assert session.problems == ("9 malformed lines skipped",)


def test_deeply_nested_json_does_not_raise(tmp_path: Path) -> None:
    data = b'{"type":"user","message":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n" + jsonl(user("ok"))
    session = transcript.read(write(tmp_path, data), head_kb=1024, tail_kb=1024)
    assert session.prompts == ("ok",)
    assert session.problems == ("1 malformed line skipped",)


def test_single_30mb_line_without_newline_is_skipped(tmp_path: Path, byte_counter: ByteCounter) -> None:
    path = write(tmp_path, b'{"type":"user","message":{"content":"' + b"z" * (30 << 20) + b'"}}')
    session = transcript.read(path)
    assert session == Session(None, None, (), ("no complete lines read",))
    assert byte_counter.total <= (256 + 1024) * 1024 + 1


def test_30mb_line_between_prompts(tmp_path: Path) -> None:
    huge = b'{"type":"user","message":{"content":"' + b"z" * (30 << 20) + b'"}}\n'
    session = transcript.read(write(tmp_path, jsonl(user("before")) + huge + jsonl(user("after"))))
    assert session == Session("before", "prompt", ("before", "after"), ())


# --- head and tail windows -------------------------------------------------------------------

def test_prompt_only_in_the_middle_is_not_seen(tmp_path: Path) -> None:
    middle = padding(8192) * 4 + user_line("middle") + padding(8192) * 4
    data = user_line("head") + middle + user_line("tail")
    assert transcript.read(write(tmp_path, data), head_kb=4, tail_kb=4).prompts == ("head", "tail")
    assert transcript.read(write(tmp_path, data), head_kb=64, tail_kb=64).prompts == ("head", "middle", "tail")


def test_prompt_only_in_the_middle_with_default_windows(tmp_path: Path) -> None:
    filler = padding(1000) * 1500
    data = user_line("head") + filler + user_line("middle") + filler + user_line("tail")
    assert transcript.read(write(tmp_path, data)).prompts == ("head", "tail")


def test_overlapping_windows_read_the_file_once(tmp_path: Path, byte_counter: ByteCounter) -> None:
    data = user_line("one", size=700) + user_line("two", size=700) + user_line("three", size=700)
    session = transcript.read(write(tmp_path, data), head_kb=2, tail_kb=2)
    assert session.prompts == ("one", "two", "three")
    assert byte_counter.calls == [(0, len(data))]


def test_line_ending_exactly_at_the_head_cut_is_kept(tmp_path: Path) -> None:
    data = user_line("fits", size=1024) + padding(5000) + padding(1024)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1).prompts == ("fits",)
    data = padding(1000) + user_line("straddles", size=100) + padding(5000) + padding(1024)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1) == Session(None, None, (), ())


def test_line_starting_exactly_at_the_tail_cut_is_kept(tmp_path: Path) -> None:
    data = padding(1024) + padding(5000) + user_line("fits", size=1024)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1).prompts == ("fits",)
    data = padding(1024) + padding(5000) + user_line("straddles", size=1025)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1) == Session(None, None, (), ())


def test_zero_sized_windows(tmp_path: Path) -> None:
    data = user_line("head") + padding(4096) + user_line("tail")
    assert transcript.read(write(tmp_path, data), head_kb=0, tail_kb=1).prompts == ("tail",)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=0).prompts == ("head",)
    assert transcript.read(write(tmp_path, data), head_kb=0, tail_kb=0).problems == ("no complete lines read",)


def test_titles_are_found_in_either_window(tmp_path: Path) -> None:
    data = jsonl({"type": "custom-title", "customTitle": "early"}) + padding(8192) + jsonl(
        {"type": "ai-title", "aiTitle": "late"})
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1).title == "early"
    data = jsonl({"type": "ai-title", "aiTitle": "early"}) + padding(8192) + jsonl(
        {"type": "ai-title", "aiTitle": "late"})
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1).title == "late"


def test_summary_leaf_must_be_in_the_read_part(tmp_path: Path) -> None:
    summary = {"type": "summary", "summary": "Old title", "leafUuid": "a-middle"}
    data = jsonl(summary, user("ask")) + padding(8192) + jsonl(assistant("x", uuid="a-middle")) + padding(8192)
    assert transcript.read(write(tmp_path, data), head_kb=1, tail_kb=1).title_source == "prompt"
    assert transcript.read(write(tmp_path, data), head_kb=64, tail_kb=64).title_source == "summary"


def test_cost_does_not_grow_with_file_size(tmp_path: Path, byte_counter: ByteCounter) -> None:
    block = padding(1 << 20)
    with (tmp_path / "big.jsonl").open("wb") as file:
        file.write(user_line("head prompt"))
        for index in range(50):
            file.write(block)
            if index == 25:
                file.write(user_line("middle prompt"))
        file.write(user_line("tail prompt"))
    size = (tmp_path / "big.jsonl").stat().st_size
    assert size > 50 << 20
    session = transcript.read(tmp_path / "big.jsonl")
    assert session.prompts == ("head prompt", "tail prompt")
    assert byte_counter.total <= (256 + 1024) * 1024 + 1
    assert [offset for offset, _ in byte_counter.calls] == [0, size - 1024 * 1024 - 1]


# --- properties ------------------------------------------------------------------------------

FRAGMENTS = [
    jsonl(user("p")), jsonl(user([{"type": "text", "text": "q"}])), jsonl({"type": "ai-title", "aiTitle": "t"}),
    jsonl({"type": "custom-title", "customTitle": "c"}), jsonl({"type": "summary", "summary": "s", "leafUuid": "u-1"}),
    jsonl({"type": "last-prompt", "lastPrompt": "l"}), jsonl(assistant("a")), b'{"type":"user"', b"\n", b"\r\n",
    b"\x00", b"\xff", b'"type":"user"', b"{", b"}",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TYPES = st.sampled_from(["user", "summary", "ai-title", "custom-title", "last-prompt", "assistant", "x"])


def check_read(data: bytes, head_kb: int, tail_kb: int) -> Session:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.jsonl"
        path.write_bytes(data)
        counter = ByteCounter()
        original, transcript._read_range = transcript._read_range, counter
        try:
            session = transcript.read(path, head_kb=head_kb, tail_kb=tail_kb)
        finally:
            transcript._read_range = original
    assert isinstance(session, Session)
    assert counter.total <= min(len(data), (head_kb + tail_kb) * 1024 + 1)
    assert session.title is None or 0 < len(session.title) <= 200
    assert all(0 < len(prompt) <= 500 and "\n" not in prompt for prompt in session.prompts)
    assert (session.title is None) == (session.title_source is None)
    return session


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=6000), head_kb=st.integers(0, 3), tail_kb=st.integers(0, 3))
def test_arbitrary_bytes_never_raise(data: bytes, head_kb: int, tail_kb: int) -> None:
    check_read(data, head_kb, tail_kb)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=30), max_size=200),
    head_kb=st.integers(0, 2),
    tail_kb=st.integers(0, 2),
)
def test_mixed_fragments_never_raise(pieces: list[bytes], head_kb: int, tail_kb: int) -> None:
    check_read(b"".join(pieces), head_kb, tail_kb)


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(st.fixed_dictionaries(
    {"type": TYPES},
    optional={"message": JSON_VALUES | st.fixed_dictionaries({}, optional={"content": JSON_VALUES}),
              "customTitle": JSON_VALUES, "aiTitle": JSON_VALUES, "summary": JSON_VALUES,
              "leafUuid": JSON_VALUES, "lastPrompt": JSON_VALUES, "isSidechain": JSON_VALUES,
              "isMeta": JSON_VALUES, "uuid": JSON_VALUES},
), max_size=12))
def test_arbitrary_field_values_never_raise(entries: list[dict[str, object]]) -> None:
    check_read(jsonl(*entries), 256, 1024)


def test_permission_denied_reported_even_when_running_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    path = write(tmp_path, jsonl(user("x")))
    monkeypatch.setattr(transcript.os, "open", refuse)
    assert transcript.read(path) == Session(None, None, (), ("permission denied",))
    assert transcript.read(tmp_path) == Session(None, None, (), ("is a directory",))


def test_read_error_midway_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(fd: int, offset: int, length: int) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(transcript, "_read_range", fail)
    assert transcript.read(write(tmp_path, jsonl(user("x")))).problems == (
        "cannot read transcript: Input/output error",)
