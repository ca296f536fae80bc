"""Every file in hooks-examples/ and .pre-commit-hooks.yaml is valid and names commands that exist."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitend.installed import pre_push_script
from testing.repo import gitend

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "hooks-examples"
SETTINGS = sorted(EXAMPLES.glob("*.json"))
EVENTS = {"SessionEnd", "Stop", "SessionStart", "PreToolUse"}


def handlers(settings: dict[str, Any]) -> list[dict[str, Any]]:
    return [hook for groups in settings["hooks"].values() for group in groups for hook in group["hooks"]]


def check_hooks_structure(settings: Any) -> None:
    assert isinstance(settings, dict) and set(settings) == {"hooks"}
    assert isinstance(settings["hooks"], dict) and set(settings["hooks"]) <= EVENTS
    assert "SessionEnd" in settings["hooks"]
    for event, groups in settings["hooks"].items():
        assert isinstance(groups, list) and groups, event
        for group in groups:
            assert set(group) <= {"matcher", "hooks"}, group
            if event == "Stop":
                assert "matcher" not in group  # Stop takes no matcher
            assert isinstance(group.get("matcher", ""), str)
            assert isinstance(group["hooks"], list) and group["hooks"]
            for hook in group["hooks"]:
                # Exec form, with a timeout; `if` filters only on PreToolUse (elsewhere the entry never runs).
                assert set(hook) - {"if"} == {"type", "command", "args", "timeout"}, hook
                assert ("if" in hook) == (event == "PreToolUse"), hook
                assert hook["type"] == "command"
                assert isinstance(hook["command"], str) and isinstance(hook["args"], list) and hook["args"]
                assert all(isinstance(arg, str) for arg in hook["args"])
                assert isinstance(hook["timeout"], int) and 1.5 < hook["timeout"] <= 60


def assert_gitend_subcommand(words: list[str]) -> None:
    assert words[0] == "gitend", words
    proc = gitend(words[1], "--help")
    assert proc.returncode == 0, f"`gitend {words[1]} --help` failed: {proc.stderr}"


def test_the_examples_are_all_there() -> None:
    names = {path.name for path in EXAMPLES.iterdir()}
    assert {"settings-installed.json", "settings-all-reasons.json", "settings-clear-only.json",
            "settings-per-reason.json",
            "settings-with-stop.json", "project-claude-settings.json", "dotfiles-pre-push",
            "pre-commit-config.yaml", "README.md"} <= names
    readme = (EXAMPLES / "README.md").read_text()
    assert all(name in readme for name in names - {"README.md"})


@pytest.mark.parametrize("path", SETTINGS, ids=[p.name for p in SETTINGS])
def test_settings_example_is_a_valid_hooks_structure_naming_real_commands(path: Path) -> None:
    settings = json.loads(path.read_text(encoding="utf-8"))
    check_hooks_structure(settings)
    for hook in handlers(settings):
        assert_gitend_subcommand([hook["command"], *hook["args"]])


def test_the_examples_show_what_they_say() -> None:
    def load(name: str) -> dict[str, Any]:
        return json.loads((EXAMPLES / name).read_text())["hooks"]

    assert [g["matcher"] for g in load("settings-all-reasons.json")["SessionEnd"]] == ["*"]
    assert [g["matcher"] for g in load("settings-clear-only.json")["SessionEnd"]] == ["clear"]
    per_reason = [g["matcher"] for g in load("settings-per-reason.json")["SessionEnd"]]
    assert per_reason[0] == "clear"
    assert set(per_reason[1].split("|")) == {"logout", "prompt_input_exit", "resume", "other"}
    with_stop = load("settings-with-stop.json")
    assert set(with_stop) == {"SessionEnd", "Stop"}
    assert [h["args"] for g in with_stop["Stop"] for h in g["hooks"]] == [["hook"]]


def test_installed_example_is_what_install_adds(hermetic: Path) -> None:
    from gitend.commands import install

    install.install(None, None, None)
    written = json.loads((hermetic / ".claude" / "settings.json").read_text())
    example = json.loads((EXAMPLES / "settings-installed.json").read_text())
    for hook in handlers(written):
        hook["command"] = Path(hook["command"]).name
    assert written == example
    assert example["hooks"]["SessionEnd"] == json.loads((EXAMPLES / "settings-all-reasons.json").read_text())[
        "hooks"]["SessionEnd"]


def test_the_pre_push_example_is_the_script_install_writes() -> None:
    example = (EXAMPLES / "dotfiles-pre-push").read_text()
    assert example == pre_push_script("gitend")
    assert (EXAMPLES / "dotfiles-pre-push").stat().st_mode & 0o111
    line = next(line for line in example.splitlines() if line.startswith("gitend "))
    assert_gitend_subcommand(shlex.split(line))
    assert "--pre-push" in gitend("review", "--help").stdout


def test_pre_commit_hooks_yaml_defines_gitend_scan() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hooks, list)
    scan = next(hook for hook in hooks if hook["id"] == "gitend-scan")
    assert {"id", "name", "entry", "language", "description"} <= set(scan)
    assert scan["language"] == "python" and scan["types"] == ["text"]
    assert_gitend_subcommand(shlex.split(scan["entry"]))


def test_pre_commit_config_example_uses_the_hook_id() -> None:
    config = yaml.safe_load((EXAMPLES / "pre-commit-config.yaml").read_text())
    ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    offered = {hook["id"] for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert "gitend-scan" in ids and ids <= offered
    assert all({"repo", "rev", "hooks"} <= set(repo) for repo in config["repos"])


def test_gitend_scan_as_pre_commit_runs_it_blocks_a_secret_and_passes_clean_files(tmp_path: Path) -> None:
    """What pre-commit does with the entry: append the staged file names."""
    entry = shlex.split(yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]["entry"])
    clean = tmp_path / "clean.txt"
    clean.write_text("nothing to see here\n")
    leaky = tmp_path / "leaky.txt"
    leaky.write_text("token = ghp_" + "NqVwYS81VP7Hb1DX8pPd5khxE3pyIgKpaUnA" + "\n")  # random: a1B2c3-style values are dummies
    assert gitend(*entry[1:], str(clean)).returncode == 0
    assert gitend(*entry[1:], str(clean), str(leaky)).returncode == 1
