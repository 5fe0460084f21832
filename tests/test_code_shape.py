"""The shape of the code the next engineer changes: imports that only point down, short functions, settings
tables in the README generated from the code, and nothing that cites files outside the repository."""
from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from assistant.config import ENV_ALIASES, PROJECT_DIR, Settings
from assistant.config_loader import markdown_table
from trainer.config import KEY_ALIASES, TrainConfig

from conftest import ROOT

PACKAGES = ("assistant", "trainer")
SOURCE_DIRS = ("assistant", "trainer", "bench", "tests", "guidelines")
MAX_FUNCTION_LINES = 80
LONG_FUNCTIONS_ALLOWED = {"guidelines/render.py"}  # a document renderer: one long dispatch on block kinds
OUTSIDE_NOTES = "shared/" + "DESIGN"  # the team's early notes outside the repository, spelt so as not to cite them


def python_files(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield ROOT / "app.py"


def internal_imports(package: str) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports (anywhere in the file, lazy imports included)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).glob("*.py")):
        module = path.stem
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    targets.add(node.module.split(".")[0])
                elif node.level == 1:
                    targets.update(alias.name for alias in node.names)
                elif node.module and node.module.startswith(f"{package}."):
                    targets.add(node.module.split(".")[1])
        graph[module] = targets - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path, node, target]
            if target not in state and (cycle := visit(target, [*path, node])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package):
    cycle = find_cycle(internal_imports(package))
    assert cycle is None, f"import circle in {package}/: {' -> '.join(cycle or [])}"


def test_find_cycle_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_the_app_never_imports_the_trainer():
    for path in python_files("assistant"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) trainer\b", text, re.M), f"{path.name} imports the trainer"


def test_settings_and_records_sit_at_the_bottom():
    graph = internal_imports("assistant")
    for module in ("config_loader", "records", "errors"):
        assert graph[module] == set(), f"{module} imports {graph[module]}"
    assert graph["config"] == {"config_loader"}


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in python_files(*SOURCE_DIRS):
        relative = path.relative_to(ROOT).as_posix()
        if relative in LONG_FUNCTIONS_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{relative}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_nothing_cites_files_outside_the_repository():
    citing = []
    for path in [*python_files(*SOURCE_DIRS), *sorted((ROOT / "trainer" / "configs").glob("*.toml"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if OUTSIDE_NOTES in line or re.search(r"\bissue \d+\b|" + "the reference " + "code", line):
                citing.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not citing, citing


def readme_table(title: str) -> str:
    """The table under a `<!-- settings: NAME -->` marker in the README."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- settings: {title} -->\n(.*?)\n<!-- end settings -->", text, re.S)
    assert match, f"the README has no generated {title} table"
    return match.group(1).strip()


def test_readme_settings_tables_are_the_ones_the_code_generates():
    assert readme_table("assistant") == markdown_table(Settings, base=PROJECT_DIR)
    assert readme_table("trainer") == markdown_table(TrainConfig, key_aliases=KEY_ALIASES)
    for variable, name in ENV_ALIASES.items():
        assert f"`{variable}`" in (ROOT / "README.md").read_text() and name in Settings.__dataclass_fields__


def test_every_setting_has_help_text():
    for cls in (Settings, TrainConfig):
        missing = [name for name, field in cls.__dataclass_fields__.items() if not field.metadata.get("help")]
        assert not missing, f"{cls.__name__} fields without help text: {missing}"


def test_the_settings_command_prints_the_table():
    result = subprocess.run([sys.executable, "-m", "assistant", "settings"], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(markdown_table(Settings, base=PROJECT_DIR))
