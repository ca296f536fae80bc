"""Fuzzing what gitend takes from outside: the hook's stdin payload, the transcript, the config
file. Only GitendError may come out (the transcript reader raises nothing at all); nothing
hangs (hypothesis deadlines, subprocess timeouts); memory stays bounded (tracemalloc)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitend import config, hook, transcript
from gitend.errors import GitendError
from testing.repo import gitend, init_repo, state, write

FUZZ = settings(deadline=2000, max_examples=200,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
FIELDS = ("session_id", "transcript_path", "cwd", "hook_event_name", "reason")


def peak_bytes(action: object) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = action()  # type: ignore[operator]
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- the hook's payload, in process ---------------------------------------------------------


def feed(data: bytes) -> hook.Payload | GitendError:
    """read_payload on a real pipe, which a thread fills as Claude Code would, then closes."""
    read_fd, write_fd = os.pipe()

    def writer() -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(write_fd, view[:65536]):]
        except BrokenPipeError:
            pass  # the reader stopped at its size limit
        finally:
            os.close(write_fd)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with os.fdopen(read_fd, "rb") as stream:
            try:
                return hook.read_payload(stream)
            except GitendError as exc:
                return exc
    finally:
        thread.join(timeout=10)


def check_payload(data: bytes) -> hook.Payload | GitendError:
    result = feed(data)
    if isinstance(result, GitendError):
        assert str(result) and "\n" not in str(result)
    else:
        assert all(isinstance(getattr(result, name), str) for name in ("session_id", "cwd", "event", "reason"))
        assert result.transcript_path is None or isinstance(result.transcript_path, str)
    return result


@FUZZ
@given(data=st.binary(max_size=4096))
def test_payload_arbitrary_bytes(data: bytes) -> None:
    check_payload(data)


@FUZZ
@given(obj=st.fixed_dictionaries({}, optional={name: st.text() | JSON for name in FIELDS}),
       extra=st.dictionaries(st.text(max_size=12), JSON, max_size=4), ascii_only=st.booleans())
def test_payload_objects_with_any_field_types(obj: dict[str, object], extra: dict[str, object],
                                              ascii_only: bool) -> None:
    data = {**extra, **obj}
    result = check_payload(json.dumps(data, ensure_ascii=ascii_only).encode())
    bad = [name for name in FIELDS if data.get(name) is not None and not isinstance(data[name], str)]
    if bad:
        assert isinstance(result, GitendError) and any(f"field '{name}'" in str(result) for name in bad), result
        return
    assert isinstance(result, hook.Payload), result
    for name, attribute in [("session_id", "session_id"), ("cwd", "cwd"), ("transcript_path", "transcript_path")]:
        if data.get(name):
            assert getattr(result, attribute) == data[name]


@FUZZ
@given(depth=st.integers(1, 400_000), opener=st.sampled_from(["[", '{"a":', '{"cwd":[']))
def test_payload_nested_deeply(depth: int, opener: str) -> None:
    data = (opener * depth).encode()
    result = check_payload(data)
    assert isinstance(result, GitendError)


@pytest.mark.parametrize("size", [hook.MAX_PAYLOAD - 100, hook.MAX_PAYLOAD + 1, 8 * hook.MAX_PAYLOAD])
def test_payload_near_the_size_limit_in_bounded_memory(size: int) -> None:
    data = b'{"session_id": "' + b"s" * (size - 20) + b'", "x": 1}'
    result, peak = peak_bytes(lambda: check_payload(data))
    assert isinstance(result, hook.Payload) == (len(data) <= hook.MAX_PAYLOAD)
    assert peak < 12 * hook.MAX_PAYLOAD, f"{peak / 1e6:.1f} MB to read a {len(data) / 1e6:.1f} MB payload"


@contextmanager
def stdin_left_open(data: bytes) -> Iterator[BinaryIO]:
    """A pipe holding `data` whose writer never closes it."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data)
    try:
        with os.fdopen(read_fd, "rb") as stream:
            yield stream
    finally:
        os.close(write_fd)


def test_payload_that_never_ends_is_given_up_on_time() -> None:
    with stdin_left_open(b'{"session_id": "s", ') as stream:
        started = time.monotonic()
        with pytest.raises(GitendError, match="no complete hook payload on stdin"):
            hook.read_payload(stream)
        assert time.monotonic() - started < hook.STDIN_WAIT_S + 1


