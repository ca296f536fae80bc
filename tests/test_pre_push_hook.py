"""The dotfile repo's pre-push hook scans what is really pushed, and is installed wherever
memory.repo points."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from testing.machine import Machine
from testing.repo import commit, git, gitend, pre_push, write

TOKEN = "ghp_R8x2Kq9ZtLm4Vb7Nc1Hd5Jf3Gs6Wp0Ya2Eu8"  # fake, fails GitHub's checksum
ZERO = "0" * 40


@pytest.mark.parametrize("files", [
    {"notes.txt": f"intro\x00\ntoken {TOKEN}\n".encode()},  # one NUL byte: still text
    {".gitattributes": b"*.txt -diff\n", "notes.txt": f"token {TOKEN}\n".encode()},  # no patch shown
    {".gitattributes": b"*.txt binary\n", "notes.txt": f"token {TOKEN}\n".encode()},
], ids=["nul-byte", "minus-diff", "binary-attribute"])
def test_12_5_pre_push_scans_the_blobs_whatever_their_attributes(laptop: Machine, remote: Path,
                                                                 files: dict[str, bytes]) -> None:
    base = git(laptop.dots, "rev-parse", "HEAD").strip()
    head = commit(laptop.dots, files)
    code, err = pre_push(laptop.dots, remote, f"refs/heads/main {head} refs/heads/main {base}\n")
    assert code == 1, err
    assert "notes.txt" in err and "github-token" in err and TOKEN not in err


def test_12_5_pre_push_scans_an_annotated_tags_message(laptop: Machine, remote: Path) -> None:
    git(laptop.dots, "push", "-q", "origin", "main")
    git(laptop.dots, "tag", "-a", "v1", "-m", f"release, built with {TOKEN}")
    tag = git(laptop.dots, "rev-parse", "v1").strip()
    code, err = pre_push(laptop.dots, remote, f"refs/tags/v1 {tag} refs/tags/v1 {ZERO}\n")
    assert code == 1, err
    assert "github-token" in err and TOKEN not in err


@pytest.mark.parametrize("kind", ["blob", "tree"])
def test_12_5_pre_push_scans_a_blob_or_tree_pushed_as_a_tag(laptop: Machine, remote: Path, kind: str) -> None:
    blob = git(laptop.dots, "hash-object", "-w", "--stdin", input=f"token {TOKEN}\n".encode()).strip()
    target = blob if kind == "blob" else git(
        laptop.dots, "mktree", input=f"100644 blob {blob}\tsecret.txt\n".encode()).strip()
    git(laptop.dots, "tag", "loose", target)
    code, err = pre_push(laptop.dots, remote, f"refs/tags/loose {target} refs/tags/loose {ZERO}\n")
    assert code == 1, err
    assert "github-token" in err and TOKEN not in err


def test_12_5_a_real_git_push_of_a_tagged_blob_is_blocked(laptop: Machine, remote: Path) -> None:
    write(laptop.home / ".config" / "gitend" / "config.yaml", "memory:\n  repo: null\n")  # as install edits it
    proc = gitend("install", "--dotfiles", str(laptop.dots), cwd=laptop.dots, env=laptop.env)
    assert proc.returncode == 0, proc.stderr
    blob = git(laptop.dots, "hash-object", "-w", "--stdin", input=f"token {TOKEN}\n".encode()).strip()
    git(laptop.dots, "tag", "loose", blob)
    proc = git(laptop.dots, "push", "origin", "refs/tags/loose", check=False)
    assert git(remote, "tag", "--list") == "", proc
    assert TOKEN not in git(remote, "cat-file", "--batch-all-objects", "--batch-check")


def test_12_6_install_without_dotfiles_puts_the_hook_into_the_configured_dotfile_repo(laptop: Machine) -> None:
    proc = gitend("install", cwd=laptop.home, env=laptop.env)
    assert proc.returncode == 0, proc.stderr
    hook = laptop.dots / ".git" / "hooks" / "pre-push"
    assert hook.is_file() and os.access(hook, os.X_OK) and "gitend" in hook.read_text()
    assert "pre-push" in proc.stdout
    assert "is not gitend's pre-push hook" not in gitend("doctor", cwd=laptop.home, env=laptop.env).stdout
    assert gitend("uninstall", cwd=laptop.home, env=laptop.env).returncode == 0
    assert not hook.exists()
