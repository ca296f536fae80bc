"""A small fake Anthropic Messages API on 127.0.0.1, enough for the real Claude Code CLI offline.

Claude Code calls `HEAD /api/hello` (2.1.332; `HEAD /` before) at start, then streamed
`POST /v1/messages?beta=true`. One of those is a small side request without tools that asks
for a JSON `{"title": ...}`: it becomes the transcript's `ai-title`.

Replies are scripted per prompt: `script["Make a file"] = [Bash("touch x"), "Done."]` answers
that prompt with a Bash tool call, and once its result comes back, with the text "Done.".
The step is worked out from the conversation itself (how many tool results follow the
prompt), so retries and side requests never put the script out of step.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-fake-1"


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any]


def Bash(command: str) -> ToolCall:  # noqa: N802 (reads like the tool's name in a script)
    return ToolCall("Bash", {"command": command, "description": "run a command"})


def Write(path: str, content: str) -> ToolCall:  # noqa: N802
    return ToolCall("Write", {"file_path": path, "content": content})


Step = "str | ToolCall"


@dataclass
class FakeAPI:
    """Start with `with FakeAPI() as api:`; `api.url` goes into ANTHROPIC_BASE_URL."""

    script: dict[str, list[Any]] = field(default_factory=dict)
    default_reply: str = "OK."
    requests: list[dict[str, Any]] = field(default_factory=list)  # every POST body, in order

    def __enter__(self) -> FakeAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet: pytest shows failures only
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                if not self.path.startswith("/v1/messages") or self.path.startswith("/v1/messages/count_tokens"):
                    self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                    return
                with api._lock:
                    api.requests.append(body)
                blocks = api.reply(body)
                if body.get("stream"):
                    self._stream(blocks)
                else:
                    self._json(200, _message(blocks))

            def _json(self, code: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, blocks: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for event in _events(blocks):
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what to answer ---------------------------------------------------------

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The content blocks that answer one request."""
        if not body.get("tools") and "title" in json.dumps(body.get("output_format") or body.get("system") or ""):
            prompt, _ = _last_prompt(body.get("messages") or [])
            return [_text(json.dumps({"title": f"Fake title: {(prompt or 'session')[:40]}"}))]
        prompt, results = _last_prompt(body.get("messages") or [])
        steps = self.script.get(prompt or "", [])
        step = steps[results] if results < len(steps) else (self.default_reply if not steps else "Done.")
        if isinstance(step, ToolCall):
            return [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": step.name,
                     "input": step.input}]
        return [_text(step)]

    def main_requests(self) -> list[dict[str, Any]]:
        """The requests that carried tools: the conversation itself, not side requests."""
        with self._lock:
            return [body for body in self.requests if body.get("tools")]


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _last_prompt(messages: list[dict[str, Any]]) -> tuple[str | None, int]:
    """The newest prompt the user typed, and how many tool results came back since."""
    results = 0
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return _strip(content), results
        texts = []
        for block in content or []:
            if block.get("type") == "tool_result":
                results += 1
            elif block.get("type") == "text":
                texts.append(block.get("text", ""))
        typed = [t for t in (_strip(t) for t in texts) if t]
        if typed:
            return typed[-1], results
    return None, results


def _strip(text: str) -> str:
    """The prompt without the `<system-reminder>` blocks Claude Code adds around it."""
    while "<system-reminder>" in text:
        start = text.index("<system-reminder>")
        end = text.find("</system-reminder>", start)
        text = text[:start] + (text[end + len("</system-reminder>"):] if end >= 0 else "")
    return text.strip()


def _message(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": MODEL,
            "content": blocks, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10}}


def _events(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    message = _message(blocks)
    yield {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                "usage": {"input_tokens": 10, "output_tokens": 1}}}
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            yield {"type": "content_block_delta", "index": index,
                   "delta": {"type": "text_delta", "text": block["text"]}}
        else:
            yield {"type": "content_block_start", "index": index,
                   "content_block": {**block, "input": {}}}
            yield {"type": "content_block_delta", "index": index,
                   "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}}
        yield {"type": "content_block_stop", "index": index}
    yield {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
           "usage": {"output_tokens": 10}}
    yield {"type": "message_stop"}
