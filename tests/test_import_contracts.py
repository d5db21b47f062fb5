"""The import contracts of pyproject.toml hold, and each one catches the violation it exists for.

Each case copies the package to a temporary tree, appends one forbidden import to one module, and
runs ``lint-imports`` on the copy: the contract named must be reported broken (and no other, but for
the consequences ALSO_BROKEN lists)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CASES = {
    "Layers: api -> tasks -> engines -> media -> domain -> errors": ("engines/base.py", "openr2v.tasks.service"),
    "domain imports nothing of the project but errors": ("domain/models.py", "openr2v.config"),
    "client (the SDK) imports nothing of the server": ("client/types.py", "openr2v.errors"),
    "no dialect imports another": ("api/dialects/gateway/translate.py", "openr2v.api.dialects.dashscope.translate"),
    "runtime, keys and config import nothing of api": ("runtime.py", "openr2v.api.common"),
    "engines are independent (what two share is in engines.common)": ("engines/vace/timing.py",
                                                                      "openr2v.engines.compositor.blend"),
    "engines.common imports no engine": ("engines/common/storyboard.py", "openr2v.engines.upstream.models"),
}
# An engine imported by engines.common is also reached from the engines that use common.
ALSO_BROKEN = {"engines.common imports no engine": {"engines are independent (what two share is in engines.common)"}}


def _lint(tree: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    run = subprocess.run([str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")], cwd=tree,
                         env=env, capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src" / "openr2v", tree / "src" / "openr2v",
                    ignore=shutil.ignore_patterns("__pycache__", "web", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _verdicts(output: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^(.+?) (KEPT|BROKEN)$", output, re.M)}


@pytest.fixture(scope="module")
def lint_imports() -> Path:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extra (import-linter)")
    return LINT_IMPORTS


def test_the_package_keeps_every_contract(tmp_path: Path, lint_imports: Path) -> None:
    code, out = _lint(_copy(tmp_path))
    assert code == 0, out
    assert _verdicts(out) == dict.fromkeys(CASES, "KEPT")


@pytest.mark.parametrize("contract", list(CASES))
def test_a_forbidden_import_breaks_its_contract(contract: str, tmp_path: Path, lint_imports: Path) -> None:
    tree = _copy(tmp_path)
    module, target = CASES[contract]
    with open(tree / "src" / "openr2v" / module, "a") as f:
        f.write(f"\nimport {target}  # a deliberate violation\n")
    code, out = _lint(tree)
    assert code != 0, out
    verdicts = _verdicts(out)
    assert verdicts[contract] == "BROKEN", out
    assert {name for name, v in verdicts.items() if v == "BROKEN"} == {contract} | ALSO_BROKEN.get(contract, set()), out
