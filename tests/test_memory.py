"""Memory notes: Claude's folder naming, the cross-machine key, and mirroring that never loses an edit."""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitend import memsync, paths
from gitend.errors import GitendError
from testing.repo import files_of, write

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def js_sanitize(path: str) -> str:
    """Claude Code's sanitizePath, written out as plainly as the JavaScript."""
    units: list[int] = []
    for ch in path:
        cp = ord(ch)
        if cp > 0xFFFF:
            cp -= 0x10000
            units += [0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)]
        else:
            units.append(cp)
    s = "".join(chr(u) if chr(u) in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" else "-"
                for u in units)
    if len(s) <= 200:
        return s
    h = 0
    for u in units:
        h = ctypes.c_int32(ctypes.c_int32(h << 5).value - h + u).value
    n, digits = abs(h), ""
    while n:
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36] + digits
        n //= 36
    return f"{s[:200]}-{digits or '0'}"


# -- encode_project_dir ----------------------------------------------------------


@pytest.mark.parametrize("path, expected", [
    ("/Users/me/proj", "-Users-me-proj"),
    ("/Users/me/.agents", "-Users-me--agents"),
    ("/home/me/my_app v2+x@y~z", "-home-me-my-app-v2-x-y-z"),
    ("/home/me/café", "-home-me-caf-"),
    ("/home/me/😀", "-home-me---"),  # one astral character is two UTF-16 code units
    ("C:\\Users\\me\\proj", "C--Users-me-proj"),
])
def test_encode_project_dir(path: str, expected: str) -> None:
    assert memsync.encode_project_dir(path) == expected == js_sanitize(path)


@pytest.mark.parametrize("path", ["/" + "a" * 199, "/" + "a" * 200, "/home/" + "x/" * 150,
                                  "/home/" + "😀é" * 80, "/" + "zz" * 300, "/" + "é" * 199 + "😀"])
def test_encode_long_paths_truncate_and_hash_the_original(path: str) -> None:
    name = memsync.encode_project_dir(path)
    assert name == js_sanitize(path)
    units = len(path.encode("utf-16-le")) // 2
    if units <= 200:
        assert len(name) == units and "/" not in name
    else:
        head, tail = name[:200], name[201:]
        assert name[200] == "-" and head == js_sanitize(path[:200])[:200]
        assert tail and all(c in "0123456789abcdefghijklmnopqrstuvwxyz" for c in tail)


@pytest.mark.parametrize("path, ending", [  # from Node.js running the bundle's sanitizePath
    ("/" + "a" * 250, "aaaaa-feo44x"),
    ("/home/" + "😀é" * 80, "------v939gf"),
    ("/" + "zz" * 300, "zzzzz-jnuh8x"),
    ("/Users/me/" + "x" * 195, "xxxxx-3669mf"),
])
def test_long_path_hash_matches_node(path: str, ending: str) -> None:
    assert memsync.encode_project_dir(path)[195:] == ending



# -- memory_dir ------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "work" / "proj"
    root.mkdir(parents=True)
    return root


def default_dir(path: Path) -> Path:
    return paths.claude_dir() / "projects" / memsync.encode_project_dir(os.path.realpath(path)) / "memory"


def test_memory_dir_default_location(project: Path) -> None:
    assert memsync.memory_dir(project) is None
    folder = default_dir(project)
    folder.mkdir(parents=True)
    assert memsync.memory_dir(project) == folder
    assert str(folder).startswith(os.environ["CLAUDE_CONFIG_DIR"])
    assert memsync.default_memory_dir(project) == folder


