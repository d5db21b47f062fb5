"""The ``openr2v`` command: serve, generate, tasks, estimate, plan.

``generate`` and ``tasks`` speak the DashScope dialect through the SDK, to a server (``--server``,
which may be Alibaba Cloud's own API root) or, with no server, to one started inside this
process. ``estimate`` and ``plan`` work offline from the registry, the billing rules and the
prompt grammar, or ask a server (``--server``). With the light install (``pip install openr2v``: no
server extra), whatever needs the server (``serve``, ``worker``, a run without ``--server``,
measuring local videos) says which extra to install and exits with 2.

Exit codes: 0 done; 1 the task FAILED, was CANCELED or is UNKNOWN; 2 usage error (bad
arguments, missing file or key); 3 the API answered an error (HTTP 4xx/5xx, upload refused);
4 the server could not be reached; 5 timed out waiting; 130 interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import gc
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from openr2v.domain.models import REGIONS
from openr2v.logs import configure_logging

__all__ = ["ExitCode", "app", "main"]

app = typer.Typer(help="openr2v: an open reference-to-video server speaking the Wan R2V API.",
                  no_args_is_help=True, add_completion=False)
tasks_app = typer.Typer(help="List, show and cancel your tasks on a server.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
console = Console(stderr=True)  # progress and messages
out = Console()  # results (tables, JSON)
for _c in (console, out):
    if not _c.is_terminal:  # piped (scripts, tests): keep whole lines rather than 80 columns
        _c.width = 160


class ExitCode(enum.IntEnum):
    OK = 0
    TASK_FAILED = 1
    USAGE = 2
    API_ERROR = 3
    CONNECTION = 4
    TIMEOUT = 5
    INTERRUPTED = 130


@app.callback()
def _root() -> None:
    """openr2v command line."""


SERVER_EXTRA = "pip install 'openr2v[server]'"
# What the server side needs beyond the light client (pyproject.toml's ``server`` extra), by import name.
SERVER_MODULES = ("fastapi", "uvicorn", "orjson", "pydantic_settings", "sqlalchemy", "alembic", "multipart",
                  "prometheus_client", "av", "numpy", "PIL", "cv2")


def _require_server(what: str, alternative: str = "") -> None:
    """Stop with exit code 2 and the install line when this install is the light client (no server extra)."""
    import importlib.util

    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise _fail(ExitCode.USAGE, f"{what} needs the server side of openr2v, not installed here (no module "
                                    f"{', '.join(missing)}). Install it: {SERVER_EXTRA}"
                                    + (f"; or {alternative}." if alternative else "."))


# -- serve ------------------------------------------------------------------------------------


def _cap_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas before the render threads start.

    glibc gives threads that allocate at once arenas of their own, up to 8 per core, and an arena
    keeps the high-water mark of its fragments. Renders allocate frame-sized buffers on many threads
    (workers, encoder, cut-outs, request threads): bench/soak.py measured the embedded server at
    about 1.3 GB RSS after a few minutes, swinging by 100-200 MB, against about 0.8 GB and flat with
    2 arenas. A MALLOC_ARENA_MAX in the environment wins (glibc applied it at start-up).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl): nothing to cap
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8: M_ARENA_MAX


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (store, uploads, outputs).")] = None,
    region: Annotated[str | None, typer.Option(help="Region this server stands for: intl, cn or us.")] = None,
    render_threads: Annotated[int | None, typer.Option(help="Render threads in this process (0: API only).")] = None,
    workers: Annotated[int | None, typer.Option(hidden=True, help="Deprecated: --render-threads.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run the API with its in-process workers (SQLite store, files under the data dir)."""
    _require_server("openr2v serve")
    import uvicorn

    from openr2v.api.app import create_app
    from openr2v.config import Settings

    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if region is not None:
        if region not in REGIONS:
            raise typer.BadParameter(f"region must be one of {', '.join(REGIONS)}", param_hint="--region")
        overrides["region"] = region
    if workers is not None:
        console.print("[yellow]--workers is deprecated; use --render-threads[/yellow]")
        render_threads = workers if render_threads is None else render_threads
    if render_threads is not None:
        overrides["render_threads"] = render_threads
    settings = Settings(**overrides)
    configure_logging(log_level, settings.log_format)
    _cap_malloc_arenas()
    app_ = create_app(settings)
    rt = app_.state.runtime
    if rt.created_key:
        console.print(f"[bold]API key[/bold] (region {settings.region}): {rt.created_key}")
        console.print(f"  stored in {settings.data_dir / 'api_key'}; set OPENR2V_API_KEYS to choose your own")
    console.print(f"openr2v on http://{host}:{port}  (DashScope base URL: http://{host}:{port}/api/v1; "
                  f"web console: http://{host}:{port}/)")
    # JSON logs: uvicorn's loggers pass their lines to the root handler instead of printing their own.
    own_logs: dict[str, Any] = {"log_config": None} if settings.log_format == "json" else {}
    _settle_garbage_collector()
    uvicorn.run(app_, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5, **own_logs)


