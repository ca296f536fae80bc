"""The secret review, end to end: nothing with a finding leaves the machine unless approved."""
from __future__ import annotations

import base64
import json
import random
from pathlib import Path

from testing.machine import Machine, project, remote_file
from testing.repo import commit, git, gitend, pre_push, write
from testing.terminal import converse

FOLDER = "claude/memory/github.com+someone+project"
TOKEN = "ghp_R8x2Kq9ZtLm4Vb7Nc1Hd5Jf3Gs6Wp0Ya2Eu8"  # fake, fails GitHub's checksum
NOTE = f"# Deploying\nThe CI uses the token {TOKEN} for releases.\nAsk before rotating it.\n"
KEY_BODY = base64.b64encode(random.Random(7).randbytes(400)).decode()  # fake: random bytes
KEY_LINES = [KEY_BODY[i:i + 70] for i in range(0, len(KEY_BODY), 70)]
KEY = "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", *KEY_LINES, "-----END OPENSSH PRIVATE KEY-----"])
KEY_NOTE = f"# Build box\nDeploy key:\n{KEY}\nThe CI uses the token {TOKEN} for releases.\n"
KEY_NOTE_REDACTED = ("# Build box\nDeploy key:\n[REDACTED:private-key]\n"
                     "The CI uses the token [REDACTED:github-token] for releases.\n")


def everything_pushed(remote: Path) -> str:
    return git(remote, "log", "-p", "--all")


def holds_a_secret(text: str) -> bool:
    return TOKEN in text or any(line in text for line in KEY_LINES)


def held_session(laptop: Machine, proj: Path) -> Path:
    note = laptop.note(proj, "deploy.md", NOTE)
    laptop.note(proj, "clean.md", "nothing secret here\n")
    laptop.sync(proj)
    return note


def test_a_note_with_a_key_is_held_and_never_reaches_the_remote(laptop: Machine, remote: Path, proj: Path) -> None:
    held_session(laptop, proj)
    assert TOKEN not in everything_pushed(remote)
    assert TOKEN not in git(laptop.dots, "log", "-p", "--all")  # not even committed locally
    assert not (laptop.dots / FOLDER / "deploy.md").exists()
    report = laptop.status()
    assert len(report["held"]) == 1 and "github-token" in report["held"][0]["held"]
    text = laptop.gitend("status").stdout
    assert "held" in text and "gitend review" in text and TOKEN not in text
    # Held is held: another worker run does not retry it.
    assert laptop.gitend("push").returncode == 0
    assert TOKEN not in everything_pushed(remote) and len(laptop.status()["held"]) == 1

    proc = laptop.gitend("review")  # no terminal: a report, exit 1
    assert proc.returncode == 1
    assert "deploy.md:2 github-token" in proc.stdout and "ghp_…u8" in proc.stdout
    assert TOKEN not in proc.stdout + proc.stderr
    state = "".join(p.read_text(errors="replace") for p in laptop.state.rglob("*") if p.is_file())
    assert TOKEN not in state  # neither the queue, the log nor the approvals hold the secret


def test_review_approve_releases_it(laptop: Machine, remote: Path, proj: Path) -> None:
    held_session(laptop, proj)
    code, shown = converse(["review"], ["a"], laptop.env, cwd=str(proj))
    assert code == 0, shown
    assert "ghp_…u8" in shown and TOKEN not in shown
    assert "+The CI uses the token" in shown  # the diff to be pushed
    assert remote_file(remote, f"{FOLDER}/deploy.md") == NOTE
    assert laptop.status()["held"] == []
    approvals = json.loads((laptop.state / "approvals.json").read_text())
    assert len(approvals) == 1 and TOKEN not in approvals[0]
    # Remembered: the same secret in a later edit is not held again.
    laptop.note(proj, "deploy.md", NOTE + "Still valid.\n")
    laptop.sync(proj)
    assert remote_file(remote, f"{FOLDER}/deploy.md") == NOTE + "Still valid.\n"


def test_review_redact_pushes_a_redacted_copy_and_leaves_the_note(laptop: Machine, remote: Path, proj: Path) -> None:
    note = held_session(laptop, proj)
    code, shown = converse(["review"], ["r"], laptop.env, cwd=str(proj))
    assert code == 0, shown
    pushed = remote_file(remote, f"{FOLDER}/deploy.md")
    assert pushed == NOTE.replace(TOKEN, "[REDACTED:github-token]")
    assert note.read_text() == NOTE
    assert TOKEN not in everything_pushed(remote)