def test_memory_dir_resolves_symlinks(project: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(project)
    default_dir(project).mkdir(parents=True)
    assert memsync.memory_dir(link) == default_dir(project)


def test_memory_dir_project_dir_name(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default_dir(project).mkdir(parents=True)
    named = paths.claude_dir() / "projects" / "my_proj-1" / "memory"
    named.mkdir(parents=True)
    monkeypatch.setenv("CLAUDE_CODE_PROJECT_DIR_NAME", "my_proj-1")
    assert memsync.memory_dir(project) == named
    monkeypatch.setenv("CLAUDE_CODE_PROJECT_DIR_NAME", "../escape")  # invalid: ignored
    assert memsync.memory_dir(project) == default_dir(project)
    monkeypatch.setenv("CLAUDE_CODE_PROJECT_DIR_NAME", "x" * 65)
    assert memsync.memory_dir(project) == default_dir(project)


def test_memory_dir_settings_precedence(project: Path, tmp_path: Path) -> None:
    default_dir(project).mkdir(parents=True)
    dirs = {name: tmp_path / name for name in ("local", "user")}
    for folder in dirs.values():
        folder.mkdir()
    files = {"local": project / ".claude" / "settings.local.json", "user": paths.claude_dir() / "settings.json"}
    for name in ("user", "local"):
        write(files[name], json.dumps({"autoMemoryDirectory": str(dirs[name]), "other": 1}))
        assert memsync.memory_dir(project) == dirs[name]
    write(files["local"], "{not json")
    assert memsync.memory_dir(project) == dirs["user"]
    write(files["user"], json.dumps(["not", "an", "object"]))
    assert memsync.memory_dir(project) == default_dir(project)
    write(files["user"], json.dumps({"autoMemoryDirectory": "relative/dir"}))
    assert memsync.memory_dir(project) == default_dir(project)
    write(files["user"], b"\xff\xfe not utf-8")
    assert memsync.memory_dir(project) == default_dir(project)


def test_memory_dir_never_from_committed_project_settings(project: Path, hermetic: Path, tmp_path: Path) -> None:
    """A cloned repository must not choose what gitend copies to the dotfile remote."""
    default_dir(project).mkdir(parents=True)
    documents = hermetic / "Documents"
    write(documents / "taxes.md", "private\n")
    write(project / ".claude" / "settings.json", json.dumps({"autoMemoryDirectory": str(documents)}))
    assert memsync.memory_dir(project) == default_dir(project)
    # Not even from the user's own settings: $HOME and its ancestors are far more than notes.
    local = project / ".claude" / "settings.local.json"
    for bad in ("~", str(hermetic), str(hermetic.parent), "/", str(hermetic) + "/"):
        write(local, json.dumps({"autoMemoryDirectory": bad}))
        assert memsync.memory_dir(project) == default_dir(project), bad
        write(paths.claude_dir() / "settings.json", json.dumps({"autoMemoryDirectory": bad}))
        assert memsync.memory_dir(project) == default_dir(project), bad
    write(local, json.dumps({"autoMemoryDirectory": str(documents)}))  # the user's own, uncommitted choice
    assert memsync.memory_dir(project) == documents


def test_list_notes_depth_is_bounded(tmp_path: Path) -> None:
    folder = tmp_path / "memory"
    write(folder / "top.md", "t\n")
    write(folder / Path(*["d"] * memsync.MAX_DEPTH) / "deep.md", "ok\n")
    write(folder / Path(*["d"] * (memsync.MAX_DEPTH + 1)) / "deeper.md", "too deep\n")
    assert sorted(memsync.list_notes(folder)) == ["d/" * memsync.MAX_DEPTH + "deep.md", "top.md"]


def test_memory_dir_tilde_and_missing_configured_dir(project: Path, hermetic: Path) -> None:
    default_dir(project).mkdir(parents=True)
    write(paths.claude_dir() / "settings.json", json.dumps({"autoMemoryDirectory": "~/notes/mem"}))
    assert memsync.memory_dir(project) is None  # configured but not created yet: the old default is not used
    assert memsync.default_memory_dir(project) == hermetic / "notes" / "mem"
    (hermetic / "notes" / "mem").mkdir(parents=True)
    assert memsync.memory_dir(project) == hermetic / "notes" / "mem"


def test_memory_dir_cwd_fallback(project: Path) -> None:
    sub = project / "sub"
    sub.mkdir()
    default_dir(sub).mkdir(parents=True)
    assert memsync.memory_dir(project) is None
    assert memsync.memory_dir(project, sub) == default_dir(sub)
    default_dir(project).mkdir(parents=True)
    assert memsync.memory_dir(project, sub) == default_dir(project)


# -- project_key -----------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "git@github.com:Owner/Repo.git", "https://user:tok@github.com/owner/repo", "ssh://git@github.com:22/owner/repo.git/",
    "https://GitHub.com/Owner/Repo/", "git+ssh://git@github.com/owner/repo", "ssh://git@github.com:owner/repo.git",
    "  https://x-access-token:ghp_abc@github.com/owner/repo.git\n",
])
def test_project_key_urls(url: str, tmp_path: Path) -> None:
    assert memsync.project_key(url, tmp_path) == "github.com/owner/repo"


def h(part: str) -> str:
    """The hash a key segment gets when making it safe changed it (so `b+c` and `b-c` differ)."""
    return hashlib.sha256(part.encode()).hexdigest()[:12]


