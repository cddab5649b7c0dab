"""The package's shape: no import cycles, every module importable alone in any order, no Streamlit in the
library, and every registry entry usable through the generic code paths."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from meddistill import RunConfig
from meddistill.distillation import METHODS, available_methods
from meddistill.evaluation import available_formats, format_extension
from meddistill.explain import available_explainers, explainer_label, saliency
from meddistill.models import create_model
from meddistill.pipeline.building import build_method

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "meddistill"
CYCLES_TOOL = ROOT.parent / "shared" / "tools" / "import_cycles.py"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [n for n in names if n != "meddistill.__main__"]


def test_no_import_cycles():
    """shared/tools/import_cycles.py reads every import (deferred ones too): no two modules need each other."""
    if not CYCLES_TOOL.is_file():
        pytest.skip(f"{CYCLES_TOOL} not found (it lives beside the repository in shared/tools)")
    result = subprocess.run([sys.executable, str(CYCLES_TOOL), str(PACKAGE)], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "cycles=0", result.stdout


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])  # the second order in CI only
def test_every_module_imports_alone_in_a_random_order(seed):
    """A fresh interpreter imports every module, shuffled: nothing depends on an import order."""
    order = _modules()
    random.Random(seed).shuffle(order)
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code, *order], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_library_never_imports_streamlit():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_public_api_is_reexported():
    import meddistill

    for name in meddistill.__all__:
        assert hasattr(meddistill, name), name


@pytest.mark.parametrize("name", available_explainers())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_explainer_gives_a_map(name, channels):
    torch.manual_seed(0)
    model = create_model("tiny_cnn", 2, channels, 28).eval()
    heat = saliency(model, torch.randn(channels, 28, 28), method=name)
    assert heat.shape == (28, 28) and heat.min() >= 0 and heat.max() <= 1
    assert explainer_label(name)


@pytest.mark.parametrize("name", available_methods())
def test_every_method_builds_for_a_run(name):
    """The pipeline builds any registered method the same way (feature methods get both models' channels)."""
    config = RunConfig(method=name)
    student, teacher = create_model("tiny_cnn", 2, 1, 28), create_model("resnet_narrow", 2, 1, 28)
    method = build_method(config, student, teacher, 1, 28)
    assert isinstance(method, METHODS.entry(name).factory)
    features = torch.randn(4, 96, 4, 4), torch.randn(4, 128, 4, 4)
    loss = method(torch.randn(4, 2), torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), *features)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("fmt", available_formats())
def test_every_export_format_has_an_extension(fmt):
    assert format_extension(fmt).startswith(".")


# The packages from the bottom up: a module may import its own package and the packages below it, never above
# (deferred imports inside functions count). cli and views share a layer but never import each other.
LAYERS = (
    ("errors", "paths", "registry"),
    ("io",),
    ("web",),
    ("tracking",),
    ("data",),
    ("models",),
    ("distillation",),
    ("evaluation",),
    ("training",),
    ("explain",),
    ("tasks",),
    ("settings",),
    ("store",),
    ("pipeline",),
    ("reports",),
    ("services",),
    ("cli", "views"),
    ("__init__", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _package_of(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root).parts
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported meddistill subpackage) for every import anywhere in the file, deferred ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + (
                [f"meddistill.{a.name}" for a in node.names] if node.module == "meddistill" else []
            )
        for name in names:
            parts = name.split(".")
            if parts[0] == "meddistill" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def package_order_violations(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        mine = _package_of(path, root)
        assert mine in RANK, f"{mine} has no layer in LAYERS: add it where it belongs"
        for line, target in _imports(path):
            if target == mine or mine in ("__init__", "__main__"):
                continue
            if RANK[target] >= RANK[mine]:
                problems.append(f"{path.relative_to(root.parent)}:{line} ({mine}) imports meddistill.{target}")
    return problems


def test_packages_import_only_downwards_counting_deferred_imports():
    assert package_order_violations() == []


def test_the_package_order_check_sees_deferred_imports_between_packages(tmp_path):
    """A runs <-> views style loop hidden in a function is caught (the check that missed it before)."""
    fake = tmp_path / "meddistill"
    (fake / "store").mkdir(parents=True)
    (fake / "store" / "card.py").write_text("def f():\n    from meddistill.views.cases import run_dataset\n")
    assert package_order_violations(fake) == ["meddistill/store/card.py:2 (store) imports meddistill.views"]


def _module_graph() -> dict[str, set[str]]:
    """Module -> meddistill modules it imports anywhere (the repository's own copy of shared/tools/import_cycles)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("meddistill"):
                    graph[name].add(target)
    return graph


def test_no_module_cycles_in_repository_check():
    """No two modules need each other, counting deferred imports (runs without ../shared)."""
    graph = _module_graph()
    seen, stack = {}, []

    def visit(node: str) -> None:
        seen[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules: __init__ re-exports
            assert seen.get(nxt) != "open", " -> ".join(stack[stack.index(nxt) :] + [nxt])
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = "done"

    for node in sorted(graph):
        if node not in seen:
            visit(node)


def test_cli_and_runs_layers_never_import_views():
    for package in ("cli", "pipeline", "store", "settings", "reports", "services"):
        for path in (PACKAGE / package).rglob("*.py"):
            assert "views" not in [t for _, t in _imports(path)], path


# Literals that equal a MEDDISTILL_HOME name but mean something else.
NOT_HOME_NAMES = {
    ("cli/runs.py", "runs"): "the `meddistill runs` command",
    ("models/pretrained.py", "checkpoints"): "torch hub's cache folder, outside MEDDISTILL_HOME",
}


def test_every_home_file_and_folder_name_is_spelled_in_one_module():
    from meddistill import paths
    from meddistill.store import layout

    names = {getattr(paths, n) for n in dir(paths) if n.endswith(("_FILE", "_DIR")) and n.isupper()}
    names |= {getattr(layout, n) for n in dir(layout) if n.endswith(("_FILE", "_DIR")) and n.isupper()}
    names |= set(layout.EXTERNAL_TEACHER_FILES.values())
    spelled: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docs:
                where = str(path.relative_to(PACKAGE))
                if (where, node.value) not in NOT_HOME_NAMES:
                    spelled.setdefault(node.value, set()).add(where)
    assert {name: sorted(m) for name, m in spelled.items() if len(m) > 1} == {}
    assert spelled["runs.sqlite"] == {"paths.py"} and spelled["report.json"] == {"store/layout.py"}
