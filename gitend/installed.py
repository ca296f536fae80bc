"""What `gitend install` puts in place, and how gitend recognises it there: its entry in
Claude Code's settings (and the user's own per-reason ones), the dotfile repo's pre-push
hook, and the install record that uninstall and doctor read."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from gitend import paths
from gitend.errors import GitendError
from gitend.git import Repo

Json = dict[str, Any]
CATCH_ALL = (None, "", "*")  # matchers that match every reason
# The SessionEnd reasons Claude Code sends (research/claude-code-facts.md §1.3); `other` stands
# for every reason without a name of its own.
REASONS = ("clear", "resume", "logout", "prompt_input_exit", "other")
# Claude Code's `if` filters for the PreToolUse tripwire: a Bash command that matches none of
# them starts no process at all. Broad on purpose (`Bash(git reset *)` misses `git -C DIR
# reset`, `env git`, `bash -c '...'` and `/usr/bin/git`; research: claude-code-facts.md §5.3):
# gitend's own check (gitend/tripwire.py) lets the harmless ones pass.
TRIPWIRE_FILTERS = ("Bash(*--hard*)", "Bash(*--merge*)", "Bash(*--keep*)", "Bash(*checkout*)", "Bash(*restore*)",
                    "Bash(*clean -*)", "Bash(*stash drop*)", "Bash(*stash clear*)", "Bash(*stash pop*)",
                    "Bash(*switch*)", "Bash(*--abort*)")
SESSION_END_TIMEOUT_S = 10  # a per-hook timeout raises Claude Code's shared 1.5 s SessionEnd budget
SESSION_START_TIMEOUT_S = 30  # the first model request waits; a bigger catch-up goes to the worker
TRIPWIRE_TIMEOUT_S = 60  # the command waits for its snapshot, which is never handed over
MARKER = "# gitend pre-push hook"
CHAINED = "pre-push.gitend-chained"
PRE_PUSH = f"""#!/bin/sh
{MARKER}: written by `gitend install`, removed by `gitend uninstall`.
# gitend's secret review runs first; then the hook that was here before, if any (kept as
# {CHAINED}), with the same arguments and input. Either one can block the push.
tmp=$(mktemp "${{TMPDIR:-/tmp}}/gitend-pre-push.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
cat >"$tmp" || exit 1
@GITEND@ review --pre-push "$1" "$2" <"$tmp" || exit 1
chained="$(dirname "$0")/{CHAINED}"
if [ -x "$chained" ]; then
    "$chained" "$@" <"$tmp"
    exit $?
fi
exit 0
"""

# Each part of the record: its type, and the text fields it must have when present.
_RECORD: dict[str, tuple[type, tuple[str, ...]]] = {
    "settings": (str, ()), "created": (dict, ()), "backup": (str, ()), "config": (dict, ("path",)),
    "pre_push": (dict, ("path",))}


def gitend_command() -> str:
    """`gitend` when PATH finds this very install, else the absolute path of its script."""
    ours = shutil.which("gitend", path=os.path.dirname(sys.executable))
    if ours is None:
        return "gitend"
    on_path = shutil.which("gitend")
    return "gitend" if on_path and os.path.samefile(on_path, ours) else os.path.abspath(ours)


def pre_push_script(command: str) -> str:
    return PRE_PUSH.replace("@GITEND@", shlex.quote(command))


def settings_path(given: str | None) -> Path:
    return Path(os.path.abspath(os.path.expanduser(given))) if given else paths.claude_dir() / "settings.json"


def read_settings(path: Path) -> tuple[Json, bytes | None]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise GitendError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except ValueError as exc:
        why = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise GitendError(f"{path} is not valid JSON ({why}); fix it, then run this again") from None
    if not isinstance(data, dict):
        raise GitendError(f"{path} does not hold a JSON object at the top level; fix it, then run this again")
    return data, raw


def entries(command: str) -> dict[str, list[Json]]:
    """gitend's handlers per event, in exec form, as `gitend install` writes them."""
    def handler(timeout: int, **more: str) -> Json:
        return {"type": "command", "command": command, "args": ["hook"], "timeout": timeout, **more}

    return {"SessionEnd": [handler(SESSION_END_TIMEOUT_S)],
            "SessionStart": [handler(SESSION_START_TIMEOUT_S)],
            "PreToolUse": [handler(TRIPWIRE_TIMEOUT_S, **{"if": rule}) for rule in TRIPWIRE_FILTERS]}


def ours_in(groups: list[Any], event: str) -> list[Json]:
    """gitend's own handlers under one event: in catch-all groups (SessionEnd, SessionStart), or
    anywhere under PreToolUse."""
    return [hook for group, hook in _gitend_groups(groups) if event == "PreToolUse" or _catch_all(group)]


def _is_ours(hook: Any) -> bool:
    """gitend's SessionEnd handler, in exec form (`gitend` + ["hook", ...]) or shell form."""
    if not isinstance(hook, dict) or not isinstance(hook.get("command"), str):
        return False
    args = hook.get("args")
    try:
        words = [hook["command"], *args] if isinstance(args, list) else shlex.split(hook["command"])
    except ValueError:
        return False
    return len(words) > 1 and Path(str(words[0])).name in ("gitend", "gitend.exe") and words[1] == "hook"


def _gitend_groups(session_end: list[Any]) -> list[tuple[Json, Json]]:
    """(matcher group, hook) for every gitend hook under SessionEnd."""
    return [(group, hook) for group in session_end if isinstance(group, dict) and isinstance(group.get("hooks"), list)
            for hook in group["hooks"] if _is_ours(hook)]


def _catch_all(group: Json) -> bool:
    return group.get("matcher") in CATCH_ALL


def gitend_hooks(session_end: list[Any]) -> list[Json]:
    """Every gitend hook: gitend's own entries and the user's per-reason ones."""
    return [hook for _, hook in _gitend_groups(session_end)]


def our_entries(session_end: list[Any]) -> list[Json]:
    """gitend's own entries: gitend hooks in a catch-all matcher group."""
    return [hook for group, hook in _gitend_groups(session_end) if _catch_all(group)]


def per_reason_matchers(session_end: list[Any]) -> list[str]:
    """The matchers, as JSON, of the user's own gitend entries: the ones under a specific matcher."""
    return list(dict.fromkeys(json.dumps(group.get("matcher")) for group, _ in _gitend_groups(session_end)
                              if not _catch_all(group)))


def _matches(matcher: Any, reason: str) -> bool:
    """Claude Code's rule (research/claude-code-facts.md §1.4): a matcher of letters, digits, `_`,
    `-`, spaces, `,` and `|` is an exact name or a list of them; anything else is a regex."""
    if matcher in CATCH_ALL:
        return True
    if not isinstance(matcher, str):
        return False
    if re.fullmatch(r"[A-Za-z0-9_\- ,|]*", matcher):
        return reason in (name.strip() for name in re.split(r"[|,]", matcher))
    try:
        return re.search(matcher, reason) is not None
    except re.error:
        return False


def uncovered_reasons(session_end: list[Any]) -> list[str]:
    """The session-end reasons for which no gitend hook runs."""
    matchers = [group.get("matcher") for group, _ in _gitend_groups(session_end)]
    return [reason for reason in REASONS if not any(_matches(m, reason) for m in matchers)]


def hooks_dir(repo: Repo) -> tuple[Path, str]:
    """Where git looks for this repo's hooks, and the config scope that said so."""
    # gitend's own git calls pin core.hooksPath on the command line ("command" scope);
    # the user's setting is the last one from a config file.
    out = repo.text("config", "--show-scope", "--get-all", "core.hooksPath", check=False)
    found = [line.split("\t", 1) for line in out.splitlines() if "\t" in line and not line.startswith("command\t")]
    if not found:
        return repo.common_dir / "hooks", ""
    scope, value = found[-1]
    return repo.root / Path(value).expanduser(), scope  # relative: to the work tree root, as git runs hooks


def is_our_hook(hook: Path) -> bool:
    try:
        return MARKER.encode() in hook.read_bytes()[:4096]
    except OSError:
        return False


def _well_formed(data: Json) -> bool:
    def good(value: Any, kind: type, fields: tuple[str, ...]) -> bool:
        if value is None or not fields:
            return value is None or isinstance(value, kind)
        return isinstance(value, dict) and all(isinstance(value.get(f), str) for f in fields)

    return all(good(data.get(key), kind, fields) for key, (kind, fields) in _RECORD.items())


def load_record() -> Json:
    try:
        data = json.loads(paths.install_record().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not _well_formed(data):
        raise GitendError(f"cannot read {paths.install_record()}, gitend's install record; "
                          "remove it, then run this again")
    return data