@pytest.mark.parametrize("url, expected", [
    ("https://gitlab.example.com:8443/Group/Sub/Proj.git", "gitlab.example.com/group/sub/proj"),
    ("file:///srv/git/Proj.git", "local/srv/git/Proj"),
    ("/srv/git/proj.git/", "local/srv/git/proj"),
    ("/home/me/proj/.git", "local/home/me/proj"),
    ("../up/../x", f"local/---{h('..')}/up/---{h('..')}/x"),
    ("C:\\code\\proj.git", f"local/C--{h('C:')}/code/proj"),
    ("git@[::1]:a/b", f"--1-{h('::1')}/a/b"),
])
def test_project_key_other_urls(url: str, expected: str, tmp_path: Path) -> None:
    assert memsync.project_key(url, tmp_path) == expected


def test_project_key_never_leaks_credentials(tmp_path: Path) -> None:
    key = memsync.project_key("https://alice:s3cr3t@example.com/a/b", tmp_path)
    assert "s3cr3t" not in key and "alice" not in key


def test_project_key_without_origin(hermetic: Path, tmp_path: Path) -> None:
    inside = hermetic / "code" / "My Proj"
    inside.mkdir(parents=True)
    assert memsync.project_key(None, inside) == f"home/code/My-Proj-{h('My Proj')}"
    assert memsync.project_key("", inside) == f"home/code/My-Proj-{h('My Proj')}"
    assert memsync.project_key(None, hermetic) == "home"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert memsync.project_key(None, outside) == "path/" + os.path.realpath(outside).lstrip("/")
    assert memsync.project_key("https://", outside) == memsync.project_key(None, outside)
    assert memsync.project_key("file://", outside) == memsync.project_key(None, outside)


@pytest.mark.parametrize("url", ["https://evil.com/../../etc/passwd", "git@h:../../x", "ssh://h/a/.git/b",
                                 "https://h/ünï cödé/ré po", "file:///../../..", "https://h/a/./b//c",
                                 "https://h/" + "x" * 300, "https://h/a\nb/\x00c", "..:x", ".git:.git"])
def test_project_key_hostile_input_is_a_safe_relative_path(url: str, tmp_path: Path) -> None:
    key = memsync.project_key(url, tmp_path)
    segments = key.split("/")
    assert segments and all(s and not s.startswith(".") and len(s) <= 100 for s in segments)
    assert all(c.isascii() and (c.isalnum() or c in "._-") for s in segments for c in s)


def test_project_key_unicode_and_spaces(tmp_path: Path) -> None:
    assert memsync.project_key("https://h/ünï cödé/ré po", tmp_path) == f"h/-n--c-d--{h('ünï cödé')}/r--po-{h('ré po')}"
    assert memsync.project_key("https://h/../../etc", tmp_path) == f"h/---{h('..')}/---{h('..')}/etc"


def test_13_3_keys_of_paths_that_differ_only_in_characters_made_safe_differ(tmp_path: Path) -> None:
    keys = {memsync.project_key(None, tmp_path / name) for name in ("b+c", "b-c", "b c", "b@c", ".b-c", "-b-c")}
    assert len(keys) == 6


# -- list_notes ------------------------------------------------------------------


