"""The only place that runs git.

Every call goes through `run()`: inherited `GIT_*` variables that could point git at another
repository or index are scrubbed, no hook runs, nothing signs, nothing prompts, and a time
limit kills the whole process group. Plain subprocess rather than GitPython: gitend uses only
plumbing, and importing GitPython costs ~60 ms of the hook's 1.5 s budget (README,
"Dependencies").
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitend.errors import GitendError

# Variables that configure transport or identity, not which repository git works on.
_KEEP_ENV = {
    "GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_PROXY_COMMAND",
    "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_NO_VERIFY", "GIT_SSL_CERT", "GIT_SSL_KEY",
    "GIT_HTTP_PROXY_AUTHMETHOD", "GIT_HTTP_USER_AGENT", "GIT_ALLOW_PROTOCOL",
    "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE",
    "GIT_TRACE", "GIT_TRACE2", "GIT_TRACE2_EVENT", "GIT_TRACE_PERFORMANCE", "GIT_CURL_VERBOSE",
}

# `-c` options for every call: no hooks (`post-index-change` and `reference-transaction`
# fire even for plumbing on a temporary index), no signing, no split-index side files.
_CONFIG = (
    "-c", f"core.hooksPath={os.devnull}",
    "-c", "commit.gpgSign=false",
    "-c", "core.splitIndex=false",
    "-c", "advice.addEmbeddedRepo=false",
    "-c", "core.quotePath=false",
)

FALLBACK_IDENT = {
    "GIT_AUTHOR_NAME": "gitend", "GIT_AUTHOR_EMAIL": "gitend@localhost",
    "GIT_COMMITTER_NAME": "gitend", "GIT_COMMITTER_EMAIL": "gitend@localhost",
}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C", LANGUAGE="C")
    env.pop("GIT_ASKPASS", None)
    env.pop("SSH_ASKPASS", None)
    if extra:
        env.update(extra)
    return env


class GitError(GitendError):
    def __init__(self, args: Sequence[str], returncode: int, stderr: bytes, stdout: bytes = b"") -> None:
        self.returncode = returncode
        self.stderr = stderr.decode("utf-8", "replace").strip()
        self.stdout = stdout.decode("utf-8", "replace").strip()
        first = next((line.strip() for line in self.stderr.splitlines() if line.strip()), f"exit status {returncode}")
        # `push --porcelain` gives the reason a ref was refused on stdout, not stderr:
        # "!<TAB>src:dst<TAB>[remote rejected] (pre-receive hook declined)".
        refused = [line.split("\t") for line in self.stdout.splitlines() if line.startswith("!\t")]
        if refused and len(refused[0]) == 3 and first.startswith("error: failed to push"):
            first = f"{refused[0][1].rpartition(':')[2]} {refused[0][2]}"
        first = first.removeprefix("fatal: ").removeprefix("error: ")
        super().__init__(f"git {args[0] if args else ''} failed: {first}")


class GitTimeout(GitendError):
    pass


def run(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git <args>`; raise GitError on a non-zero exit unless check=False."""
    command = ["git", *_CONFIG, *args]
    try:
        proc = subprocess.Popen(
            command, cwd=cwd, env=clean_env(env),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            # A session of its own, so a time limit can kill ssh and remote helpers too.
            start_new_session=timeout is not None,
        )
    except FileNotFoundError:
        raise GitendError("git was not found on PATH; install git 2.38 or newer") from None
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise GitTimeout(f"git {args[0]} took longer than {timeout:g} s and was stopped") from None
    except BaseException:
        # Ctrl-C or SIGTERM: stop git (SIGTERM: it removes its own lock files on the way out),
        # with its ssh or remote helper when it runs in a group of its own.
        if timeout is not None:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait()
        raise
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, err, out)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def zsplit(data: bytes) -> list[str]:
    return [os.fsdecode(part) for part in data.split(b"\0") if part]


_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
              '"': '\\"', "\\": "\\\\"}


def is_url(remote: str) -> bool:
    """A remote given as a URL or path (push_remote may be one) rather than a configured name."""
    return "/" in remote or ":" in remote


