"""Claude Code's auto-memory notes: find this project's folder, and mirror it to and from a
folder in the dotfile repo by copying bytes (never symlinks, which Claude's atomic writes
would replace), through the secret gate, then commit it there. Only `*.md` notes are ever read."""
from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gitend import approvals, config, dotfiles, files, lock, paths, queue
from gitend.errors import GitendError
from gitend.git import Repo
from gitend.secrets import Finding, redact

MAX_NOTE = 1 << 20
MAX_DEPTH = 8  # folders below the memory folder that are looked into
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


def _configured_dir(project_root: Path) -> Path | None:
    """autoMemoryDirectory from the most specific settings file that sets it usefully. Never from
    the project's committed `.claude/settings.json`: a cloned repository must not choose what gitend
    copies to the dotfile remote. $HOME and its ancestors are refused (they hold far more than notes)."""
    home = os.path.realpath(Path.home())
    for settings in (project_root / ".claude" / "settings.local.json", paths.claude_dir() / "settings.json"):
        value = files.read_json(settings, {}).get("autoMemoryDirectory")
        if isinstance(value, str) and (value == "~" or value.startswith("~/")):
            value = os.path.expanduser(value)
        if not (isinstance(value, str) and os.path.isabs(value)):
            continue
        real = os.path.realpath(value)
        if real == home or home.startswith(real.rstrip(os.sep) + os.sep):
            continue
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
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", part)
    clean = re.sub(r"^\.+", lambda m: "-" * len(m.group()), clean)  # no "..", ".git" or hidden folders
    if len(clean) > 100:
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
    try:
        # O_NONBLOCK: opening a FIFO named like a note must not hang the hook.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_NOTE + 1) if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else None
    except OSError:
        return None
    return data if data is not None and len(data) <= MAX_NOTE else None


def _check_folder(folder: Path) -> None:
    if os.path.lexists(folder) and not folder.is_dir():
        raise GitendError(f"{folder} should be a folder of memory notes but is not a folder")


def list_notes(folder: Path, only: str | None = None) -> dict[str, Note]:
    """The notes under `folder` by relative path (with `only`: that one file, if it is a note)."""
    _check_folder(folder)
    notes: dict[str, Note] = {}
    walk = [(str(folder), [], [only])] if only else os.walk(folder)
    for dirpath, dirnames, filenames in walk:
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
    return notes


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


def _target(root: Path, rel: str) -> Path:
    """root/rel, refusing anything that could lead outside root."""
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or any(p in (".", "..") for p in parts):
        raise GitendError(f"refusing the unsafe memory note path {rel!r}")
    path = root
    for part in parts[:-1]:
        path = path / part
        if path.is_symlink():
            raise GitendError(f"refusing to write memory notes through the symlink {path}")
    return path / parts[-1]


def _copy(source: Path, target: Path, data: bytes | None = None) -> bool:
    """Write `data` (default: the note at `source`, read once) to `target`, atomically."""
    data = read_note(source) if data is None else data
    if data is None:  # gone or no longer a note since it was listed
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(target, data)
    return True


def apply_mirror(plan: MirrorPlan, local_folder: Path, repo_folder: Path,
                 data: dict[str, bytes] | None = None) -> None:
    """Carry out `plan`. With `data`, exactly those bytes are written (what was scanned, or its
    redacted copy), never the note as it is by now; a note missing from `data` is not written."""
    _check_folder(repo_folder)
    try:
        for rel, copy in plan.conflicts:
            if os.path.lexists(_target(repo_folder, rel)):
                os.replace(_target(repo_folder, rel), _target(repo_folder, copy))
        for rel in plan.write + tuple(rel for rel, _ in plan.conflicts):
            if data is None:
                _copy(_target(local_folder, rel), _target(repo_folder, rel))
            elif rel in data:
                _copy(local_folder / rel, _target(repo_folder, rel), data[rel])
        for rel in plan.delete:
            target = _target(repo_folder, rel)
            target.unlink(missing_ok=True)
            for parent in target.parents:
                if parent == repo_folder or any(parent.iterdir()):
                    break
                parent.rmdir()
    except OSError as exc:
        raise GitendError(f"cannot update the memory notes in {repo_folder} ({exc.strerror or exc})") from None


# -- what this machine last mirrored ----------------------------------------------

def _load(key: str) -> dict[str, Any]:
    return files.read_json(paths.manifest_file(key), {})


def _digests(value: object) -> dict[str, str] | None:
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    return None


def load_manifest(key: str) -> dict[str, str]:
    """Each note as this machine last mirrored it (its digest here)."""
    # Unknown history: nothing gets deleted, conflicts are judged by content alone.
    return _digests(_load(key).get("notes")) or {}


def load_written(key: str) -> dict[str, str]:
    """For notes whose repo copy differs from the note (redacted): the digest of that copy."""
    data = _load(key)
    return (_digests(data.get("written")) or {}) if _digests(data.get("notes")) is not None else {}


def save_manifest_digests(key: str, digests: dict[str, str], written: dict[str, str] | None = None) -> None:
    files.write_json(paths.manifest_file(key), {
        "key": key, "notes": digests,
        "written": {rel: d for rel, d in (written or {}).items() if rel in digests and d != digests[rel]}})


