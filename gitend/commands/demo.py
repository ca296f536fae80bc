"""`gitend demo`: the whole flow end to end in a throw-away sandbox, narrated.

The sandbox has its own HOME, Claude folder, config and state, so nothing of the user's is
read or touched: a project with uncommitted work, the transcript of the Claude Code session
that made it (gitend/data/demo-transcript.jsonl), an auto-memory folder, and a dotfile repo
with a local bare remote.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from gitend import git, lock, memsync
from gitend.errors import GitendError
from gitend.output import paint

ORIGIN = "git@github.com:demo/shop.git"  # never contacted: it only names the project
SESSION = "3f1c9a52-7e04-4d1b-9c36-2a8f5e1d7b40"  # the bundled transcript's session
TRANSCRIPT_HOME = "/home/demo"  # the bundled transcript's HOME, replaced by the sandbox's
NOTE = ("---\nname: testing\ndescription: how this project runs its tests\ntype: project\n---\n"
        "Run the tests with `mix test`; the database must be up first (`docker compose up db`).\n")


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.project = self.home / "code" / "shop"
        self.remote = root / "dotfiles.git"
        self.dots = self.home / "dotfiles"
        self.env = {
            "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"), "CLAUDE_CONFIG_DIR": str(self.home / ".claude"),
            "GIT_CONFIG_GLOBAL": str(self.home / ".gitconfig"), "GIT_CONFIG_NOSYSTEM": "1",
            "GITEND_CONFIG": str(self.home / ".config" / "gitend" / "config.yaml"), "NO_COLOR": "1",
        }

    def git(self, cwd: Path, *args: str) -> str:
        return git.run(list(args), cwd=cwd, env=self.env).stdout.decode().rstrip("\n")

    def gitend(self, *args: str, cwd: Path, payload: dict[str, str] | None = None) -> tuple[float, str]:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "gitend", *args], cwd=cwd, capture_output=True, text=True,
                              input=json.dumps(payload) if payload else None,
                              env={**_clean_environ(), **self.env})
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            raise GitendError(f"`gitend {' '.join(args)}` failed in the demo: {proc.stderr.strip()}")
        return elapsed, proc.stdout + proc.stderr

    def end_session(self, reason: str) -> tuple[float, str]:
        transcript = self.home / ".claude" / "projects" / memsync.encode_project_dir(str(self.project))
        payload = {"session_id": SESSION, "transcript_path": str(transcript / f"{SESSION}.jsonl"),
                   "cwd": str(self.project), "hook_event_name": "SessionEnd", "reason": reason}
        return self.gitend("hook", "--strict", cwd=self.project, payload=payload)

    def remote_note(self) -> str | None:
        folder = memsync.project_folder("claude/memory", memsync.project_key(ORIGIN, self.project))
        proc = git.run(["show", f"main:{folder}/testing.md"], cwd=self.remote, env=self.env, check=False)
        return proc.stdout.decode() if proc.returncode == 0 else None

    def wait_for_worker(self, timeout: float = 60) -> None:
        worker_lock = self.home / ".local" / "state" / "gitend" / "worker.lock"
        queue = worker_lock.parent / "queue"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(queue.glob("*.json")) and not lock.held_elsewhere(worker_lock):
                return
            time.sleep(0.05)


def _clean_environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITEND_", "XDG_", "CLAUDE_"))}


def _step(number: int, text: str) -> None:
    print(f"\n{paint(f'{number}.', 'bold')} {paint(text, 'bold')}")


def _show(text: str) -> None:
    print("\n".join(f"   {line}" for line in text.rstrip("\n").split("\n")))


def _build(box: Sandbox) -> None:
    (box.home / ".config" / "gitend").mkdir(parents=True)
    (box.home / ".gitconfig").write_text("[user]\n\tname = Demo User\n\temail = demo@example.com\n"
                                         "[init]\n\tdefaultBranch = main\n")
    # The project, its remote (for the memory key), and uncommitted work of every kind.
    box.project.mkdir(parents=True)
    box.git(box.project, "init", "-q")
    (box.project / "lib").mkdir()
    (box.project / "lib" / "shop.ex").write_text("defmodule Shop do\n  def hello, do: :world\nend\n")
    (box.project / "README.md").write_text("# Shop\n")
    (box.project / "config.exs").write_text("import Config\n")
    box.git(box.project, "add", "-A")
    box.git(box.project, "commit", "-q", "-m", "Start the shop")
    box.git(box.project, "remote", "add", "origin", ORIGIN)
    (box.project / "lib" / "shop.ex").write_text("defmodule Shop do\n  def hello, do: :shop\nend\n")
    box.git(box.project, "add", "lib/shop.ex")
    (box.project / "README.md").write_text("# Shop\n\nStart it with `mix phx.server`.\n")
    (box.project / "config.exs").unlink()
    (box.project / "notes.txt").write_text("try the endpoint config next\n")
    # Claude Code's side: the transcript and the auto-memory folder.
    claude = box.home / ".claude" / "projects" / memsync.encode_project_dir(str(box.project))
    (claude / "memory").mkdir(parents=True)
    transcript = (resources.files("gitend") / "data" / "demo-transcript.jsonl").read_text(encoding="utf-8")
    for theirs, ours in ((memsync.encode_project_dir(f"{TRANSCRIPT_HOME}/code/shop"), claude.name),
                         (TRANSCRIPT_HOME, str(box.home))):
        transcript = transcript.replace(theirs, json.dumps(ours)[1:-1])
    (claude / f"{SESSION}.jsonl").write_text(transcript, encoding="utf-8")
    (claude / "memory" / "MEMORY.md").write_text("- [Testing](testing.md) - how this project runs its tests\n")
    (claude / "memory" / "testing.md").write_text(NOTE)
    # The dotfile repo and its remote.
    seed = box.root / "seed"
    seed.mkdir()
    box.git(seed, "init", "-q")
    (seed / "README.md").write_text("my dotfiles\n")
    box.git(seed, "add", "-A")
    box.git(seed, "commit", "-q", "-m", "dotfiles")
    box.git(box.root, "clone", "-q", "--bare", str(seed), str(box.remote))
    box.git(box.root, "clone", "-q", str(box.remote), str(box.dots))
    (box.home / ".config" / "gitend" / "config.yaml").write_text(f"memory:\n  repo: {json.dumps(str(box.dots))}\n")


def run(*, keep: bool) -> int:
    root = Path(tempfile.mkdtemp(prefix="gitend-demo-"))
    box = Sandbox(root)
    try:
        _story(box)
    finally:
        box.wait_for_worker()
        if keep:
            print(f"\nThe sandbox is kept in {root} (HOME={box.home}).")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _story(box: Sandbox) -> None:
    _step(1, f"A sandbox in {box.root}: its own HOME, Claude folder and dotfile repo; nothing of yours is used.")
    _build(box)
    _show(f"project {box.project}, with uncommitted work:\n" + box.git(box.project, "status", "--short"))
    _show("auto-memory notes: MEMORY.md, testing.md; the Claude Code transcript of the session that did the work")

    _step(2, "The session ends. Claude Code runs `gitend hook` with the SessionEnd JSON on stdin.")
    elapsed, output = box.end_session("prompt_input_exit")
    _show(f"{output.strip()}\nthe hook returned in {elapsed * 1000:.0f} ms (Claude Code allows 1.5 s)")

    _step(3, "The WIP commit on wip/main, with a message written from the transcript:")
    _show(box.git(box.project, "log", "-1", "--format=%h %s%n%n%b", "wip/main"))
    _show(f"your work tree is untouched:\n{box.git(box.project, 'status', '--short')}")

    _step(4, "Meanwhile a detached background worker commits the notes to the dotfile repo and pushes them:")
    started = time.monotonic()
    while box.remote_note() is None and time.monotonic() - started < 30:
        time.sleep(0.05)
    if box.remote_note() is None:
        raise GitendError("the note did not reach the remote in the demo; see `gitend status`")
    _show(f"testing.md arrived on the remote {time.monotonic() - started:.1f} s after the hook returned:\n"
          + box.git(box.remote, "log", "-1", "--stat", "--format=%s", "main"))

    _step(5, "Now `/clear`: the session ends with reason `clear`, which pushes nothing.")
    notes = box.home / ".claude" / "projects" / memsync.encode_project_dir(str(box.project)) / "memory"
    (notes / "testing.md").write_text(NOTE + "Seed data: `mix run priv/repo/seeds.exs`.\n")
    elapsed, _ = box.end_session("clear")
    box.wait_for_worker()
    pushed = "Seed data" in (box.remote_note() or "")
    _show(f"hook returned in {elapsed * 1000:.0f} ms; the edited note is committed in the dotfile repo "
          f"({box.git(box.dots, 'log', '-1', '--format=%s')}) and "
          f"{'WAS pushed (unexpected)' if pushed else 'not on the remote'}; the next ordinary session end pushes it")

    _step(6, "A restore: the work tree is wiped, and `gitend restore latest` brings it back exactly.")
    before = box.git(box.project, "status", "--short")
    box.git(box.project, "reset", "-q", "--hard")
    box.git(box.project, "clean", "-q", "-fd")
    _show("after git reset --hard && git clean -fd: " + (box.git(box.project, "status", "--short") or "clean"))
    _, output = box.gitend("restore", "latest", cwd=box.project)
    after = box.git(box.project, "status", "--short")
    _show(f"{output.strip()}\n{after}")
    if after != before:
        raise GitendError("the restore in the demo did not bring back the same state")
    print(f"\n{paint('Done:', 'green')} the work was saved, the note pushed in the background, `clear` pushed "
          "nothing, and the restore was exact.")
