"""Command line: the parser, dispatch, and the one error handler with its exit codes.

Exit codes: 0 success; 1 an expected failure or a finding; 2 usage error. `gitend hook`
exits 0 whatever happens, unless --strict.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gitend import __version__, log, paths
from gitend.errors import GitendError
from gitend.output import error, safe

if TYPE_CHECKING:
    import argparse


def build_parser() -> argparse.ArgumentParser:
    import argparse  # not on the hook's path: every hook event pays for its start-up

    parser = argparse.ArgumentParser(
        prog="gitend",
        description="Save uncommitted work and Claude Code memory notes when a session ends.",
    )
    parser.add_argument("--version", action="version", version=f"gitend {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help)

    def repo_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-C", dest="directory", default=".", metavar="DIR",
                         help="the repository to work on (default: the current directory)")

    hook = command("hook", "every hook event gitend answers (SessionEnd, SessionStart, PreToolUse, Stop), "
                           "read as JSON on stdin")
    hook.add_argument("--strict", action="store_true", help="exit non-zero when anything went wrong")

    list_ = command("list", "list snapshots of the current branch, newest first")
    repo_option(list_)
    list_.add_argument("--all", action="store_true", help="every WIP branch, not only the current one")
    list_.add_argument("--json", action="store_true", help="machine-readable output")
    list_.add_argument("-n", dest="limit", type=_positive, metavar="N", help="only the newest N snapshots")

    show = command("show", "show one snapshot: message, metadata, changed files, diff stat")
    show.add_argument("snapshot", metavar="SNAPSHOT", help="a commit, latest, a session id, or wip/<branch>~N")
    repo_option(show)
    show.add_argument("--patch", "-p", action="store_true",
                      help="the full diff against its base: staged, unstaged and untracked apart")

    diff = command("diff", "what changed: a snapshot against the work tree (untracked files too), "
                           "or two snapshots; paths after --")
    diff.add_argument("snapshots", nargs="+", metavar="SNAPSHOT",
                      help="one snapshot (against the work tree) or two (the first against the second)")
    repo_option(diff)
    diff.add_argument("--stat", action="store_true", help="a diffstat instead of the patch")
    diff.add_argument("--name-only", action="store_true", help="only the names of the changed files")
    diff.set_defaults(paths=[])  # `-- PATH...`: only those files or folders
    diff.usage = "gitend diff SNAPSHOT [SNAPSHOT2] [-C DIR] [--stat] [--name-only] [-- PATH...]"

    prune = command("prune", "drop snapshots past the retention (config snapshot.keep_days, snapshot.keep); "
                             "what is kept stays restorable")
    repo_option(prune)
    prune.add_argument("--dry-run", action="store_true", help="say what would be dropped and change nothing")

    restore = command("restore", "bring a snapshot back: staged stays staged, unstaged unstaged, "
                                 "untracked untracked; refuses to overwrite local changes unless --force")
    restore.add_argument("snapshot", metavar="SNAPSHOT", help="a commit, latest, a session id, or wip/<branch>~N")
    repo_option(restore)
    restore.set_defaults(paths=[])  # `-- PATH...`: only those files or folders
    restore.usage = "gitend restore SNAPSHOT [-C DIR] [--dry-run] [--force] [--fetch] [-- PATH...]"
    restore.add_argument("--dry-run", action="store_true", help="print what would change and change nothing")
    restore.add_argument("--force", action="store_true",
                         help="save the current local changes as a snapshot first, then restore over them")
    restore.add_argument("--fetch", action="store_true",
                         help="fetch the WIP branches from the remote first (snapshot.push_remote, else origin)")

    status = command("status", "queued and failed background jobs, held memory pushes, last results")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--drop", metavar="ID", help="drop a queued, failed or held job (its id is in the status)")

    command("push", "run the queued jobs now, in the foreground, with progress")

    memory = command("memory", "memory notes in the dotfile repo")
    memory_commands = memory.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    pull = memory_commands.add_parser("pull", help="copy this project's notes from the dotfile repo into "
                                                   "Claude Code's memory folder (never over newer local notes)")
    repo_option(pull)

    review = command("review", "show memory changes waiting to be pushed and any findings; approve, redact or hold")
    review.add_argument("--pre-push", nargs=2, metavar=("REMOTE", "URL"),
                        help="run as the dotfile repo's git pre-push hook: read git's lines on stdin, "
                             "exit 1 to block a push with an unapproved finding")

    scan = command("scan", "scan files for secrets; exit 1 when anything is found")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are walked, .git skipped)")
    scan.add_argument("--json", action="store_true", help="machine-readable output")

    install = command("install", "add the SessionEnd, SessionStart and PreToolUse hooks to Claude Code's settings "
                                 "(merging, never clobbering), a starter config, and the dotfile repo's pre-push hook")
    install.add_argument("--settings", metavar="FILE", help="the settings file (default: "
                         "$CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json)")
    install.add_argument("--dotfiles", metavar="DIR", help="your dotfile repo's clone: sets memory.repo and "
                         "installs its pre-push hook")
    install.add_argument("--remote", metavar="URL", help="clone the dotfile repo from here when DIR does not exist")
    uninstall = command("uninstall", "remove exactly what `gitend install` added")
    uninstall.add_argument("--settings", metavar="FILE", help="the settings file install wrote to")

    demo = command("demo", "the whole flow end to end in a throw-away sandbox, narrated")
    demo.add_argument("--keep", action="store_true", help="keep the sandbox afterwards, to look around")
    command("doctor", "check the installation and say how to fix each problem found")
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["_worker"]:  # started by the hook, detached; not for people, so not in the usage
        from gitend import worker

        return worker.main()
    if argv and argv[0] == "hook" and set(argv[1:]) <= {"--strict"}:  # the hook's path, without argparse
        return _hook(strict="--strict" in argv)
    parser = build_parser()
    # Paths come after `--` (argparse would take them for more snapshot names).
    paths_given = "--" in argv
    before, after = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if paths_given else (argv, [])
    args = parser.parse_args(before)
    if paths_given:
        if not hasattr(args, "paths"):
            parser.error(f"`gitend {args.command or ''}` takes no paths after --")
        args.paths = after
    if args.command == "diff" and len(args.snapshots) > 2:
        parser.error(f"diff takes one or two snapshots, got {len(args.snapshots)}; put paths after --")
    if args.command == "install" and args.remote and not args.dotfiles:
        parser.error("install: --remote URL clones the dotfile repo given by --dotfiles DIR; add --dotfiles")
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "hook":
        return _hook(strict=args.strict)
    try:
        return _dispatch(args)
    except GitendError as exc:
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:
        log.record(args.command, f"unexpected error: {exc!r}", _traceback())
        error(f"unexpected error: {type(exc).__name__}: {exc} (details in {paths.log_file()})")
        return 1


def _traceback() -> str:
    import traceback  # only on the unexpected path

    return traceback.format_exc()


def _dispatch(args: argparse.Namespace) -> int:
    # Each command's module is imported when it runs: `gitend hook` pays for none of them.
    def progress(line: str) -> None:
        print(safe(line), flush=True)

    if args.command in ("list", "show", "diff"):
        from gitend.commands import browse

        if args.command == "show":
            return browse.show(args.directory, args.snapshot, patch=args.patch)
        if args.command == "diff":
            return browse.diff(args.directory, args.snapshots, args.paths, stat=args.stat, name_only=args.name_only)
        return browse.list_snapshots(args.directory, all_branches=args.all, as_json=args.json, limit=args.limit)
    if args.command == "prune":
        from gitend.commands import prune

        return prune.run(args.directory, dry_run=args.dry_run)
    if args.command == "restore":
        from gitend.commands import restore

        return restore.run(args.directory, args.snapshot, dry_run=args.dry_run, force=args.force, fetch=args.fetch,
                           paths=args.paths)
    if args.command == "status":
        from gitend.commands import status

        return status.drop(args.drop) if args.drop else status.run(as_json=args.json)
    if args.command == "push":
        from gitend import jobs

        return jobs.run_now(progress)
    if args.command == "memory":
        from gitend import memsync

        memsync.pull_project(args.directory, progress)
        return 0
    if args.command == "review":
        from gitend.commands import review

        if args.pre_push:
            return review.pre_push(args.pre_push[0], args.pre_push[1], sys.stdin.buffer)
        return review.interactive()
    if args.command == "scan":
        from gitend.commands import scan

        return scan.run(args.paths, as_json=args.json)
    if args.command in ("install", "uninstall"):
        from gitend.commands import install

        if args.command == "uninstall":
            lines = install.uninstall(settings=args.settings)
        else:
            lines = install.install(settings=args.settings, dotfiles=args.dotfiles, remote=args.remote)
        print("\n".join(lines))
        return 0
    if args.command == "demo":
        from gitend.commands import demo

        return demo.run(keep=args.keep)
    if args.command == "doctor":
        from gitend.commands import doctor

        return doctor.run()
    raise NotImplementedError(args.command)


def _hook(*, strict: bool) -> int:
    from gitend import hook

    try:
        outcome = hook.run(sys.stdin.buffer)  # Claude Code's SIGTERM/SIGHUP are handled in there
    except GitendError as exc:
        log.record("hook", str(exc))
        print(safe(f"gitend: {exc} (log: {paths.log_file()})"), file=sys.stderr)
        return 1 if strict else 0
    except BaseException as exc:
        log.record("hook", f"unexpected error: {exc!r}", _traceback())
        print(f"gitend: unexpected error {type(exc).__name__}; nothing lost, details in {paths.log_file()}",
              file=sys.stderr)
        return 1 if strict else 0
    if outcome.stdout is None:
        print(safe(f"gitend: {outcome.summary}"))  # for Claude Code's debug log
    elif outcome.stdout:
        print(outcome.stdout)  # JSON that Claude Code reads: nothing else may be on stdout
    if outcome.problems:
        # One line on stderr (Claude Code shows only the first); the rest is in the log.
        print(safe(f"gitend: {'; '.join(outcome.problems)} (log: {paths.log_file()})"), file=sys.stderr)
    return 1 if strict and outcome.problems else 0