def test_review_redact_replaces_every_secret_after_a_key_block(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.note(proj, "box.md", KEY_NOTE)
    laptop.sync(proj)
    assert len(laptop.status()["held"]) == 1
    code, shown = converse(["review"], ["r", "r"], laptop.env, cwd=str(proj))
    assert code == 0, shown
    assert "+-----BEGIN OPENSSH PRIVATE KEY-----…" in shown and "ghp_…u8" in shown and not holds_a_secret(shown)
    assert not any(f"{line[:4]}…" in shown for line in KEY_LINES)  # not even a key line's masked ends
    assert remote_file(remote, f"{FOLDER}/box.md") == KEY_NOTE_REDACTED
    assert not holds_a_secret(everything_pushed(remote))
    assert not holds_a_secret(git(laptop.dots, "log", "-p", "--all"))  # nor committed locally
    assert laptop.status()["held"] == []
    (last,) = [r for r in laptop.status()["last"] if r["kind"] == "memory"]
    assert last["ok"] and "2 secret(s) redacted" in last["summary"], last


def test_on_finding_redact_replaces_every_secret_after_a_key_block(laptop: Machine, remote: Path,
                                                                   proj: Path) -> None:
    laptop.configure(remote, review={"on_finding": "redact"})
    laptop.note(proj, "box.md", KEY_NOTE)
    laptop.sync(proj)
    assert laptop.status()["held"] == []
    assert remote_file(remote, f"{FOLDER}/box.md") == KEY_NOTE_REDACTED
    assert not holds_a_secret(everything_pushed(remote) + git(laptop.dots, "log", "-p", "--all"))
    (last,) = [r for r in laptop.status()["last"] if r["kind"] == "memory"]
    assert "2 secret(s) redacted" in last["summary"], last


def test_review_hold_keeps_it_held(laptop: Machine, remote: Path, proj: Path) -> None:
    held_session(laptop, proj)
    code, shown = converse(["review"], ["h"], laptop.env, cwd=str(proj))
    assert code == 1 and "kept holding it" in shown
    assert len(laptop.status()["held"]) == 1 and TOKEN not in everything_pushed(remote)


def test_other_projects_keep_syncing_while_one_is_held(laptop: Machine, remote: Path, proj: Path, tmp_path: Path) -> None:
    other = project(tmp_path / "other", origin="https://github.com/someone/other.git")
    laptop.note(other, "ok.md", "fine\n")
    laptop.end_session(other)
    held_session(laptop, proj)
    laptop.note(other, "ok.md", "fine, edited\n")
    laptop.sync(other)
    assert remote_file(remote, "claude/memory/github.com+someone+other/ok.md") == "fine, edited\n"
    assert TOKEN not in everything_pushed(remote)
    assert len(laptop.status()["held"]) == 1


def test_fixed_note_releases_the_hold_by_itself(laptop: Machine, remote: Path, proj: Path) -> None:
    held_session(laptop, proj)
    laptop.note(proj, "deploy.md", "# Deploying\nThe CI token is in the vault.\n")
    assert laptop.gitend("review").returncode == 0  # nothing held any more: released
    assert laptop.gitend("push").returncode == 0
    assert remote_file(remote, f"{FOLDER}/deploy.md") == "# Deploying\nThe CI token is in the vault.\n"


def test_outgoing_commits_are_scanned_again_before_the_push(laptop: Machine, remote: Path, proj: Path) -> None:
    laptop.note(proj, "deploy.md", NOTE)
    laptop.sync(proj, reason="clear")
    code, _ = converse(["review"], ["a"], laptop.env, cwd=str(proj))  # approved: committed locally
    assert code == 0
    assert TOKEN in git(laptop.dots, "log", "-p") and TOKEN not in everything_pushed(remote)
    (laptop.state / "approvals.json").unlink()  # the approval is withdrawn before the push
    laptop.sync(proj)
    assert TOKEN not in everything_pushed(remote)
    held = laptop.status()["held"]
    assert len(held) == 1 and "the commits to push" in held[0]["held"]
    # The diff shows what the commit really holds: the token, masked, not a redaction it lacks.
    code, shown = converse(["review"], ["h"], laptop.env, cwd=str(proj))
    assert code == 1 and "+The CI uses the token ghp_…u8 for releases." in shown
    assert "[REDACTED:" not in shown and TOKEN not in shown


def test_push_protection_refusal_is_held_not_retried(laptop: Machine, remote: Path, proj: Path) -> None:
    write(remote / "hooks" / "pre-receive", "#!/bin/sh\necho 'error: GH013: Repository rule violations found "
          "for refs/heads/main.' >&2\necho '- Push cannot contain secrets' >&2\nexit 1\n", mode=0o755)
    laptop.note(proj, "a.md", "harmless\n")
    laptop.sync(proj)
    held = laptop.status()["held"]
    assert len(held) == 1 and "push protection" in held[0]["held"]
    assert laptop.status()["failed"] == []


def test_pre_push_mode_reads_git_lines(laptop: Machine, remote: Path) -> None:
    write(laptop.dots / "notes.txt", f"token {TOKEN}\n")
    git(laptop.dots, "add", "notes.txt")
    git(laptop.dots, "commit", "-q", "-m", "a hand-made commit")
    head = git(laptop.dots, "rev-parse", "HEAD").strip()
    base = git(laptop.dots, "rev-parse", "HEAD~1").strip()
    zero = "0" * 40

    code, err = pre_push(laptop.dots, remote, f"refs/heads/main {head} refs/heads/main {base}\n")
    assert code == 1 and "notes.txt:1 github-token" in err and TOKEN not in err
    code, err = pre_push(laptop.dots, remote, f"refs/heads/main {head} refs/heads/new {zero}\n")  # new branch
    assert code == 1
    deletion = f"(delete) {zero} refs/heads/old {base}\n"
    assert pre_push(laptop.dots, remote, deletion)[0] == 0  # a deletion adds nothing
    assert pre_push(laptop.dots, remote, "")[0] == 0  # nothing pushed
    assert pre_push(laptop.dots, remote, f"refs/heads/main {base} refs/heads/main {base}\n")[0] == 0
    code, _ = pre_push(laptop.dots, remote,
                       f"refs/heads/x {base} refs/heads/x {zero}\nrefs/heads/main {head} refs/heads/main {base}\n")
    assert code == 1  # the second ref carries it


def test_pre_push_scans_added_lines_that_look_like_diff_headers(laptop: Machine, remote: Path) -> None:
    base = git(laptop.dots, "rev-parse", "HEAD").strip()
    # Shown in the patch as `+++ deploy…` and `+++ b/…`: still content, not file headers.
    head = commit(laptop.dots, {"notes.txt": f"intro\n++ deploy token {TOKEN}\n++ b/fake/header\nsk {TOKEN}\n"})
    code, err = pre_push(laptop.dots, remote, f"refs/heads/main {head} refs/heads/main {base}\n")
    assert code == 1, err
    assert "notes.txt:2 github-token" in err and "notes.txt:4 github-token" in err and TOKEN not in err


def test_pre_push_scans_what_a_merge_resolution_adds(laptop: Machine, remote: Path) -> None:
    dots = laptop.dots
    base = commit(dots, {"notes.txt": "deploy: manual\n"})
    git(dots, "push", "-q", "origin", "main")
    git(dots, "checkout", "-q", "-b", "side")
    commit(dots, {"notes.txt": "deploy: by CI\n"})
    git(dots, "checkout", "-q", "main")
    commit(dots, {"notes.txt": "deploy: by hand\n"})
    git(dots, "merge", "-q", "side", check=False)  # a conflict
    write(dots / "notes.txt", f"deploy: by CI\nwith token {TOKEN}\n")  # the secret comes in with the resolution
    git(dots, "commit", "-q", "-a", "--no-edit")
    head = git(dots, "rev-parse", "HEAD").strip()
    code, err = pre_push(dots, remote, f"refs/heads/main {head} refs/heads/main {base}\n")
    assert code == 1, err
    assert f"{head[:10]}:notes.txt:2 github-token" in err and TOKEN not in err


def test_pre_push_merge_does_not_rescan_what_the_remote_already_has(laptop: Machine, remote: Path,
                                                                      tmp_path: Path) -> None:
    other = tmp_path / "other"  # another clone pushes a secret (approved on its machine)
    git(tmp_path, "clone", "-q", str(remote), str(other))
    theirs = commit(other, {"theirs.txt": f"token {TOKEN}\n"})
    git(other, "push", "-q", "origin", "main")
    commit(laptop.dots, {"mine.txt": "nothing secret\n"})
    git(laptop.dots, "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    head = git(laptop.dots, "rev-parse", "HEAD").strip()
    assert len(git(laptop.dots, "rev-list", "--parents", "-n1", head).split()) == 3  # a merge
    code, err = pre_push(laptop.dots, remote, f"refs/heads/main {head} refs/heads/main {theirs}\n")
    assert code == 0, err  # the merge brings the token in from the remote's side: nothing new


def test_scan_command(tmp_path: Path) -> None:
    write(tmp_path / "notes" / "a.md", f"line one\ntoken = {TOKEN}\n")
    write(tmp_path / "notes" / "b.md", "nothing to see\n")
    proc = gitend("scan", str(tmp_path / "notes"))
    assert proc.returncode == 1
    assert "a.md:2:9: github-token ghp_…u8" in proc.stdout and TOKEN not in proc.stdout
    proc = gitend("scan", "--json", str(tmp_path / "notes" / "a.md"))
    found = json.loads(proc.stdout)
    assert proc.returncode == 1 and found[0]["rule"] == "github-token" and found[0]["line"] == 2
    assert TOKEN not in proc.stdout
    clean = gitend("scan", str(tmp_path / "notes" / "b.md"))
    assert clean.returncode == 0 and "no secrets found" in clean.stdout
    missing = gitend("scan", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
