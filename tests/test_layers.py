"""The house keeps its shape: three layers, imports only point down, an entry point never
imports another, the domain never prints, and no import cycle, not even one hidden in a
function. Read from the source with ast, so every import counts, wherever it stands."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gitend"
INFRASTRUCTURE = {"errors", "paths", "files", "git", "config", "lock", "queue", "log", "output"}
DOMAIN = {"snapshot", "transcript", "message", "secrets", "approvals", "memsync", "dotfiles", "restore", "jobs",
          "installed", "notices", "retention", "sessions", "tripwire"}
ENTRY_POINTS = {"cli", "hook", "worker", "__main__"}  # and every module under commands/
DISPATCHER = "cli"  # parses the command line and hands each command to its module


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found["" if name == "__init__" else name.removesuffix(".__init__")] = path
    return found


def layer(name: str) -> int:
    if name == "" or name in INFRASTRUCTURE:  # "": the package itself (its version)
        return 0
    if name in DOMAIN:
        return 1
    if name in ENTRY_POINTS or name.split(".")[0] == "commands":
        return 2
    raise AssertionError(f"gitend/{name}: give it a layer in tests/test_layers.py")


def imports(source: str, known: set[str]) -> set[str]:
    """The gitend modules `source` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "gitend" or name.startswith("gitend."):
                inside = name.removeprefix("gitend").removeprefix(".")
                if inside in known and inside != "commands":
                    found.add(inside)
    return found


GRAPH = {name: imports(path.read_text(encoding="utf-8"), set(modules())) for name, path in modules().items()}


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_only_point_down(name: str) -> None:
    up = [target for target in GRAPH[name] if layer(target) > layer(name)]
    assert not up, f"gitend/{name} (layer {layer(name)}) imports {up} from a layer above"


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if layer(n) == 2 and n != DISPATCHER))
def test_an_entry_point_never_imports_another(name: str) -> None:
    others = sorted(t for t in GRAPH[name] if layer(t) == 2 and not (name == "__main__" and t == DISPATCHER))
    assert not others, f"gitend/{name} imports the entry point(s) {others}: what they share belongs a layer down"


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if layer(n) == 1))
def test_the_domain_never_prints(name: str) -> None:
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    calls = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "input")]
    assert not calls, f"gitend/{name} prints or asks on lines {calls}: that is an entry point's job"
    assert "output" not in GRAPH[name], f"gitend/{name} imports gitend.output"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name):] + [name]
        if name in done:
            return None
        for target in sorted(graph[name]):
            cycle = visit(target, path + [name])
            if cycle:
                return cycle
        done.add(name)
        return None

    return next((cycle for name in sorted(graph) if (cycle := visit(name, []))), None)


def test_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_find_what_they_look_for() -> None:
    """An import hidden in a function is seen, and a cycle is found."""
    hidden = "import os\n\ndef f():\n    from gitend.commands import review\n    import gitend.hook\n"
    assert imports(hidden, set(modules())) == {"commands.review", "hook"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
