"""The ``openr2v`` command: generate (in-process and against a server), tasks, estimate, plan, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openr2v.cli import ExitCode, app
from tests.helpers import KEY, LiveServer, assert_contract_mp4

runner = CliRunner()


def run(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, [str(a) for a in args], env=env)


def cli(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """The command as a user runs it: a separate process."""
    full = {**os.environ, "OPENR2V_API_KEY": "", "DASHSCOPE_API_KEY": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "openr2v.cli", *map(str, args)], capture_output=True, text=True,
                          env=full, timeout=timeout)


def test_generate_in_process_then_list_its_data_dir(media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    data = tmp_path / "data"
    r = run("generate", "-p", "character1 says to character2: 'hello'. Close-up of character2.",
            "--ref", media_dir / "person1.mp4", "--ref", media_dir / "object.png", "--size", "1280*720",
            "--duration", "2", "--shots", "multi", "--seed", "5", "--watermark", "-o", out, "--data-dir", data)
    assert r.exit_code == 0, r.output
    assert "saved" in r.output and "billed 4.5 s" in r.output  # 2 refs: the 2.5 s video bills 2.5 s, + 2 s
    assert_contract_mp4(out, 1280, 720, 2, audio=True)
    r = run("tasks", "list", "--data-dir", data, "--json")
    assert r.exit_code == 0, r.output
    listed = json.loads(r.stdout)
    assert listed["total"] == 1 and listed["tasks"][0]["task_status"] == "SUCCEEDED"


def test_generate_wan27_with_voice_and_first_frame(media_dir: Path, tmp_path: Path) -> None:
    r = run("generate", "-p", "Image 1 says: 'hi'. Video 1 waves.", "--model", "wan2.7-r2v",
            "--ref", media_dir / "face.webp", "--ref", media_dir / "person2.mp4", "--voice", f"1={media_dir}/voice.wav",
            "--first-frame", media_dir / "background.jpg", "--resolution", "720P", "--duration", "2",
            "-o", tmp_path / "v.mp4", "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["usage"]["size"] == "1280*720" and Path(body["path"]).is_file()


def test_exit_codes(make_server: Any, server: LiveServer, media_dir: Path, tmp_path: Path) -> None:
    no_refs = run("generate", "-p", "x")
    assert no_refs.exit_code == ExitCode.USAGE
    missing = run("generate", "-p", "x", "--ref", tmp_path / "nope.png")
    assert missing.exit_code == ExitCode.USAGE and "no such file" in missing.output
    bad_voice = run("generate", "-p", "x", "--ref", media_dir / "object.png", "--voice", "3=v.wav")
    assert bad_voice.exit_code == ExitCode.USAGE
    no_key = run("generate", "-p", "x", "--ref", media_dir / "object.png", "--server", server.url,
                 env={"OPENR2V_API_KEY": "", "DASHSCOPE_API_KEY": ""})
    assert no_key.exit_code == ExitCode.USAGE and "API key" in no_key.output
    failed = run("generate", "-p", "character1 waves.", "--ref", media_dir / "notanimage.png", "--size",
                 "1280*720", "--duration", "2", "-o", tmp_path / "f.mp4")
    assert failed.exit_code == ExitCode.TASK_FAILED and "FAILED" in failed.output
    refused = run("generate", "-p", "character1 waves.", "--ref", media_dir / "object.png", "--size", "1234*5",
                  "--server", server.url, "--api-key", KEY)
    assert refused.exit_code == ExitCode.API_ERROR
    assert "InvalidParameter" in refused.output and "parameters.size" in refused.output
    unreachable = run("tasks", "list", "--server", "http://127.0.0.1:9", "--api-key", KEY)
    assert unreachable.exit_code == ExitCode.CONNECTION
    idle = make_server(render_threads=0)
    slow = run("generate", "-p", "character1 waves.", "--ref", media_dir / "object.png", "--server", idle.url,
               "--api-key", KEY, "--timeout", "1")
    assert slow.exit_code == ExitCode.TIMEOUT and "tasks show" in slow.output


def test_estimate_and_plan_offline(media_dir: Path) -> None:
    r = run("estimate", "--ref", media_dir / "person1.mp4", "--ref", media_dir / "person2.mp4", "--ref",
            "https://example.com/x.png", "--size", "1280*720", "--duration", "4", "--json")
    assert r.exit_code == 0, r.output
    est = json.loads(r.stdout)
    # Three references -> 1.65 s cap per video (the wan2.6-r2v guide); both videos are longer.
    assert est["input_video_duration"] == pytest.approx(3.3) and est["billed_seconds"] == pytest.approx(7.3)
    assert est["exact"] is True and est["cost_usd"] == pytest.approx(7.3 * 0.05)
    table = run("estimate", "--ref", media_dir / "person1.mp4", "--ref", "https://example.com/clip.mp4",
                "--model", "wan2.7-r2v", "--resolution", "1080P", "--duration", "5")
    assert table.exit_code == 0 and "at most" in table.output and "Video 2" in table.output
    refused = run("estimate", "--model", "wan2.6-r2v", "--no-audio", "--ref", media_dir / "object.png")
    assert refused.exit_code == ExitCode.USAGE and "audio" in refused.output

    r = run("plan", "-p", "Shot 1 [0-2s]: wide shot of character1. Shot 2 [2-5s]: character2 says to character1: "
            "'hello'", "--json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["labels"] == ["character1", "character2"] and plan["plan"]["mode"] == "timed"
    assert [s["framing"] for s in plan["plan"]["shots"]][0] == "wide"
    assert plan["plan"]["shots"][1]["lines"][0]["speaker"] == "character2"
    table = run("plan", "-p", "Video 1 walks in. Image 1 says: 'why?'", "--model", "wan2.7-r2v", "--shots", "multi")
    assert table.exit_code == 0 and "shot plan: auto" in table.output and "why?" in table.output


def test_estimate_and_plan_against_a_server(server: LiveServer, media_dir: Path) -> None:
    # Local videos are uploaded and measured by the server: the same bill as offline, exact.
    args = ["estimate", "--ref", media_dir / "person1.mp4", "--ref", media_dir / "person2.mp4", "--ref",
            "https://example.com/x.png", "--size", "1280*720", "--duration", "4", "--json"]
    offline = json.loads(run(*args).stdout)
    r = run(*args, "--server", server.url, "--api-key", KEY)
    assert r.exit_code == 0, r.output
    remote = json.loads(r.stdout)
    assert remote["billed_seconds"] == offline["billed_seconds"] == pytest.approx(7.3)
    assert remote["cost_usd"] == offline["cost_usd"] and remote["exact"] is True
    prompt = "Shot 1 [0-2s]: wide shot of character1. Shot 2 [2-5s]: character2 says to character1: 'hello'"
    r = run("plan", "-p", prompt, "--ref", "a.png", "--ref", "b.png", "--json", "--server", server.url,
            "--api-key", KEY)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(run("plan", "-p", prompt, "--json").stdout)
    refused = run("estimate", "--size", "1234*5", "--server", server.url, "--api-key", KEY)
    assert refused.exit_code == ExitCode.API_ERROR and "1234*5 is not supported" in refused.output


def test_subprocess_against_a_server(server: LiveServer, media_dir: Path, tmp_path: Path) -> None:
    env = {"OPENR2V_API_KEY": KEY}
    out = tmp_path / "sub.mp4"
    r = cli("generate", "-p", "character1 waves.", "--ref", media_dir / "face.webp", "--size", "960*960",
            "--duration", "2", "--no-audio", "--server", server.url, "-o", out, env=env)
    assert r.returncode == 0, r.stderr
    assert_contract_mp4(out, 960, 960, 2, audio=False)  # wan2.6-r2v-flash may be silent
    task_id = next(line.split()[0] for line in r.stderr.splitlines() if "SUCCEEDED after" in line)
    r = cli("tasks", "show", task_id, "--server", server.url, "--json", "-o", tmp_path / "again.mp4", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output"]["task_status"] == "SUCCEEDED" and (tmp_path / "again.mp4").is_file()
    r = cli("tasks", "list", "--server", server.url, "--status", "succeeded", env=env)
    assert r.returncode == 0 and task_id in r.stdout


def test_subprocess_in_process_and_cancel(make_server: Any, media_dir: Path, tmp_path: Path) -> None:
    r = cli("generate", "-p", "character1 waves.", "--ref", media_dir / "object.png", "--size", "1280*720",
            "--duration", "2", "-o", tmp_path / "local.mp4")
    assert r.returncode == 0, r.stderr
    assert_contract_mp4(tmp_path / "local.mp4", 1280, 720, 2, audio=True)
    idle = make_server(render_threads=0)
    with idle.client() as c:
        task_id = c.post("/api/v1/services/aigc/video-generation/video-synthesis", headers={
            "X-DashScope-Async": "enable"}, json={"model": "wan2.6-r2v-flash", "input": {
                "prompt": "character1 waves.", "reference_urls": ["https://example.com/a.png"]}}).json()["output"]["task_id"]
    env = {"OPENR2V_API_KEY": KEY}
    r = cli("tasks", "cancel", task_id, "--server", idle.url, env=env)
    assert r.returncode == 0 and "canceled" in r.stderr, r.stderr
    r = cli("tasks", "cancel", task_id, "--server", idle.url, env=env)
    assert r.returncode == ExitCode.API_ERROR and "UnsupportedOperation" in r.stderr
    r = cli("tasks", "show", task_id, "--server", idle.url, env=env)
    assert r.returncode == ExitCode.TASK_FAILED and "CANCELED" in r.stdout