def test_list_notes_allowlist(tmp_path: Path) -> None:
    folder = tmp_path / "memory"
    write(folder / "MEMORY.md", "index\n")
    write(folder / "topic" / "user_role.MD", "role\n")
    write(folder / "big.md", b"x" * (memsync.MAX_NOTE + 1))
    write(folder / "exact.md", b"y" * memsync.MAX_NOTE)
    for skipped in ("t.jsonl", "settings.json", ".credentials.json", "notes.md.bak", ".hidden.md",
                    ".git/x.md", ".obsidian/y.md", "mdfile"):
        write(folder / skipped, "no")
    outside = write(tmp_path / "outside" / "secret.md", "outside")
    (folder / "link.md").symlink_to(outside)
    (folder / "linkdir").symlink_to(outside.parent)
    (folder / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    write(folder / "bad\nname.md", "control character")
    os.mkfifo(folder / "fifo.md")  # opening it for reading would block
    with open(os.path.join(os.fsencode(folder), b"latin1-\xe9.md"), "wb") as f:
        f.write(b"not a UTF-8 name")
    notes = memsync.list_notes(folder)
    assert sorted(notes) == ["MEMORY.md", "exact.md", "topic/user_role.MD"]
    assert notes["MEMORY.md"] == memsync.Note("MEMORY.md", hashlib.sha256(b"index\n").hexdigest(), 6)


def test_list_notes_missing_folder_and_file(tmp_path: Path) -> None:
    assert memsync.list_notes(tmp_path / "missing") == {}
    with pytest.raises(GitendError, match="not a folder"):
        memsync.list_notes(write(tmp_path / "file", "x"))


# -- plan_mirror / apply_mirror ------------------------------------------------------


def notes_of(tree: dict[str, str]) -> dict[str, memsync.Note]:
    return {rel: memsync.Note(rel, hashlib.sha256(text.encode()).hexdigest(), len(text.encode()))
            for rel, text in tree.items()}


class Machine:
    """One machine's local memory folder and the repo folder, synced the way the worker does it."""

    def __init__(self, local: Path, repo: Path, key: str = "github.com/o/r") -> None:
        self.local, self.repo, self.key = local, repo, key
        local.mkdir(parents=True, exist_ok=True)

    def manifest(self) -> memsync.Synced:
        return memsync.load_manifest(self.key, self.local, memsync.list_notes(self.repo),
                                     memsync.list_notes(self.local))

    def sync(self, now: float = T0) -> memsync.MirrorPlan:
        local = memsync.list_notes(self.local)
        plan = memsync.plan_mirror(local, memsync.list_notes(self.repo), self.manifest().notes, host="box", now=now)
        memsync.apply_mirror(plan, self.local, self.repo)
        memsync.save_manifest(self.key, self.local, memsync.Synced(digests(local), {}))
        return plan

    def replan(self) -> memsync.MirrorPlan:
        return memsync.plan_mirror(memsync.list_notes(self.local), memsync.list_notes(self.repo),
                                   self.manifest().notes, host="box", now=T0)


def digests(notes: dict[str, memsync.Note]) -> dict[str, str]:
    return {rel: note.digest for rel, note in notes.items()}


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    base = tmp_path / "dotfiles" / "claude" / "memory"
    write(base / "sentinel.md", "outside the repo folder\n")
    return Machine(tmp_path / "local", base / "github.com" / "o" / "r")


def text_files(folder: Path) -> dict[str, str]:
    return {rel: data.decode() for rel, (_, data) in files_of(folder).items()} if folder.exists() else {}


def test_first_sync_edit_and_idempotence(machine: Machine, tmp_path: Path) -> None:
    m = machine
    write(m.local / "MEMORY.md", "- [Role](user_role.md)\n")
    write(m.local / "deep" / "er" / "note.md", "deep\n")
    write(m.local / "transcript.jsonl", "{}\n")
    before_local, before_all = files_of(m.local), files_of(tmp_path)
    plan = m.sync()
    assert plan.write == ("MEMORY.md", "deep/er/note.md") and not plan.conflicts
    assert text_files(m.repo) == {"MEMORY.md": "- [Role](user_role.md)\n", "deep/er/note.md": "deep\n"}
    assert files_of(m.local) == before_local
    after_all = files_of(tmp_path)
    changed = {p for p in set(after_all) | set(before_all) if after_all.get(p) != before_all.get(p)}
    assert changed == {"dotfiles/claude/memory/github.com/o/r/MEMORY.md",
                       "dotfiles/claude/memory/github.com/o/r/deep/er/note.md"}
    assert all(mode & 0o111 == 0 for mode, _ in files_of(m.repo).values())
    assert m.replan() == memsync.MirrorPlan((), (), (), ()) and m.replan().empty

    write(m.local / "MEMORY.md", "edited\n")
    assert m.sync().write == ("MEMORY.md",)
    assert (m.repo / "MEMORY.md").read_text() == "edited\n"
    assert m.replan().empty


def test_local_delete(machine: Machine, tmp_path: Path) -> None:
    m = machine
    write(m.local / "a.md", "a\n")
    write(m.local / "sub" / "b.md", "b\n")
    write(m.local / "c.md", "c\n")
    m.sync()
    (m.local / "a.md").unlink()
    (m.local / "sub" / "b.md").unlink()
    (m.local / "c.md").unlink()
    write(m.repo / "c.md", "changed on another machine\n")
    plan = m.sync()
    assert plan.delete == ("a.md", "sub/b.md") and plan.kept == ("c.md",)
    assert text_files(m.repo) == {"c.md": "changed on another machine\n"}
    assert not (m.repo / "sub").exists()
    assert (tmp_path / "dotfiles" / "claude" / "memory" / "sentinel.md").exists()
    assert m.replan() == memsync.MirrorPlan((), (), (), ())  # no longer ours: left alone from now on


def test_note_from_another_machine_is_never_deleted(machine: Machine) -> None:
    m = machine
    write(m.local / "a.md", "a\n")
    m.sync()
    write(m.repo / "theirs.md", "from the laptop\n")
    write(m.local / "a.md", "a2\n")
    plan = m.sync()
    assert plan.write == ("a.md",) and not plan.delete
    assert text_files(m.repo) == {"a.md": "a2\n", "theirs.md": "from the laptop\n"}


def test_both_changed_gives_a_conflict_copy(machine: Machine) -> None:
    m = machine
    write(m.local / "topic" / "n.md", "base\n")
    m.sync()
    write(m.local / "topic" / "n.md", "ours\n")
    write(m.repo / "topic" / "n.md", "theirs\n")
    plan = m.sync(now=T0)
    copy = "topic/n.conflict-box-20231114T221320Z.md"
    assert plan.conflicts == (("topic/n.md", copy),)
    assert text_files(m.repo) == {"topic/n.md": "ours\n", copy: "theirs\n"}
    assert m.replan().empty


def test_conflict_copy_names_never_collide() -> None:
    local, repo = notes_of({"n.md": "ours"}), notes_of({"n.md": "theirs", "n.conflict-box-20231114T221320Z.md": "x"})
    plan = memsync.plan_mirror(local, repo, {}, host="box", now=T0)  # no manifest: judged by content
    assert plan.conflicts == (("n.md", "n.conflict-box-20231114T221320Z-2.md"),)


def test_conflict_host_defaults_to_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "My Mac.local")
    plan = memsync.plan_mirror(notes_of({"n.md": "a"}), notes_of({"n.md": "b"}), {}, now=T0)
    assert plan.conflicts == (("n.md", "n.conflict-My-Mac.local-20231114T221320Z.md"),)


