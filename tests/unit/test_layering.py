"""The layers hold: dashboard/ (layout + pure figure builders from plain data) imports neither the
engine (models/), nor torch / transformers, nor the layers above it (services/, callbacks/, serving/);
callbacks.guard and models.errors load no torch. Checked twice: statically (every import statement
of every module of dashboard/, also those inside functions) and at run time (a fresh interpreter
imports every module of dashboard/ and looks at sys.modules)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_MODULES = sorted(p.stem for p in (ROOT / "dashboard").glob("*.py") if p.stem != "__init__")
# what dashboard/ may never import (top-level package names)
FORBIDDEN = {"models", "services", "callbacks", "serving", "torch", "transformers", "app"}
# what must not be loaded after importing the view layer / the guard (module name prefixes)
HEAVY = ("torch", "transformers", "models.", "services", "callbacks.")


def imported_packages(path: Path) -> set[str]:
    """Top-level package names of every import statement in a file (relative imports: "")."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add("" if node.level else (node.module or "").split(".")[0])
    return out


def loaded_after_import(modules: list[str]) -> list[str]:
    """Names in sys.modules of a fresh interpreter after importing `modules`."""
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dashboard_has_modules():
    assert {"layout", "figures", "selection", "pruning_views"} <= set(DASHBOARD_MODULES)


@pytest.mark.parametrize("module", DASHBOARD_MODULES)
def test_dashboard_module_imports_no_engine(module):
    found = imported_packages(ROOT / "dashboard" / f"{module}.py")
    assert not found & FORBIDDEN, f"dashboard/{module}.py imports {sorted(found & FORBIDDEN)}"
    assert "" not in found, f"dashboard/{module}.py uses a relative import"


def test_static_check_sees_imports_inside_functions(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("import numpy\n\ndef f():\n    from models import loader\n    import torch.nn\n")
    assert imported_packages(p) == {"numpy", "models", "torch"}


def test_importing_every_dashboard_module_loads_no_torch_and_no_engine():
    loaded = loaded_after_import(["dashboard.layout"] + [f"dashboard.{m}" for m in DASHBOARD_MODULES])
    assert "dashboard.layout" in loaded and "dash" in loaded  # the import did happen
    heavy = [m for m in loaded if m.startswith(HEAVY) or m in ("models", "services", "callbacks")]
    assert heavy == [], heavy


def test_guard_and_errors_load_no_torch():
    loaded = loaded_after_import(["callbacks.guard", "models.errors"])
    assert "models.errors" in loaded
    assert [m for m in loaded if m.startswith(("torch", "transformers"))] == []
    assert [m for m in loaded if m.startswith("models.") and m != "models.errors"] == []


def test_old_error_names_are_the_same_classes():
    from models import attention, errors, loader, registry
    from services import pruning_card

    assert attention.InputError is errors.InputError
    assert loader.ModelLoadError is errors.ModelLoadError
    assert registry.ModelNotFound is errors.ModelNotFound
    assert pruning_card.PanelError is errors.PanelError
