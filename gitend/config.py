"""Layered YAML config: built-in defaults < user file < the repository's `.gitend.yaml`.

The defaults here and the shipped `config/default.yaml` say the same thing; a test keeps
them equal. PyYAML is imported only when there is a file to read (hook start-up time).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitend import output, paths
from gitend.errors import GitendError

REPO_FILE = ".gitend.yaml"
MAX_FILE_BYTES = 64 << 10  # a config is a few hundred bytes; parsing megabytes would blow the hook's budget


@dataclass(frozen=True)
class Snapshot:
    enabled: bool = True
    branch_prefix: str = "wip/"
    # true: untracked files that are not ignored, except where a repository says otherwise
    # (its root is the home folder, or status.showUntrackedFiles=no); "always": even there.
    include_untracked: bool | str = True
    max_file_mb: float = 50.0
    push_remote: str | None = None
    keep_days: int = 30
    keep: int = 20


@dataclass(frozen=True)
class Memory:
    enabled: bool = True
    repo: str | None = None
    path: str = "claude/memory"
    remote: str = "origin"
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Push:
    background: bool = True
    skip_reasons: tuple[str, ...] = ("clear",)
    timeout_s: float = 60.0
    host: str | None = None  # this machine's name on remotes (null: its host name)


@dataclass(frozen=True)
class Review:
    on_finding: str = "hold"
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transcript:
    head_kb: int = 256
    tail_kb: int = 1024


@dataclass(frozen=True)
class Config:
    snapshot: Snapshot = field(default_factory=Snapshot)
    memory: Memory = field(default_factory=Memory)
    push: Push = field(default_factory=Push)
    review: Review = field(default_factory=Review)
    transcript: Transcript = field(default_factory=Transcript)
    sources: tuple[str, ...] = ()


SECTIONS: dict[str, Any] = {f.name: f.default_factory for f in dataclasses.fields(Config) if f.name != "sources"}
# A repository may tune how it is snapshotted, never where anything is pushed.
REPO_KEYS = {"snapshot": {"enabled", "branch_prefix", "include_untracked", "max_file_mb"}}


def _check_value(annotation: str, value: Any) -> tuple[bool, Any, str]:
    """(ok, normalized value, what was expected) for one annotated field type."""
    if annotation == "bool":
        return isinstance(value, bool), value, "true or false"
    if annotation == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return ok, value, "a whole number"
    if annotation == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False, value, "a number"
        try:
            number = float(value)
        except OverflowError:  # a whole number too big for a float
            number = math.inf
        return math.isfinite(number), number, "a finite number"
    if annotation == "str":
        return isinstance(value, str), value, "a string"
    if annotation == "bool | str":
        return isinstance(value, bool) or value == "always", value, "true, false or 'always'"
    if annotation == "str | None":
        return value is None or isinstance(value, str), value, "a string or null"
    if annotation == "tuple[str, ...]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value, "a list of strings"
    raise AssertionError(annotation)


_BAD_REF_CHARS = re.compile(r"[\s~^:?*\[\\]|\.\.|@\{|//|^/")

# Limits beyond the type: (predicate, what it must be).
_LIMITS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "snapshot.branch_prefix": (lambda v: v != "" and not _BAD_REF_CHARS.search(v), "a valid ref prefix such as 'wip/'"),
    "snapshot.max_file_mb": (lambda v: 0 < v <= 1 << 20, "greater than 0 and at most 1048576"),
    "snapshot.keep_days": (lambda v: 0 <= v <= 36500, "between 0 and 36500 (0: no snapshot is kept for its age)"),
    "snapshot.keep": (lambda v: 1 <= v <= 1_000_000, "at least 1 (the newest snapshot is never pruned) "
                                                     "and at most 1000000"),
    "push.timeout_s": (lambda v: 0 < v <= 3600, "greater than 0 and at most 3600"),
    "review.on_finding": (lambda v: v in ("hold", "redact"), "'hold' or 'redact'"),
    "review.allow": (lambda v: all(map(_is_regex, v)), "a list of valid regular expressions"),
    "push.host": (lambda v: v is None or re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}", v) is not None,
                  "a machine name of letters, digits, '.', '_' and '-'"),
    "transcript.head_kb": (lambda v: 0 <= v <= 1 << 20, "between 0 and 1048576"),
    "transcript.tail_kb": (lambda v: 0 <= v <= 1 << 20, "between 0 and 1048576"),
    "memory.path": (lambda v: v.strip("/") != "" and ".." not in Path(v).parts and not Path(v).is_absolute(),
                    "a relative folder inside the dotfile repo"),
}


def _is_regex(rule: str) -> bool:
    try:
        re.compile(rule)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 2, 4, 4


def _shown(value: Any) -> str:
    """A value for a one-line message: quoted, escaped, and short (a YAML alias bomb is tiny
    on disk and gigantic in full)."""
    return _SHORT.repr(value)


def _merge(base: dict[str, dict[str, Any]], data: Any, source: Path, allowed: dict[str, set[str]] | None) -> None:
    if data is None:
        return
    if not isinstance(data, dict):
        raise GitendError(f"config error in {source}: the top level must be a mapping of sections")
    for section, values in data.items():
        if section not in SECTIONS:
            raise GitendError(f"config error in {source}: unknown key {_shown(section)} "
                              f"(sections: {', '.join(SECTIONS)})")
        if allowed is not None and section not in allowed:
            raise GitendError(f"config error in {source}: a repository's {REPO_FILE} may set only "
                              f"'snapshot' keys, not {_shown(section)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise GitendError(f"config error in {source}: '{section}' must be a mapping of keys")
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
        for key, value in values.items():
            name = f"{section}.{key}"
            if key not in fields:
                raise GitendError(f"config error in {source}: unknown key {_shown(name)}")
            if allowed is not None and key not in allowed[section]:
                raise GitendError(f"config error in {source}: a repository's {REPO_FILE} may not set '{name}'")
            if allowed is not None and name == "snapshot.include_untracked" and value == "always":
                # Overriding a home folder's or status.showUntrackedFiles=no's choice is the user's call.
                raise GitendError(f"config error in {source}: only your own config may set '{name}: always'")
            ok, normalized, expected = _check_value(str(fields[key].type), value)
            limit = _LIMITS.get(name)
            if ok and limit and not limit[0](normalized):
                ok, expected = False, limit[1]
            if not ok:
                raise GitendError(f"config error in {source}: '{name}' must be {expected}, got {_shown(value)}")
            base[section][key] = normalized


def _read_yaml(path: Path) -> Any:
    import yaml  # deferred: most hook runs have no file to read

    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise GitendError(f"config error in {path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise GitendError(f"config error in {path}: larger than {MAX_FILE_BYTES >> 10} KiB, too big to be a "
                          "gitend config; shorten or remove it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise GitendError(f"config error in {path}: not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: ~10x faster
    except RecursionError:
        raise GitendError(f"config error in {path}: nested too deeply to be a gitend config") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise GitendError(f"config error in {path}: not valid YAML{at}; fix or remove the file") from None


def load(repo_root: Path | None = None) -> Config:
    """The effective config for a repository (or for no repository)."""
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    sources = []
    layers: list[tuple[Path, dict[str, set[str]] | None]] = [(paths.config_file(), None)]
    if repo_root is not None:
        layers.append((repo_root / REPO_FILE, REPO_KEYS))
    for path, allowed in layers:
        if not os.path.lexists(path):
            continue
        if not path.is_file():
            raise GitendError(f"config error in {path}: not a file; remove it or make it a YAML file")
        _merge(values, _read_yaml(path), path, allowed)
        sources.append(str(path))
    return Config(**{name: SECTIONS[name](**values[name]) for name in SECTIONS}, sources=tuple(sources))


def error(repo_root: Path | None = None) -> str | None:
    """What is wrong with the config (None: nothing)."""
    try:
        load(repo_root)
    except GitendError as exc:
        return str(exc)
    return None


def load_or_defaults(repo_root: Path | None = None) -> Config:
    """The config for a command that only reads: a broken file is said once on stderr, and the
    user's file (then the built-in defaults) is used instead, so looking never stops working."""
    try:
        return load(repo_root)
    except GitendError as exc:
        problem = exc
    try:
        cfg = load(None) if repo_root is not None else Config()
    except GitendError:
        cfg = Config()
    output.error(f"{problem}; going on with {cfg.sources[0] if cfg.sources else 'the built-in defaults'}")
    return cfg


def host(settings: Push | None = None) -> str:
    """This machine's name, as it appears in file and branch names: push.host, else its host name."""
    if settings and settings.host:
        return settings.host
    import socket  # only where a host name is needed

    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "host"