def test_unchanged_here_but_changed_in_repo_is_not_reverted(machine: Machine) -> None:
    m = machine
    write(m.local / "n.md", "old\n")
    m.sync()
    write(m.repo / "n.md", "newer, from the laptop\n")
    plan = m.sync()
    assert plan.behind == ("n.md",) and plan.empty
    assert (m.repo / "n.md").read_text() == "newer, from the laptop\n"


def test_deleted_in_repo_but_still_here_is_written_back(machine: Machine) -> None:
    m = machine
    write(m.local / "n.md", "keep me\n")
    m.sync()
    (m.repo / "n.md").unlink()
    assert m.sync().write == ("n.md",)
    assert (m.repo / "n.md").read_text() == "keep me\n"


def test_apply_refuses_to_leave_the_repo_folder(tmp_path: Path) -> None:
    local, repo = tmp_path / "local", tmp_path / "repo"
    write(local / "sub" / "n.md", "n\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    repo.mkdir()
    (repo / "sub").symlink_to(outside)
    plan = memsync.plan_mirror(memsync.list_notes(local), memsync.list_notes(repo), {})
    with pytest.raises(GitendError, match="symlink"):
        memsync.apply_mirror(plan, local, repo)
    assert list(outside.iterdir()) == []
    for bad in ("../x.md", "/etc/x.md", "a/../../x.md"):
        with pytest.raises(GitendError, match="unsafe"):
            memsync.apply_mirror(memsync.MirrorPlan((bad,), (), (), ()), local, repo)
    with pytest.raises(GitendError, match="not a folder"):
        memsync.apply_mirror(plan, local, write(tmp_path / "file", "x"))


def test_apply_copies_bytes_never_links(tmp_path: Path) -> None:
    local, repo = tmp_path / "local", tmp_path / "repo"
    write(local / "n.md", "n\n", mode=0o755)
    memsync.apply_mirror(memsync.plan_mirror(memsync.list_notes(local), {}, {}), local, repo)
    assert not (repo / "n.md").is_symlink() and (repo / "n.md").stat().st_ino != (local / "n.md").stat().st_ino
    assert (repo / "n.md").stat().st_mode & 0o111 == 0
    assert (local / "n.md").stat().st_mode & 0o777 == 0o755
    assert [p.name for p in repo.iterdir()] == ["n.md"]  # no temp files left


def test_apply_reports_a_blocked_path_in_one_line(tmp_path: Path) -> None:
    local, repo = tmp_path / "local", tmp_path / "repo"
    write(local / "n.md", "n\n")
    (repo / "n.md").mkdir(parents=True)  # a folder where the note goes
    with pytest.raises(GitendError) as err:
        memsync.apply_mirror(memsync.MirrorPlan(("n.md",), (), (), ()), local, repo)
    assert "\n" not in str(err.value) and str(repo) in str(err.value)


# -- manifest --------------------------------------------------------------------


def test_manifest_round_trip_and_corruption(tmp_path: Path) -> None:
    key, notes, source = "github.com/o/r", notes_of({"a.md": "a", "b/c.md": "c"}), tmp_path / "memory"

    def load(key: str = key, source: Path = source) -> dict[str, str]:
        return memsync.load_manifest(key, source, {}, notes).notes

    assert load() == {}
    memsync.save_manifest(key, source, memsync.Synced(digests(notes), {}))
    assert load() == digests(notes)
    assert load("github.com/o/other") == {}
    assert load(source=tmp_path / "another-clone") == {}  # one record per memory folder
    [path] = (paths.state_dir() / "memory").iterdir()
    name = f"{key}\n{os.path.realpath(source)}"
    assert path.name == hashlib.sha256(name.encode()).hexdigest()[:16] + ".json"
    for corrupt in ("{trunc", "[]", '{"notes": [1]}', '{"notes": {"a.md": 3}}', '"x"', ""):
        path.write_text(corrupt)
        assert load() == {}
    path.write_bytes(b"\xff\xfe")
    assert load() == {}
    memsync.save_manifest(key, source, memsync.Synced({"x.md": "d"}, {}))
    assert memsync.load_manifest(key, source, {}, notes_of({"x.md": "x"})).notes == {"x.md": "d"}
    # What could not be understood is set aside beside it (13.10), never read again as a manifest.
    assert [p.name for p in path.parent.iterdir() if ".unreadable-" not in p.name] == [path.name]


def test_manifest_from_before_clones_had_their_own_keeps_only_what_is_here(tmp_path: Path) -> None:
    key, source = "github.com/o/r", tmp_path / "memory"
    legacy = paths.manifest_file(key)
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"notes": {"here.md": "d1", "gone.md": "d2"}, "written": {"here.md": "r"}}))
    synced = memsync.load_manifest(key, source, {}, notes_of({"here.md": "x"}))
    assert synced == memsync.Synced({"here.md": "d1"}, {"here.md": "r"})  # never a reason to delete


