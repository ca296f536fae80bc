"""`gitend install`: the SessionEnd hook in Claude Code's settings, a starter config (with
memory.repo set when --dotfiles is given; a config of the user's is never edited, install
says what to set there) and the dotfile repo's pre-push hook. `gitend uninstall` undoes
exactly what install recorded in <state>/install.json.

gitend's own settings entry is a gitend hook in a catch-all matcher group (matcher absent,
"" or "*"); only such entries are updated, de-duplicated and removed. gitend hooks under a
specific matcher are the user's own per-reason setup and are never touched.

Settings are merged, never clobbered: other keys and hooks keep their order, the file its
indent, final newline, mode and symlink. The first backup, `settings.json.gitend-backup`,
is never overwritten (it stays the pre-gitend original); later ones get a timestamp.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Any

from gitend import config, installed, paths
from gitend.errors import GitendError
from gitend.files import write_atomic
from gitend.git import Repo, run
from gitend.installed import Json

EXTRA_EVENTS = ("SessionStart", "PreToolUse")  # placed beside gitend's own SessionEnd entry
ALSO = ", with SessionStart (catch-up, notes, problems) and the PreToolUse tripwire"


def install(settings: str | None, dotfiles: str | None, remote: str | None) -> list[str]:
    command = installed.gitend_command()
    path = installed.settings_path(settings)
    previous = installed.load_record()
    raw, new, created, updating, theirs = _merged_settings(path, command)  # refuses before anything changes
    target, lines = _dotfile_repo(dotfiles, remote) if dotfiles else (None, [])
    same = previous.get("settings") == str(path)
    earlier = previous.get("created", {}) if same else {}
    record: Json = {"settings": str(path), "created": {k: v or bool(earlier.get(k)) for k, v in created.items()},
                    "backup": previous.get("backup") if same else None, "config": None,
                    "pre_push": previous.get("pre_push")}
    try:
        if theirs and not updating:
            lines.append(f"left {path} unchanged: your own gitend entries there already run the hook (matchers "
                         f"{', '.join(theirs)}); adding gitend's would run it twice")
        else:
            lines.append(_write_settings(path, raw, new, updating, record))
        if previous.get("settings") and not same:  # one settings file holds gitend's entry, not two
            lines += _move_out_of(Path(previous["settings"]), previous.get("created", {}), path)
        lines += _install_config(previous.get("config"), record, str(target) if target else None)
        target = target or _configured_dotfile_repo()  # a memory.repo already set gets the hook too
        if target is not None:
            lines += _install_pre_push(Repo.find(target), command, record)
            if previous.get("pre_push") and previous["pre_push"]["path"] != record["pre_push"]["path"]:
                lines += _uninstall_pre_push(previous["pre_push"])  # memory.repo moved: one hook, not two
    except OSError as exc:
        raise _os_error(exc) from None
    finally:
        _save_record(record)
    return lines


def _configured_dotfile_repo() -> Path | None:
    """memory.repo from the config, when it is a repository: it gets the pre-push hook too."""
    try:
        repo = config.load(None).memory.repo
        return Repo.find(os.path.expanduser(repo)).root if repo else None
    except GitendError:
        return None  # doctor reports a broken config or a missing dotfile repo


def uninstall(settings: str | None) -> list[str]:
    record = installed.load_record()
    path = installed.settings_path(settings or record.get("settings"))
    created = record.get("created", {}) if str(path) == record.get("settings") else {}
    try:
        lines = _remove_from_settings(path, created)
        lines += _uninstall_pre_push(record.get("pre_push"))
        lines += _uninstall_config(record.get("config"))  # first: a starter config still as written goes whole
    except OSError as exc:
        raise _os_error(exc) from None
    paths.install_record().unlink(missing_ok=True)
    return lines or ["nothing to remove: gitend is not installed"]


def _os_error(exc: OSError) -> GitendError:
    where = exc.filename or "a file"
    return GitendError(f"cannot change {where}: {exc.strerror or exc}; fix that, then run this again")


# -- Claude Code settings ---------------------------------------------------------------

def _member(parent: Json, key: str, kind: type, path: Path, *, create: bool, label: str) -> Any:
    if key not in parent and create:
        parent[key] = kind()
    if key in parent and not isinstance(parent[key], kind):
        what = "an object" if kind is dict else "a list"
        raise GitendError(f'{path}: "{label}" must be {what}; fix it, then run this again')
    return parent.get(key)


def _drop(session_end: list[Any], doomed: list[Json]) -> None:
    """Remove these hooks (by identity) and the matcher groups they leave empty."""
    ids = {id(hook) for hook in doomed}
    for group in list(session_end):
        hooks = group.get("hooks") if isinstance(group, dict) else None
        if isinstance(hooks, list) and any(id(hook) in ids for hook in hooks):
            hooks[:] = [hook for hook in hooks if id(hook) not in ids]
            if not hooks:
                session_end[:] = [g for g in session_end if g is not group]


def _merged_settings(path: Path, command: str) -> tuple[bytes | None, bytes, dict[str, bool], bool, list[str]]:
    data, raw = installed.read_settings(path)
    created = {"file": raw is None, "hooks": "hooks" not in data}
    hooks = _member(data, "hooks", dict, path, create=True, label="hooks")
    created["SessionEnd"] = "SessionEnd" not in hooks
    session_end = _member(hooks, "SessionEnd", list, path, create=True, label="hooks.SessionEnd")
    wanted = installed.entries(command)
    ours, theirs = installed.our_entries(session_end), installed.per_reason_matchers(session_end)
    if ours:  # an older gitend entry: update it where it is, drop any duplicates
        ours[0].update(wanted["SessionEnd"][0])
        _drop(session_end, ours[1:])
    elif theirs:  # only the user's own per-reason entries: a hand-made setup, left as it is
        return raw, raw or b"", created, False, theirs
    else:
        session_end.append({"matcher": "*", "hooks": wanted["SessionEnd"]})
    for event in EXTRA_EVENTS:
        created[event] = event not in hooks
        _place(_member(hooks, event, list, path, create=True, label=f"hooks.{event}"), event, wanted[event])
    return raw, _dump(data, raw), created, bool(ours), theirs


def _place(groups: list[Any], event: str, handlers: list[Json]) -> None:
    """gitend's handlers under `event`: where they were (updated, duplicates dropped), else in a
    new group. Handlers of other tools in those groups stay as they are."""
    ours = installed.ours_in(groups, event)
    if event != "PreToolUse" and ours:
        ours[0].update(handlers[0])
        _drop(groups, ours[1:])
        return
    if ours == handlers:
        return
    home = next((g for g in groups if isinstance(g, dict) and any(h is ours[0] for h in g.get("hooks", []))), None) \
        if ours else None
    _drop(groups, ours)
    if home is not None and any(g is home for g in groups):
        home["hooks"].extend(handlers)
    else:
        groups.append({"matcher": "*" if event == "SessionStart" else "Bash", "hooks": handlers})


def _indent(text: str) -> str | int | None:
    lines = text.strip().splitlines()
    for line in lines[1:]:
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if lead and line.strip():
            return "\t" if lead[0] == "\t" else len(lead)
    return None if len(lines) == 1 else 2


def _dump(data: Json, raw: bytes | None) -> bytes:
    """JSON in the original file's style: indent, separators, escapes, final newline."""
    text = raw.decode("utf-8") if raw and raw.strip() else ""
    indent = _indent(text)
    compact = indent is None and '":' in text and '": ' not in text
    out = json.dumps(data, indent=indent, separators=(",", ":") if compact else None,
                     ensure_ascii=raw is not None and raw.isascii() and b"\\u" in raw)
    return (out + ("\n" if not text or text.endswith("\n") else "")).encode()


