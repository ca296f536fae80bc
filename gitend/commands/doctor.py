"""`gitend doctor`: check the installation and say how to fix each problem found."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

from gitend import config, dotfiles, git, installed, paths, queue
from gitend.errors import GitendError
from gitend.git import GitError, GitTimeout, Repo
from gitend.output import paint, safe

BUDGET_VAR = "CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS"
NEEDED_MS = 1500  # Claude Code's default budget, which gitend's foreground save is made to fit
MIN_GIT = (2, 38)  # merge-tree --write-tree, used to predict restore conflicts
REMOTE_TIMEOUT_S = 10

Problem = tuple[str, str]  # (what is wrong, how to fix it)


def _git() -> Iterator[str | Problem]:
    try:
        version = git.run(["--version"], cwd=".").stdout.decode()
    except GitendError as exc:
        yield str(exc), "install git 2.38 or newer"
        return
    found = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if found < MIN_GIT:
        yield f"{version.strip()} is too old", "install git 2.38 or newer"
    else:
        yield version.strip()


def _python() -> Iterator[str | Problem]:
    yield f"python {sys.version.split()[0]} ({sys.executable})"


def _scanner() -> Iterator[str | Problem]:
    from gitend import secrets

    engines = secrets.engines()
    extra = f" + {engines[1]} (the gitend[betterleaks] extra)" if len(engines) > 1 else (
        "; optional second engine: pip install 'gitend[betterleaks]'")
    yield f"secret scanner: gitend's rules{extra}"


def _config() -> Iterator[str | Problem]:
    try:
        cfg = config.load(None)
    except GitendError as exc:
        yield str(exc), "fix or remove that file (`gitend install` writes a commented starter)"
        return
    yield f"config: {', '.join(cfg.sources) or 'built-in defaults (no config file)'}"
    try:
        repo = Repo.find(".")
    except GitendError:
        return
    try:
        config.load(repo.root)
    except GitendError as exc:
        yield str(exc), "fix that file; it may set only snapshot keys"


def _hook() -> Iterator[str | Problem]:
    try:
        record = installed.load_record()
    except GitendError:
        record = {}
        yield (f"{paths.install_record()}, gitend's install record, is unreadable or damaged",
               "remove it, then run `gitend install` again (uninstall needs it to undo exactly what install did)")
    path = installed.settings_path(record.get("settings"))
    try:
        data, _raw = installed.read_settings(path)
    except GitendError as exc:
        yield str(exc), "fix the file, then run `gitend install`"
        return
    session_end = (data.get("hooks") or {}).get("SessionEnd") if isinstance(data.get("hooks"), dict) else None
    session_end = session_end if isinstance(session_end, list) else []
    hooks = installed.gitend_hooks(session_end)  # gitend's own entry, or the user's per-reason ones
    if not hooks:
        yield f"no SessionEnd hook for gitend in {path}", "run `gitend install`"
        return
    ours = [id(hook) for hook in installed.our_entries(session_end)]  # the rest are the user's per-reason entries
    for command in dict.fromkeys(map(_program, hooks)):
        if not ((os.path.isabs(command) and os.access(command, os.X_OK)) or shutil.which(command)):
            mine = any(id(hook) in ours for hook in hooks if _program(hook) == command)
            yield (f"the hook runs `{command}`, which is not found",
                   "run `gitend install` again from this install" if mine else
                   "put gitend's full path in the `command` of your own gitend entries")
    untimed = [hook for hook in hooks if not isinstance(hook.get("timeout"), (int, float)) or hook["timeout"] < 2]
    if untimed:
        yield ("the hook has no timeout, so Claude Code cancels it after the shared 1.5 s budget",
               "run `gitend install` again (it sets a timeout of 10 s)" if all(id(h) in ours for h in untimed) else
               'add "timeout": 10 to each of your own gitend entries')
    missing = installed.uncovered_reasons(session_end)
    if missing:
        # Saving on some reasons only (clear, say) is a choice hooks-examples/ shows: say it, not a problem.
        yield (f"note: your gitend entries in {path} run for the matchers "
               f"{', '.join(installed.per_reason_matchers(session_end))} only, so a session ending with "
               f"{', '.join(missing)} is not saved; a matcher of \"*\" saves on every reason")
    timeout = hooks[0].get("timeout")
    if data.get("disableAllHooks"):
        yield f"disableAllHooks is true in {path}: no hook runs", "remove it, or set it to false"
    yield f"SessionEnd hook in {path} ({f'timeout {timeout} s' if timeout is not None else 'no timeout'})"
    yield from _defence(data, path, mine=bool(ours))
    yield from _sessionend_budget(data, path)


def _defence(data: dict[str, Any], path: object, mine: bool) -> Iterator[str | Problem]:
    """SessionStart (catch-up, notes, problems) and the PreToolUse tripwire: missing is a problem
    beside gitend's own SessionEnd entry, a note beside the user's hand-made per-reason ones."""
    def missing(what: str) -> str | Problem:
        return (what, "run `gitend install` again") if mine else \
            f"note: {what}; hooks-examples/settings-installed.json shows the entries"

    hooks = data["hooks"] if isinstance(data.get("hooks"), dict) else {}
    groups: dict[str, list[Any]] = {event: hooks[event] if isinstance(hooks.get(event), list) else []
                                    for event in ("SessionStart", "PreToolUse")}
    start = installed.ours_in(groups["SessionStart"], "SessionStart")
    if not start:
        yield missing(f"no SessionStart hook for gitend in {path}: a killed session is not caught up, notes do "
                      "not arrive at start and problems are not shown")
    elif any("if" in hook for hook in start):
        yield f"gitend's SessionStart entry in {path} has an `if`, so Claude Code never runs it", "remove the `if`"
    else:
        timeout = start[0].get("timeout")
        yield f"SessionStart hook in {path} ({f'timeout {timeout} s' if timeout is not None else 'no timeout'})"
    rules = {hook.get("if") for hook in installed.ours_in(groups["PreToolUse"], "PreToolUse")}
    lacking = [rule for rule in installed.TRIPWIRE_FILTERS if rule not in rules]
    if len(lacking) == len(installed.TRIPWIRE_FILTERS):
        yield missing(f"no PreToolUse tripwire for gitend in {path}: nothing is saved before `git reset --hard` "
                      "and the like")
    elif lacking:
        yield missing(f"the PreToolUse tripwire in {path} lacks the filters {', '.join(lacking)}")
    else:
        yield f"PreToolUse tripwire in {path} ({len(rules)} `if` filters)"


def _sessionend_budget(data: dict[str, Any], path: object) -> Iterator[str | Problem]:
    """CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS, when set, is the whole SessionEnd limit, whatever
    the entries' timeouts (research: claude-code-facts.md §1.5)."""
    env = data["env"] if isinstance(data.get("env"), dict) else {}
    for where, value in ((f"the env of {path}", env.get(BUDGET_VAR)), ("your environment", os.environ.get(BUDGET_VAR))):
        if value is None:
            continue
        try:
            budget_ms = float(value)
        except (TypeError, ValueError):
            yield f"{BUDGET_VAR}={value!r} in {where} is not a number of milliseconds", f"set it to {NEEDED_MS} or more"
            continue
        if budget_ms < NEEDED_MS:
            yield (f"{BUDGET_VAR}={value} in {where} gives all SessionEnd hooks {budget_ms / 1000:g} s: gitend "
                   f"hands most saves to the background worker, and below about {NEEDED_MS // 2} ms Claude Code may "
                   "cancel it before it can", f"raise it to {NEEDED_MS} or more, or unset it")