def save_manifest(key: str, notes: dict[str, Note], written: dict[str, str] | None = None) -> None:
    save_manifest_digests(key, {rel: note.digest for rel, note in notes.items()}, written)


# -- a new machine: from the repo folder into Claude's memory folder -------------------

@dataclass(frozen=True)
class PullResult:
    copied: tuple[str, ...]
    kept_local: tuple[str, ...]


def pull(repo_folder: Path, local_folder: Path, manifest: dict[str, str], repo_times: dict[str, float],
         written: dict[str, str] | None = None) -> PullResult:
    """Copy the repo's notes into `local_folder` where the local note is missing or stale. A local
    note whose repo copy was redacted from it (in `written`) is never replaced: the copy lacks its secret."""
    local = list_notes(local_folder)
    copied, kept = [], []
    try:
        for rel, note in sorted(list_notes(repo_folder).items()):
            here = local.get(rel)
            if _CONFLICT.search(rel) or (here is not None and here.digest == note.digest):
                continue
            try:
                target = _target(local_folder, rel)
            except GitendError:
                kept.append(rel)
                continue
            if here is None:
                stale = not os.path.lexists(target)  # a symlink or a huge file is not ours to replace
            elif written and rel in written:  # the repo's copy was redacted from this note
                if note.digest == written[rel]:
                    continue
                stale = False
            else:
                stale = here.digest == manifest.get(rel) or target.lstat().st_mtime < repo_times.get(rel, float("-inf"))
            if not stale:
                kept.append(rel)
            elif _copy(repo_folder / rel, target):
                copied.append(rel)
    except OSError as exc:
        raise GitendError(f"cannot copy memory notes into {local_folder} ({exc.strerror or exc})") from None
    return PullResult(tuple(copied), tuple(kept))


def _commit_times(repo: Repo, rel_folder: str) -> dict[str, float]:
    """The time of the last commit that touched each file under rel_folder."""
    times: dict[str, float] = {}
    stamp = 0.0
    for line in repo.text("log", "--format=%x00%ct", "--name-only", "--", rel_folder).splitlines():
        if line.startswith("\0"):
            stamp = float(line[1:])
        elif line:
            times.setdefault(line.removeprefix(rel_folder + "/"), stamp)
    return times


def pull_project(directory: str, progress: Callable[[str], None]) -> None:
    """`gitend memory pull`: this project's notes from the dotfile repo into Claude Code's
    memory folder, for a new machine. Newer local notes are kept."""
    cfg = config.load(None)
    if not cfg.memory.repo:
        raise GitendError("memory.repo is not set in the config; nothing to pull from")
    try:
        root = Repo.find(directory).main_root
    except GitendError:
        root = Path(directory).resolve()
    key = key_for(root)
    with lock.held(paths.worker_lock(), timeout=120, what="the background worker"):
        repo, branch = dotfiles.open_repo(cfg.memory.repo)
        for note in dotfiles.update(repo, branch, cfg.memory.remote, cfg.push.timeout_s).notes:
            progress(note)
        rel_folder = project_folder(cfg.memory.path.strip("/"), key)
        source = repo.root / rel_folder
        if not source.is_dir():
            raise GitendError(f"the dotfile repo has no notes for {key} (looked in {source})")
        target = notes_dir(root, Path(directory).resolve())
        written = load_written(key)
        result = pull(source, target, load_manifest(key), _commit_times(repo, rel_folder), written)
        # What was pulled counts as synced: it must not look like an edit made here.
        synced = {**load_manifest(key), **{p: n.digest for p, n in list_notes(target).items() if p in result.copied}}
        save_manifest_digests(key, synced, {p: d for p, d in written.items() if p not in result.copied})
    queue.spawn_worker_if_due(cfg.push.background)
    for path in result.copied:
        progress(f"copied {path}")
    for path in result.kept_local:
        progress(f"kept the local {path} (newer or changed here)")
    progress(f"{len(result.copied)} note(s) copied into {target}")


# -- one set of notes, through the secret gate, into the dotfile repo ---------------------------


def project_folder(folder: str, key: str) -> str:
    """One flat folder per project (`github.com+owner+repo`): keys never contain "+", so no
    project's folder can sit inside another's."""
    return f"{folder}/{key.replace('/', '+')}"


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
    written: dict[str, str]  # the manifest's digests of redacted copies in the repo

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
    local = list_notes(source, only)
    written = load_written(key)
    plan = plan_mirror(local, list_notes(target, only), load_manifest(key), written=written)
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
    return Pending(key, rel_folder, source, only, local, plan, data, texts, findings, written)


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
        if load_manifest(work.key) != {rel: note.digest for rel, note in work.local.items()}:
            save_manifest(work.key, work.local, work.written)
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
    apply_mirror(work.plan, work.source, repo.root / work.rel_folder, out)
    # Recorded before the commit: a run that stops here leaves an empty plan, and the next commits.
    rewritten = set(work.plan.write) | {rel for rel, _ in work.plan.conflicts}
    written = {rel: digest for rel, digest in work.written.items() if rel not in rewritten}
    written.update({path: hashlib.sha256(out[path]).hexdigest() for path in redacted})
    save_manifest(work.key, work.local, written)
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
