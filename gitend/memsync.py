"""Claude Code's auto-memory notes: find this project's folder, and mirror it to and from a
folder in the dotfile repo by copying bytes (never symlinks, which Claude's atomic writes
would replace), through the secret gate, then commit it there. Only `*.md` notes are ever read."""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitend import approvals, config, dotfiles, files, git, lock, paths, queue
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.secrets import Finding, redact

MAX_NOTE = 1 << 20
MAX_DEPTH = 8  # folders below the memory folder that are looked into
# A memory folder holds a few dozen small notes: one far bigger is some other folder, never synced.
MAX_ENTRIES = 5000
MAX_TOTAL = 64 << 20
_DIR_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONFLICT = re.compile(r"\.conflict-[A-Za-z0-9._-]+-\d{8}T\d{6}Z(?:-\d+)?\.md$", re.IGNORECASE)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_SCP = re.compile(r"(?:[^@/]*@)?(\[[^\]/]*\]|[^:/]+):(.*)", re.DOTALL)
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


# -- where the notes are ------------------------------------------------------

def encode_project_dir(path: str) -> str:
    """Claude Code's sanitizePath, which works on UTF-16 code units (JavaScript strings)."""
    raw = path.encode("utf-16-le", "surrogatepass")
    units = [int.from_bytes(raw[i:i + 2], "little") for i in range(0, len(raw), 2)]
    name = "".join(chr(u) if chr(u).isascii() and chr(u).isalnum() else "-" for u in units)
    if len(name) <= 200:
        return name
    h = 0
    for unit in units:
        h = ((h << 5) - h + unit) & 0xFFFFFFFF
    h, digits = abs(h - (1 << 32) if h >= 1 << 31 else h), ""
    while h or not digits:
        h, r = divmod(h, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    return f"{name[:200]}-{digits}"


SETTINGS_MAX = 1 << 20  # bytes read of a Claude Code settings file


def _setting(path: Path, key: str) -> object:
    """One value from a settings file, read only if it is a regular file of bounded size."""
    data = files.read_regular(path, SETTINGS_MAX)
    try:
        settings = json.loads(data) if data else None
    except ValueError:
        return None
    return settings.get(key) if isinstance(settings, dict) else None


def _tracked(project_root: Path, rel: str) -> bool:
    """Whether git has the file (committed, or staged): then it came with the repository."""
    if not os.path.lexists(project_root / ".git"):
        return False
    for args in (("ls-files", "--with-tree=HEAD"), ("ls-files",)):  # the second for a repo with no commit
        proc = git.run([*args, "-z", "--", rel], cwd=project_root, check=False)
        if proc.returncode == 0:
            return bool(proc.stdout)
    return True  # git cannot tell: not the user's, to be safe


def _plausible(folder: str, project_root: Path) -> bool:
    """A folder that could hold notes: not $HOME, this project or a folder holding either (a
    user's ~/src would hand gitend every project's files; list_notes refuses one that holds
    repositories, or far more than notes)."""
    real = os.path.realpath(folder)
    within = [os.path.realpath(Path.home()), os.path.realpath(project_root)]
    return not any(p == real or p.startswith(real.rstrip(os.sep) + os.sep) for p in within)


def _configured_dir(project_root: Path) -> Path | None:
    """autoMemoryDirectory from the most specific settings file that sets it usefully. Never from a
    file the repository brought (committed `.claude/settings.json`, or a settings.local.json that
    git tracks): a cloned repository must not choose what gitend copies to the dotfile remote."""
    local = project_root / ".claude" / "settings.local.json"
    chosen = [] if not os.path.lexists(local) or _tracked(project_root, ".claude/settings.local.json") else [local]
    for settings in [*chosen, paths.claude_dir() / "settings.json"]:
        value = _setting(settings, "autoMemoryDirectory")
        if isinstance(value, str) and (value == "~" or value.startswith("~/")):
            value = os.path.expanduser(value)
        if isinstance(value, str) and os.path.isabs(value) and _plausible(value, project_root):
            return Path(value)
    return None


def _candidates(project_root: Path, cwd: Path | None) -> list[Path]:
    configured = _configured_dir(project_root)
    if configured is not None:
        return [configured]
    projects = paths.claude_dir() / "projects"
    name = os.environ.get("CLAUDE_CODE_PROJECT_DIR_NAME", "")
    if _DIR_NAME.fullmatch(name):
        return [projects / name / "memory"]
    found = [projects / encode_project_dir(os.path.realpath(project_root)) / "memory"]
    if cwd is not None:  # before v2.1.63 memory was keyed on the launch directory
        found.append(projects / encode_project_dir(os.path.realpath(cwd)) / "memory")
    return found


def memory_dir(project_root: Path, cwd: Path | None = None) -> Path | None:
    """This project's auto-memory folder, or None if there is none yet."""
    return next((folder for folder in _candidates(project_root, cwd) if folder.is_dir()), None)


def notes_dir(project_root: Path, cwd: Path | None = None) -> Path:
    """This project's auto-memory folder: the one there is, else where Claude Code would make it."""
    return memory_dir(project_root, cwd) or default_memory_dir(project_root)


def default_memory_dir(project_root: Path) -> Path:
    """Where Claude Code would create this project's auto-memory folder (it may not exist)."""
    return _candidates(project_root, None)[0]


# -- a key that is the same on every machine ------------------------------------

def _segment(part: str) -> str:
    """A safe folder name for one part of a key; one that had to be changed (or is long) gets a
    hash of the original, so two parts never share a name (`b+c` and `b-c`)."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", part)
    clean = re.sub(r"^\.+", lambda m: "-" * len(m.group()), clean)  # no "..", ".git" or hidden folders
    if clean != part or len(clean) > 100:
        clean = f"{clean[:80]}-{hashlib.sha256(part.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
    return clean


def _join(*parts: str) -> str:
    return "/".join(_segment(s) for part in parts for s in part.split("/") if s not in ("", "."))


def _strip_git(path: str) -> str:
    path = path.rstrip("/")
    return path[:-4].rstrip("/") if path.lower().endswith(".git") else path


def _url_key(url: str) -> str | None:
    scheme = _SCHEME.fullmatch(url)
    scp = None if scheme or _DRIVE.match(url) else _SCP.fullmatch(url)
    if scheme and scheme.group(1).lower() != "file":
        authority, _, path = scheme.group(2).partition("/")
        host = authority.rpartition("@")[2]
        if host.startswith("["):
            host, _, port = host[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = host.partition(":")
        if port and not port.isdigit():  # "ssh://git@host:owner/repo", a common slip
            path = f"{port}/{path}"
    elif scp:
        host, path = scp.group(1).strip("[]"), scp.group(2)
    else:
        local = _join(_strip_git((scheme.group(2) if scheme else url).replace("\\", "/")))
        return f"local/{local}" if local else None
    # Hosting services treat owner/repo case-insensitively: one key whatever case a clone used.
    return _join(host.lower(), _strip_git(path).lower()) if _segment(host) else None


def project_key(origin_url: str | None, project_root: Path) -> str:
    """A relative folder path for this project that every machine agrees on."""
    key = _url_key(origin_url.strip()) if origin_url and origin_url.strip() else None
    if key:
        return key
    root, home = os.path.realpath(project_root), os.path.realpath(Path.home())
    if root == home or root.startswith(home.rstrip(os.sep) + os.sep):
        return _join("home", os.path.relpath(root, home).replace(os.sep, "/"))
    return _join("path", root.replace(os.sep, "/"))


# -- notes ----------------------------------------------------------------------

@dataclass(frozen=True)
class Note:
    relpath: str
    digest: str
    size: int


def read_note(path: Path) -> bytes | None:
    """A regular file's bytes, never through a symlink; None if it is not a note-sized file."""
    return files.read_regular(path, MAX_NOTE, follow=False)


def _check_folder(folder: Path) -> None:
    if os.path.lexists(folder) and not folder.is_dir():
        raise GitendError(f"{folder} should be a folder of memory notes but is not a folder")


def list_notes(folder: Path, only: str | None = None) -> dict[str, Note]:
    """The notes under `folder` by relative path (with `only`: that one file, if it is a note)."""
    _check_folder(folder)
    notes: dict[str, Note] = {}
    walk = [(str(folder), [], [only])] if only else os.walk(folder)
    seen = total = 0
    for dirpath, dirnames, filenames in walk:
        seen += len(dirnames) + len(filenames)
        if ".git" in dirnames + filenames and dirpath != str(folder):  # notes may be versioned, not hold projects
            raise _not_notes(folder, f"it holds a git repository, {os.path.join(dirpath, '.git')}")
        if seen > MAX_ENTRIES:
            raise _not_notes(folder, f"it holds more than {MAX_ENTRIES} files")
        deep = len(Path(dirpath).relative_to(folder).parts) >= MAX_DEPTH
        dirnames[:] = [] if deep else [d for d in dirnames
                                       if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(".md"):
                continue
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            # Not printable: control characters or undecodable bytes, which would trip up the manifest and git.
            data = None if os.path.islink(path) or not rel.isprintable() else read_note(path)
            if data is not None:
                notes[rel] = Note(rel, hashlib.sha256(data).hexdigest(), len(data))
                total += len(data)
                if total > MAX_TOTAL:
                    raise _not_notes(folder, f"its notes add up to more than {MAX_TOTAL >> 20} MB")
    return notes


def _not_notes(folder: Path, why: str) -> GitendError:
    return GitendError(f"{folder} does not look like a folder of memory notes ({why}); gitend syncs nothing "
                       "from it: point autoMemoryDirectory at a folder that holds only notes")


# -- mirroring into the repo folder -----------------------------------------------

@dataclass(frozen=True)
class MirrorPlan:
    write: tuple[str, ...]
    delete: tuple[str, ...]
    conflicts: tuple[tuple[str, str], ...]
    kept: tuple[str, ...]
    behind: tuple[str, ...] = ()  # unchanged here, changed in the repo: the repo's version stays (pull brings it)

    @property
    def empty(self) -> bool:
        """Nothing to apply (kept and behind notes are reports, not actions)."""
        return not (self.write or self.delete or self.conflicts)


def plan_mirror(local: dict[str, Note], repo: dict[str, Note], manifest: dict[str, str], *,
                written: dict[str, str] | None = None, host: str | None = None,
                now: float | None = None) -> MirrorPlan:
    """`manifest`: each note as this machine last mirrored it; `written`: what went into the repo
    for it where that differed (a redacted copy), so a redacted copy counts as ours."""
    taken = set(local) | set(repo)
    write: list[str] = []
    delete: list[str] = []
    kept: list[str] = []
    behind: list[str] = []
    conflicts: list[tuple[str, str]] = []
    for rel in sorted(set(local) | set(repo) | set(manifest)):
        here, there, last = local.get(rel), repo.get(rel), manifest.get(rel)
        ours = (written or {}).get(rel, last)  # the repo's version as this machine left it
        if here is None:
            if there is not None and last is not None:  # deleted here; repo notes we never had stay
                (delete if there.digest == ours else kept).append(rel)
        elif there is not None and (here.digest == there.digest or (here.digest == last and there.digest == ours)):
            continue
        elif there is None or there.digest == ours:
            write.append(rel)
        elif here.digest == last:
            behind.append(rel)
        else:  # both changed, or no record of our last sync: keep both versions
            conflicts.append((rel, dotfiles.conflict_copy(rel, taken, host_name=host, now=now)))
    return MirrorPlan(tuple(write), tuple(delete), tuple(conflicts), tuple(kept), tuple(behind))


def _target(root: Path, rel: str, *, make_parents: bool = False) -> Path:
    """root/rel, refusing anything that could lead outside root (`..`, a symlinked folder)."""
    return files.inside(root, rel, make_parents=make_parents)


def _copy(source: Path, target: Path, data: bytes | None = None) -> bool:
    """Write `data` (default: the note at `source`, read once) to `target`, atomically; the
    target's folders exist (made by _target)."""
    data = read_note(source) if data is None else data
    if data is None:  # gone or no longer a note since it was listed
        return False
    files.write_atomic(target, data)
    return True


def apply_mirror(plan: MirrorPlan, local_folder: Path, repo_folder: Path,
                 data: dict[str, bytes] | None = None, *, root: Path | None = None) -> None:
    """Carry out `plan`. With `data`, exactly those bytes are written (what was scanned, or its
    redacted copy), never the note as it is by now; a note missing from `data` is not written.
    `root`: the dotfile repo's root: no folder from there down to a note may be a symlink (one
    committed to the dotfile remote would make gitend write the notes outside the repository)."""
    root = root or repo_folder
    prefix = repo_folder.relative_to(root).as_posix()

    def there(rel: str) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        return _target(root, rel if prefix == "." else f"{prefix}/{rel}", make_parents=True)

    _check_folder(repo_folder)
    try:
        for rel, copy in plan.conflicts:
            if os.path.lexists(there(rel)):
                os.replace(there(rel), there(copy))
        for rel in plan.write + tuple(rel for rel, _ in plan.conflicts):
            if data is None:
                _copy(_target(local_folder, rel), there(rel))
            elif rel in data:
                _copy(local_folder / rel, there(rel), data[rel])
        for rel in plan.delete:
            target = there(rel)
            target.unlink(missing_ok=True)
            for parent in target.parents:
                if parent == repo_folder or any(parent.iterdir()):
                    break
                parent.rmdir()
    except OSError as exc:
        raise GitendError(f"cannot update the memory notes in {repo_folder} ({exc.strerror or exc})") from None


# -- what this machine last synced ----------------------------------------------
# One record per project *and* memory folder: two clones of one origin (~/app, ~/app-review)
# share the project's folder in the dotfile repo, but neither deletes what the other wrote.


@dataclass(frozen=True)
class Synced:
    """Each note as this machine last synced it (its digest), and for notes whose copy in the
    repo differs from it (redacted), that copy's digest."""

    notes: dict[str, str]
    written: dict[str, str]
    interrupted: bool = False  # read from a record a run left halfway: rewrite it

    def there(self, rel: str) -> str | None:
        """The digest of the repo's copy of `rel` as this machine left it."""
        return self.written.get(rel, self.notes.get(rel))

    def record(self) -> dict[str, dict[str, str]]:
        return {"notes": self.notes,
                "written": {rel: d for rel, d in self.written.items() if self.notes.get(rel) not in (None, d)}}


def _manifest_name(key: str, source: Path) -> str:
    return f"{key}\n{os.path.realpath(source)}"


def _synced(record: object) -> Synced | None:
    if not isinstance(record, dict):
        return None
    notes, written = _digests(record.get("notes")), _digests(record.get("written"))
    return Synced(notes, written or {}) if notes is not None else None


def _digests(value: object) -> dict[str, str] | None:
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    return None


def load_manifest(key: str, source: Path, repo: dict[str, Note], local: dict[str, Note]) -> Synced:
    """What this machine last synced of `source` (its notes `local`) with the repo folder (`repo`).
    A run that stopped after saying what it would write counts as far as the repo shows it got,
    so a copy no record knows of never brings back a note deleted since."""
    data = files.read_json(paths.manifest_file(_manifest_name(key, source)), {})
    if not data:  # from before records were per memory folder: only what still exists here
        old = _synced(files.read_json(paths.manifest_file(key), {})) or Synced({}, {})
        return Synced({r: d for r, d in old.notes.items() if r in local},
                      {r: d for r, d in old.written.items() if r in local})
    # Unknown or damaged history: nothing gets deleted, conflicts are judged by content alone.
    done, intent = _synced(data) or Synced({}, {}), _synced(data.get("intent"))
    if intent is None:
        return done
    notes, written = dict(done.notes), dict(done.written)
    for rel in set(done.notes) | set(intent.notes):
        there = repo.get(rel)
        if (there.digest if there else None) == intent.there(rel):  # that run got this far
            for mine, theirs in ((notes, intent.notes), (written, intent.written)):
                mine.pop(rel, None)
                if rel in theirs:
                    mine[rel] = theirs[rel]
    return Synced(notes, written, interrupted=True)


def save_manifest(key: str, source: Path, synced: Synced, *, intent: Synced | None = None) -> None:
    """Record `synced`; with `intent`, what a run is about to write, before it writes it."""
    files.write_json(paths.manifest_file(_manifest_name(key, source)), {
        "key": key, "source": str(source), **synced.record(), **({"intent": intent.record()} if intent else {})})


def conflict_copies(folder: Path) -> list[str]:
    """The conflict copies under `folder` (the dotfile repo's notes), relative to it: each is a
    version of a note that two machines changed, kept until someone merges it and deletes it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        depth = len(Path(dirpath).relative_to(folder).parts)
        dirnames[:] = [] if depth > MAX_DEPTH else [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, name).relative_to(folder).as_posix() for name in filenames if _CONFLICT.search(name)]
    return sorted(found)


# -- a new machine: from the repo folder into Claude's memory folder -------------------

@dataclass(frozen=True)
class PullResult:
    copied: tuple[str, ...]
    kept_local: tuple[str, ...]  # changed here, not there: the next session end takes them there
    conflicts: tuple[tuple[str, str], ...] = ()  # changed on both sides: (note, the copy beside it)


def _bases(copy: str, names: set[str]) -> set[str]:
    """The note a conflict copy (`n.conflict-host-time.md`) belongs to, among `names`."""
    match = _CONFLICT.search(copy)
    return {name for name in names if match and name[:-3] == copy[:match.start()]}


def pull_notes(repo_folder: Path, local_folder: Path, synced: Synced, *,
               now: float | None = None) -> tuple[PullResult, Synced]:
    """Bring the repo's notes into `local_folder`, judged by content against what this machine last
    synced, never by clocks. A note missing here is copied (unless it was deleted here since it was
    synced); one unchanged here since takes the repo's version; one changed here only stays; one
    changed on both sides stays, with the repo's version beside it as a conflict copy. A conflict
    copy in the repo that holds this machine's version (it lost a merge) is copied here too, so
    both versions are where Claude and the user look. Returns the new record of what is synced."""
    local, repo = list_notes(local_folder), list_notes(repo_folder)
    notes, written = dict(synced.notes), dict(synced.written)
    copied: list[str] = []
    kept: list[str] = []
    conflicts: list[tuple[str, str]] = []
    taken = set(local) | set(repo)

    def take(rel: str, into: str, *, over: bool = False) -> bool:
        """Copy the repo's `rel` to `into` here; never over a file that is not a listed note."""
        try:
            local_folder.mkdir(parents=True, exist_ok=True)
            target = _target(local_folder, into, make_parents=True)
        except GitendError:  # a symlinked folder here
            return False
        return (over or not os.path.lexists(target)) and _copy(repo_folder / rel, target)

    try:
        for rel, there in sorted(repo.items()):
            here, last = local.get(rel), synced.notes.get(rel)
            if _CONFLICT.search(rel):
                mine = {local[b].digest for b in _bases(rel, set(local))} | {
                    synced.notes[b] for b in _bases(rel, set(synced.notes))}
                if here is None and there.digest in mine and take(rel, rel):
                    copied.append(rel)
                    notes[rel] = there.digest
                continue
            if here is not None and here.digest == there.digest:
                pass
            elif here is None and last is not None and there.digest == synced.there(rel):
                continue  # deleted here since it was synced: the next session end deletes it there
            elif here is not None and there.digest == synced.there(rel):
                if here.digest != last:
                    kept.append(rel)  # changed here only: the next session end takes it there
                continue
            elif here is not None and (here.digest != last or rel in written):
                # Changed on both sides (or the repo's copy lacks a secret redacted from this one).
                copy = dotfiles.conflict_copy(rel, taken, host_name="dotfiles", now=now)
                if not take(rel, copy):
                    kept.append(rel)
                    continue
                conflicts.append((rel, copy))
            elif take(rel, rel, over=here is not None):  # new here, or unchanged here since it was synced
                copied.append(rel)
            else:
                kept.append(rel)  # not ours to replace: a symlink, a huge file
                continue
            notes[rel] = there.digest
            written.pop(rel, None)
    except OSError as exc:
        raise GitendError(f"cannot copy memory notes into {local_folder} ({exc.strerror or exc})") from None
    return PullResult(tuple(copied), tuple(kept), tuple(conflicts)), Synced(notes, written)


class NoNotes(GitendError):
    """The dotfile repo has no notes for this project (yet)."""


def pull(settings: config.Memory, project_root: Path, cwd: Path | None = None, *,
         lock_timeout: float = 30) -> PullResult:
    """This project's notes from the local clone of the dotfile repo into Claude Code's memory
    folder (no network), as `pull_notes` decides: by content, never by clocks. For a new machine
    (SessionStart) and `gitend memory pull`. Raises NoNotes when there are none for this project,
    lock.Busy when the dotfile repo stays busy past `lock_timeout`, GitendError when it cannot."""
    if not (settings.enabled and settings.repo):
        raise GitendError("memory.repo is not set in the config; nothing to pull from")
    key = key_for(project_root)
    repo, _ = dotfiles.open_repo(settings.repo)
    with lock.held(paths.repo_lock(repo.git_dir), timeout=lock_timeout, what=f"the dotfile repo {repo.root}"):
        rel_folder = project_folder(settings.path.strip("/"), key)
        source = files.inside(repo.root, rel_folder, folder=True)  # nothing read through a symlink either
        if not source.is_dir():
            raise NoNotes(f"the dotfile repo has no notes for {key} (looked in {source})")
        target = notes_dir(project_root, cwd)
        synced = load_manifest(key, target, list_notes(source), list_notes(target))
        result, synced = pull_notes(source, target, synced)
        save_manifest(key, target, synced)
    return result


def pull_project(directory: str, progress: Callable[[str], None]) -> None:
    """`gitend memory pull`: fetch the dotfile repo, then bring this project's notes into Claude
    Code's memory folder."""
    cfg = config.load(None)
    if not cfg.memory.repo:
        raise GitendError("memory.repo is not set in the config; nothing to pull from")
    try:
        root = Repo.find(directory).main_root
    except GitendError:
        root = Path(directory).resolve()
    with lock.held(paths.worker_lock(), timeout=120, what="the background worker"):
        repo, branch = dotfiles.open_repo(cfg.memory.repo)
        for note in dotfiles.update(repo, branch, cfg.memory.remote, cfg.push.timeout_s).notes:
            progress(note)
        result = pull(cfg.memory, root, Path(directory).resolve())
    queue.spawn_worker_if_due(cfg.push.background)
    for path in result.copied:
        progress(f"copied {path}")
    for path in result.kept_local:
        progress(f"kept the local {path} (changed here; the next session end syncs it)")
    for path, copy in result.conflicts:
        progress(f"{path} was changed here and on another machine: this machine's is kept, the other is {copy}")
    progress(f"{len(result.copied)} note(s) copied into {notes_dir(root, Path(directory).resolve())}")


def conflicts(settings: config.Memory) -> list[str]:
    """The conflict copies in the dotfile repo's notes (paths in the repo): each a version of a note
    that two machines changed, kept until someone merges it and deletes the copy."""
    if not (settings.enabled and settings.repo):
        return []
    folder = settings.path.strip("/")
    return [f"{folder}/{path}" for path in conflict_copies(Path(settings.repo).expanduser() / folder)]


# -- one set of notes, through the secret gate, into the dotfile repo ---------------------------


def project_folder(folder: str, key: str) -> str:
    """One flat folder per project (`github.com+owner+repo`): keys never contain "+", so no
    project's folder can sit inside another's. A long key (a deep GitLab group) is cut short with a
    hash of the whole key, as Claude Code names long project folders: a name fits in 255 bytes."""
    name = key.replace("/", "+")
    if len(name) > 200:
        name = f"{name[:200]}-{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"
    return f"{folder}/{name}"


def key_for(project_root: Path) -> str:
    """project_key, from the project's origin URL as git has it."""
    origin = None
    if (project_root / ".git").exists():
        try:
            origin = Repo.find(project_root).text("config", "--get", "remote.origin.url", check=False) or None
        except GitendError:
            origin = None
    return project_key(origin, project_root)


@dataclass
class Pending:
    """What mirroring one set of notes would change in the dotfile repo, and what it found."""

    key: str
    rel_folder: str
    source: Path
    only: str | None
    local: dict[str, Note]
    plan: MirrorPlan
    data: dict[str, bytes]  # the bytes of every note that would be written, read once and scanned
    texts: dict[str, str]  # the same, as text
    findings: list[Finding]  # unapproved ones
    synced: Synced  # what this machine last synced (the manifest)

    def diff(self, repo: Repo) -> str:
        """A unified diff of the notes in the dotfile repo against what would be written."""
        import difflib  # for `gitend review` only: the hook that imports this module never diffs

        chunks: list[str] = []
        for path, text in sorted(self.texts.items()):
            old_path = repo.root / self.rel_folder / path
            old = old_path.read_text(encoding="utf-8", errors="replace") if old_path.is_file() else ""
            chunks += difflib.unified_diff(old.splitlines(keepends=True), text.splitlines(keepends=True),
                                           f"a/{self.rel_folder}/{path}", f"b/{self.rel_folder}/{path}")
        return "".join(chunks) + "".join(f"deleted: {self.rel_folder}/{p}\n" for p in self.plan.delete)


def pending(repo: Repo, rel_folder: str, source: Path, key: str, cfg: config.Config,
            only: str | None = None) -> Pending:
    target = repo.root / rel_folder
    local, there = list_notes(source, only), list_notes(target, only)
    synced = load_manifest(key, source, there, local)
    plan = plan_mirror(local, there, synced.notes, written=synced.written)
    data = {}
    for path in list(plan.write) + [path for path, _ in plan.conflicts]:
        # Read once: these very bytes are scanned, written and recorded, whatever happens to the note meanwhile.
        raw = read_note(source / path)
        if raw is None:  # gone, or no longer a note
            local.pop(path, None)
            continue
        data[path] = raw
        local[path] = Note(path, hashlib.sha256(raw).hexdigest(), len(raw))
    texts = {path: raw.decode("utf-8", errors="replace") for path, raw in data.items()}
    findings = approvals.unapproved(approvals.scan_notes(texts), cfg.review)
    return Pending(key, rel_folder, source, only, local, plan, data, texts, findings, synced)


def project_pending(repo: Repo, project_root: Path, cwd: Path, cfg: config.Config,
                    source: Path | None = None) -> Pending | None:
    """`source`: the memory folder the hook found (old jobs lack it: then it is looked for here)."""
    source = source or memory_dir(project_root, cwd)
    if source is None or not source.is_dir():
        return None
    key = key_for(project_root)
    return pending(repo, project_folder(cfg.memory.path.strip("/"), key), source, key, cfg)


def job_pending(repo: Repo, job: queue.Job, cfg: config.Config) -> Pending | None:
    """What a memory job has to mirror, from the folder its hook found."""
    project_root = Path(job.data["project_root"])
    stored = job.data.get("memory_dir")
    return project_pending(repo, project_root, Path(job.data.get("cwd") or project_root), cfg,
                           Path(stored) if stored else None)


def mirror(repo: Repo, work: Pending, message: str, cfg: config.Config, *, redacting: bool = False) -> str:
    """Copy one set of notes into the dotfile repo and commit them, through the secret gate."""
    if work.plan.empty:
        # The plan compares with the files, so notes that a killed or failed run copied but did not
        # commit look done: finish that run's work. Ignored files count (gitend's folder is its own).
        done = Synced({rel: note.digest for rel, note in work.local.items()}, work.synced.written)
        if work.synced.interrupted or done.record() != work.synced.record():
            save_manifest(work.key, work.source, done)
        if not repo.git("status", "--porcelain", "-z", "--untracked-files=all", "--ignored", "--", work.rel_folder):
            return ""
        commit = dotfiles.commit_folder(repo, work.rel_folder, message)
        return f"{work.key}: committed the notes an interrupted run had copied" if commit else ""
    if work.findings and not (redacting or cfg.review.on_finding == "redact"):
        raise approvals.Held(work.findings, f"the notes of {work.key}")
    out = dict(work.data)
    redacted = {f.path for f in work.findings}
    for path in redacted:
        out[path] = redact(work.texts[path], [f for f in work.findings if f.path == path]).encode("utf-8")
    rewritten = set(work.plan.write) | {rel for rel, _ in work.plan.conflicts}
    written = {rel: digest for rel, digest in work.synced.written.items() if rel not in rewritten}
    written.update({path: hashlib.sha256(out[path]).hexdigest() for path in redacted})
    done = Synced({rel: note.digest for rel, note in work.local.items()}, written)
    # What this run will write is recorded first: if it stops halfway (a full disk, a kill), the
    # next run knows which copies are its own, and a note deleted meanwhile is not brought back.
    save_manifest(work.key, work.source, work.synced, intent=done)
    apply_mirror(work.plan, work.source, repo.root / work.rel_folder, out, root=repo.root)
    # Recorded before the commit: a run that stops here leaves an empty plan, and the next commits.
    save_manifest(work.key, work.source, done)
    commit = dotfiles.commit_folder(repo, work.rel_folder, message)
    changes = len(work.plan.write) + len(work.plan.delete)
    redacted_note = f", {len(work.findings)} secret(s) redacted" if work.findings else ""
    return f"{work.key}: {changes} note change(s) committed{redacted_note}" if commit else ""


def mirror_extras(repo: Repo, folder: str, cfg: config.Config) -> list[str]:
    """memory.extra: user-wide files or folders, e.g. ~/.claude/CLAUDE.md, under <path>/_user/."""
    lines, held_extras = [], {}
    for extra in cfg.memory.extra:
        source = Path(extra).expanduser()
        if not source.exists():
            continue
        only = None if source.is_dir() else source.name
        rel_folder = f"{folder}/_user/{source.name}" if only is None else f"{folder}/_user"
        work = pending(repo, rel_folder, source if only is None else source.parent, f"_user/{source.name}",
                       cfg, only)
        try:
            lines.append(mirror(repo, work, f"memory: {source.name} from {config.host(cfg.push)}", cfg))
        except approvals.Held as held:
            held_extras[str(source)] = str(held)
            lines.append(f"{extra}: held ({held}); it is skipped until the secret is gone or allowed")
    approvals.set_held_extras(held_extras)
    return lines
