"""The secret gate: nothing with an unapproved finding is committed to the dotfile repo or
pushed. Approvals are remembered locally as keyed hashes of the secret, never the secret;
what is held (notes of memory.extra, manual pushes the pre-push hook blocked) is kept here."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
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
    return set(files.read_json(paths.approvals_file(), [], lambda entry: isinstance(entry, str)))


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


def outgoing_findings(repo: Repo, revs: list[str]) -> list[Finding]:
    """Findings in everything pushing `revs` adds to a remote (rev-list arguments: what is pushed,
    then `--not ...` or `^sha` for what the remote has): the messages of new commits and tags, and
    every file a new commit changes, read whole as git stores it (whatever .gitattributes says
    about diffs), and trees or blobs pushed under a tag. A merge changes the files its result has
    that none of its parents has."""
    cut = revs.index("--not") if "--not" in revs else len(revs)
    tips = [r for r in revs[:cut] if not r.startswith(("^", "-"))]
    exclude = [r for r in revs if r not in tips]
    findings: list[Finding] = []
    blobs: dict[str, str] = {}  # blob -> where it is shown: "<commit>:<path>"
    for tip in tips:  # annotated tags (their messages), and what is not a commit at all
        sha = repo.text("rev-parse", "-q", "--verify", "--end-of-options", tip, check=False)
        kind = ""
        while sha:
            kind = repo.text("cat-file", "-t", sha)
            if kind != "tag":
                break
            header, _, message = repo.git("cat-file", "tag", sha).decode("utf-8", "replace").partition("\n\n")
            findings += scan_text(message, f"{sha[:10]} (tag message)")
            sha = header.split("\n", 1)[0].removeprefix("object ")
        if sha and kind in ("tree", "blob"):
            for line in repo.text("rev-list", "--objects", sha, *exclude, "--").splitlines():
                obj, _, path = line.partition(" ")
                blobs.setdefault(obj, f"{sha[:10]}:{path}" if path else f"{sha[:10]} (tagged blob)")
    commits = repo.text("rev-list", "--reverse", *revs, "--").split()
    for commit in commits:
        message = repo.git("cat-file", "commit", commit).decode("utf-8", "replace").partition("\n\n")[2]
        findings += scan_text(message, f"{commit[:10]} (commit message)")
        raw = repo.git("diff-tree", "-r", "-z", "-c", "--root", "--no-renames", "--no-abbrev", "--no-commit-id",
                       commit).split(b"\0")
        for entry, name in zip(raw[0::2], raw[1::2]):
            # `:<modes> <blobs> <status>`, one mode and blob per parent, then the result's.
            fields = entry.decode().split()
            mode, sha = fields[len(fields) // 2 - 1], fields[-2]
            if mode.startswith("10") or mode == "120000":  # files and symlinks, not deletions or submodules
                blobs.setdefault(sha, f"{commit[:10]}:{os.fsdecode(name)}")
    for sha, (kind, data) in _objects(repo, list(blobs)).items():
        if kind == "blob" and _scannable(data):
            findings += scan_text(data.decode("utf-8", "replace"), blobs[sha])
    return findings


def _objects(repo: Repo, shas: list[str]) -> dict[str, tuple[str, bytes]]:
    """The type and content of each object, read in one `git cat-file --batch`."""
    if not shas:
        return {}
    out = repo.git("cat-file", "--batch", input="".join(f"{sha}\n" for sha in shas).encode())
    found, at = {}, 0
    while at < len(out):
        end = out.index(b"\n", at)
        fields = out[at:end].decode().split()
        at = end + 1
        if len(fields) == 3:
            size = int(fields[2])
            found[fields[0]] = (fields[1], out[at:at + size])
            at += size + 1
    return found


def _scannable(data: bytes) -> bool:
    """Text, give or take a few NUL bytes (one NUL must not hide a file from the scan)."""
    head = data[:8192]
    return head.count(b"\0") * 100 <= len(head) * 3


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
    return files.read_json(paths.blocked_file(), {}, _is_blocked)


def _is_blocked(entry: Any) -> bool:
    ranges = entry.get("ranges") if isinstance(entry, dict) else None
    return (isinstance(entry, dict) and isinstance(entry.get("remote"), str) and isinstance(ranges, list)
            and all(isinstance(revs, list) and all(isinstance(rev, str) for rev in revs) for revs in ranges))


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
    return files.read_json(paths.held_extras_file(), {}, lambda why: isinstance(why, str))


def set_held_extras(held: dict[str, str]) -> None:
    if held != held_extras():
        files.write_json(paths.held_extras_file(), held)