def test_13_5_an_interrupted_run_counts_as_far_as_the_repo_shows(machine: Machine) -> None:
    m = machine
    write(m.local / "a.md", "a\n")
    m.sync()
    before = m.manifest()
    write(m.local / "b.md", "b\n")
    write(m.local / "a.md", "a2\n")
    intent = memsync.Synced(digests(memsync.list_notes(m.local)), {})
    memsync.save_manifest(m.key, m.local, before, intent=intent)
    assert (m.manifest().notes, m.manifest().written) == (before.notes, before.written)  # it copied nothing
    write(m.repo / "b.md", "b\n")  # it copied b.md, then stopped
    assert m.manifest().notes == {**before.notes, "b.md": intent.notes["b.md"]}
    (m.local / "b.md").unlink()  # deleted before the next run: that run's copy goes, not comes back
    assert m.sync().delete == ("b.md",)


def test_corrupt_manifest_deletes_nothing(machine: Machine) -> None:
    m = machine
    write(m.local / "a.md", "a\n")
    m.sync()
    (m.local / "a.md").unlink()
    next((paths.state_dir() / "memory").iterdir()).write_text("garbage")
    assert m.sync().empty
    assert (m.repo / "a.md").exists()


def test_redacted_copy_is_ours_and_an_edit_of_its_note_is_a_plain_change(machine: Machine) -> None:
    m = machine
    write(m.local / "n.md", "token SECRET\n")
    write(m.local / "other.md", "o\n")
    m.sync()
    write(m.repo / "n.md", "token [REDACTED]\n")  # what the worker writes for a note with a finding
    redacted = {"n.md": hashlib.sha256(b"token [REDACTED]\n").hexdigest()}
    memsync.save_manifest(m.key, m.local, memsync.Synced(digests(memsync.list_notes(m.local)), redacted))
    assert m.manifest().written == redacted

    def plan() -> memsync.MirrorPlan:
        synced = m.manifest()
        return memsync.plan_mirror(memsync.list_notes(m.local), memsync.list_notes(m.repo), synced.notes,
                                   written=synced.written, host="box", now=T0)

    assert plan().empty and not plan().behind  # unchanged on both sides
    write(m.local / "n.md", "token SECRET, edited\n")
    assert plan().write == ("n.md",) and not plan().conflicts
    (m.local / "n.md").unlink()
    assert plan().delete == ("n.md",)  # our redacted copy goes with the note
    write(m.local / "n.md", "token SECRET\n")
    write(m.repo / "n.md", "changed on another machine\n")
    assert plan().behind == ("n.md",)


