"""Command line: the parser, dispatch, and the one error handler with its exit codes.

Exit codes: 0 success; 1 an expected failure or a finding; 2 usage error. `gitend hook`
exits 0 whatever happens, unless --strict.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gitend import __version__, config, log, paths
from gitend.errors import GitendError
from gitend.output import error, paint

if TYPE_CHECKING:
    from gitend.git import Repo
    from gitend.snapshot import Snapshot


def build_parser() -> argparse.ArgumentParser:
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

    hook = command("hook", "the SessionEnd hook: read the hook JSON on stdin and save the work tree")
    hook.add_argument("--strict", action="store_true", help="exit non-zero when anything went wrong")

    list_ = command("list", "list snapshots of the current branch, newest first")
    repo_option(list_)
    list_.add_argument("--all", action="store_true", help="every WIP branch, not only the current one")
    list_.add_argument("--json", action="store_true", help="machine-readable output")

    show = command("show", "show one snapshot: message, metadata, changed files, diff stat")
    show.add_argument("snapshot", metavar="SNAPSHOT", help="a commit, latest, a session id, or wip/<branch>~N")
    repo_option(show)

    restore = command("restore", "bring a snapshot back: staged stays staged, unstaged unstaged, "
                                 "untracked untracked; refuses to overwrite local changes unless --force")
    restore.add_argument("snapshot", metavar="SNAPSHOT", help="a commit, latest, a session id, or wip/<branch>~N")
    repo_option(restore)
    restore.add_argument("--dry-run", action="store_true", help="print what would change and change nothing")
    restore.add_argument("--force", action="store_true",
                         help="save the current local changes as a snapshot first, then restore over them")
    restore.add_argument("--fetch", action="store_true",
                         help="fetch the WIP branches from the remote first (snapshot.push_remote, else origin)")

    status = command("status", "queued and failed background jobs, held memory pushes, last results")
    status.add_argument("--json", action="store_true", help="machine-readable output")

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

    install = command("install", "add the SessionEnd hook to Claude Code's settings (merging, never clobbering), "
                                 "a starter config, and the dotfile repo's pre-push hook")
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

    commands.add_parser("_worker")  # started by the hook, detached; not for people
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    if args.command == "list":
        return _list(args.directory, all_branches=args.all, as_json=args.json)
    if args.command == "show":
        return _show(args.directory, args.snapshot)
    if args.command == "restore":
        from gitend import restore

        return restore.run(args.directory, args.snapshot, dry_run=args.dry_run, force=args.force, fetch=args.fetch)
    if args.command == "status":
        from gitend import status

        report = status.collect()
        print(json.dumps(report, indent=2) if args.json else "\n".join(status.render(report)))
        return 0
    if args.command == "push":
        from gitend import worker

        return worker.run_now(progress=lambda line: print(line, flush=True))
    if args.command == "memory":
        from gitend import worker

        return worker.pull(args.directory, progress=lambda line: print(line, flush=True))
    if args.command == "review":
        from gitend import review

        if args.pre_push:
            return review.pre_push(args.pre_push[0], args.pre_push[1], sys.stdin.buffer)
        return review.interactive()
    if args.command == "scan":
        return _scan(args.paths, as_json=args.json)
    if args.command in ("install", "uninstall"):
        from gitend import install

        if args.command == "uninstall":
            lines = install.uninstall(settings=args.settings)
        else:
            lines = install.install(settings=args.settings, dotfiles=args.dotfiles, remote=args.remote)
        print("\n".join(lines))
        return 0
    if args.command == "demo":
        from gitend import demo

        return demo.run(keep=args.keep)
    if args.command == "doctor":
        from gitend import doctor

        return doctor.run()
    if args.command == "_worker":
        from gitend import worker

        return worker.main()
    raise NotImplementedError(args.command)


def _terminate(signum: int, _frame: object) -> None:
    # Turn Claude Code's cancellation into an exception, so temporary files are removed,
    # locks released and git children stopped with SIGTERM (git then drops its own locks).
    raise SystemExit(128 + signum)


def _hook(*, strict: bool) -> int:
    from gitend import hook

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        outcome = hook.run(sys.stdin.buffer)
    except GitendError as exc:
        log.record("hook", str(exc))
        print(f"gitend: {exc} (log: {paths.log_file()})", file=sys.stderr)
        return 1 if strict else 0
    except BaseException as exc:  # noqa: BLE001 - a hook must never fail the session end
        log.record("hook", f"unexpected error: {exc!r}", _traceback())
        print(f"gitend: unexpected error {type(exc).__name__}; nothing lost, details in {paths.log_file()}",
              file=sys.stderr)
        return 1 if strict else 0
    print(f"gitend: {outcome.summary}")
    if outcome.problems:
        # One line on stderr (Claude Code shows only the first); the rest is in the log.
        print(f"gitend: {'; '.join(outcome.problems)} (log: {paths.log_file()})", file=sys.stderr)
    return 1 if strict and outcome.problems else 0


def _open(directory: str) -> tuple[Repo, config.Config]:
    from gitend.git import Repo

    repo = Repo.find(directory)
    return repo, config.load(repo.root)


def _list(directory: str, *, all_branches: bool, as_json: bool) -> int:
    from gitend import snapshot

    repo, cfg = _open(directory)
    prefix = cfg.snapshot.branch_prefix
    branch = snapshot.branch_name(repo, repo.head().ref)
    # Local WIP branches first, so a snapshot also fetched is listed under its local name.
    refs = snapshot.all_refs(repo, prefix) if all_branches else snapshot.branch_refs(repo, prefix, branch)
    unique: dict[str, Snapshot] = {}
    for ref in refs:
        for snap in snapshot.chain(repo, ref):
            unique.setdefault(snap.commit.sha, snap)
    snaps = sorted(unique.values(), key=lambda s: (-s.commit.committer_time, s.ref, s.position))
    if as_json:
        print(json.dumps([_as_json(repo, snap) for snap in snaps], indent=2))
        return 0
    if not snaps:
        where = "any WIP branch" if all_branches else f"{prefix}{branch}"
        print(f"no snapshots on {where}" + ("" if all_branches else " (`gitend list --all` shows every branch)"))
        return 0
    width = max(len(s.name) for s in snaps)
    for snap in snaps:
        print(f"{paint(snap.commit.sha[:10], 'yellow')}  {snap.name:<{width}}  {snap.created[:16].replace('T', ' ')}"
              f"  {snap.reason:<17} {snap.subject}")
    return 0


def _as_json(repo: Repo, snap: Snapshot) -> dict[str, object]:
    from gitend import snapshot

    return {
        "commit": snap.commit.sha,
        "ref": snap.ref,
        "name": snap.name,
        "branch": snap.branch,
        "session_id": snap.session_id,
        "reason": snap.reason,
        "created": snap.created,
        "subject": snap.subject,
        "base": snap.base,
        "files": snapshot.changed_files(repo, snap),
    }


def _scan(targets: list[str], *, as_json: bool) -> int:
    import os

    from gitend import secrets

    for target in targets:
        if not os.path.exists(target):
            raise GitendError(f"{target} does not exist")
    try:
        findings = secrets.scan_paths(targets)
    except OSError as exc:
        raise GitendError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if as_json:
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        for f in findings:
            print(f"{f.path}:{f.line}:{f.column}: {paint(f.rule, 'red')} {f.masked}  {f.excerpt.strip()}")
        print(f"{len(findings)} possible secret(s) found" if findings else "no secrets found",
              file=sys.stderr if findings else sys.stdout)
    return 1 if findings else 0


def _show(directory: str, spec: str) -> int:
    from gitend import snapshot

    repo, cfg = _open(directory)
    snap = snapshot.find(repo, spec, cfg.snapshot.branch_prefix)
    rows = [("commit", snap.commit.sha), ("name", snap.name), ("session", snap.session_id),
            ("reason", snap.reason), ("created", snap.created), ("branch", snap.branch),
            ("base", snap.base or "none (HEAD was unborn)")]
    for key, value in rows:
        print(f"{paint(f'{key:<8}', 'bold')} {value}")
    print()
    print("\n".join(f"    {line}" for line in snap.commit.message.rstrip("\n").split("\n")))
    for title, diff in snapshot.diff_stats(repo, snap):
        print(f"\n{paint(title, 'bold')}\n{diff}")
    return 0
