"""The package's rooms stay apart: no import circles, no transferbench imports hidden inside
functions, and loading tasks imports no model code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "transferbench"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, top_level: bool) -> set[str]:
    """transferbench modules imported at module level (``top_level``) or inside functions."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        inside = node.col_offset > 0  # module-level imports start at column 0
        if inside == top_level:
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        if isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n.startswith("transferbench")}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = _imports(ast.parse(path.read_text()), top_level=True)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_circles():
    graph = _graph()
    # a package's __init__ re-exporting its modules is not a circle through the package
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import circle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_no_transferbench_imports_inside_functions():
    hidden = {
        _module_name(p): sorted(_imports(ast.parse(p.read_text()), top_level=False)) for p in PACKAGE.rglob("*.py")
    }
    assert {m: i for m, i in hidden.items() if i} == {}


def test_loading_tasks_imports_no_model_code():
    code = (
        "import sys, transferbench.tasks;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'transformers', 'timm')"
        " or m.startswith('transferbench.adapters')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_modules_and_functions_stay_small():
    """No module of the package over 450 lines, no function over 60: a file that grows past these
    holds more than one concern, and is split along them."""
    long_modules, long_functions = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 450:
            long_modules.append(f"{_module_name(path)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                long_functions.append(f"{_module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert long_modules == [] and long_functions == []


def test_a_pipeline_without_collate_does_not_instantiate():
    import numpy as np
    import pytest
    import torch

    from transferbench.tasks.pipeline import Pipeline

    class NoCollate(Pipeline):
        pass

    with pytest.raises(TypeError, match="collate"):
        NoCollate(np.zeros(2, dtype=np.int64), device=torch.device("cpu"))


def test_an_unarmed_fault_hook_is_nothing_and_an_armed_one_only_its_point(monkeypatch):
    from transferbench.benchmarks.runtime import faults

    monkeypatch.delenv("TRANSFERBENCH_FAULT", raising=False)
    assert faults.hook("train-step") is faults._nothing  # read once; nothing per step
    monkeypatch.setenv("TRANSFERBENCH_FAULT", "train-step:3")
    assert faults.hook("train-step") is not faults._nothing and faults.hook("eval") is faults._nothing