def test_manifest_written_survives_only_where_it_differs() -> None:
    notes = digests(notes_of({"a.md": "a", "b.md": "b"}))
    record = memsync.Synced(notes, {"a.md": "redacted", "b.md": notes["b.md"], "gone.md": "x"}).record()
    assert record == {"notes": notes, "written": {"a.md": "redacted"}}


def test_apply_writes_exactly_the_given_bytes(tmp_path: Path) -> None:
    local, repo = tmp_path / "local", tmp_path / "repo"
    write(local / "n.md", "raw SECRET\n")
    write(local / "gone.md", "g\n")
    plan = memsync.plan_mirror(memsync.list_notes(local), {}, {})
    write(local / "n.md", "edited after the scan, SECRET2\n")
    memsync.apply_mirror(plan, local, repo, {"n.md": b"raw [REDACTED]\n"})
    assert text_files(repo) == {"n.md": "raw [REDACTED]\n"}


# -- pull ------------------------------------------------------------------------


def pull(repo: Path, local: Path, notes: dict[str, str] | None = None,
         written: dict[str, str] | None = None) -> memsync.PullResult:
    return memsync.pull_notes(repo, local, memsync.Synced(notes or {}, written or {}), now=T0)[0]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_pull_never_replaces_a_note_with_its_redacted_copy(tmp_path: Path) -> None:
    repo, local = tmp_path / "repo", tmp_path / "local"
    write(local / "n.md", "token SECRET\n")
    write(local / "m.md", "token SECRET too\n")
    write(repo / "n.md", "token [REDACTED]\n")
    write(repo / "m.md", "edited elsewhere, [REDACTED]\n")
    written = {"n.md": sha("token [REDACTED]\n"), "m.md": "an older redacted copy"}
    result = pull(repo, local, digests(memsync.list_notes(local)), written)
    copy = "m.conflict-dotfiles-20231114T221320Z.md"
    assert result == memsync.PullResult((), (), (("m.md", copy),))  # both kept: the repo's lacks the secret
    assert text_files(local) == {"n.md": "token SECRET\n", "m.md": "token SECRET too\n",
                                 copy: "edited elsewhere, [REDACTED]\n"}


def test_pull_into_missing_folder_skips_conflict_copies(tmp_path: Path) -> None:
    repo, local = tmp_path / "repo", tmp_path / "claude" / "memory"
    write(repo / "MEMORY.md", "index\n")
    write(repo / "t" / "n.md", "n\n")
    write(repo / "n.conflict-box-20231114T221320Z.md", "old\n")
    write(repo / "t" / "n.conflict-my.host-20231114T221320Z-2.md", "old\n")
    write(repo / "README.txt", "not a note\n")
    repo_before = files_of(repo)
    result = pull(repo, local)
    assert result == memsync.PullResult(("MEMORY.md", "t/n.md"), ())
    assert text_files(local) == {"MEMORY.md": "index\n", "t/n.md": "n\n"}
    assert files_of(repo) == repo_before
    assert pull(repo, local, {"MEMORY.md": sha("index\n"), "t/n.md": sha("n\n")}) == memsync.PullResult((), ())


def test_pull_decides_by_content_never_by_clocks(tmp_path: Path) -> None:
    repo, local = tmp_path / "repo", tmp_path / "local"
    for name in ("changed-here", "unchanged-here", "changed-both", "unknown", "deleted-here"):
        write(repo / f"{name}.md", f"repo {name}\n")
    for name in ("changed-here", "unchanged-here", "changed-both", "unknown"):
        write(local / f"{name}.md", f"local {name}\n")
        os.utime(local / f"{name}.md", (0, 0))  # older than any commit: clocks must not matter
    synced = {"changed-here.md": sha("repo changed-here\n"), "unchanged-here.md": sha("local unchanged-here\n"),
              "changed-both.md": sha("base\n"), "deleted-here.md": sha("repo deleted-here\n")}
    result, after = memsync.pull_notes(repo, local, memsync.Synced(synced, {}), now=T0)
    both = ("changed-both.md", "changed-both.conflict-dotfiles-20231114T221320Z.md")
    unknown = ("unknown.md", "unknown.conflict-dotfiles-20231114T221320Z.md")
    assert result == memsync.PullResult(("unchanged-here.md",), ("changed-here.md",), (both, unknown))
    assert text_files(local) == {
        "changed-here.md": "local changed-here\n", "unchanged-here.md": "repo unchanged-here\n",
        "changed-both.md": "local changed-both\n", both[1]: "repo changed-both\n",
        "unknown.md": "local unknown\n", unknown[1]: "repo unknown\n"}
    # The repo's versions now count as synced: the next session end writes this machine's over them.
    assert after.notes["changed-both.md"] == sha("repo changed-both\n")
    assert after.notes["unchanged-here.md"] == sha("repo unchanged-here\n")


