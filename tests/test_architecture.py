"""The package reads in one direction: imports go down the layers of DESIGN.md, never up,
never in a cycle, never to another module's private names; rooms stay small."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "servicecircle"

# Lowest first. A module may import modules of its own layer or of layers below it.
LAYERS: list[set[str]] = [
    {"__init__", "_errors", "_crs", "_write", "_background", "_arrays"},  # base: errors, CRS, files
    # io and presets; PBF blocks as arrays
    {"coords", "files", "geometry", "osmtags", "tiers", "standard", "segments", "pbf_blocks"},
    {
        "osm",
        "pbf_network",
        "area",
        "scenario",
        "cache",
        "cache_files",
        "osm_split",
        "osm_split_scan",
    },  # sources: OSM, scenarios, areas
    # the walk network as arrays, where points meet it
    {"snap_grid", "snapping", "edge_arrays", "network"},
    {
        "demand",
        "facilities",
        "candidates",
        "grid",
        "governance",
        "governance_balance",
        "governance_graph",
        "governance_micro",
        "governance_recom",
        "governance_split",
    },
    {"paths", "coverage"},  # the path engine, per-tier tables
    {"rollup", "service_areas", "whatif", "siting", "audit"},
    {
        "maps",
        "map_markers",
        "run_manifest",
        "report",
        "outputs",
        "excel",
        "pages",
        "audit_page",
        "whatif_page",
    },  # pages
    {"workflows"},  # one module per command
    {"plan", "batch_task", "batch"},  # re-exports; Dask (a task, the run)
    {"cli", "__main__"},
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts[0] == "_vendor":
            continue
        name = ".".join(p for p in rel.parts if p != "__init__") or "__init__"
        out[name] = path
    return out


def imports_of(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module within the package, imported names, line) for every import, lazy
    ones inside functions included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("servicecircle"):
                target = node.module.removeprefix("servicecircle").lstrip(".")
            else:
                continue
            found.append((target or "__init__", [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("servicecircle."):
                    found.append((a.name.removeprefix("servicecircle."), [], node.lineno))
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def resolve(target: str, names: list[str], known: dict[str, Path]) -> list[str]:
    """The modules an import statement pulls in (``from . import x`` imports module x)."""
    mods = []
    for n in names:
        sub = f"{target}.{n}" if target != "__init__" else n
        if sub in known:
            mods.append(sub)
    return mods or [target]


def test_every_module_has_a_layer():
    missing = sorted({top(m) for m in modules()} - set(LAYER_OF))
    assert missing == [], f"add these modules to LAYERS: {missing}"


def test_imports_go_down_the_layers_only():
    known = modules()
    wrong = []
    for name, path in known.items():
        here = LAYER_OF[top(name)]
        for target, names, line in imports_of(name, path):
            for mod in resolve(target, names, known):
                there = LAYER_OF.get(top(mod))
                assert there is not None, f"{name}:{line} imports unknown module {mod}"
                if there > here:
                    wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {mod} (higher)")
    assert wrong == [], "\n".join(wrong)


def test_no_import_cycles():
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for target, names, _line in imports_of(name, path):
            for mod in resolve(target, names, known):
                if mod != name and mod in known:
                    graph[name].add(mod)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own submodules
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(known):
        if node not in state:
            visit(node)


def test_no_module_imports_private_names_of_another():
    known = modules()
    wrong = []
    for name, path in known.items():
        for target, names, line in imports_of(name, path):
            for n in names:
                if n.startswith("_") and not n.startswith("__") and f"{target}.{n}" not in known:
                    wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}.{n}")
    assert wrong == [], "\n".join(wrong)


MAX_FUNCTION_LINES = 120
MAX_MODULE_LINES = 600


def test_rooms_stay_small():
    long_functions, long_modules = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_vendor" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(PACKAGE)}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                why = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                if length > MAX_FUNCTION_LINES and "long function:" not in why:
                    long_functions.append(
                        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines"
                    )
    assert long_modules == [], "\n".join(long_modules)
    assert long_functions == [], "\n".join(long_functions)
