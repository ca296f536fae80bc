"""The README keeps its promises: the two set-up commands, every option, every config key."""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from gitend import cli, config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block and README.index(first_block.group(0)) < README.index("## ")
    demo, tests = first_block.group(1).strip().splitlines()
    assert demo.endswith("gitend demo") and "pip install" in demo
    # .ci/run runs the same steps, with lint and type checks (and nothing else) before the tests,
    # after .ci/claude-cli (tmux and the Claude Code CLI for tests/test_claude_cli.py).
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line and not line.startswith(("#", "set ", "cd ", ".venv/bin/ruff ", ".venv/bin/mypy", ".ci/claude-cli"))]
    assert " && ".join(steps) == tests
    assert ".venv/bin/ruff check gitend && .venv/bin/mypy\n" in (ROOT / ".ci" / "run").read_text()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: sub for name, sub in action.choices.items() if not name.startswith("_")}


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_and_option_is_in_the_readme(name: str) -> None:
    assert f"`gitend {name}" in README
    for action in _subcommands()[name]._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert option in README, f"gitend {name} {option} is not in the README"


def test_contract_commands_are_all_there() -> None:
    for name in ["hook", "list", "show", "restore", "status", "push", "review", "scan", "install", "uninstall",
                 "demo"]:
        assert name in _subcommands()


def test_readme_config_block_lists_every_key_with_its_default() -> None:
    block = re.search(r"```yaml\n(snapshot:.*?)```", README, re.S)
    assert block
    assert yaml.safe_load(block.group(1)) == as_plain_data(config.Config())


def as_plain_data(cfg: config.Config) -> dict[str, object]:
    """The config's sections as YAML holds them (lists, not tuples)."""
    return {name: json.loads(json.dumps(dataclasses.asdict(getattr(cfg, name)))) for name in config.SECTIONS}