def test_pull_brings_this_machines_version_that_lost_a_merge(tmp_path: Path) -> None:
    repo, local = tmp_path / "repo", tmp_path / "local"
    write(local / "n.md", "mine\n")
    write(repo / "n.md", "theirs\n")
    write(repo / "n.conflict-laptop-20231114T221320Z.md", "mine\n")
    write(repo / "n.conflict-desk-20231114T221320Z.md", "someone else's\n")
    result = pull(repo, local, {"n.md": sha("mine\n")})
    assert result.copied == ("n.conflict-laptop-20231114T221320Z.md", "n.md")
    assert text_files(local) == {"n.md": "theirs\n", "n.conflict-laptop-20231114T221320Z.md": "mine\n"}


def test_pull_never_replaces_a_symlink(tmp_path: Path) -> None:
    repo, local = tmp_path / "repo", tmp_path / "local"
    write(repo / "n.md", "repo\n")
    target = write(tmp_path / "shared.md", "mine\n")
    local.mkdir()
    (local / "n.md").symlink_to(target)
    assert pull(repo, local).kept_local == ("n.md",)
    assert target.read_text() == "mine\n" and (local / "n.md").is_symlink()


def test_pull_into_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "n.md", "n\n")
    with pytest.raises(GitendError, match="not a folder"):
        pull(tmp_path / "repo", write(tmp_path / "local", "x"))


# -- the property --------------------------------------------------------------------

NAMES = ["MEMORY.md", "a.md", "sub/b.md", "sub/deep/c.md", "X.MD", "n.conflict-box-20231114T221320Z.md"]
CONTENTS = [b"one\n", b"two\n", b"three\n", b""]
STATE = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(CONTENTS), max_size=len(NAMES))
DIGESTS = st.dictionaries(st.sampled_from(NAMES), st.sampled_from([hashlib.sha256(c).hexdigest() for c in CONTENTS]),
                          max_size=len(NAMES))


@settings(max_examples=int(os.environ.get("GITEND_EXAMPLES", "60")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(local_state=STATE, repo_state=STATE, manifest=DIGESTS)
def test_mirror_never_loses_an_edit(local_state: dict[str, bytes], repo_state: dict[str, bytes],
                                    manifest: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local, base = Path(tmp) / "local", Path(tmp) / "dotfiles"
        repo = base / "key"
        for rel, data in local_state.items():
            write(local / rel, data)
        for rel, data in repo_state.items():
            write(repo / rel, data)
        write(base / "sentinel.md", "x")
        before_local = files_of(local) if local_state else {}
        plan = memsync.plan_mirror(memsync.list_notes(local), memsync.list_notes(repo), manifest, host="box", now=T0)
        memsync.apply_mirror(plan, local, repo)

        after = {rel: data for rel, (_, data) in files_of(repo).items()} if repo.exists() else {}
        assert (files_of(local) if local_state else {}) == before_local
        assert files_of(base)["sentinel.md"][1] == b"x"
        assert sorted(files_of(base)) == sorted(["sentinel.md"] + [f"key/{rel}" for rel in after])
        # Every local note is in the repo, except where the repo holds a newer version from elsewhere.
        for rel, data in local_state.items():
            if rel in plan.behind:
                assert manifest[rel] == hashlib.sha256(data).hexdigest() and after[rel] == repo_state[rel]
            else:
                assert after[rel] == data
        # No repo note is lost: only the version this machine itself mirrored last may be deleted.
        moved = dict(plan.conflicts)
        for rel, data in repo_state.items():
            if rel in plan.delete:
                assert rel not in local_state and manifest[rel] == hashlib.sha256(data).hexdigest()
                assert rel not in after
            elif rel in moved:
                assert after[moved[rel]] == data
            elif rel not in local_state:
                assert after[rel] == data
        replan = memsync.plan_mirror(memsync.list_notes(local), memsync.list_notes(repo),
                                    {rel: n.digest for rel, n in memsync.list_notes(local).items()})
        assert replan.empty
