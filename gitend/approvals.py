"""The secret gate: nothing with an unapproved finding is committed to the dotfile repo or
pushed. Approvals are remembered locally as keyed hashes of the secret, never the secret;
what is held (notes of memory.extra, manual pushes the pre-push hook blocked) is kept here."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

from gitend import config, files, paths
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.secrets import Finding, keyed_hash, mask, scan_text


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
    path = paths.review_key()
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


def _approved() -> set[str]:
    return set(files.read_json(paths.approvals_file(), []))


def approve(findings: Iterable[Finding]) -> None:
    key = _key()
    files.write_json(paths.approvals_file(), sorted(_approved() | {keyed_hash(key, f) for f in findings}))


def unapproved(findings: list[Finding], settings: config.Review) -> list[Finding]:
    if not findings:
        return []
    key, approved = _key(), _approved()
    allow = [re.compile(rule) for rule in settings.allow]
    return [f for f in findings if keyed_hash(key, f) not in approved
            and not any(rule.search(f.secret) or rule.search(f.excerpt) for rule in allow)]


def scan_notes(texts: dict[str, str]) -> list[Finding]:
    return [finding for path, text in sorted(texts.items()) for finding in scan_text(text, path)]


def check_outgoing(repo: Repo, revs: list[str], settings: config.Review) -> None:
    """Raise Held when what `revs` would push has an unapproved finding."""
    found = unapproved(outgoing_findings(repo, revs), settings)
    if found:
        raise Held(found, "the commits to push")


_HUNK = re.compile(r"(@@+) (?:-\S+ )+\+(\d+)")


def outgoing_findings(repo: Repo, revs: list[str]) -> list[Finding]:
    """Findings in the lines that commits `revs` (rev-list arguments) add, and in their messages.
    A merge adds the lines its result has that none of its parents has (git's dense combined diff)."""
    out = repo.git("log", "-p", "--cc", "--no-color", "--no-ext-diff", "--no-renames", "--unified=0",
                   "--format=%x00commit %H%n%B%x00", *revs, "--")
    findings = []
    for chunk in out.decode("utf-8", "replace").split("\0commit ")[1:]:
        commit, _, rest = chunk.partition("\n")
        message, _, diff = rest.partition("\0")
        findings += scan_text(message, f"{commit[:10]} (commit message)")
        for path, added in _added_lines(diff):
            findings += _scan_added(added, f"{commit[:10]}:{path}")
    return findings


def _added_lines(diff: str) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    """Per file of one commit's patch: its path and the (line number, text) of each added line.

    A file's header runs from its `diff ` line to its first hunk, so an added line that reads
    `++ x` (shown as `+++ x`) is content, not a header. A combined diff (a merge) has one mark
    column per parent: a line is new when every column is `+`."""
    path, in_header, parents, number = "", False, 1, 0
    added: list[tuple[int, str]] = []
    for line in diff.split("\n"):
        if line.startswith("diff "):
            if added:
                yield path, added
            path, added, in_header = "", [], True
        elif line.startswith("@@"):
            hunk = _HUNK.match(line)
            parents, number = (len(hunk[1]) - 1, int(hunk[2])) if hunk else (1, 0)
            in_header = False
        elif in_header:
            if line.startswith("+++ "):
                name = line[4:]
                name = name[1:-1] if name.startswith('"') and name.endswith('"') else name
                path = name[2:] if name.startswith("b/") else name
        elif line[:1] in (" ", "+", "-"):
            marks = line[:parents]
            if "-" not in marks:  # a line of the result
                if marks == "+" * parents:
                    added.append((number, line[parents:]))
                number += 1
    if added:
        yield path, added


def _scan_added(added: list[tuple[int, str]], where: str) -> list[Finding]:
    found = scan_text("\n".join(text for _, text in added), where)
    return [Finding(f.rule, f.description, f.path, added[f.line - 1][0], f.column, f.secret, f.excerpt)
            for f in found]


def context(text: str, finding: Finding, around: int = 2) -> list[str]:
    """A few masked lines around a finding, for a person to judge it."""
    lines = text.split("\n")
    first, last = max(1, finding.line - around), min(len(lines), finding.line + around)
    key_bodies = {number for f in scan_text(text) for number in range(f.line + 1, f.line + f.secret.count("\n") + 1)}
    shown = []
    for number in range(first, last + 1):
        if number == finding.line:
            row = finding.excerpt
        elif number in key_bodies:  # the rest of a multi-line secret, such as a key block
            row = "…"
        else:
            row = mask(lines[number - 1])
        shown.append(f"{'>' if number == finding.line else ' '} {number:4} | {row}")
    return shown


# -- what is held outside the queue ---------------------------------------------------------


def blocked() -> dict[str, dict[str, Any]]:
    """Manual pushes of a dotfile repo that its pre-push hook blocked, by repository root."""
    return files.read_json(paths.blocked_file(), {})


def set_blocked(root: str, entry: dict[str, Any] | None) -> None:
    entries = blocked()
    if entry is None and root not in entries:
        return
    if entry is None:
        del entries[root]
    else:
        entries[root] = entry
    files.write_json(paths.blocked_file(), entries)


def held_extras() -> dict[str, str]:
    """memory.extra sources skipped for a finding, with why."""
    data = files.read_json(paths.held_extras_file(), {})
    return {k: v for k, v in data.items() if isinstance(v, str)}


def set_held_extras(held: dict[str, str]) -> None:
    if held != held_extras():
        files.write_json(paths.held_extras_file(), held)
