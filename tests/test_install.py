"""`gitend install` / `gitend uninstall`: real settings files, real git repos, the real CLI."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitend import config, installed, paths
from testing.machine import bare_remote
from testing.repo import git, gitend, init_repo, write

VENV_BIN = os.path.dirname(sys.executable)
TOKEN = "ghp_R8x2Kq9ZtLm4Vb7Nc1Hd5Jf3Gs6Wp0Ya2Eu8"  # fake

# What a user's settings look like before gitend: other SessionEnd groups, a Stop hook,
# permissions and env; written the standard way (2-space json.dumps, final newline).
USER_SETTINGS: dict[str, Any] = {
    "permissions": {"allow": ["Bash(npm test)"], "deny": ["Read(./.env)"]},
    "env": {"FOO": "bär"},
    "hooks": {
        "SessionEnd": [
            {"matcher": "clear", "hooks": [{"type": "command", "command": "rm -f /tmp/scratch-*.txt"}]},
            {"hooks": [{"type": "command", "command": "notify-send", "args": ["bye"], "timeout": 5}]},
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}],
    },
    "model": "opus",
}


def standard(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def settings_file(home: Path) -> Path:
    return home / ".claude" / "settings.json"


def gitend_hooks(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for g in data.get("hooks", {}).get("SessionEnd", []) for h in g["hooks"]
            if Path(h["command"]).name == "gitend" or h["command"].startswith("gitend ")]


def extras(command: str | None = None) -> dict[str, Any]:
    """The SessionStart and PreToolUse entries install adds beside SessionEnd's."""
    wanted = installed.entries(command or installed.gitend_command())
    return {"SessionStart": [{"matcher": "*", "hooks": wanted["SessionStart"]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": wanted["PreToolUse"]}]}


def without_extras(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the SessionStart and PreToolUse entries install added taken out again."""
    for event, groups in extras().items():
        assert data["hooks"].pop(event) == groups
    return data


def ok(*args: str, **kwargs: Any) -> str:
    proc = gitend(*args, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def refused(*args: str, **kwargs: Any) -> str:
    proc = gitend(*args, **kwargs)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- Claude Code settings ---------------------------------------------------------------

def test_install_twice_then_uninstall_leaves_the_file_as_it_was(hermetic: Path) -> None:
    path = write(settings_file(hermetic), standard(USER_SETTINGS))
    original = path.read_bytes()
    ok("install")
    ok("install")
    data = json.loads(path.read_text())
    assert len(gitend_hooks(data)) == 1
    ours = data["hooks"]["SessionEnd"][-1]
    assert ours == {"matcher": "*", "hooks": [{"type": "command", "command": installed.gitend_command(),
                                               "args": ["hook"], "timeout": 10}]}
    data["hooks"]["SessionEnd"].pop()
    assert without_extras(data) == USER_SETTINGS  # everything else intact
    assert list(json.loads(path.read_text())) == list(USER_SETTINGS)  # key order kept
    assert "bär" in path.read_text(encoding="utf-8")  # not \u-escaped
    out = ok("uninstall")
    assert "removed the SessionEnd hook" in out
    assert path.read_bytes() == original
    assert "nothing to remove" in ok("uninstall")
    assert path.read_bytes() == original


def test_fresh_install_creates_file_and_folder_and_uninstall_removes_the_file(hermetic: Path) -> None:
    path = settings_file(hermetic)
    assert not path.parent.exists()
    out = ok("install")
    assert f"added the SessionEnd hook to {path}" in out and "backup" not in out.splitlines()[0]
    data = json.loads(path.read_text())
    assert data == {"hooks": {"SessionEnd": [{"matcher": "*", "hooks": [
        {"type": "command", "command": installed.gitend_command(), "args": ["hook"], "timeout": 10}]}], **extras()}}
    assert path.read_text().startswith('{\n  "hooks"') and path.read_text().endswith("}\n")
    ok("uninstall")
    assert not path.exists()


def test_containers_install_created_are_removed_the_rest_kept(hermetic: Path) -> None:
    original = standard({"model": "opus", "env": {"A": "1"}})
    path = write(settings_file(hermetic), original)
    ok("install")
    assert json.loads(path.read_text())["model"] == "opus"
    ok("uninstall")
    assert path.read_bytes() == original


def test_a_user_change_after_install_survives_uninstall(hermetic: Path) -> None:
    ok("install")
    path = settings_file(hermetic)
    data = json.loads(path.read_text())
    data["model"] = "sonnet"
    path.write_text(json.dumps(data, indent=2) + "\n")
    ok("uninstall")
    assert json.loads(path.read_text()) == {"model": "sonnet"}


def test_claude_config_dir_is_honoured(hermetic: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "claude-work"
    out = ok("install", env={"CLAUDE_CONFIG_DIR": str(elsewhere)})
    assert (elsewhere / "settings.json").exists() and str(elsewhere / "settings.json") in out
    assert not settings_file(hermetic).exists()
    ok("uninstall", env={"CLAUDE_CONFIG_DIR": str(elsewhere)})
    assert not (elsewhere / "settings.json").exists()


def test_settings_option_is_honoured_and_remembered_for_uninstall(hermetic: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj" / ".claude" / "settings.local.json"
    original = standard({"permissions": {"allow": []}})
    write(project, original)
    ok("install", "--settings", str(project))
    assert len(gitend_hooks(json.loads(project.read_text()))) == 1
    assert not settings_file(hermetic).exists()
    ok("uninstall")  # the recorded path, not the default
    assert project.read_bytes() == original


@pytest.mark.parametrize("content, problem", [
    (b'{"hooks": {"SessionEnd": [}', "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b'[{"hooks": {}}]\n', "JSON object at the top level"),
    (b'{"hooks": [{"matcher": "*"}]}\n', '"hooks" must be an object'),
    (b'{"hooks": {"SessionEnd": {"matcher": "*"}}}\n', '"hooks.SessionEnd" must be a list'),
])
def test_bad_settings_are_refused_and_nothing_changes(hermetic: Path, tmp_path: Path, content: bytes,
                                                      problem: str) -> None:
    path = write(settings_file(hermetic), content)
    dots = init_repo(tmp_path / "dots")
    before = listing(hermetic), listing(dots)
    err = refused("install", "--dotfiles", str(dots))
    assert problem in err and str(path) in err
    assert (listing(hermetic), listing(dots)) == before  # same bytes, no backup, no config, no record
    assert not os.path.lexists(str(path) + ".gitend-backup")


def test_an_unwritable_settings_folder_is_one_line(hermetic: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    path = write(settings_file(hermetic), standard(USER_SETTINGS))
    path.parent.chmod(0o500)
    try:
        err = refused("install")
        assert f"cannot change {path.parent}" in err and "Permission denied" in err
        assert path.read_bytes() == standard(USER_SETTINGS)
    finally:
        path.parent.chmod(0o755)


def test_backup_holds_the_original_and_is_never_overwritten(hermetic: Path) -> None:
    original = standard(USER_SETTINGS)
    path = write(settings_file(hermetic), original)
    out = ok("install")
    backup = Path(str(path) + ".gitend-backup")
    assert f"(backup: {backup})" in out
    assert backup.read_bytes() == original
    # An older shell-form entry is updated in place: a second backup, timestamped.
    data = json.loads(path.read_text())
    data["hooks"]["SessionEnd"][-1]["hooks"][0] = {"type": "command", "command": "gitend hook --strict"}
    changed = standard(data)
    path.write_bytes(changed)
    out = ok("install")
    assert backup.read_bytes() == original
    stamped = [p for p in path.parent.iterdir() if p.name.startswith("settings.json.gitend-backup-")]
    assert len(stamped) == 1 and stamped[0].read_bytes() == changed and str(stamped[0]) in out
    assert "backup" not in ok("install")  # no change, no write, no backup
    assert len(list(path.parent.glob("settings.json.gitend-backup*"))) == 2


def test_gitends_catch_all_entry_is_updated_in_place_and_the_users_per_reason_entries_kept(hermetic: Path) -> None:
    settings = json.loads(json.dumps(USER_SETTINGS))
    clear_group = settings["hooks"]["SessionEnd"][0]
    clear_group["hooks"].append({"type": "command", "command": "gitend hook", "statusMessage": "saving"})
    users = json.loads(json.dumps(settings))  # the user's own per-reason entry is part of their settings
    settings["hooks"]["SessionEnd"].append({"matcher": "*", "hooks": [
        {"type": "command", "command": "/old/venv/bin/gitend", "args": ["hook"], "statusMessage": "bye"}]})
    settings["hooks"]["SessionEnd"].append({"matcher": "", "hooks": [{"type": "command", "command": "gitend hook"}]})
    path = write(settings_file(hermetic), standard(settings))
    assert "updated the SessionEnd hook" in ok("install")
    data = json.loads(path.read_text())
    assert data["hooks"]["SessionEnd"][0] == clear_group  # untouched
    assert data["hooks"]["SessionEnd"][-1] == {"matcher": "*", "hooks": [
        {"type": "command", "command": installed.gitend_command(), "args": ["hook"], "statusMessage": "bye",
         "timeout": 10}]}
    assert len(data["hooks"]["SessionEnd"]) == 3  # the duplicate's group went with it
    ok("uninstall")
    assert json.loads(path.read_text()) == users


@pytest.mark.parametrize("example", ["settings-per-reason.json", "settings-clear-only.json"])
def test_the_users_own_per_reason_entries_are_left_alone(hermetic: Path, example: str) -> None:
    original = (Path(__file__).parents[1] / "hooks-examples" / example).read_bytes()
    path = write(settings_file(hermetic), original)
    matchers = [g["matcher"] for g in json.loads(original)["hooks"]["SessionEnd"]]
    out = ok("install")
    assert f"left {path} unchanged: your own gitend entries there already run the hook (matchers " in out
    assert all(f'"{matcher}"' in out.splitlines()[0] for matcher in matchers)
    assert path.read_bytes() == original and not list(path.parent.glob("*.gitend-backup*"))
    assert "left" in ok("install") and path.read_bytes() == original
    ok("uninstall")
    assert path.read_bytes() == original


@pytest.mark.parametrize("matchers, missing", [
    (["*"], []),
    ([None], []),
    ([""], []),
    (["clear"], ["resume", "logout", "prompt_input_exit", "other"]),
    (["clear", "logout|prompt_input_exit|resume|other"], []),
    (["clear,resume", "logout | prompt_input_exit|other"], []),
    (["clear|other"], ["resume", "logout", "prompt_input_exit"]),
    (["^(?!clear$)"], ["clear"]),
    (["Clear|Other"], list(installed.REASONS)),
    (["(unclosed"], list(installed.REASONS)),
    ([7], list(installed.REASONS)),
])
def test_uncovered_reasons_follow_claude_codes_matcher_rule(matchers: list[Any], missing: list[str]) -> None:
    entry = {"type": "command", "command": "gitend", "args": ["hook"]}
    groups = [{"hooks": [entry]} if m is None else {"matcher": m, "hooks": [entry]} for m in matchers]
    groups.append({"matcher": "resume", "hooks": [{"type": "command", "command": "notify-send"}]})  # not gitend
    assert installed.uncovered_reasons(groups) == missing


def test_installing_into_another_settings_file_moves_the_hook(hermetic: Path, tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "settings.json", standard(USER_SETTINGS))
    second = tmp_path / "b" / "settings.json"
    ok("install", "--settings", str(first))
    out = ok("install", "--settings", str(second))
    assert f"added the SessionEnd hook to {second}" in out
    assert f"removed the SessionEnd hook from {first}, with SessionStart" in out and f"now uses {second}" in out
    assert first.read_bytes() == standard(USER_SETTINGS)
    assert len(gitend_hooks(json.loads(second.read_text()))) == 1
    ok("uninstall")
    assert first.read_bytes() == standard(USER_SETTINGS) and not second.exists()


def test_a_damaged_old_settings_file_does_not_stop_the_move(hermetic: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    ok("install", "--settings", str(first))
    first.write_text("{ broken")
    out = ok("install", "--settings", str(second))
    assert f"could not remove the SessionEnd hook from {first}" in out and "not valid JSON" in out
    assert len(gitend_hooks(json.loads(second.read_text()))) == 1


@pytest.mark.parametrize("record", ["{not json", '["a list"]', '{"settings": 5}', '{"pre_push": {"chained": true}}',
                                    '{"config": {"sha256": "x"}}'])
def test_a_damaged_install_record_is_one_line(hermetic: Path, record: str) -> None:
    write(paths.state_dir() / "install.json", record)
    assert "install.json, gitend's install record; remove it, then run this again" in refused("uninstall")
    assert "remove it" in refused("install")


@pytest.mark.parametrize("indent", [4, "\t", None])
@pytest.mark.parametrize("newline", ["\n", ""])
def test_formatting_is_kept(hermetic: Path, indent: int | str | None, newline: str) -> None:
    original = (json.dumps(USER_SETTINGS, indent=indent, ensure_ascii=False) + newline).encode()
    path = write(settings_file(hermetic), original)
    ok("install")
    text = path.read_text()
    assert text.endswith("}" + newline)
    assert text == json.dumps(json.loads(text), indent=indent, ensure_ascii=False) + newline
    ok("uninstall")
    assert path.read_bytes() == original


def test_ascii_escaped_file_stays_escaped(hermetic: Path) -> None:
    original = (json.dumps(USER_SETTINGS, indent=2) + "\n").encode()
    path = write(settings_file(hermetic), original)
    ok("install")
    assert path.read_bytes().isascii()
    ok("uninstall")
    assert path.read_bytes() == original


def test_mode_and_symlink_are_kept(hermetic: Path, tmp_path: Path) -> None:
    real = write(tmp_path / "dotfiles" / "claude-settings.json", standard(USER_SETTINGS), mode=0o660)
    link = settings_file(hermetic)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    ok("install")
    assert link.is_symlink() and len(gitend_hooks(json.loads(real.read_text()))) == 1
    assert stat.S_IMODE(real.stat().st_mode) == 0o660
    ok("uninstall")
    assert link.is_symlink() and real.read_bytes() == standard(USER_SETTINGS)
    assert stat.S_IMODE(real.stat().st_mode) == 0o660


def test_the_command_is_plain_gitend_only_when_path_finds_this_install(tmp_path: Path) -> None:
    ours = os.path.join(VENV_BIN, "gitend")
    ok("install", "--settings", str(tmp_path / "a.json"), env={"PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    assert gitend_hooks(json.loads((tmp_path / "a.json").read_text()))[0]["command"] == "gitend"
    other = write(tmp_path / "other-bin" / "gitend", "#!/bin/sh\nexit 0\n", mode=0o755)
    env = {"PATH": f"{other.parent}:{os.environ['PATH']}"}
    ok("install", "--settings", str(tmp_path / "b.json"), env=env)
    assert gitend_hooks(json.loads((tmp_path / "b.json").read_text()))[0]["command"] == ours


# -- the starter config -----------------------------------------------------------------

def test_starter_config_written_when_missing_valid_and_removed_when_unchanged(hermetic: Path) -> None:
    path = paths.config_file()
    out = ok("install")
    assert f"wrote a starter config to {path}" in out
    assert path.read_text() == (Path(__file__).parents[1] / "config" / "default.yaml").read_text()
    assert config.load(None).sources == (str(path),)
    assert "starter config" not in ok("install")
    ok("uninstall")
    assert not path.exists()


def test_an_existing_config_is_left_alone(hermetic: Path) -> None:
    path = write(paths.config_file(), "# mine\npush:\n  background: false\n")
    assert "starter config" not in ok("install")
    assert path.read_text() == "# mine\npush:\n  background: false\n"
    ok("uninstall")
    assert path.read_text() == "# mine\npush:\n  background: false\n"


def test_a_starter_config_the_user_edited_is_kept_on_uninstall(hermetic: Path) -> None:
    ok("install")
    path = paths.config_file()
    path.write_text(path.read_text().replace("timeout_s: 60", "timeout_s: 30"))
    assert "kept" in ok("uninstall")
    assert "timeout_s: 30" in path.read_text()


# -- the dotfile repo -------------------------------------------------------------------

def hooks_dir(repo: Path) -> Path:
    return Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks").strip())


def test_dotfiles_sets_memory_repo_in_the_starter_config_and_installs_the_hook(hermetic: Path, tmp_path: Path) -> None:
    dots = init_repo(tmp_path / "dots")
    out = ok("install", "--dotfiles", str(dots))
    path = paths.config_file()
    assert f"set memory.repo to {dots}" in out and f"installed the pre-push hook in {hooks_dir(dots)}" in out
    shipped = (Path(__file__).parents[1] / "config" / "default.yaml").read_text()
    assert path.read_text() == shipped.replace("  repo: null\n", f'  repo: "{dots}"\n')
    cfg = config.load(None)
    assert cfg.memory.repo == str(dots) and cfg.memory.path == "claude/memory" and cfg.push.timeout_s == 60
    hook = hooks_dir(dots) / "pre-push"
    assert hook.read_text() == installed.pre_push_script(installed.gitend_command())
    assert os.access(hook, os.X_OK)
    assert json.loads((paths.state_dir() / "install.json").read_text())["pre_push"] == {
        "path": str(hook), "chained": False}


@pytest.mark.parametrize("original", [
    "# my gitend settings\nmemory:\n  # where my dotfiles live\n  repo: /old/dots  # mine\n  path: notes\n",
    "memory:\n    enabled: true\n",
    "push:\n  background: true",
    "memory: # notes\n  path: x\nreview:\n  allow: []\n",
    "memory: {enabled: true}\n",
])
def test_a_config_of_the_users_is_never_edited_and_install_says_what_to_set(
        hermetic: Path, tmp_path: Path, original: str) -> None:
    dots = init_repo(tmp_path / "dots")
    path = write(paths.config_file(), original)
    out = ok("install", "--dotfiles", str(dots))
    assert f'set `repo: "{dots}"` under `memory:` there' in out and "installed the pre-push hook" in out
    assert path.read_text() == original
    ok("uninstall")
    assert path.read_text() == original and not settings_file(hermetic).exists()


def test_uninstall_removes_a_starter_config_with_memory_repo_set(hermetic: Path, tmp_path: Path) -> None:
    dots = init_repo(tmp_path / "dots")
    ok("install", "--dotfiles", str(dots))
    assert "removed the starter config" in ok("uninstall")
    assert not paths.config_file().exists()


def test_dotfiles_with_remote_clones(hermetic: Path, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "dots.git", {"README.md": "my dotfiles\n"})
    dots = tmp_path / "clones" / "dots"
    out = ok("install", "--dotfiles", str(dots), "--remote", str(remote))
    assert f"cloned {remote} into {dots}" in out
    assert (dots / "README.md").read_text() == "my dotfiles\n"
    assert config.load(None).memory.repo == str(dots)
    assert (hooks_dir(dots) / "pre-push").exists()


def test_a_failed_clone_is_one_line_and_changes_nothing(hermetic: Path, tmp_path: Path) -> None:
    err = refused("install", "--dotfiles", str(tmp_path / "dots"), "--remote", str(tmp_path / "nowhere.git"))
    assert "git clone failed" in err
    assert not (tmp_path / "dots").exists() and not settings_file(hermetic).exists()


def test_missing_dotfiles_without_remote_is_refused(hermetic: Path, tmp_path: Path) -> None:
    err = refused("install", "--dotfiles", str(tmp_path / "dots"))
    assert f"{tmp_path / 'dots'} does not exist; pass --remote URL to clone it" in err
    assert not settings_file(hermetic).exists() and not paths.config_file().exists()


def test_dotfiles_must_be_the_top_of_a_work_tree(hermetic: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert "not inside a git work tree" in refused("install", "--dotfiles", str(tmp_path / "plain"))
    dots = init_repo(tmp_path / "dots")
    (dots / "sub").mkdir()
    assert f"pass --dotfiles {dots}" in refused("install", "--dotfiles", str(dots / "sub"))


def test_core_hooks_path_is_honoured(hermetic: Path, tmp_path: Path) -> None:
    dots = init_repo(tmp_path / "dots")
    git(dots, "config", "core.hooksPath", ".githooks")
    ok("install", "--dotfiles", str(dots))
    assert (dots / ".githooks" / "pre-push").exists()
    assert not (dots / ".git" / "hooks" / "pre-push").exists()
    ok("uninstall")
    assert not (dots / ".githooks" / "pre-push").exists()


def test_a_global_hooks_path_is_used_and_pointed_out(hermetic: Path, tmp_path: Path) -> None:
    dots = init_repo(tmp_path / "dots")
    git(dots, "config", "--global", "core.hooksPath", str(tmp_path / "all-hooks"))
    out = ok("install", "--dotfiles", str(dots))
    assert (tmp_path / "all-hooks" / "pre-push").exists() and "runs for every repository" in out


def test_pointing_memory_repo_elsewhere_moves_the_hook(hermetic: Path, tmp_path: Path) -> None:
    first, second = init_repo(tmp_path / "first"), init_repo(tmp_path / "second")
    ok("install", "--dotfiles", str(first))
    out = ok("install", "--dotfiles", str(second), "--remote", "ignored-url")
    assert "exists, so --remote was not used" in out
    assert not (hooks_dir(first) / "pre-push").exists() and (hooks_dir(second) / "pre-push").exists()
    assert config.load(None).memory.repo == str(second)
    ok("uninstall")
    assert not (hooks_dir(second) / "pre-push").exists()


def test_reinstalling_the_hook_is_idempotent(hermetic: Path, tmp_path: Path) -> None:
    dots = init_repo(tmp_path / "dots")
    ok("install", "--dotfiles", str(dots))
    out = ok("install", "--dotfiles", str(dots))
    assert f"memory.repo is already {dots}" in out and "the pre-push hook is already in" in out
    folder = hooks_dir(dots)
    assert not (folder / "pre-push.gitend-chained").exists()  # our own hook is never chained
    assert (folder / "pre-push").read_text() == installed.pre_push_script(installed.gitend_command())
    assert "removed the pre-push hook" in ok("uninstall")
    assert not (folder / "pre-push").exists()
    assert "nothing to remove" in ok("uninstall")


# -- chaining an existing pre-push hook -------------------------------------------------

@pytest.fixture
def dotfiles(hermetic: Path, tmp_path: Path) -> Path:
    remote = bare_remote(tmp_path / "dots.git")
    dots = tmp_path / "dots"
    git(tmp_path, "clone", "-q", str(remote), str(dots))
    return dots


def old_hook(dots: Path, marker: Path, status: int = 0) -> str:
    script = f'#!/bin/sh\necho "old hook: $1 $2" > "{marker}"\ncat >> "{marker}"\nexit {status}\n'
    write(hooks_dir(dots) / "pre-push", script, mode=0o755)
    return script


def commit(dots: Path, name: str, text: str) -> str:
    write(dots / name, text)
    git(dots, "add", "-A")
    git(dots, "commit", "-q", "-m", f"add {name}")
    return git(dots, "rev-parse", "HEAD").strip()


def push(dots: Path) -> bool:
    """`git push`, as the user runs it (hooks and all); True when the remote took it."""
    proc = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=dots, capture_output=True, check=False)
    pushed = git(dots, "ls-remote", "origin", "refs/heads/main").split()[0] == git(dots, "rev-parse", "HEAD").strip()
    assert pushed is (proc.returncode == 0), proc.stderr
    return pushed


def test_old_hook_runs_after_ours_with_the_same_input_and_is_restored(dotfiles: Path, tmp_path: Path) -> None:
    marker = tmp_path / "old-hook-ran"
    script = old_hook(dotfiles, marker)
    out = ok("install", "--dotfiles", str(dotfiles))
    assert "(your previous hook runs after it)" in out
    folder = hooks_dir(dotfiles)
    assert (folder / "pre-push.gitend-chained").read_text() == script
    ok("install", "--dotfiles", str(dotfiles))  # idempotent: the old hook is not chained twice
    assert (folder / "pre-push.gitend-chained").read_text() == script
    assert json.loads((paths.state_dir() / "install.json").read_text())["pre_push"]["chained"] is True

    base = git(dotfiles, "rev-parse", "HEAD").strip()
    head = commit(dotfiles, "notes.md", "nothing secret\n")
    assert push(dotfiles)  # the real `gitend review --pre-push` passes it
    assert marker.read_text() == (f"old hook: origin {git(dotfiles, 'remote', 'get-url', 'origin').strip()}\n"
                                  f"refs/heads/main {head} refs/heads/main {base}\n")

    assert "put your previous one back" in ok("uninstall")
    assert (folder / "pre-push").read_text() == script and os.access(folder / "pre-push", os.X_OK)
    assert not (folder / "pre-push.gitend-chained").exists()


def test_a_failing_old_hook_still_blocks_the_push(dotfiles: Path, tmp_path: Path) -> None:
    marker = tmp_path / "old-hook-ran"
    old_hook(dotfiles, marker, status=1)
    ok("install", "--dotfiles", str(dotfiles))
    commit(dotfiles, "notes.md", "nothing secret\n")
    assert not push(dotfiles)
    assert marker.exists()


def test_a_secret_is_blocked_by_our_review_before_the_old_hook_runs(dotfiles: Path, tmp_path: Path) -> None:
    marker = tmp_path / "old-hook-ran"
    old_hook(dotfiles, marker)
    ok("install", "--dotfiles", str(dotfiles))
    commit(dotfiles, "claude/memory/p/deploy.md", f"the token is {TOKEN}\n")
    assert not push(dotfiles)
    assert not marker.exists()


@pytest.mark.parametrize("ours, theirs, pushed", [(0, 0, True), (1, 0, False), (0, 3, False)])
def test_hook_script_exit_statuses_with_a_fake_gitend(dotfiles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      ours: int, theirs: int, pushed: bool) -> None:
    """The script alone, with `gitend` on PATH replaced by a recorder (install wrote plain `gitend`)."""
    marker = tmp_path / "old-hook-ran"
    old_hook(dotfiles, marker, status=theirs)
    ok("install", "--dotfiles", str(dotfiles), env={"PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    assert "\ngitend review --pre-push" in (hooks_dir(dotfiles) / "pre-push").read_text()
    log = tmp_path / "fake"
    fake = f'#!/bin/sh\necho "$*" > "{log}.args"\ncat > "{log}.stdin"\nexit {ours}\n'
    write(tmp_path / "fakebin" / "gitend", fake, mode=0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'fakebin'}:{os.environ['PATH']}")
    base = git(dotfiles, "rev-parse", "HEAD").strip()
    head = commit(dotfiles, "notes.md", "hello\n")
    assert push(dotfiles) is pushed
    url = git(dotfiles, "remote", "get-url", "origin").strip()
    assert Path(f"{log}.args").read_text() == f"review --pre-push origin {url}\n"
    line = f"refs/heads/main {head} refs/heads/main {base}\n"
    assert Path(f"{log}.stdin").read_text() == line
    assert marker.exists() is (ours == 0)
    if ours == 0:
        assert marker.read_text() == f"old hook: origin {url}\n{line}"


def test_a_foreign_hook_installed_over_ours_is_left_alone(dotfiles: Path, tmp_path: Path) -> None:
    ok("install", "--dotfiles", str(dotfiles))
    hook = hooks_dir(dotfiles) / "pre-push"
    hook.write_text("#!/bin/sh\nexit 0\n")
    assert "left" in ok("uninstall") and hook.read_text() == "#!/bin/sh\nexit 0\n"


# -- SessionStart and the PreToolUse tripwire (issue 15) ---------------------------------------

def test_install_adds_session_start_and_the_tripwire_idempotently_and_uninstall_removes_exactly_them(
        hermetic: Path) -> None:
    settings = json.loads(json.dumps(USER_SETTINGS))
    theirs = {"matcher": "Bash", "hooks": [{"type": "command", "command": "audit-bash"}]}
    settings["hooks"]["PreToolUse"] = [theirs]
    settings["hooks"]["SessionStart"] = [{"matcher": "startup", "hooks": [{"type": "command", "command": "motd"}]}]
    path = write(settings_file(hermetic), standard(settings))
    original = path.read_bytes()
    ok("install")
    first = path.read_bytes()
    assert "backup" not in ok("install") and path.read_bytes() == first  # idempotent: no change, no backup
    data = json.loads(first)
    assert data["hooks"]["PreToolUse"][0] == theirs  # another tool's handler, untouched
    tripwire = data["hooks"]["PreToolUse"][1]
    assert tripwire["matcher"] == "Bash"
    assert [h["if"] for h in tripwire["hooks"]] == list(installed.TRIPWIRE_FILTERS)
    assert all(h["args"] == ["hook"] and h["timeout"] == installed.TRIPWIRE_TIMEOUT_S for h in tripwire["hooks"])
    start = data["hooks"]["SessionStart"][1]
    assert start == {"matcher": "*", "hooks": installed.entries(installed.gitend_command())["SessionStart"]}
    assert all("if" not in h for h in start["hooks"])  # an `if` there would make it never run
    ok("uninstall")
    assert path.read_bytes() == original


def test_install_updates_an_older_tripwire_in_place(hermetic: Path) -> None:
    old = {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "command": "gitend", "args": ["hook"], "if": "Bash(git reset *)"}]}]}}
    path = write(settings_file(hermetic), standard(old))
    ok("install")
    groups = json.loads(path.read_text())["hooks"]["PreToolUse"]
    assert len(groups) == 1 and [h["if"] for h in groups[0]["hooks"]] == list(installed.TRIPWIRE_FILTERS)


def _filter_matches(rule: str, command: str) -> bool:
    """Claude Code's `Bash(...)` rule with `*` wildcards, as measured (claude-code-facts.md §5.3)."""
    import fnmatch

    return fnmatch.fnmatchcase(" ".join(command.split()), rule[len("Bash("):-1])


def test_tripwire_filters_let_every_destructive_command_through() -> None:
    """Each command the tripwire saves for starts gitend (the filters are at least as broad)."""
    from tests.test_tripwire import DESTRUCTIVE

    for command, _ in DESTRUCTIVE:
        assert any(_filter_matches(rule, command) for rule in installed.TRIPWIRE_FILTERS), command


def test_tripwire_filters_start_nothing_for_everyday_commands() -> None:
    for command in ["ls", "ls -la", "git status --short", "git diff", "git log --oneline", "git add -A",
                    "git commit -m 'fix'", "git push", "npm test", "pytest -q", "cat README.md", "git stash list"]:
        assert not any(_filter_matches(rule, command) for rule in installed.TRIPWIRE_FILTERS), command
