"""`gitend review`: decide on held notes and pushes at a terminal, or report them; with
--pre-push, the dotfile repo's git pre-push hook."""
from __future__ import annotations

import os
import re
import sys
from typing import BinaryIO

from gitend import approvals, config, jobs
from gitend.git import Repo
from gitend.output import ask, paint, safe

# A WIP branch carries the work tree as it is: there is no copy to redact.
WIP_CHOICES = ("a WIP branch cannot be redacted: add the file to .gitignore or delete it (the next snapshot "
               "leaves it out, and the held one is never pushed), or approve it if it is not a secret")


def report(items: list[jobs.Item]) -> list[str]:
    lines = []
    for item in items:
        lines.append(f"held: {item.title}")
        for finding, context in zip(item.findings, item.contexts):
            lines.append(f"  {finding.path}:{finding.line} {finding.rule} ({finding.description}) {finding.masked}")
            lines += [f"    {row}" for row in context]
        if item.kind == "wip":
            lines.append(f"  {WIP_CHOICES}")
    return [safe(line) for line in lines]


def interactive() -> int:
    """`gitend review`: decide on a terminal; without one, print what is held (exit 1 if any)."""
    cfg = config.load(None)
    items = jobs.held_items(cfg)
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
    still = jobs.held_items(cfg) if released else items
    if released:
        jobs.run_now(progress=lambda line: print(safe(line), flush=True))
        still = jobs.held_items(cfg)
    return 1 if still else 0


def _decide(item: jobs.Item) -> bool:
    """Ask about each finding of one item; True when it was released."""
    print(f"\n{paint(safe(item.title), 'bold')}")
    for line in map(safe, item.diff.splitlines()):
        style = "green" if line.startswith("+") and not line.startswith("+++") else (
            "red" if line.startswith("-") and not line.startswith("---") else None)
        print(paint(line, style) if style else line)
    if item.kind == "wip":
        print(WIP_CHOICES)
    choices = "[a]pprove [r]edact [h]old [q]uit >" if item.kind == "notes" else "[a]pprove [h]old [q]uit >"
    answers = []
    for finding, context in zip(item.findings, item.contexts):
        print(f"\n{paint(finding.rule, 'red')} ({finding.description}) in {safe(finding.path)}:{finding.line}")
        print(safe("\n".join(context)))
        while True:
            reply = ask(f"{choices} ")
            answer = "q" if reply is None else reply[:1]
            if answer in ("a", "h", "q") or (answer == "r" and item.kind == "notes"):
                break
            print("approve: not a secret, remember that (a hash of it, kept on this machine); "
                  "redact: push a copy with [REDACTED:<rule>] (your note stays as it is); hold: decide later")
        if answer == "q":
            return False
        answers.append(answer)
    approvals.approve(f for f, answer in zip(item.findings, answers) if answer == "a")
    if "h" in answers:
        print("kept holding it")
        return False
    if item.kind == "blocked":
        approvals.set_blocked(item.repo_root, None)
        print("approved: push again")
        return False
    jobs.release(item.jobs, redact="r" in answers)
    return True


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
    found = [f for revs in revs_per_ref
             for f in approvals.unapproved(approvals.outgoing_findings(repo, revs), cfg.review)]
    if not found:
        approvals.set_blocked(str(repo.root), None)
        return 0
    approvals.set_blocked(str(repo.root), {"remote": remote, "url": url, "ranges": revs_per_ref})
    print(f"gitend: push blocked: {len(found)} possible secret(s) in the commits being pushed", file=sys.stderr)
    for f in found[:5]:
        print(safe(f"  {f.path}:{f.line} {f.rule} {f.masked}: {f.excerpt.strip()}"), file=sys.stderr)
    print("  Remove it and amend the commit; or, if it is not a secret, approve it with `gitend review` "
          "and push again (git push --no-verify skips this check)", file=sys.stderr)
    return 1