def quote_path(path: str) -> str:
    """A path as git shows it with core.quotePath=false: as it is, unless it holds a control
    character, a quote, a backslash or bytes that are not UTF-8 (a latin-1 name from an old
    zip); then in double quotes with C escapes, e.g. "caf\\351.txt". Paths stay bytes (decoded
    with surrogateescape) everywhere else; this is only for showing them."""
    shown = []
    for char in path:
        if "\udc80" <= char <= "\udcff":  # a byte that is not UTF-8
            shown.append(f"\\{ord(char) - 0xDC00:03o}")
        elif char in _C_ESCAPES:
            shown.append(_C_ESCAPES[char])
        elif char < " " or char == "\x7f":
            shown.append(f"\\{ord(char):03o}")
        else:
            shown.append(char)
    quoted = "".join(shown)
    return quoted if quoted == path else f'"{quoted}"'


def show_bytes(text: str) -> str:
    """git's output with paths in it, bytes that are not UTF-8 shown as octal escapes."""
    return re.sub("[\udc80-\udcff]", lambda byte: f"\\{ord(byte[0]) - 0xDC00:03o}", text)


def zjoin(paths: Iterable[str]) -> bytes:
    """Paths for a `-z --stdin` git command."""
    return b"".join(os.fsencode(p) + b"\0" for p in paths)


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    committer_time: int
    committer_tz: str
    message: str


def _parse_commit(sha: str, raw: bytes) -> Commit:
    header, _, message = raw.partition(b"\n\n")
    tree, parents, when, tz = "", [], 0, "+0000"
    for line in header.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"tree":
            tree = value.decode()
        elif key == b"parent":
            parents.append(value.decode())
        elif key == b"committer":
            when, tz = _committer_date(value)
    return Commit(sha, tree, tuple(parents), when, tz, message.decode("utf-8", "replace"))


_LATEST_DATE = 253402300799  # 9999-12-31T23:59:59Z, the last second `datetime` can show
_TZ = re.compile(rb"[+-]([01]\d|2[0-3])[0-5]\d")


def _committer_date(ident: bytes) -> tuple[int, str]:
    """(seconds, "+hhmm") from `Name <email> <seconds> <tz>`. A fetched commit can carry
    anything there (git's own fsck lets much of it through): what is not a date git could
    have written reads as 0 (1970) or +0000, so a forged commit never stops a listing."""
    stamp = ident.rsplit(b">", 1)[-1].split()
    when = int(stamp[0]) if stamp and stamp[0].isdigit() and len(stamp[0]) <= 12 else 0
    tz = stamp[1] if len(stamp) > 1 and _TZ.fullmatch(stamp[1]) else b"+0000"
    return min(when, _LATEST_DATE), tz.decode()


@dataclass(frozen=True)
class StatusEntry:
    """One record of `git status --porcelain=v2`."""

    kind: str  # "1" ordinary, "u" unmerged, "?" untracked
    xy: str  # staged and unstaged status letters, "." for none
    submodule: str  # "N..." or "S<commit changed><modified><untracked>"
    path: str


IN_PROGRESS = {
    "MERGE_HEAD": "a merge", "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase", "rebase-apply": "a rebase or am", "BISECT_LOG": "a bisect",
}


@dataclass(frozen=True)
class Head:
    ref: str | None  # "refs/heads/main", None when detached
    sha: str | None  # the detached commit; for a branch, look the ref up