def _replace_file(path: Path, data: bytes) -> None:
    """Write atomically, keeping the mode; a symlink (into a dotfile repo, say) stays one."""
    real = Path(os.path.realpath(path))
    mode = real.stat().st_mode & 0o7777 if real.exists() else None
    real.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(real, data, 0o666 if mode is None else mode)
    if mode is not None:
        os.chmod(real, mode)


def _backup_path(path: Path) -> Path:
    plain = path.with_name(path.name + ".gitend-backup")
    stamp, n = time.strftime("%Y%m%d-%H%M%S"), 0
    candidate = plain
    while os.path.lexists(candidate):
        n += 1
        candidate = plain.with_name(f"{plain.name}-{stamp}" + (f"-{n}" if n > 1 else ""))
    return candidate


def _write_settings(path: Path, raw: bytes | None, new: bytes, updating: bool, record: Json) -> str:
    if raw == new:
        return f"the SessionEnd hook is already in {path}"
    backup = None
    if raw is not None:
        backup = _backup_path(path)
        shutil.copy2(path, backup)
        record["backup"] = record["backup"] or str(backup)
    _replace_file(path, new)
    done = "updated the SessionEnd hook in" if updating else "added the SessionEnd hook to"
    return f"{done} {path}{ALSO}" + (f" (backup: {backup})" if backup else "")


def _move_out_of(old: Path, created: dict[str, bool], new: Path) -> list[str]:
    """Install went to another settings file: gitend's entry leaves the one it was in."""
    try:
        return [f"{line}, as install now uses {new}" for line in _remove_from_settings(old, created)]
    except GitendError as exc:
        return [f"could not remove the SessionEnd hook from {old}, which install used before: {exc}"]


def _remove_from_settings(path: Path, created: dict[str, bool]) -> list[str]:
    data, raw = installed.read_settings(path)
    hooks = _member(data, "hooks", dict, path, create=False, label="hooks") if raw is not None else None
    if hooks is None:
        return []
    removed = False
    for event in ("SessionEnd", *EXTRA_EVENTS):
        groups = _member(hooks, event, list, path, create=False, label=f"hooks.{event}")
        ours = installed.ours_in(groups, event) if groups is not None else []
        if ours:
            _drop(groups, ours)
            removed = True
            if created.get(event) and not groups:
                del hooks[event]
    if not removed:
        return []
    if created.get("hooks") and not hooks:
        del data["hooks"]
    if created.get("file") and not data:
        path.unlink()
        return [f"removed {path} (install had created it)"]
    _replace_file(path, _dump(data, raw))
    return [f"removed the SessionEnd hook from {path}{ALSO}"]


