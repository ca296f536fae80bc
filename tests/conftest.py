from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from testing.machine import Machine, bare_remote, project


@pytest.fixture(autouse=True)
def hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the real HOME, XDG folders, git config or Claude folder (git-revise's seal),
    and nothing a test or its subprocesses put in a temporary folder lands in /tmp."""
    temp = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in [("XDG_CONFIG_HOME", ".config"), ("XDG_STATE_HOME", ".local/state"),
                     ("XDG_CACHE_HOME", ".cache"), ("XDG_DATA_HOME", ".local/share")]:
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home / ".claude"))
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                         "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
                         "[protocol \"file\"]\n\tallow = always\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_EDITOR", "false")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("NO_COLOR", "1")
    for var in ("GITEND_CONFIG", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "CLAUDE_PROJECT_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A dotfile repo's bare remote, with one commit on main."""
    return bare_remote(tmp_path / "dots.git")


@pytest.fixture
def laptop(hermetic: Path, remote: Path) -> Machine:
    """This test's machine, with memory.repo cloned from `remote`."""
    machine = Machine(hermetic)
    machine.configure(remote)
    return machine


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """A project whose origin is github.com/someone/project."""
    return project(tmp_path / "project")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow (long stress and scale runs) run only with GITEND_SLOW=1."""
    if os.environ.get("GITEND_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="a long stress run: set GITEND_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    from testing import claude

    cached = "cached" if claude.binary().exists() else "installed from npm on first use"
    return f"Claude Code CLI for tests/test_claude_cli.py: {claude.VERSION} ({cached} in {claude.cache_dir()})"