def _settle_garbage_collector() -> None:
    """Keep the collector's pauses out of request latency.

    What start-up loaded (FastAPI's routes and models, SQLAlchemy, the registry: hundreds of thousands
    of objects) lives as long as the process; frozen, the oldest generation's collections stop walking
    it. A larger youngest generation makes collections rarer; each request frees what it allocates.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 20, 20)


# -- shared options and error handling -------------------------------------------------------

ServerOpt = Annotated[str | None, typer.Option(
    "--server", envvar="OPENR2V_SERVER", show_envvar=True,
    help="Server URL (http://host:8000) or DashScope API root (https://dashscope-intl.aliyuncs.com/api/v1). "
         "Without it, a server runs inside this process.")]
KeyOpt = Annotated[str | None, typer.Option(
    "--api-key", envvar=["OPENR2V_API_KEY", "DASHSCOPE_API_KEY"], show_envvar=True,
    help="API key for --server.")]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="With no --server: the in-process server's data directory (default: a temporary one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _fail(code: ExitCode, message: str) -> typer.Exit:
    from rich.markup import escape

    # Messages carry brackets that are not markup: install lines, API messages, file names.
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(int(code))


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    """Map SDK and domain errors to messages and exit codes."""
    from openr2v.client import errors as e
    from openr2v.errors import OpenR2VError

    try:
        yield
    except (typer.Exit, typer.BadParameter):
        raise
    except (e.InvalidRequestError, FileNotFoundError) as exc:
        raise _fail(ExitCode.USAGE, str(exc)) from None
    except OpenR2VError as exc:  # offline validation (estimate)
        raise _fail(ExitCode.USAGE, f"{exc.code}: {exc.message}") from None
    except e.TaskError as exc:
        raise _fail(ExitCode.TASK_FAILED, str(exc)) from None
    except e.WaitTimeout as exc:
        raise _fail(ExitCode.TIMEOUT, f"{exc.message}; it goes on on the server (openr2v tasks show "
                                      f"{exc.task.task_id})") from None
    except e.APIConnectionError as exc:
        raise _fail(ExitCode.CONNECTION, str(exc)) from None
    except e.OpenR2VClientError as exc:
        raise _fail(ExitCode.API_ERROR, str(exc)) from None


@contextlib.contextmanager
def _client(server: str | None, api_key: str | None, data_dir: Path | None, *,
            need_existing: bool = False) -> Iterator[Any]:
    from openr2v.client import Client

    if server:
        if not api_key:
            raise _fail(ExitCode.USAGE, "no API key: pass --api-key or set OPENR2V_API_KEY (or DASHSCOPE_API_KEY)")
        with Client(server, api_key=api_key) as client:
            yield client
        return
    if need_existing and data_dir is None:
        raise _fail(ExitCode.USAGE, "pass --server URL (or --data-dir of an earlier in-process run)")
    _require_server("Running a server inside this command (no --server given)", "pass --server URL")
    from openr2v.embedded import embedded_server

    with embedded_server(data_dir) as srv, Client(srv.url, api_key=srv.api_key) as client:
        yield client


# -- generate ---------------------------------------------------------------------------------


def _refs(refs: list[str], voices: list[str], first_frame: str | None) -> list[Any]:
    from openr2v.client import Ref

    attached: dict[int, str] = {}
    for v in voices:
        m = re.fullmatch(r"(\d+)[=:](.+)", v)
        if not m or not 1 <= int(m.group(1)) <= len(refs):
            raise typer.BadParameter(f"{v!r}: use N=FILE, N the position of a --ref (1-{len(refs)})",
                                     param_hint="--voice")
        attached[int(m.group(1)) - 1] = m.group(2)
    items = [Ref(r, voice=attached.get(i)) if i in attached else r for i, r in enumerate(refs)]
    return ([Ref.first_frame(first_frame)] if first_frame else []) + items


@app.command()
def generate(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The prompt; name references character1 or Image 1.")],
    ref: Annotated[list[str] | None, typer.Option(
        "--ref", "-r", help="A reference image or video: a local file or an http(s) URL. Repeat, in order.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to save the MP4 "
                                                "(default: <task id>.mp4).")] = None,
    model: Annotated[str, typer.Option(help="wan2.6-r2v, wan2.6-r2v-flash or wan2.7-r2v.")] = "wan2.6-r2v-flash",
    size: Annotated[str | None, typer.Option(help="W*H, e.g. 1280*720 (wan2.7: mapped to resolution+ratio).")] = None,
    resolution: Annotated[str | None, typer.Option(help="720P or 1080P (wan2.7).")] = None,
    ratio: Annotated[str | None, typer.Option(help="16:9, 9:16, 1:1, 4:3 or 3:4 (wan2.7).")] = None,
    duration: Annotated[int | None, typer.Option(help="Seconds of video.")] = None,
    audio: Annotated[bool | None, typer.Option("--audio/--no-audio", help="With sound (wan2.6-r2v-flash may "
                                               "be silent).")] = None,
    shots: Annotated[str | None, typer.Option(help="single (one continuous shot) or multi.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed, 0-2147483647.")] = None,
    watermark: Annotated[bool | None, typer.Option("--watermark/--no-watermark", help="Burn the watermark.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="What to avoid.")] = None,
    first_frame: Annotated[str | None, typer.Option(help="First frame image (wan2.7).")] = None,
    voice: Annotated[list[str] | None, typer.Option(help="N=FILE: a voice (WAV/MP3) for reference N "
                                                    "(wan2.7). Repeat.")] = None,
    prompt_extend: Annotated[bool | None, typer.Option("--prompt-extend/--no-prompt-extend")] = None,
    callback_url: Annotated[str | None, typer.Option(help="Webhook URL (openr2v extension).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for the task.")] = None,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Submit references and a prompt, follow the task, save the MP4."""
    if shots is not None and shots not in ("single", "multi"):
        raise typer.BadParameter("use single or multi", param_hint="--shots")
    if not ref and not first_frame:
        raise typer.BadParameter("give at least one reference", param_hint="--ref")
    references = _refs(ref or [], voice or [], first_frame)
    from openr2v.cli_output import TaskProgress
    from openr2v.client import TaskCanceled, TaskFailed, TaskStatus

    with _exit_codes(), _client(server, api_key, data_dir) as client:
        view = TaskProgress(console, enabled=console.is_terminal and not json_out)
        try:
            with view:
                local = sum(1 for r in references if _is_local(r))
                view.note(f"uploading {local} file(s)" if local else "submitting")
                task = client.submit(prompt, references, model=model, size=size, resolution=resolution, ratio=ratio,
                                     duration=duration, audio=audio, shot_type=shots, seed=seed, watermark=watermark,
                                     negative_prompt=negative_prompt, prompt_extend=prompt_extend,
                                     callback_url=callback_url)
                view.update(task)
                done = client.wait(task, on_progress=view.update, timeout=timeout)
        except KeyboardInterrupt:
            raise _fail(ExitCode.INTERRUPTED, "interrupted; the task goes on on the server "
                                              "(openr2v tasks cancel TASK_ID stops it while PENDING)") from None
        if done.status == TaskStatus.FAILED:
            raise TaskFailed(done)
        if not done.succeeded:
            raise TaskCanceled(done)
        path = done.download(output or Path(f"{done.task_id}.mp4"))
        if json_out:
            out.print_json(data={**done.raw, "path": str(path)})
            return
        usage = done.usage
        billed = f"; billed {usage.duration:g} s ({usage.size})" if usage else ""
        console.print(f"[green]saved[/green] {path}  (task {done.task_id}{billed})", highlight=False)


