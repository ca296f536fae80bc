from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from gitend import config
from gitend.errors import GitendError

ROOT = Path(__file__).resolve().parents[1]


def user_config(home: Path, text: str) -> Path:
    path = home / ".config" / "gitend" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_shipped_default_file_equals_built_in_defaults() -> None:
    shipped = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    assert shipped == as_plain_data(config.Config())
    assert (ROOT / "gitend" / "data" / "default.yaml").read_text() == (ROOT / "config" / "default.yaml").read_text()


def test_every_key_in_the_shipped_file_is_commented() -> None:
    lines = (ROOT / "config" / "default.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
            assert lines[number - 1].strip().startswith("#"), f"key without a comment: {line.strip()}"


def test_no_files_gives_defaults(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.snapshot.branch_prefix == "wip/"
    assert cfg.push.skip_reasons == ("clear",)
    assert cfg.sources == ()


def test_layers_user_then_repository(hermetic: Path, tmp_path: Path) -> None:
    user = user_config(hermetic, "snapshot:\n  max_file_mb: 5\n  branch_prefix: saves/\npush:\n  timeout_s: 9\n")
    (tmp_path / ".gitend.yaml").write_text("snapshot:\n  max_file_mb: 1.5\n")
    cfg = config.load(tmp_path)
    assert cfg.snapshot.max_file_mb == 1.5
    assert cfg.snapshot.branch_prefix == "saves/"
    assert cfg.push.timeout_s == 9.0
    assert cfg.sources == (str(user), str(tmp_path / ".gitend.yaml"))


def test_config_is_frozen() -> None:
    cfg = config.Config()
    with pytest.raises(AttributeError):
        cfg.snapshot.enabled = False  # type: ignore[misc]


def test_gitend_config_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("memory:\n  repo: /tmp/dots\n  extra: [a, b]\n")
    monkeypatch.setenv("GITEND_CONFIG", str(path))
    cfg = config.load(None)
    assert cfg.memory.repo == "/tmp/dots"
    assert cfg.memory.extra == ("a", "b")


@pytest.mark.parametrize(("text", "expected"), [
    ("snapshot:\n  enabled: maybe\n", "'snapshot.enabled' must be true or false, got 'maybe'"),
    ("snapshot:\n  colour: red\n", "unknown key 'snapshot.colour'"),
    ("colour: red\n", "unknown key 'colour'"),
    ("snapshot:\n  max_file_mb: -1\n", "'snapshot.max_file_mb' must be greater than 0"),
    ("snapshot:\n  max_file_mb: true\n", "'snapshot.max_file_mb' must be a number"),
    ("snapshot:\n  branch_prefix: 'a b/'\n", "'snapshot.branch_prefix' must be a valid ref prefix"),
    ("push:\n  skip_reasons: clear\n", "'push.skip_reasons' must be a list of strings"),
    ("transcript:\n  head_kb: 1.5\n", "'transcript.head_kb' must be a whole number"),
    ("review:\n  on_finding: ignore\n", "'review.on_finding' must be 'hold' or 'redact'"),
    ("memory:\n  path: ../outside\n", "'memory.path' must be a relative folder"),
    ("- a\n- b\n", "the top level must be a mapping"),
    ("snapshot: [1]\n", "'snapshot' must be a mapping"),
    ("snapshot:\n  enabled: [\n", "not valid YAML at line"),
    ("push:\n  timeout_s: .inf\n", "'push.timeout_s' must be a finite number, got inf"),
    ("push:\n  timeout_s: .nan\n", "'push.timeout_s' must be a finite number, got nan"),
    ("push:\n  timeout_s: 1.0e+300\n", "'push.timeout_s' must be greater than 0 and at most 3600, got 1e+300"),
    ("push:\n  timeout_s: 3601\n", "'push.timeout_s' must be greater than 0 and at most 3600, got 3601"),
    ("push:\n  timeout_s: 0\n", "'push.timeout_s' must be greater than 0"),
    ("push:\n  timeout_s: " + "9" * 400 + "\n", "'push.timeout_s' must be a finite number"),
    ("snapshot:\n  max_file_mb: -.inf\n", "'snapshot.max_file_mb' must be a finite number"),
    ("snapshot:\n  max_file_mb: 1.0e+12\n", "'snapshot.max_file_mb' must be greater than 0 and at most 1048576"),
    ("transcript:\n  tail_kb: " + "9" * 400 + "\n", "'transcript.tail_kb' must be between 0 and 1048576"),
])
def test_bad_user_config_is_one_line_naming_key_and_file(hermetic: Path, text: str, expected: str) -> None:
    path = user_config(hermetic, text)
    with pytest.raises(GitendError) as info:
        config.load(None)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize("text", [
    "memory:\n  repo: /tmp/x\n",
    "snapshot:\n  push_remote: evil\n",
    "push:\n  background: false\n",
])
def test_repository_file_may_set_only_snapshot_keys(tmp_path: Path, text: str) -> None:
    (tmp_path / ".gitend.yaml").write_text(text)
    with pytest.raises(GitendError, match=r"\.gitend\.yaml"):
        config.load(tmp_path)


def test_undecodable_and_unreadable_files(hermetic: Path) -> None:
    path = user_config(hermetic, "")
    path.write_bytes(b"snapshot:\n  branch_prefix: \xff\n")
    with pytest.raises(GitendError, match="not UTF-8"):
        config.load(None)
    path.unlink()
    path.mkdir()
    with pytest.raises(GitendError, match="not a file"):
        config.load(None)


def test_empty_file_and_empty_sections_are_fine(hermetic: Path) -> None:
    user_config(hermetic, "# nothing yet\nsnapshot:\n")
    assert config.load(None) == config.Config(sources=(str(hermetic / ".config/gitend/config.yaml"),))


def test_numbers_at_their_limits_are_fine(hermetic: Path) -> None:
    user_config(hermetic, "push:\n  timeout_s: 3600\nsnapshot:\n  max_file_mb: 0.001\n"
                          "transcript:\n  head_kb: 0\n  tail_kb: 1048576\n")
    cfg = config.load(None)
    assert cfg.push.timeout_s == 3600.0 and cfg.snapshot.max_file_mb == 0.001 and cfg.transcript.tail_kb == 1 << 20


@pytest.mark.parametrize("where", ["user", "repository"])
def test_a_config_file_over_64_kib_is_refused_before_parsing(hermetic: Path, tmp_path: Path, where: str) -> None:
    # Not YAML at its end: were it parsed first, the error would be a YAML one.
    text = "snapshot:\n" + "".join(f"  # padding line {n}\n" for n in range(30_000)) + "  enabled: [true\n"
    assert len(text) > 64 << 10
    path = user_config(hermetic, text) if where == "user" else tmp_path / ".gitend.yaml"
    if where == "repository":
        path.write_text(text)
    with pytest.raises(GitendError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert f"config error in {path}: larger than 64 KiB" in message and "\n" not in message
    path.write_text("snapshot:\n" + "".join(f"  # padding line {n}\n" for n in range(2_000)) + "  enabled: false\n")
    assert len(path.read_bytes()) < 64 << 10  # a long, commented file is still fine
    assert config.load(tmp_path).snapshot.enabled is False


def as_plain_data(cfg: config.Config) -> dict[str, object]:
    """The config's sections as YAML holds them (lists, not tuples)."""
    return {name: json.loads(json.dumps(dataclasses.asdict(getattr(cfg, name)))) for name in config.SECTIONS}