class Repo:
    """A work tree and its git directories, resolved once."""

    def __init__(self, root: Path, git_dir: Path, common_dir: Path) -> None:
        self.root = root
        self.git_dir = git_dir  # per-worktree: index, HEAD, in-progress state
        self.common_dir = common_dir  # shared: objects, refs
        self._object_env: dict[str, str] = {}  # set inside quarantine()

    @classmethod
    def find(cls, path: str | os.PathLike[str]) -> Repo:
        if not os.path.isdir(path):
            raise GitendError(f"{path} is not a directory; nothing to do there")
        proc = run(["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-dir", "--git-common-dir"],
                   cwd=path, check=False)
        lines = os.fsdecode(proc.stdout).splitlines()
        if proc.returncode != 0 or len(lines) != 3:
            message = proc.stderr.decode("utf-8", "replace")
            if "dubious ownership" in message:
                raise GitendError(f"git refuses {path}: dubious ownership; "
                                  "see `git config --global --add safe.directory`")
            raise GitendError(f"{path} is not inside a git work tree")
        return cls(Path(lines[0]), Path(lines[1]), Path(lines[2]))

    @property
    def is_linked_worktree(self) -> bool:
        return self.git_dir != self.common_dir

    @property
    def main_root(self) -> Path:
        """The main worktree's root: the project, whichever worktree this is."""
        return self.common_dir.parent if self.common_dir.name == ".git" else self.root

    @property
    def worktree_id(self) -> str:
        return self.git_dir.name if self.is_linked_worktree else ""

    def identity_env(self) -> dict[str, str]:
        """{} when user.name and user.email are set; gitend's own identity otherwise."""
        ok = run(["var", "GIT_COMMITTER_IDENT"], cwd=self.root, check=False).returncode == 0
        ok = ok and run(["var", "GIT_AUTHOR_IDENT"], cwd=self.root, check=False).returncode == 0
        return {} if ok else dict(FALLBACK_IDENT)

    def batch_ssh_env(self) -> dict[str, str]:
        """For network commands: ssh never asks anything (the user's ssh command kept)."""
        ssh = os.environ.get("GIT_SSH_COMMAND") or self.text("config", "core.sshCommand", check=False) or "ssh"
        return {"GIT_SSH_COMMAND": f"{ssh} -o BatchMode=yes -o ConnectTimeout=15"}

    def git(self, *args: str, input: bytes | None = None, index: Path | None = None, check: bool = True,
            timeout: float | None = None, env: dict[str, str] | None = None) -> bytes:
        extra = {**self._object_env, **(env or {})}
        if index is not None:
            extra["GIT_INDEX_FILE"] = str(index)
        return run(args, cwd=self.root, input=input, env=extra, check=check, timeout=timeout).stdout

    def text(self, *args: str, **kwargs: object) -> str:
        return os.fsdecode(self.git(*args, **kwargs)).strip()  # type: ignore[arg-type]

    def status(self, *options: str, index: Path | None = None) -> list[StatusEntry]:
        """`git status --porcelain=v2`, untracked files listed one by one (renames as delete and add)."""
        out = self.git("status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames", *options,
                       index=index)
        entries = []
        for record in zsplit(out):
            kind = record[0]
            if kind in ("1", "u"):
                fields = record.split(" ", 8 if kind == "1" else 10)
                entries.append(StatusEntry(kind, fields[1], fields[2], fields[-1]))
            elif kind == "?":
                entries.append(StatusEntry(kind, "??", "N...", record[2:]))
        return entries

    def in_progress(self) -> str | None:
        """The operation (a merge, a rebase, ...) this work tree is in the middle of, if any."""
        return next((what for marker, what in IN_PROGRESS.items() if (self.git_dir / marker).exists()), None)

    # -- refs ---------------------------------------------------------------

    def head(self) -> Head:
        """HEAD read from its file (no process); git itself when the file is unusual."""
        try:
            content = (self.git_dir / "HEAD").read_text().strip()
        except OSError:
            content = ""
        if content.startswith("ref: "):
            return Head(content[5:], None)
        if len(content) in (40, 64) and all(c in "0123456789abcdef" for c in content):
            return Head(None, content)
        ref = self.text("symbolic-ref", "-q", "HEAD", check=False) or None
        return Head(ref, None if ref else self.resolve("HEAD"))

    def resolve(self, rev: str) -> str | None:
        proc = run(["rev-parse", "-q", "--verify", "--end-of-options", f"{rev}^{{commit}}"], cwd=self.root, check=False)
        if proc.returncode != 0:
            return None
        return os.fsdecode(proc.stdout).strip() or None

    def refs(self, *patterns: str) -> dict[str, str]:
        """{refname: sha} for refs matching for-each-ref patterns."""
        out = self.git("for-each-ref", "--format=%(objectname) %(refname)", *patterns)
        return {ref: sha for sha, _, ref in (line.partition(" ") for line in os.fsdecode(out).splitlines())}

    def update_ref(self, ref: str, new: str, old: str | None, reason: str) -> bool:
        """Compare-and-swap `ref` from `old` (None: must not exist) to `new`; False if it moved."""
        proc = run(["update-ref", "--create-reflog", "-m", reason, ref, new, old or self.null_sha],
                   cwd=self.root, check=False)
        if proc.returncode == 0:
            return True
        if self.resolve(ref) != old:
            return False
        raise GitError(["update-ref"], proc.returncode, proc.stderr)

    @property
    def null_sha(self) -> str:
        return "0" * 40 if len(self.empty_tree) == 40 else "0" * 64

    # -- objects ------------------------------------------------------------

    @property
    def empty_tree(self) -> str:
        """The empty tree, written to the object store (fsck reports it missing otherwise)."""
        if not hasattr(self, "_empty_tree"):
            sha1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
            loose = self.common_dir / "objects" / sha1[:2] / sha1[2:]
            self._empty_tree = sha1 if loose.exists() else self.text("mktree", input=b"")
        return self._empty_tree

    def write_tree(self, index: Path) -> str:
        return self.text("write-tree", index=index)

    def update_index(self, index: Path, paths: Iterable[str], *, add: bool) -> None:
        """Record the work tree's version of `paths` (missing ones are removed, and so are ones
        beyond a symlink: git refuses to read through one, as when a tracked folder was
        replaced by a symlink, which is then saved as what it is)."""
        paths = list(paths)
        beyond = self._beyond_symlink(paths)
        data = zjoin(p for p in paths if p not in beyond)
        if data:
            flags = ["--add"] if add else []
            self.git("update-index", "-z", *flags, "--remove", "--stdin", input=data, index=index)
        if beyond:
            self.git("update-index", "-z", "--force-remove", "--stdin", input=zjoin(sorted(beyond)), index=index)

    def _beyond_symlink(self, paths: list[str]) -> set[str]:
        """The paths with a symlink among the folders above them in the work tree."""
        linked: dict[str, bool] = {}

        def is_link(folder: str) -> bool:
            if folder not in linked:
                linked[folder] = os.path.islink(self.root / folder)
            return linked[folder]

        return {path for path in paths
                if any(is_link(path[:i]) for i, char in enumerate(path) if char == "/")}

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree]
        raw = message.encode("utf-8", "surrogateescape")  # a stray undecodable byte never costs a save
        for parent in parents:
            args += ["-p", parent]
        try:
            return self.text(*args, input=raw)
        except GitError as exc:
            if "identity" not in exc.stderr and "email" not in exc.stderr and "name" not in exc.stderr:
                raise
            # No user.name/user.email configured: still save the work.
            return self.text(*args, input=raw, env=FALLBACK_IDENT)

    @contextmanager
    def reader(self) -> Iterator[CommitReader]:
        with CommitReader(self) as reader:
            yield reader

    # -- the temporary index --------------------------------------------------

    TEMP_PREFIX = "gitend-index."

    @contextmanager
    def temp_index(self, *, seed: bool) -> Iterator[Path]:
        """A private index file in this worktree's git dir, seeded from a copy of the real one.

        Copying keeps git's stat cache (only changed files are re-hashed) and never takes
        `index.lock`; git replaces the real index by rename, so the copy is a consistent
        version even while the user's git is writing.
        """
        path = self.git_dir / f"{self.TEMP_PREFIX}{os.getpid()}.{os.urandom(4).hex()}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise GitendError(f"cannot write a temporary index in {self.git_dir} ({exc.strerror or exc})") from None
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    if seed:
                        try:
                            with open(self.git_dir / "index", "rb") as real:
                                data = real.read()
                                stamp = os.fstat(real.fileno())
                        except FileNotFoundError:
                            data = b""  # no index yet: start empty
                        if data and not _intact_index(data):
                            raise GitendError(f"the index {self.git_dir / 'index'} is corrupt (its checksum does "
                                              "not match); gitend leaves it alone: see `git status`")
                        if data:
                            out.write(data)
                            out.flush()
                            # Keep the real index's mtime: git's racy-clean check compares file
                            # mtimes with it, and a newer copy would hide same-second edits.
                            os.utime(out.fileno(), ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
            except OSError as exc:
                raise GitendError(f"cannot write the temporary index {path} ({exc.strerror or exc})") from None
            if path.stat().st_size == 0:
                path.unlink()  # git reads a missing index as empty; an empty file is "corrupt"
            yield path
        finally:
            for leftover in (path, Path(f"{path}.lock")):
                try:
                    leftover.unlink()
                except FileNotFoundError:
                    pass

    def remove_stale_temp_indexes(self) -> list[str]:
        """Delete temporary indexes and object quarantines of gitend runs that were killed.
        Call under the worktree lock."""
        removed = []
        for folder, prefix in ((self.git_dir, self.TEMP_PREFIX), (self.common_dir / "objects", self.QUARANTINE_PREFIX)):
            for path in folder.glob(prefix + "*"):
                pid = path.name[len(prefix):].split(".", 1)[0]
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                    removed.append(path.name)
        return removed

    # -- the object quarantine ------------------------------------------------

    QUARANTINE_PREFIX = "gitend-incoming."

    @contextmanager
    def quarantine(self) -> Iterator[None]:
        """Objects written inside the block go to a private folder, and into the object store
        only when the block succeeds, as git's own receive-pack does. A save that fails half-way
        (a full disk) leaves nothing behind, and what it deletes is exactly what it wrote:
        no other process can have seen, let alone referenced, those objects."""
        objects = self.common_dir / "objects"
        folder = objects / f"{self.QUARANTINE_PREFIX}{os.getpid()}.{os.urandom(4).hex()}"
        try:
            folder.mkdir()
        except OSError as exc:
            raise GitendError(f"cannot write to the object store {objects} ({exc.strerror or exc})") from None
        self._object_env = {"GIT_OBJECT_DIRECTORY": str(folder), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)}
        try:
            yield
            self._object_env = {}
            _migrate_objects(folder, objects)
        finally:
            self._object_env = {}
            shutil.rmtree(folder, ignore_errors=True)