def _is_local(ref: Any) -> bool:
    from openr2v.client.wire import local_path

    source = getattr(ref, "source", ref)
    return local_path(source) is not None


# -- tasks ------------------------------------------------------------------------------------


@tasks_app.command("list")
def tasks_list(
    status: Annotated[str | None, typer.Option(help="PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's tasks.")] = None,
    page: Annotated[int, typer.Option(help="Page number, from 1.")] = 1,
    page_size: Annotated[int, typer.Option(help="Tasks per page, 1-100.")] = 20,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Your tasks, newest first."""
    from openr2v.cli_output import task_table

    with _exit_codes(), _client(server, api_key, data_dir, need_existing=True) as client:
        result = client.list(status=status.upper() if status else None, model=model, page_no=page,
                             page_size=page_size)
    if json_out:
        out.print_json(data={"total": result.total, "page_no": result.page_no, "page_size": result.page_size,
                             "tasks": [t.raw.get("output", t.raw) for t in result.tasks]})
        return
    out.print(task_table(result.tasks))
    out.print(f"page {result.page_no} of {max(1, result.total_pages)}, {result.total} task(s)", highlight=False)


@tasks_app.command("show")
def tasks_show(
    task_id: Annotated[str, typer.Argument(help="The task id.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also save its MP4 here.")] = None,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """One task: status, times, prompts, usage, video URL."""
    from openr2v.cli_output import task_details

    with _exit_codes(), _client(server, api_key, data_dir, need_existing=True) as client:
        task = client.get(task_id)
        path = task.download(output) if output is not None and task.succeeded else None
    if json_out:
        out.print_json(data=task.raw)
    else:
        out.print(task_details(task))
    if path is not None:
        console.print(f"[green]saved[/green] {path}", highlight=False)
    if output is not None and path is None:
        raise _fail(ExitCode.TASK_FAILED, f"task {task_id} is {task.status}: no video to save")
    if task.status in ("FAILED", "CANCELED", "UNKNOWN"):
        raise typer.Exit(int(ExitCode.TASK_FAILED))


@tasks_app.command("cancel")
def tasks_cancel(
    task_id: Annotated[str, typer.Argument(help="The task id (must be PENDING).")],
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Cancel a PENDING task."""
    with _exit_codes(), _client(server, api_key, data_dir, need_existing=True) as client:
        client.cancel(task_id)
    console.print(f"canceled {task_id}", highlight=False)


# -- estimate and plan (offline) --------------------------------------------------------------


def _model(name: str) -> Any:
    from openr2v.domain.models import REGISTRY, get_model

    spec = get_model(name)
    if spec is None:
        raise typer.BadParameter(f"unknown model; use one of {', '.join(REGISTRY)}", param_hint="--model")
    return spec


def _preview_ref(source: str, first_frame: bool = False) -> Any:
    """Kind and duration of a reference: local files are probed with PyAV; URLs judged by their name."""
    from openr2v.client.wire import guess_kind, local_path
    from openr2v.domain.preview import PreviewRef

    name = source.rsplit("/", 1)[-1]
    if first_frame:
        return PreviewRef(kind="first_frame", name=name)
    path = local_path(source)
    if path is None:
        return PreviewRef(kind=guess_kind(source), name=name)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    _require_server(f"Measuring {path.name} here", "pass --server URL and the server measures it")
    from openr2v.media.probe import probe

    info = probe(path, field=str(path))
    if info.kind not in ("image", "video"):
        raise typer.BadParameter(f"{path} is {info.kind}, not an image or a video", param_hint="--ref")
    return PreviewRef(kind=info.kind, seconds=info.duration if info.kind == "video" else None, name=name)


@app.command()
def estimate(
    ref: Annotated[list[str] | None, typer.Option("--ref", "-r", help="A reference (file or URL); repeat. "
                                                  "Local videos are measured.")] = None,
    model: Annotated[str, typer.Option(help="The model.")] = "wan2.6-r2v-flash",
    size: Annotated[str | None, typer.Option(help="W*H (wan2.6; default the model's).")] = None,
    resolution: Annotated[str | None, typer.Option(help="720P or 1080P (wan2.7).")] = None,
    ratio: Annotated[str | None, typer.Option(help="Aspect ratio (wan2.7).")] = None,
    duration: Annotated[int | None, typer.Option(help="Seconds of output video.")] = None,
    audio: Annotated[bool | None, typer.Option("--audio/--no-audio")] = None,
    first_frame: Annotated[str | None, typer.Option(help="First frame (wan2.7; free).")] = None,
    region: Annotated[str, typer.Option(envvar="OPENR2V_REGION", help="Region (durations differ).")] = "intl",
    server: Annotated[str | None, typer.Option(
        "--server", help="Ask this server instead (local files are uploaded and measured there).")] = None,
    api_key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Billed seconds and cost before submitting, by the same rules as the bill (offline, or a server's)."""
    from openr2v.cli_output import estimate_table
    from openr2v.domain.preview import estimate as compute

    if server:
        with _exit_codes(), _client(server, api_key, None) as client:
            result = client.estimate(ref or [], model=model, first_frame=first_frame, size=size,
                                     resolution=resolution, ratio=ratio, duration=duration, audio=audio)
        if json_out:
            out.print_json(data=result)
        else:
            out.print(estimate_table(result))
        return
    spec = _model(model)
    with _exit_codes():
        refs = ([_preview_ref(first_frame, first_frame=True)] if first_frame else []) + [
            _preview_ref(r) for r in ref or []]
        wh = None
        if size:
            parts = size.replace("x", "*").split("*")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise typer.BadParameter("use W*H, e.g. 1280*720", param_hint="--size")
            wh = (int(parts[0]), int(parts[1]))
        result = compute(spec, region, refs, size=wh, resolution=resolution, ratio=ratio, duration=duration,
                         audio=audio).as_dict()
    if json_out:
        out.print_json(data=result)
    else:
        out.print(estimate_table(result))


def _labels_in(prompt: str, spec: Any) -> list[str]:
    """Labels a prompt names, when no references are given (wan2.6: characterN; wan2.7: Image/Video N)."""
    if spec.input_style == "reference_urls":
        found = sorted({int(n) for n in re.findall(r"\bcharacter\s?(\d)\b", prompt, re.I)})
        return [f"character{n}" for n in found]
    labels = [f"{kind} {n}" for kind in ("Image", "Video")
              for n in sorted({int(x) for x in re.findall(rf"\b{kind}\s?(\d)\b", prompt)})]
    for kind in ("image", "video"):
        if not labels and re.search(rf"\breference {kind}\b", prompt, re.I):
            labels = [f"reference {kind}"]
    return labels


@app.command()
def plan(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The prompt.")],
    ref: Annotated[list[str] | None, typer.Option("--ref", "-r", help="References, in order (for their labels); "
                                                  "default: the labels the prompt names.")] = None,
    model: Annotated[str, typer.Option(help="The model (its label style).")] = "wan2.6-r2v-flash",
    duration: Annotated[int | None, typer.Option(help="Seconds of video.")] = None,
    shots: Annotated[str, typer.Option(help="single or multi.")] = "single",
    seed: Annotated[int, typer.Option(help="Seed (multi-shot plans vary with it).")] = 0,
    server: Annotated[str | None, typer.Option("--server", help="Ask this server instead.")] = None,
    api_key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The shot plan a prompt yields: shots, framing, who is on screen, who says what when."""
    from openr2v.client.wire import guess_kind
    from openr2v.domain.preview import reference_labels
    from openr2v.domain.prompt import plan_prompt, plan_to_prompt

    if shots not in ("single", "multi"):
        raise typer.BadParameter("use single or multi", param_hint="--shots")
    if server:
        with _exit_codes(), _client(server, api_key, None) as client:
            answer = client.plan(prompt, ref or [], model=model, duration=duration, shot_type=shots, seed=seed)
        _show_plan(answer["labels"], answer["plan"], answer["actual_prompt"], json_out)
        return
    spec = _model(model)
    if ref:
        labels = [x for x in reference_labels(spec, [guess_kind(r) or "image" for r in ref]) if x]
    else:
        labels = _labels_in(prompt, spec)
    result = plan_prompt(prompt, labels, duration or spec.default_duration, shots, seed)
    _show_plan(labels, result.as_dict(), plan_to_prompt(result), json_out)


def _show_plan(labels: list[str], shot_plan: dict[str, Any], actual_prompt: str, json_out: bool) -> None:
    from openr2v.cli_output import plan_table

    if json_out:
        out.print_json(data={"labels": labels, "plan": shot_plan, "actual_prompt": actual_prompt})
        return
    out.print(plan_table(shot_plan))
    out.print(f"[bold]as explicit shots:[/bold] {actual_prompt}", highlight=False)


# -- worker (scale-out) -----------------------------------------------------------------------


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Tasks this process renders at once (on GPUs: run one "
                                             "worker per GPU, each with CUDA_VISIBLE_DEVICES and 1).")] = 1,
    pool: Annotated[str, typer.Option(help="Celery pool: threads (shares one engine) or solo.")] = "threads",
    data_dir: Annotated[Path | None, typer.Option(help="Local data directory (caches, work files).")] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run a render worker: tasks come from OPENR2V_QUEUE (celery: the broker; local: the shared store)."""
    _require_server("openr2v worker")
    from openr2v.config import Settings
    from openr2v.worker_node import POOLS, run_worker

    if pool not in POOLS:
        raise typer.BadParameter(f"use one of {', '.join(POOLS)}", param_hint="--pool")
    if concurrency < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--concurrency")
    settings = Settings(**({"data_dir": data_dir} if data_dir is not None else {}))
    configure_logging(log_level, settings.log_format)
    _cap_malloc_arenas()
    run_worker(settings, concurrency=concurrency, pool=pool, log_level=log_level)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