def test_complete_payload_on_stdin_left_open_is_taken_at_once() -> None:
    with stdin_left_open(b'{"session_id": "s", "cwd": "/tmp", "reason": "logout"}\n') as stream:
        started = time.monotonic()
        payload = hook.read_payload(stream)
        assert time.monotonic() - started < hook.STDIN_WAIT_S / 2  # not after waiting for more
    assert (payload.session_id, payload.reason) == ("s", "logout")


# -- the hook's payload, as Claude Code sends it ----------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo")
    write(repo / "README.md", "edited\n")
    return repo


def fifo(tmp_path: Path) -> str:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


PAYLOADS = {
    "forged trailers in the session id": lambda repo, tmp: {
        "cwd": str(repo), "session_id": "s\n\nGitend-Session: forged\nGitend-Base: 0000\n\n", "reason": "a\nb"},
    "NUL in cwd": lambda repo, tmp: {"cwd": f"{repo}\u0000/x"},
    "cwd is a file": lambda repo, tmp: {"cwd": str(repo / "README.md")},
    "transcript is /dev/zero": lambda repo, tmp: {"cwd": str(repo), "transcript_path": "/dev/zero"},
    "transcript is a FIFO": lambda repo, tmp: {"cwd": str(repo), "transcript_path": fifo(tmp)},
    "transcript is the repository": lambda repo, tmp: {"cwd": str(repo), "transcript_path": str(repo)},
    "event name is a number": lambda repo, tmp: {"cwd": str(repo), "hook_event_name": 12},
    "control characters everywhere": lambda repo, tmp: {
        "cwd": str(repo), "session_id": "\x1b[31mred\x07", "reason": "\u202eevil", "hook_event_name": "SessionEnd"},
    "a 100 kB session id": lambda repo, tmp: {"cwd": str(repo), "session_id": "x" * 100_000},
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_odd_payloads_through_the_real_hook(name: str, repo: Path, tmp_path: Path) -> None:
    before = state(repo)
    data = json.dumps(PAYLOADS[name](repo, tmp_path)).encode()
    proc = gitend("hook", cwd=tmp_path, input=data, timeout=30)
    assert proc.returncode == 0
    assert proc.stderr.count("\n") <= 1 and "unexpected" not in proc.stderr, proc.stderr
    assert state(repo) == before
    # Whatever the payload held, the WIP branch stays readable and the next run saves onto it.
    write(repo / "README.md", f"edited after {name}\n")
    proc = gitend("hook", "--strict", cwd=repo, input=json.dumps({"cwd": str(repo)}).encode())
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(gitend("list", "--json", cwd=repo).stdout)
    assert listed and all("\n" not in snap["session_id"] for snap in listed)


@pytest.mark.parametrize("stdin", [b"[" * 300_000, b'{"cwd": ' + b"[" * 100_000])
def test_deeply_nested_payload_through_the_real_hook(stdin: bytes, tmp_path: Path) -> None:
    proc = gitend("hook", cwd=tmp_path, input=stdin)
    assert proc.returncode == 0 and proc.stderr.count("\n") == 1 and "not valid JSON" in proc.stderr, proc.stderr


def _half_a_payload(tmp_path: Path, left_open: bool) -> tuple[float, bytes]:
    """How long the hook takes on half a payload, with stdin then closed or left open; its stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "gitend", "hook"], cwd=tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stderr
    proc.stdin.write(b'{"cwd": "')
    proc.stdin.flush()
    if not left_open:
        proc.stdin.close()
    started = time.monotonic()
    try:
        assert proc.wait(timeout=15) == 0
    finally:
        proc.stdin.close()
    return time.monotonic() - started, proc.stderr.read()


def test_stdin_left_open_is_given_up_on_time(tmp_path: Path) -> None:
    closed, _ = _half_a_payload(tmp_path, left_open=False)  # start-up and all but the wait, on this machine now
    left_open, stderr = _half_a_payload(tmp_path, left_open=True)
    assert b"no complete hook payload on stdin" in stderr
    # the wait, and slack as large as a start-up: a busy machine stretches both runs, not the wait
    assert left_open < closed + hook.STDIN_WAIT_S + max(1.0, closed), (closed, left_open)


# -- the transcript reader ----------------------------------------------------------------


def maybe(realistic: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly what Claude Code writes, sometimes any JSON at all in its place."""
    return st.one_of(realistic, realistic, realistic, JSON)


TEXT = st.text(max_size=60) | st.sampled_from([
    "<system-reminder>x</system-reminder>real words", "<command-name>/clear</command-name>", "/compact",
    "[Request interrupted by user]", "\x1b[31mred\x1b[0m", "tab\tand\r\nnewline", "",
])
BLOCK = st.fixed_dictionaries(
    {"type": maybe(st.sampled_from(["text", "tool_result", "tool_use", "image", "thinking"]))},
    optional={"text": maybe(TEXT), "content": maybe(TEXT | st.lists(st.fixed_dictionaries({"type": st.just("text"),
                                                                                             "text": TEXT}))),
              "tool_use_id": maybe(TEXT)},
)
MESSAGE = st.fixed_dictionaries({"role": maybe(st.sampled_from(["user", "assistant"])),
                                 "content": maybe(TEXT | st.lists(maybe(BLOCK), max_size=4))})
ENTRY = st.fixed_dictionaries(
    {"type": maybe(st.sampled_from(["user", "assistant", "summary", "ai-title", "custom-title", "last-prompt",
                                    "system", "progress", "attachment", "file-history-snapshot"]))},
    optional={"message": maybe(MESSAGE), "uuid": maybe(st.sampled_from(["u-1", "u-2", "u-3"])),
              "leafUuid": maybe(st.sampled_from(["u-1", "u-2", "u-9"])), "isSidechain": maybe(st.booleans()),
              "isMeta": maybe(st.booleans()), "isCompactSummary": maybe(st.booleans()),
              "summary": maybe(TEXT), "aiTitle": maybe(TEXT), "customTitle": maybe(TEXT),
              "lastPrompt": maybe(TEXT), "sessionId": maybe(TEXT), "timestamp": maybe(TEXT)},
)


@st.composite
def transcript_bytes(draw: st.DrawFn) -> bytes:
    """JSON lines as Claude Code writes them (compact, "type" first or not, any key order), with
    the odd line ending, a cut last line, and the entries' fields of any type at any depth."""
    lines = []
    for entry in draw(st.lists(ENTRY, max_size=30)):
        keys = draw(st.permutations(list(entry)))
        compact = draw(st.booleans())
        line = json.dumps({k: entry[k] for k in keys}, ensure_ascii=draw(st.booleans()),
                          separators=(",", ":") if compact else (", ", ": "))
        lines.append(line.encode("utf-8", "surrogatepass"))
    data = draw(st.sampled_from([b"\n", b"\r\n"])).join(lines)
    if data and draw(st.booleans()):
        data += b"\n"
    if data and draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


def read_file(data: bytes, head_kb: int, tail_kb: int) -> transcript.Session:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.jsonl"
        path.write_bytes(data)
        return transcript.read(path, head_kb, tail_kb)


@settings(deadline=2000, suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(data=transcript_bytes(), head_kb=st.integers(0, 2), tail_kb=st.integers(0, 2))
def test_transcript_structure_aware(data: bytes, head_kb: int, tail_kb: int) -> None:
    session = read_file(data, head_kb, tail_kb)
    assert isinstance(session, transcript.Session)
    assert session.title is None or 0 < len(session.title) <= transcript.TITLE_CAP
    assert all(0 < len(p) <= transcript.PROMPT_CAP and "\n" not in p and "\x1b" not in p for p in session.prompts)
    assert session == read_file(data, head_kb, tail_kb), "the same file must read the same"


PATHOLOGICAL = {
    "one line of a million brackets": lambda: b'{"type":"user","message":{"content":' + b"[" * 1_000_000,
    "a million tiny lines": lambda: b'{"type":"user"}\n' * 70_000,
    "a prompt of unclosed reminders": lambda: json.dumps({"type": "user", "message": {
        "content": "<system-reminder>" * 50_000}}).encode() + b"\n",
    "a prompt of escapes": lambda: json.dumps({"type": "user", "message": {
        "content": "\x1b[" * 100_000 + "x"}}).encode() + b"\n",
    "many real prompts": lambda: b"".join(json.dumps({"type": "user", "message": {
        "content": f"prompt {n} " + "word " * 20}}).encode() + b"\n" for n in range(8000)),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_transcript_worst_windows_in_bounded_time_and_memory(name: str, tmp_path: Path) -> None:
    """The default windows (each case fits in the 1 MB tail) full of the most expensive content
    there is, in a 1 GB sparse file."""
    window = PATHOLOGICAL[name]()
    tail = b"\n" + window[-1024 * 1024 + 1:]  # the hole before it holds no newline
    path = tmp_path / "t.jsonl"
    with open(path, "wb") as out:
        out.write(window[: 256 * 1024])
        out.truncate(1 << 30)
        out.seek((1 << 30) - len(tail))
        out.write(tail)
    started = time.process_time()
    session = transcript.read(path)
    spent = time.process_time() - started
    assert isinstance(session, transcript.Session)
    assert spent < 1.0, f"{spent:.2f} s of CPU for one transcript"
    _, peak = peak_bytes(lambda: transcript.read(path))
    assert peak < 64 << 20, f"{peak / 1e6:.0f} MB to read a transcript"


# -- the config loader ----------------------------------------------------------------------


def load_text(home: Path, text: str | bytes) -> config.Config | GitendError:
    path = home / ".config" / "gitend" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        return config.load(None)
    except GitendError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
        return exc


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.dates() | \
    st.binary(max_size=8)
KEYS = {section: [f.name for f in dataclasses.fields(factory())] for section, factory in config.SECTIONS.items()}
YAML_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10)
NAME = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=8)  # see the newline test below
DOCUMENT = st.dictionaries(
    st.sampled_from(sorted(KEYS)) | NAME | st.integers(),
    st.none() | YAML_VALUES | st.dictionaries(st.sampled_from(sorted({k for ks in KEYS.values() for k in ks}))
                                              | NAME, YAML_VALUES, max_size=4),
    max_size=4,
)
SNIPPETS = st.sampled_from([
    "!!python/object/apply:os.system ['true']", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "&x [1, *x]",
    "*undefined", "<<: {a: 1}", ".nan", "-.inf", "0x1F", "0o17", "1_000", "~", "yes", "2024-01-01 10:00:00",
    "{", "[", "'", '"\\x00"', "\t", "%YAML 1.1\n---", "--- a\n--- b", "? [a]\n: b", "!custom x", "\x00", "\ufeff",
])


@FUZZ
@given(document=DOCUMENT, flow=st.booleans())
def test_config_random_documents(hermetic: Path, document: dict[object, object], flow: bool) -> None:
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    result = load_text(hermetic, text)
    assert isinstance(result, (config.Config, GitendError))


@FUZZ
@given(section=st.sampled_from(sorted(KEYS)), data=st.data(), snippet=SNIPPETS)
def test_config_yaml_oddities_in_a_known_key(hermetic: Path, section: str, data: st.DataObject, snippet: str) -> None:
    key = data.draw(st.sampled_from(KEYS[section]))
    result = load_text(hermetic, f"{section}:\n  {key}: {snippet}\n")
    assert isinstance(result, (config.Config, GitendError))


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300))
def test_config_arbitrary_text(hermetic: Path, text: str | bytes) -> None:
    assert isinstance(load_text(hermetic, text), (config.Config, GitendError))


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000,
                                  "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 1000))])
def test_config_nested_deeply_is_a_config_error(hermetic: Path, text: str) -> None:
    assert isinstance(load_text(hermetic, text), GitendError)


@pytest.mark.parametrize("text", ['"bad\\nkey": 1\n', 'snapshot:\n  "bad\\nkey": 1\n'])
def test_config_key_with_a_newline_gives_a_one_line_error(hermetic: Path, text: str) -> None:
    load_text(hermetic, text)


def test_config_alias_bomb_gives_a_short_error_quickly(hermetic: Path, repo: Path) -> None:
    """A repository's .gitend.yaml is anyone's text; six levels already make a 5 MB message."""
    value = "&a0 [x, x, x, x, x, x, x, x, x, x]"
    for level in range(1, 6):
        value = f"&a{level} [{value}, " + ", ".join([f"*a{level - 1}"] * 9) + "]"
    write(repo / ".gitend.yaml", f"snapshot:\n  branch_prefix: {value}\n")
    (result, peak) = peak_bytes(lambda: pytest.raises(GitendError, config.load, repo))
    assert len(str(result.value)) < 1000 and peak < 8 << 20  # type: ignore[attr-defined]