def _migrate_objects(folder: Path, objects: Path) -> None:
    """Move quarantined objects into the store by rename (one already there is the same
    object, so replacing it is harmless), packs before their indexes so no index names a
    missing pack."""
    loose = [p for p in folder.glob("[0-9a-f][0-9a-f]/*") if not p.name.startswith("tmp_")]
    packs = sorted(folder.glob("pack/pack-*"), key=lambda p: p.suffix == ".idx")
    for path in loose + packs:
        target = objects / path.relative_to(folder)
        try:
            os.replace(path, target)
        except FileNotFoundError:  # its fan-out folder is not there yet
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)


def _intact_index(data: bytes) -> bool:
    """The index's signature and trailing checksum (SHA-1 or SHA-256; zeros under index.skipHash)
    hold. git checks only the header when it reads an index, so it may act on a damaged one."""
    if not data.startswith(b"DIRC"):
        return False
    view = memoryview(data)
    return any(len(data) > 12 + size and (not any(data[-size:]) or algo(view[:-size]).digest() == data[-size:])
               for size, algo in ((20, hashlib.sha1), (32, hashlib.sha256)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CommitReader:
    """One `git cat-file --batch` process for reading many commits."""

    def __init__(self, repo: Repo) -> None:
        self._proc = subprocess.Popen(
            ["git", *_CONFIG, "cat-file", "--batch"], cwd=repo.root, env=clean_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> CommitReader:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.close()
        self._proc.stdout.close()
        self._proc.wait()

    def commit(self, rev: str) -> Commit | None:
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(rev.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if len(header) != 3:
            return None  # "<rev> missing" or "ambiguous"
        sha, kind, size = header[0].decode(), header[1], int(header[2])
        body = self._proc.stdout.read(size + 1)[:-1]
        return _parse_commit(sha, body) if kind == b"commit" else None
