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

from meddistill.distillation import METHODS, available_methods
from meddistill.evaluation import available_formats, format_extension
from meddistill.explain import available_explainers, explainer_label, saliency
from meddistill.models import create_model
from meddistill.runs import RunConfig
from meddistill.runs.building import build_method

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


@pytest.mark.parametrize("seed", [0, 1])
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
