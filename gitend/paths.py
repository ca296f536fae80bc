"""Where gitend and Claude Code keep things: the only place that reads these env vars."""
from __future__ import annotations

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


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "gitend"


def log_file() -> Path:
    return state_dir() / "gitend.log"


def claude_dir() -> Path:
    explicit = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(explicit).expanduser() if explicit else Path.home() / ".claude"
