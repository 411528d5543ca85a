"""One settings module reads every environment variable: each one it declares is in the README's
Configuration table, it refuses undeclared names, and no other module of the app reads
os.environ / os.getenv (writes, e.g. gunicorn.conf.py making ATTN_CACHE_DIR absolute, are fine)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import settings

ROOT = Path(__file__).resolve().parents[2]
APP_DIRS = ("models", "serving", "callbacks", "dashboard", "services")
APP_FILES = ("app.py", "gunicorn.conf.py")


def readme_table_names() -> set[str]:
    """Variable names in the rows of the README's Configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)", first_cell))
    return names


def app_sources() -> list[Path]:
    files = [ROOT / f for f in APP_FILES]
    for d in APP_DIRS:
        files += sorted((ROOT / d).rglob("*.py"))
    return files


def environment_reads(path: Path) -> list[str]:
    """Reads of the environment in a file ("file:line"): os.getenv, os.environ.get / [...] /
    .items() ...; os.environ.setdefault / .update and `os.environ[k] = v` are writes."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    reads = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "os"
                and node.attr in ("environ", "getenv", "environb", "getenvb")):
            continue
        parent = parents.get(id(node))
        if node.attr == "environ" and isinstance(parent, ast.Attribute) and parent.attr in ("setdefault", "update"):
            continue
        if node.attr == "environ" and isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
            continue
        reads.append(f"{path.name}:{node.lineno}")
    return reads


def test_every_declared_variable_is_in_the_readme_table():
    missing = set(settings.VARIABLES) - readme_table_names()
    assert not missing, f"add these to the README's Configuration table: {sorted(missing)}"


def test_the_readme_table_names_only_declared_variables():
    unknown = readme_table_names() - set(settings.VARIABLES)
    assert not unknown, f"the README's table names variables settings.py does not declare: {sorted(unknown)}"


def test_issue_14_variables_are_declared():
    assert {"ATTN_REDIS_TTL", "ATTN_CELERY_IMPORTS", "ATTN_LOG_LEVEL", "ATTN_VERSION",
            "ATTN_CONTROL_SOCKET"} <= set(settings.VARIABLES)


def test_undeclared_names_are_refused(monkeypatch):
    monkeypatch.setenv("ATTN_MAX_TOKENS", "64")
    assert settings.get("ATTN_MAX_TOKENS") == "64"
    monkeypatch.delenv("ATTN_MAX_TOKENS")
    assert settings.get("ATTN_MAX_TOKENS", "d") == "d"  # read when asked, never cached
    with pytest.raises(KeyError):
        settings.get("ATTN_NOT_A_SETTING")


def test_passthrough_keeps_only_our_prefixes(monkeypatch):
    monkeypatch.setenv("ATTN_MAX_JOBS", "3")
    monkeypatch.setenv("SOME_OTHER_SECRET", "x")
    env = settings.passthrough()
    assert env["ATTN_MAX_JOBS"] == "3" and "SOME_OTHER_SECRET" not in env


def test_no_other_module_reads_the_environment():
    reads = [r for f in app_sources() for r in environment_reads(f)]
    assert reads == [], f"read the environment through settings.get: {reads}"


def test_the_scan_finds_reads(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("import os\nos.environ.setdefault('A', '1')\nos.environ['B'] = '2'\n"
                 "x = os.environ.get('ATTN_X')\ny = os.environ['Y']\nz = os.getenv('Z')\n")
    found = environment_reads(p)
    assert len(found) == 3, found