# -- gitend's config --------------------------------------------------------------------

def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _install_config(mine: Json | None, record: Json, memory_repo: str | None) -> list[str]:
    """A starter config where there is none (with memory.repo when given). gitend rewrites only
    its own starter, unchanged since; a config of the user's is theirs to edit."""
    path = paths.config_file()
    ours = mine is not None and mine.get("path") == str(path) and _sha256(path) == mine.get("sha256")
    try:
        current = config.load(None).memory.repo
    except GitendError:
        current = None
    if memory_repo and current == memory_repo:
        record["config"] = mine if ours else None
        return [f"memory.repo is already {memory_repo}"]
    if os.path.lexists(path) and not ours:
        return [f"left your config {path} as it is: to sync memory notes, set `repo: {json.dumps(memory_repo)}` "
                "under `memory:` there"] if memory_repo else []
    if ours and not memory_repo:
        record["config"] = mine
        return []
    text = resources.files("gitend").joinpath("data/default.yaml").read_text(encoding="utf-8")
    if memory_repo:
        text = text.replace("\n  repo: null\n", f"\n  repo: {json.dumps(memory_repo)}\n", 1)
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    record["config"] = {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
    lines = [] if ours else [f"wrote a starter config to {path}"]
    return lines + ([f"set memory.repo to {memory_repo} in {path}"] if memory_repo else [])


# -- the dotfile repo -------------------------------------------------------------------

def _dotfile_repo(dotfiles: str, remote: str | None) -> tuple[Path, list[str]]:
    target = Path(os.path.abspath(os.path.expanduser(dotfiles)))
    lines = []
    if not os.path.lexists(target):
        if not remote:
            raise GitendError(f"{target} does not exist; pass --remote URL to clone it")
        target.parent.mkdir(parents=True, exist_ok=True)
        run(["clone", "--quiet", "--", remote, str(target)], cwd=target.parent, timeout=120)
        lines.append(f"cloned {remote} into {target}")
    elif remote:
        lines.append(f"{target} exists, so --remote was not used")
    repo = Repo.find(target)
    if os.path.realpath(repo.root) != os.path.realpath(target):
        raise GitendError(f"{target} is inside the git work tree {repo.root}; pass --dotfiles {repo.root}")
    return target, lines


def _install_pre_push(repo: Repo, command: str, record: Json) -> list[str]:
    folder, scope = installed.hooks_dir(repo)
    hook, chained = folder / "pre-push", folder / installed.CHAINED
    folder.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(hook) and not installed.is_our_hook(hook):
        if os.path.lexists(chained):
            raise GitendError(f"{hook} and {chained} both exist; merge them into one by hand, then run this again")
        os.replace(hook, chained)
    script = installed.pre_push_script(command).encode()
    done = "installed the pre-push hook in"
    if hook.is_file() and hook.read_bytes() == script and os.access(hook, os.X_OK):
        done = "the pre-push hook is already in"
    else:
        write_atomic(hook, script, 0o755)
        os.chmod(hook, 0o755)
    is_chained = os.path.lexists(chained)
    record["pre_push"] = {"path": str(hook), "chained": is_chained}
    lines = [f"{done} {folder}" + (" (your previous hook runs after it)" if is_chained else "")]
    if scope in ("global", "system"):
        lines.append(f"note: core.hooksPath comes from your {scope} git config, so this hook runs for every "
                     "repository's pushes")
    return lines


def _uninstall_pre_push(info: Json | None) -> list[str]:
    if not info:
        return []
    hook = Path(info["path"])
    chained = hook.with_name(installed.CHAINED)
    if os.path.lexists(hook) and not installed.is_our_hook(hook):
        return [f"left {hook} alone: it is not gitend's any more"]
    if not os.path.lexists(hook) and not os.path.lexists(chained):
        return []
    hook.unlink(missing_ok=True)
    if os.path.lexists(chained):
        os.replace(chained, hook)
        return [f"removed the pre-push hook from {hook.parent} and put your previous one back"]
    return [f"removed the pre-push hook from {hook.parent}"]


def _uninstall_config(info: Json | None) -> list[str]:
    if not info or not os.path.lexists(info["path"]):
        return []
    if _sha256(Path(info["path"])) != info.get("sha256"):
        return [f"kept {info['path']}: you changed it since install"]
    os.unlink(info["path"])
    return [f"removed the starter config {info['path']}"]


# -- the install record -----------------------------------------------------------------

def _save_record(record: Json) -> None:
    try:
        paths.install_record().parent.mkdir(parents=True, exist_ok=True)
        write_atomic(paths.install_record(), (json.dumps(record, indent=2) + "\n").encode())
    except OSError as exc:
        raise _os_error(exc) from None
