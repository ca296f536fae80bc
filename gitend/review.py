"""The secret review: nothing with an unapproved finding is committed to the dotfile repo or
pushed. Approvals are remembered locally as keyed hashes of the secret, never the secret."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

from gitend import config, paths, queue
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.secrets import Finding, keyed_hash, scan_text


class Held(GitendError):
    """Unapproved findings: the push (or the project's notes) wait for `gitend review`."""

    def __init__(self, findings: list[Finding], where: str) -> None:
        self.findings = findings
        first = findings[0]
        more = f" and {len(findings) - 1} more" if len(findings) > 1 else ""
        super().__init__(f"possible secret in {where}: {first.path}:{first.line} {first.rule} "
                         f"({first.masked}){more}")


def _key() -> bytes:
    """The local key for approval hashes: 32 random bytes, readable by the user only."""
    path = paths.state_dir() / "review.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()  # another process made it first
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(32))
        return path.read_bytes()


def _approvals_file() -> os.PathLike[str]:
    return paths.state_dir() / "approvals.json"


def _approved() -> set[str]:
    try:
        data = json.loads(open(_approvals_file(), encoding="utf-8").read())
        return set(data) if isinstance(data, list) else set()
    except (OSError, ValueError):
        return set()


def approve(findings: Iterable[Finding]) -> None:
    key = _key()
    queue.write_atomic(paths.state_dir() / "approvals.json",
                       sorted(_approved() | {keyed_hash(key, f) for f in findings}))


def unapproved(findings: list[Finding], settings: config.Review) -> list[Finding]:
    if not findings:
        return []
    key, approved = _key(), _approved()
    allow = [re.compile(rule) for rule in settings.allow]
    return [f for f in findings if keyed_hash(key, f) not in approved
            and not any(rule.search(f.secret) or rule.search(f.excerpt) for rule in allow)]


def scan_notes(texts: dict[str, str]) -> list[Finding]:
    return [finding for path, text in sorted(texts.items()) for finding in scan_text(text, path)]


def redact(text: str, findings: Iterable[Finding]) -> str:
    """`text` with these findings' secrets replaced by [REDACTED:<rule>] (others left alone)."""
    lines = text.split("\n")
    for finding in sorted(findings, key=lambda f: (f.line, -f.column)):
        row = lines[finding.line - 1]
        start = finding.column - 1
        if row[start:start + len(finding.secret)] == finding.secret:
            lines[finding.line - 1] = f"{row[:start]}[REDACTED:{finding.rule}]{row[start + len(finding.secret):]}"
        else:  # a multi-line secret (a key block): replace it in the whole text
            return redact("\n".join(lines).replace(finding.secret, f"[REDACTED:{finding.rule}]"), [])
    return "\n".join(lines)


_HUNK = re.compile(r"@@ -\S+ \+(\d+)")


def outgoing_findings(repo: Repo, revs: list[str]) -> list[Finding]:
    """Findings in the lines that commits `revs` (rev-list arguments) add, and in their messages."""
    out = repo.git("log", "-p", "--no-color", "--no-ext-diff", "--no-renames", "--unified=0",
                   "--format=%x00commit %H%n%B%x00", *revs, "--")
    findings = []
    for chunk in out.decode("utf-8", "replace").split("\0commit ")[1:]:
        commit, _, rest = chunk.partition("\n")
        message, _, diff = rest.partition("\0")
        findings += scan_text(message, f"{commit[:10]} (commit message)")
        path, added = "", []
        for line in diff.split("\n") + ["+++ "]:
            if line.startswith("+++ "):
                if added:
                    findings += _scan_added(added, f"{commit[:10]}:{path}")
                path, added, number = line[6:] if line.startswith("+++ b/") else line[4:], [], 0
            elif line.startswith("@@"):
                hunk = _HUNK.match(line)
                number = int(hunk[1]) if hunk else 0
            elif line.startswith("+"):
                added.append((number, line[1:]))
                number += 1
    return findings


def _scan_added(added: list[tuple[int, str]], where: str) -> list[Finding]:
    found = scan_text("\n".join(text for _, text in added), where)
    return [Finding(f.rule, f.description, f.path, added[f.line - 1][0], f.column, f.secret, f.excerpt)
            for f in found]


def check_outgoing(repo: Repo, revs: list[str], settings: config.Review) -> None:
    """Raise Held when what `revs` would push has an unapproved finding."""
    found = unapproved(outgoing_findings(repo, revs), settings)
    if found:
        raise Held(found, "the commits to push")