def _dotfiles() -> Iterator[str | Problem]:
    try:
        cfg = config.load(None)
    except GitendError:
        return  # already reported
    if not (cfg.memory.enabled and cfg.memory.repo):
        yield "memory sync is off (memory.repo is not set)"
        return
    try:
        repo, branch = dotfiles.open_repo(cfg.memory.repo)
    except GitendError as exc:
        yield str(exc), "fix the dotfile repo, or `gitend install --dotfiles DIR --remote URL`"
        return
    hook = installed.hooks_dir(repo)[0] / "pre-push"
    if not (installed.is_our_hook(hook) and os.access(hook, os.X_OK)):
        yield (f"{hook} is not gitend's pre-push hook, so pushes from the dotfile repo skip the secret review",
               f"run `gitend install --dotfiles {repo.root}` (a hook of yours there is kept and runs after it)")
    remote = cfg.memory.remote
    try:
        repo.git("ls-remote", "--heads", remote, timeout=REMOTE_TIMEOUT_S, env=repo.batch_ssh_env())
    except GitTimeout:
        yield (f"{remote} of {repo.root} did not answer in {REMOTE_TIMEOUT_S} s",
               "check the network; pushes wait in the queue meanwhile")
        return
    except GitError as exc:
        yield (f"{remote} of {repo.root} is not reachable: {exc}",
               "check the remote URL and your credentials (the worker never prompts: use ssh-agent "
               "or a credential helper)")
        return
    yield f"dotfile repo {repo.root} on {branch}, {remote} reachable"


def _queue() -> Iterator[str | Problem]:
    try:
        jobs = queue.load()
    except OSError as exc:
        yield f"cannot read the queue in {paths.queue_dir()}: {exc}", "check that folder's permissions"
        return
    held = [j for j in jobs if j.held]
    failed = [j for j in jobs if not j.held and j.last_error]
    if held:
        yield f"{len(held)} job(s) held by the secret review", "run `gitend review`"
    if failed:
        yield f"{len(failed)} job(s) failed: {failed[0].last_error}", "fix the cause, then run `gitend push`"
    state = paths.state_dir()
    if state.exists() and not os.access(state, os.W_OK):
        yield f"{state} is not writable", "fix its permissions: the hook keeps its queue and log there"
    if not held and not failed:
        yield f"queue: {len(jobs)} job(s) waiting, none failed or held; log: {paths.log_file()}"


CHECKS: list[Callable[[], Iterator[str | Problem]]] = [_git, _python, _scanner, _config, _hook, _dotfiles, _queue]


def _program(hook: dict[str, Any]) -> str:
    """The program a hook entry runs: `command` in exec form (with `args`), its first word in shell form."""
    return hook["command"] if isinstance(hook.get("args"), list) else shlex.split(hook["command"])[0]


def run_checks() -> list[str | Problem]:
    return [result for check in CHECKS for result in check()]


def run() -> int:
    results = run_checks()
    for result in results:
        if isinstance(result, tuple):
            print(f"{paint('problem', 'red')} {safe(result[0])}\n        {paint('fix:', 'bold')} {safe(result[1])}")
        else:
            print(f"{paint('ok', 'green')}      {safe(result)}")
    problems = sum(isinstance(r, tuple) for r in results)
    print(f"{problems} problem(s) found" if problems else "everything looks right")
    return 1 if problems else 0


