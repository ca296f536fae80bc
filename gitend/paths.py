"""Where gitend and Claude Code keep things: the only place that reads these env vars, and
the one list of every file gitend keeps."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def config_file() -> Path:
    explicit = os.environ.get("GITEND_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return _xdg("XDG_CONFIG_HOME", ".config") / "gitend" / "config.yaml"


def claude_dir() -> Path:
    explicit = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(explicit).expanduser() if explicit else Path.home() / ".claude"


# -- gitend's state: $XDG_STATE_HOME/gitend/ ----------------------------------------------


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "gitend"


def log_file() -> Path:
    return state_dir() / "gitend.log"


def queue_dir() -> Path:
    """One JSON file per background job; unreadable ones are set aside in corrupt/."""
    return state_dir() / "queue"


def worker_lock() -> Path:
    return state_dir() / "worker.lock"


def hooks_lock() -> Path:
    """Held shared by every running hook: the worker waits until none is."""
    return state_dir() / "hooks.lock"


def results_file() -> Path:
    """The newest result per background target, for `gitend status`."""
    return state_dir() / "results.json"


def review_key() -> Path:
    """The local key that approval hashes are made with."""
    return state_dir() / "review.key"


def approvals_file() -> Path:
    return state_dir() / "approvals.json"


def blocked_file() -> Path:
    """Manual pushes the dotfile repo's pre-push hook blocked, per repository."""
    return state_dir() / "blocked.json"


def held_extras_file() -> Path:
    """memory.extra sources skipped for a finding."""
    return state_dir() / "held-extras.json"


def no_push_remote_file() -> Path:
    """Repositories whose WIP branches are not pushed, for want of snapshot.push_remote: said once."""
    return state_dir() / "no-push-remote.json"


def manifest_file(key: str) -> Path:
    """What this machine last mirrored of one project's notes."""
    name = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return state_dir() / "memory" / f"{name}.json"


def worktrees_dir() -> Path:
    """Private worktrees for rebasing the dotfile repo."""
    return state_dir() / "worktrees"


def sessions_dir() -> Path:
    """One record per open Claude Code session: one left behind is a session that never ended."""
    return state_dir() / "sessions"


def notices_file() -> Path:
    """When SessionStart last showed the user each problem (at most once a day)."""
    return state_dir() / "notices.json"


def wip_repos_file() -> Path:
    """The repositories gitend keeps WIP branches in, for `gitend status`."""
    return state_dir() / "wip-repos.json"


def install_record() -> Path:
    """What `gitend install` changed, so that uninstall undoes exactly that."""
    return state_dir() / "install.json"


# -- in a repository's git dir ----------------------------------------------------------------


def repo_lock(git_dir: Path) -> Path:
    """One gitend at a time writes a work tree's snapshot (or the dotfile repo)."""
    return git_dir / "gitend.lock"


def clone_id(common_dir: Path) -> Path:
    """A short random id of this clone (shared by its worktrees): its WIP branches' name on remotes."""
    return common_dir / "gitend" / "clone-id"
def pruned_stamp(common_dir: Path) -> Path:
    """Touched when the repository's WIP branches are pruned: the worker prunes once a day."""
    return common_dir / "gitend-pruned"


def restore_backups(git_dir: Path) -> Path:
    """Where `gitend restore --force` moves the files that were in the way."""
    return git_dir / "gitend" / "restore-backup"
