"""``pip install openr2v`` (no extras) is the light client: a fresh venv from this checkout drives a running
server with ``openr2v.Client`` and ``openr2v generate --server``, never importing the media stack, and the
commands that need the server say which extra to install (docs/clients.md, "Install").

Slow-ish (a venv and a pip install from PyPI, some 30-90 s here), and kept in the suite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import KEY, LiveServer

ROOT = Path(__file__).resolve().parents[1]
# The media stack and the server (pydantic is not among them: typer depends on it).
HEAVY = ("numpy", "av", "cv2", "torch", "PIL", "fastapi", "uvicorn", "sqlalchemy")
# Runs a script or the command, then reports which heavy modules were imported (at exit, whatever the exit).
WRAPPER = """
import atexit, json, os, runpy, sys
HEAVY = {heavy!r}

@atexit.register
def _report():
    with open(os.environ["IMPORT_REPORT"], "w") as f:
        json.dump(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY), f)

if sys.argv[1] == "-m":
    sys.argv = ["openr2v", *sys.argv[2:]]
    from openr2v.cli import main
    main()
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""
SDK_SCRIPT = """
import sys, openr2v
with openr2v.Client(base_url=sys.argv[1], api_key=sys.argv[2]) as client:
    task = client.generate(prompt="character1 waves.", references=[sys.argv[3]], model="wan2.6-r2v-flash",
                           size="1280*720", duration=2, audio=False, output=sys.argv[4])
    assert task.succeeded and task.usage.duration == 2, task.raw
    quota = client.quota()
    assert quota["windows"]["total"]["billed_seconds"] >= 2, quota
print("sdk ok", task.task_id)
"""


def _clean_env() -> dict[str, str]:
    """The environment without this checkout's PYTHONPATH (or any openr2v setting)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OPENR2V_", "DASHSCOPE_"))}


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with ``pip install <checkout>``: the checkout's files copied, so the build leaves no trace here."""
    base = tmp_path_factory.mktemp("light")
    src = base / "openr2v"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
                       capture_output=True, text=True, timeout=900, env=_clean_env())
    assert r.returncode == 0, r.stdout + r.stderr
    yield env_dir


def _run(env_dir: Path, tmp_path: Path, *args: str, key: str = "") -> tuple[subprocess.CompletedProcess[str],
                                                                           list[str]]:
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(WRAPPER.format(heavy=HEAVY))
    report = tmp_path / f"imports-{len(list(tmp_path.glob('imports-*')))}.json"
    env = _clean_env()
    env.update(IMPORT_REPORT=str(report), OPENR2V_API_KEY=key)
    r = subprocess.run([env_dir / "bin" / "python", wrapper, *args], capture_output=True, text=True, env=env,
                       timeout=300, cwd=tmp_path)
    return r, json.loads(report.read_text())


def test_the_light_install_has_no_server(light_venv: Path) -> None:
    py = light_venv / "bin" / "python"
    probe = ("import importlib.util, json; print(json.dumps([m for m in "
             f"{HEAVY!r} if importlib.util.find_spec(m) is not None]))")
    r = subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True, env=_clean_env())
    assert json.loads(r.stdout) == []  # none of them is even installed
    helped = subprocess.run([light_venv / "bin" / "openr2v", "--help"], capture_output=True, text=True,
                            env=_clean_env())
    assert helped.returncode == 0 and "generate" in helped.stdout, helped.stderr


def test_sdk_and_cli_against_a_running_server(light_venv: Path, server: LiveServer, media_dir: Path,
                                              tmp_path: Path) -> None:
    script = tmp_path / "sdk.py"
    script.write_text(SDK_SCRIPT)
    r, imported = _run(light_venv, tmp_path, str(script), server.url, KEY, str(media_dir / "object.png"),
                       str(tmp_path / "sdk.mp4"))
    assert r.returncode == 0 and "sdk ok" in r.stdout, r.stdout + r.stderr
    assert imported == [] and (tmp_path / "sdk.mp4").stat().st_size > 0

    out = tmp_path / "cli.mp4"
    r, imported = _run(light_venv, tmp_path, "-m", "generate", "--server", server.url, "-p", "character1 waves.",
                       "--ref", str(media_dir / "face.webp"), "--size", "960*960", "--duration", "2", "--no-audio",
                       "-o", str(out), key=KEY)
    assert r.returncode == 0 and "saved" in r.stderr, r.stdout + r.stderr
    assert imported == [] and out.stat().st_size > 0
    for args in (["tasks", "list", "--server", server.url, "--json"],
                 ["estimate", "--ref", str(media_dir / "person1.mp4"), "--server", server.url, "--json"],
                 ["plan", "-p", "character1 waves.", "--server", server.url, "--json"],
                 ["plan", "-p", "character1 waves.", "--json"]):  # offline: the prompt grammar is the standard library
        r, imported = _run(light_venv, tmp_path, "-m", *args, key=KEY)
        assert r.returncode == 0, (args, r.stdout + r.stderr)
        assert imported == [], args
    assert json.loads(r.stdout)["labels"] == ["character1"]


@pytest.mark.parametrize("args", [["serve"], ["worker"], ["generate", "-p", "character1 waves.", "--ref", "x.png"],
                                  ["estimate", "--ref", "{video}"]])
def test_server_commands_name_the_extra(light_venv: Path, media_dir: Path, tmp_path: Path, args: list[str]) -> None:
    args = [a.format(video=media_dir / "person1.mp4") for a in args]
    if args[0] == "generate":
        (tmp_path / "x.png").write_bytes((media_dir / "object.png").read_bytes())
    r, imported = _run(light_venv, tmp_path, "-m", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "pip install 'openr2v[server]'" in r.stderr and "Traceback" not in r.stderr
    assert imported == []

