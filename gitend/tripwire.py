"""Which Bash commands discard uncommitted work, and in which directory they run.

The PreToolUse hook snapshots the work tree before such a command. Claude Code's `if`
filters are broad on purpose (they must catch `git -C DIR`, `env git`, `bash -c '...'`,
`/usr/bin/git`): this is the exact check behind them. A command is read the way a shell
splits it (quotes, `&&`/`||`/`;`/`|` chains, subshells, `$(...)`), never run.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass

SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "\n", "(", ")", "$", ";;", "|&", "!", "{", "}"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
# Words that run the rest of the line as a command (`env git ...`, `sudo git ...`, `time git ...`),
# and shell keywords that may lead one (`if git ...; then`).
WRAPPERS = frozenset({"env", "command", "exec", "nohup", "time", "nice", "sudo", "builtin", "stdbuf", "timeout",
                      "if", "then", "else", "elif", "do", "while", "until"})
# Wrapper options that take a separate value: `env -u NAME`, `sudo -u USER`, `nice -n 5`.
WRAPPER_VALUE_OPTIONS = frozenset({"-u", "-g", "-n", "-C", "-s", "-k", "--unset", "--chdir", "--user", "--group",
                                   "--adjustment", "--signal", "--kill-after"})
# git's global options that take a separate value (`git -c k=v`, `git --git-dir X`).
GIT_VALUE_OPTIONS = frozenset({"-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--super-prefix",
                               "--config-env", "--list-cmds", "--attr-source"})
SHORTEN = 52  # "before: " and this fit the 60 characters of a Gitend-Reason trailer


@dataclass(frozen=True)
class Hit:
    """A destructive git command: what it is (shortened, one line) and where it runs."""

    command: str
    directory: str


def check(command: str, cwd: str, is_file: Callable[[str], bool] | None = None) -> list[Hit]:
    """The destructive git commands in a Bash command line, each with the directory it will run
    in (after `cd DIR &&`, `git -C DIR`, `--work-tree DIR`). `is_file(path)` settles
    `git checkout NAME`: a file there (its edits are discarded) or a branch (carried along)."""
    hits: list[Hit] = []
    _scan(command, cwd, is_file, hits, depth=0)
    unique: dict[tuple[str, str], Hit] = {}
    for hit in hits:
        unique.setdefault((hit.command, hit.directory), hit)
    return list(unique.values())


def shorten(text: str, width: int = SHORTEN) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _tokens(command: str) -> list[str]:
    lexer = shlex.shlex(command.replace("`", " ; "), posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # an unclosed quote: read it word by word rather than miss a command
        return command.replace("`", " ; ").replace(";", " ; ").replace("&&", " && ").split()


def _scan(command: str, cwd: str, is_file: Callable[[str], bool] | None, hits: list[Hit], depth: int) -> None:
    if depth > 4:  # bash -c "bash -c '...'" nested deeper than anyone writes
        return
    words: list[str] = []
    for token in [*_tokens(command), ";"]:
        if token not in SEPARATORS:
            words.append(token)
            continue
        cwd = _simple(_without_redirections(words), cwd, is_file, hits, depth)
        words = []


def _without_redirections(words: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word and set(word) <= set("<>&") and ("<" in word or ">" in word):
            skip = True  # the redirection's target follows
            if kept and kept[-1].isdigit():
                kept.pop()  # `2>&1`: the file descriptor number
        else:
            kept.append(word)
    return kept


def _simple(words: list[str], cwd: str, is_file: Callable[[str], bool] | None, hits: list[Hit],
            depth: int) -> str:
    """One simple command: note it if destructive; returns the directory the next one runs in."""
    words = _unwrapped(words)
    if not words:
        return cwd
    name = os.path.basename(words[0])
    if name in ("cd", "pushd"):
        target = next((w for w in words[1:] if not w.startswith("-")), "~")
        return _directory(cwd, target)
    if name in SHELLS:
        script = _shell_script(words[1:])
        if script is not None:
            _scan(script, cwd, is_file, hits, depth + 1)
        return cwd
    if name == "eval":
        _scan(" ".join(words[1:]), cwd, is_file, hits, depth + 1)
        return cwd
    if name == "git":
        where, args = _git_globals(words[1:], cwd)
        if args and _destroys(args, lambda path: is_file is not None and is_file(os.path.join(where, path))):
            hits.append(Hit(shorten(" ".join(["git", *args])), where))
    return cwd


def _unwrapped(words: list[str]) -> list[str]:
    """Without leading `VAR=value` assignments and wrappers such as `env`, `sudo`, `nohup`."""
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word and word.split("=", 1)[0].replace("_", "a").isalnum() and not word.startswith("="):
            i += 1
        elif os.path.basename(word) in WRAPPERS:
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 2 if words[i] in WRAPPER_VALUE_OPTIONS else 1
            if os.path.basename(word) == "timeout":
                i += 1  # the duration
        else:
            break
    return words[i:]


def _shell_script(args: list[str]) -> str | None:
    """The script of `bash -c SCRIPT` (also `-lc`, `-ec`, `-o pipefail -c`)."""
    for i, arg in enumerate(args):
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            return args[i + 1] if i + 1 < len(args) else None
        if not arg.startswith(("-", "+")) and (i == 0 or args[i - 1] not in ("-o", "+o", "-O", "+O")):
            return None  # `bash script.sh`: a file we do not read
    return None


def _directory(cwd: str, target: str) -> str:
    if target.startswith("~") or target.startswith("$HOME"):
        target = os.path.expanduser("~" + target.removeprefix("$HOME").removeprefix("~"))
    if "$" in target or target == "-":
        return cwd  # unknown until the shell runs it: the project's directory is the best guess
    return os.path.normpath(os.path.join(cwd, target))


def _git_globals(args: list[str], cwd: str) -> tuple[str, list[str]]:
    """Past git's own options (`-C DIR`, `-c k=v`, `--work-tree=DIR`, ...): the directory the
    command runs in, and the subcommand with its arguments."""
    where, work_tree = cwd, None
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg == "-C" and i + 1 < len(args):
            where = _directory(where, args[i + 1])
            i += 2
        elif arg.startswith("--work-tree="):
            work_tree = arg.split("=", 1)[1]
            i += 1
        elif arg in GIT_VALUE_OPTIONS and i + 1 < len(args):
            if arg == "--work-tree":
                work_tree = args[i + 1]
            i += 2
        else:
            i += 1
    if work_tree:
        where = _directory(where, work_tree)
    return where, args[i:]


def _flags(args: list[str]) -> set[str]:
    """Options before `--`, with combined short flags split: `-fdx` gives -f, -d, -x."""
    found = set()
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--"):
            found.add(arg.split("=", 1)[0])
        elif arg.startswith("-") and len(arg) > 1:
            found.update(f"-{letter}" for letter in arg[1:])
    return found


def _destroys(args: list[str], is_file: Callable[[str], bool]) -> bool:
    sub, rest = args[0], args[1:]
    flags = _flags(rest)
    if sub == "reset":
        return bool(flags & {"--hard", "--merge", "--keep"})
    if sub == "checkout":
        return _checkout_destroys(rest, flags, is_file)
    if sub == "restore":
        # --staged alone only unstages; the work tree is restored by default or with --worktree.
        return bool(flags & {"-W", "--worktree"}) or not flags & {"-S", "--staged"}
    if sub == "clean":
        return bool(flags & {"-f", "--force"}) and not flags & {"-n", "--dry-run"}
    if sub == "stash":
        action = next((a for a in rest if not a.startswith("-")), None)
        return action in ("drop", "clear", "pop")
    if sub == "switch":
        return bool(flags & {"-f", "--force", "--discard-changes"})
    if sub in ("rebase", "merge", "cherry-pick", "revert", "am"):
        return "--abort" in flags
    return False


def _checkout_destroys(rest: list[str], flags: set[str], is_file: Callable[[str], bool]) -> bool:
    if flags & {"-f", "--force", "--ours", "--theirs"}:
        return True
    if "--" in rest:
        return bool(rest[rest.index("--") + 1:])  # `git checkout [TREE] -- PATHS`
    if flags & {"-b", "-B", "--orphan"}:
        return False  # a new branch; the work tree is carried along
    names = [a for a in rest if not a.startswith("-")]
    # `git checkout .`, `git checkout HEAD file`: paths. `git checkout NAME`: a file there, or a branch.
    return "." in names or len(names) > 1 or any(is_file(n) for n in names)
