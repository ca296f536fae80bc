"""The secret review: nothing with an unapproved finding is committed to the dotfile repo or
pushed. Approvals are remembered locally as keyed hashes of the secret, never the secret."""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gitend import config, paths, queue
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.output import paint
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
    """`text` with every copy of these findings' secrets replaced by [REDACTED:<rule>] (others
    left alone). Longest first, so a key block goes whole and a secret inside another goes with it."""
    for f in sorted(findings, key=lambda f: -len(f.secret)):
        text = text.replace(f.secret, f"[REDACTED:{f.rule}]")
    return text


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
        for header, path in zip(raw[0::2], raw[1::2]):
            fields = header.decode().split()
            mode, sha = fields[len(fields) // 2 - 1], fields[-2]  # the result's mode and blob
            if mode.startswith("10") or mode == "120000":
                blobs.setdefault(sha, f"{commit[:10]}:{os.fsdecode(path)}")
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


def check_outgoing(repo: Repo, revs: list[str], settings: config.Review) -> None:
    """Raise Held when what `revs` would push has an unapproved finding."""
    found = unapproved(outgoing_findings(repo, revs), settings)
    if found:
        raise Held(found, "the commits to push")


# -- what is held, for people ----------------------------------------------------------------


@dataclass
class Item:
    """One thing waiting for a decision: a project's notes, a push, or a blocked manual push."""

    title: str
    kind: str  # "notes": redactable copies; "push" and "blocked": commits, approve or hold only
    diff: str
    findings: list[Finding]  # re-found now, so the secrets themselves are never stored
    contexts: list[list[str]]  # a few masked lines around each finding
    jobs: list[queue.Job] = field(default_factory=list)
    repo_root: str = ""


def _context(text: str, finding: Finding, around: int = 2) -> list[str]:
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


def _blocked_file() -> Path:
    return paths.state_dir() / "blocked.json"


def _blocked() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(_blocked_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _set_blocked(root: str, entry: dict[str, Any] | None) -> None:
    blocked = _blocked()
    if entry is None and root not in blocked:
        return
    if entry is None:
        del blocked[root]
    else:
        blocked[root] = entry
    queue.write_atomic(_blocked_file(), blocked)


def held_items(cfg: config.Config) -> list[Item]:
    """Everything held, inspected afresh; a hold whose finding has gone away is released."""
    from gitend import dotfiles, worker

    items = []
    groups: dict[tuple[str, str, str], list[queue.Job]] = {}
    for job in queue.load():
        if job.held:
            stage = job.data.get("held_at", "notes")
            groups.setdefault((job.target, stage, job.data.get("project_root", "") if stage == "notes" else ""),
                              []).append(job)
    for (target, stage, _project), jobs in groups.items():
        repo, branch = dotfiles.open_repo(target)
        if stage == "notes":
            work = worker.job_pending(repo, jobs[-1], cfg)
            if work is None or not work.findings:
                release(jobs)
                continue
            contexts = [_context(work.texts[f.path], f) for f in work.findings]
            items.append(Item(f"memory notes of {work.key} -> {repo.root}", "notes", mask(work.diff(repo)),
                              work.findings, contexts, jobs, str(repo.root)))
        else:
            revs = dotfiles.outgoing(repo, branch, cfg.memory.remote)
            item = _commits_item(repo, [revs], f"push of {repo.root} to {cfg.memory.remote}", "push", cfg)
            if item is None:
                release(jobs)
                continue
            item.jobs = jobs
            items.append(item)
    for root, entry in _blocked().items():
        try:
            repo = Repo.find(root)
        except GitendError:
            _set_blocked(root, None)
            continue
        item = _commits_item(repo, entry["ranges"], f"your push of {root} to {entry['remote']} (pre-push hook)",
                             "blocked", cfg)
        if item is None:
            _set_blocked(root, None)
        else:
            items.append(item)
    return items


def _commits_item(repo: Repo, ranges: list[list[str]], title: str, kind: str, cfg: config.Config) -> Item | None:
    """The findings in commit ranges (rev-list arguments, one list per pushed ref)."""
    found = [f for revs in ranges for f in unapproved(outgoing_findings(repo, revs), cfg.review)]
    if not found:
        return None
    diff = "\n".join(repo.text("log", "-p", "--cc", "--no-color", "--no-ext-diff", "--format=commit %H%n%s%n",
                               *revs, "--") for revs in ranges)
    contexts = []
    for f in found:
        commit, _, path = f.path.partition(":")
        text = repo.git("show", f"{commit}:{path}", check=False).decode("utf-8", "replace") if path else ""
        contexts.append(_context(text, f) if text else [f"> {f.excerpt}"])
    return Item(title, kind, mask(diff), found, contexts, repo_root=str(repo.root))


def release(jobs: list[queue.Job], *, redact: bool = False) -> None:
    for job in jobs:
        job.held = None
        job.next_try = 0.0
        job.data.pop("findings", None)
        if redact:
            job.data["redact"] = True
        queue.save(job)


def report(items: list[Item]) -> list[str]:
    lines = []
    for item in items:
        lines.append(f"held: {item.title}")
        for finding, context in zip(item.findings, item.contexts):
            lines.append(f"  {finding.path}:{finding.line} {finding.rule} ({finding.description}) {finding.masked}")
            lines += [f"    {row}" for row in context]
    return lines


def interactive() -> int:
    """`gitend review`: decide on a terminal; without one, print what is held (exit 1 if any)."""
    cfg = config.load(None)
    items = held_items(cfg)
    if not items:
        print("nothing is held: no memory notes or pushes are waiting for review")
        return 0
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("\n".join(report(items)))
        print("run `gitend review` on a terminal to approve, redact or keep holding")
        return 1
    released = False
    for item in items:
        released |= _decide(item)
    still = held_items(cfg) if released else items
    if released:
        from gitend import worker

        worker.run_now(progress=lambda line: print(line, flush=True))
        still = held_items(cfg)
    return 1 if still else 0


def _decide(item: Item) -> bool:
    """Ask about each finding of one item; True when it was released."""
    print(f"\n{paint(item.title, 'bold')}")
    for line in item.diff.splitlines():
        style = "green" if line.startswith("+") and not line.startswith("+++") else (
            "red" if line.startswith("-") and not line.startswith("---") else None)
        print(paint(line, style) if style else line)
    choices = "[a]pprove [r]edact [h]old [q]uit >" if item.kind == "notes" else "[a]pprove [h]old [q]uit >"
    answers = []
    for finding, context in zip(item.findings, item.contexts):
        print(f"\n{paint(finding.rule, 'red')} ({finding.description}) in {finding.path}:{finding.line}")
        print("\n".join(context))
        while True:
            answer = _ask(f"{choices} ")
            if answer in ("a", "h", "q") or answer == "r" and item.kind == "notes":
                break
            print("approve: not a secret, remember that (a hash of it, kept on this machine); "
                  "redact: push a copy with [REDACTED:<rule>] (your note stays as it is); hold: decide later")
        if answer == "q":
            return False
        answers.append(answer)
    approve(f for f, answer in zip(item.findings, answers) if answer == "a")
    if "h" in answers:
        print("kept holding it")
        return False
    if item.kind == "blocked":
        _set_blocked(item.repo_root, None)
        print("approved: push again")
        return False
    release(item.jobs, redact="r" in answers)
    return True


def _ask(question: str) -> str:
    try:
        return input(question).strip().lower()[:1]
    except EOFError:
        return "q"


# -- the dotfile repo's git pre-push hook --------------------------------------------------


def pre_push(remote: str, url: str, stdin: BinaryIO) -> int:
    """Block a push whose new commits add an unapproved secret (git's pre-push interface)."""
    repo = Repo.find(os.getcwd())
    cfg = config.load(None)
    zero = re.compile(r"0+")
    revs_per_ref = []
    for line in stdin.read().decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) != 4 or zero.fullmatch(fields[1]):
            continue  # a deletion pushes no content
        local, remote_sha = fields[1], fields[3]
        if zero.fullmatch(remote_sha) or not repo.resolve(remote_sha):
            revs_per_ref.append([local, "--not", f"--remotes={remote}"])  # new branch: what the remote lacks
        else:
            revs_per_ref.append([local, f"^{remote_sha}"])
    found = [f for revs in revs_per_ref for f in unapproved(outgoing_findings(repo, revs), cfg.review)]
    if not found:
        _set_blocked(str(repo.root), None)
        return 0
    _set_blocked(str(repo.root), {"remote": remote, "url": url, "ranges": revs_per_ref})
    print(f"gitend: push blocked: {len(found)} possible secret(s) in the commits being pushed", file=sys.stderr)
    for f in found[:5]:
        print(f"  {f.path}:{f.line} {f.rule} {f.masked}: {f.excerpt.strip()}", file=sys.stderr)
    print("  Remove it and amend the commit; or, if it is not a secret, approve it with `gitend review` "
          "and push again (git push --no-verify skips this check)", file=sys.stderr)
    return 1
