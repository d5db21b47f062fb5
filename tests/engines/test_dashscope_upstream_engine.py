"""The ``dashscope`` engine called directly against an upstream openr2v (B): durable state, resume,
cancellation, polling through throttling, time limits, forwarding and model mapping."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from openr2v.config import Settings
from openr2v.domain.request import GenerationRequest, Reference
from openr2v.engines import engine_resolver
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.upstream import DashScopeEngine, parse_model_map
from openr2v.errors import Canceled, InternalError
from openr2v.keys import owner_id
from openr2v.media.probe import probe
from tests.helpers import OTHER_KEY, LiveServer, free_port

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
TINY = "tests.engines.upstream_engines:tiny_engine"


class Recorder:
    """Stands in for the task store: what the engine persisted, in order."""

    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def __call__(self, extra: dict[str, Any]) -> None:
        self.saved.append(dict(extra.get("upstream") or {}))

    @property
    def phases(self) -> list[str | None]:
        return [s.get("phase") for s in self.saved]


def make_job(tmp_path: Path, media_dir: Path, file_server: str, *, model: str = "wan2.6-r2v-flash",
             names: tuple[str, ...] = ("object.png",), extra: dict[str, Any] | None = None,
             recorder: Recorder | None = None, owner_canceled: Callable[[], bool] | None = None,
             audio: bool = False) -> RenderJob:
    refs, resolved = [], []
    for i, name in enumerate(names):
        info = probe(media_dir / name)
        refs.append(Reference(kind=info.kind, source=f"{file_server}/{name}", label=f"character{i + 1}",  # type: ignore[arg-type]
                              field=f"input.reference_urls[{i}]"))
        resolved.append(ResolvedReference(label=f"character{i + 1}", kind=info.kind, path=media_dir / name, info=info))
    req = GenerationRequest(model=model, prompt="character1 waves.", references=refs, size=(1280, 720), duration=2,
                            seed=3, audio=audio)
    (tmp_path / "work").mkdir(exist_ok=True)
    return RenderJob(task_id="t1", request=req, references=resolved, width=1280, height=720, duration=2, fps=30,
                     audio=audio, watermark=False, seed=3, workdir=tmp_path / "work", extra=extra or {},
                     save_extra=recorder, owner_canceled=owner_canceled)


def engine_for(b: LiveServer | str, **kw: Any) -> DashScopeEngine:
    url = b if isinstance(b, str) else b.url
    values: dict[str, Any] = dict(poll_seconds=0.1, max_poll_seconds=0.5)
    values.update(kw)
    return DashScopeEngine(url, OTHER_KEY, **values)


def b_tasks(b: LiveServer) -> list[Any]:
    """B's tasks of the front server's key, oldest first, from its store."""
    tasks, _ = b.app.state.runtime.store.list(owner_id(OTHER_KEY), page_size=100)  # type: ignore[attr-defined]
    return list(reversed(tasks))


def after(n: int) -> Callable[[], bool]:
    """A ``cancelled`` callback that turns True from its n-th call on."""
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls >= n

    return cancelled


def test_a_rerun_resumes_the_recorded_upstream_task(make_server: Any, tmp_path: Path, media_dir: Path,
                                                     file_server: str) -> None:
    b = make_server(engine=TINY)
    with b.client(OTHER_KEY) as c:
        r = c.post(SUBMIT, headers={"X-DashScope-Async": "enable"}, json={
            "model": "wan2.6-r2v-flash", "input": {"prompt": "x", "reference_urls": [f"{file_server}/object.png"]},
            "parameters": {"size": "1280*720", "duration": 2, "audio": False}})
    up_id = r.json()["output"]["task_id"]
    state = {"phase": "submitted", "task_id": up_id, "url": b.api, "model": "wan2.6-r2v-flash",
             "submitted_at": time.time()}
    job = make_job(tmp_path, media_dir, file_server, extra={"upstream": state, "other": 1}, recorder=Recorder())
    result = engine_for(b).render(job, lambda p: None, lambda: False)
    assert [t.id for t in b_tasks(b)] == [up_id]  # polled, never submitted again
    assert result.notes["upstream_task_id"] == up_id
    assert (result.width, result.height, result.has_audio) == (320, 192, False)  # what B rendered
    assert result.usage is not None and result.usage["output_video_duration"] == 2
    assert job.extra["other"] == 1  # other engine state is kept


def test_a_run_that_died_while_submitting_never_submits_again(make_server: Any, tmp_path: Path, media_dir: Path,
                                                               file_server: str) -> None:
    b = make_server(engine=TINY)
    state = {"phase": "submitting", "url": b.api, "model": "wan2.6-r2v-flash", "since": time.time()}
    job = make_job(tmp_path, media_dir, file_server, extra={"upstream": state})
    with pytest.raises(InternalError, match="not submitted again"):
        engine_for(b).render(job, lambda p: None, lambda: False)
    assert b_tasks(b) == []


def test_the_upstream_id_is_recorded_before_waiting_and_an_owner_cancel_goes_upstream(
        make_server: Any, tmp_path: Path, media_dir: Path, file_server: str) -> None:
    b = make_server(render_threads=0)  # B's tasks stay PENDING, so they can be canceled there
    rec = Recorder()
    job = make_job(tmp_path, media_dir, file_server, recorder=rec, owner_canceled=lambda: True)
    engine = engine_for(b)

    def cancelled() -> bool:  # the owner cancels once the upstream task exists
        return bool(rec.saved and rec.saved[-1].get("task_id"))

    with pytest.raises(Canceled):
        engine.render(job, lambda p: None, cancelled)
    assert rec.phases == ["submitting", "submitted"]
    [up] = b_tasks(b)
    assert rec.saved[-1]["task_id"] == up.id and rec.saved[-1]["url"] == b.api
    assert up.status == "CANCELED"


def test_a_lost_lease_leaves_the_upstream_task_to_the_next_worker(make_server: Any, tmp_path: Path,
                                                                  media_dir: Path, file_server: str) -> None:
    b = make_server(render_threads=0)
    rec = Recorder()
    job = make_job(tmp_path, media_dir, file_server, recorder=rec, owner_canceled=lambda: False)
    with pytest.raises(Canceled):
        engine_for(b).render(job, lambda p: None, lambda: bool(rec.saved and rec.saved[-1].get("task_id")))
    [up] = b_tasks(b)
    assert up.status == "PENDING"


def test_a_task_past_its_time_limit_is_canceled_upstream(make_server: Any, tmp_path: Path, media_dir: Path,
                                                         file_server: str) -> None:
    b = make_server(render_threads=0)
    job = make_job(tmp_path, media_dir, file_server, recorder=Recorder())
    with pytest.raises(InternalError, match="did not finish within 0.5 s"):
        engine_for(b, timeout_seconds=0.5).render(job, lambda p: None, lambda: False)
    [up] = b_tasks(b)
    assert up.status == "CANCELED"


class FlakyTransport(httpx.BaseTransport):
    """Answers matching requests from a script first, then passes them to the network; logs everything."""

    def __init__(self, match: Callable[[httpx.Request], bool], script: list[Callable[[], httpx.Response]]) -> None:
        self.inner = httpx.HTTPTransport()
        self.match = match
        self.script = script
        self.log: list[tuple[float, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.match(request) and self.script:
            resp = self.script.pop(0)()
            request.read()
        else:
            resp = self.inner.handle_request(request)
        self.log.append((time.monotonic(), f"{request.method} {request.url.path}", resp.status_code))
        return resp

    def close(self) -> None:  # shared by the engine's clients; closed by the test
        pass


def test_polls_ride_out_429_and_503_honouring_retry_after(make_server: Any, tmp_path: Path, media_dir: Path,
                                                          file_server: str) -> None:
    b = make_server(engine=TINY)

    def throttled() -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "0.25"},
                              json={"request_id": "r", "code": "Throttling.RateQuota", "message": "slow down"})

    def unavailable() -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "0.25"},
                              json={"request_id": "r", "code": "ServiceUnavailable", "message": "busy"})

    # More 429s than the SDK's own retries (3), so the engine's loop has to wait too.
    flaky = FlakyTransport(lambda r: r.method == "GET" and "/tasks/" in r.url.path,
                           [throttled] * 5 + [unavailable] * 2)
    job = make_job(tmp_path, media_dir, file_server, recorder=Recorder())
    try:
        result = engine_for(b, transport=flaky).render(job, lambda p: None, lambda: False)
    finally:
        flaky.inner.close()
    assert result.notes["upstream_task_id"] == b_tasks(b)[0].id
    polls = [(t, status) for t, what, status in flaky.log if what.startswith("GET /api/v1/tasks/")]
    assert [s for _, s in polls[:7]] == [429] * 5 + [503] * 2 and polls[-1][1] == 200
    gaps = [polls[i + 1][0] - polls[i][0] for i in range(7)]
    assert min(gaps) >= 0.23, gaps  # Retry-After honoured every time, by the SDK and by the engine's loop
    assert len(b_tasks(b)) == 1


def test_an_unreachable_upstream_is_retried_then_fails_without_a_marker(tmp_path: Path, media_dir: Path,
                                                                        file_server: str) -> None:
    rec = Recorder()
    job = make_job(tmp_path, media_dir, file_server, recorder=rec)
    engine = engine_for(f"http://127.0.0.1:{free_port()}", submit_patience_seconds=0.5, forward_urls=True)
    with pytest.raises(InternalError, match="cannot be reached"):
        engine.render(job, lambda p: None, lambda: False)
    assert "submitting" in rec.phases and rec.saved[-1] == {}  # nothing exists upstream: no marker left


def test_forwarding_and_model_mapping(make_server: Any, tmp_path: Path, media_dir: Path, file_server: str) -> None:
    b = make_server(render_threads=0)
    job = make_job(tmp_path, media_dir, file_server, model="wan2.6-r2v", names=("object.png", "person1.mp4"))
    engine = engine_for(b, forward_urls=True, models=parse_model_map("wan2.6-r2v=wan2.6-r2v-flash"))
    with pytest.raises(Canceled):
        engine.render(job, lambda p: None, after(2))  # canceled once submitted
    [up] = b_tasks(b)
    assert up.model == "wan2.6-r2v-flash"
    assert [r.source for r in up.request.references] == [f"{file_server}/object.png", f"{file_server}/person1.mp4"]
    assert up.request.audio is False and up.request.size == (1280, 720) and up.request.seed == 3


def test_the_aggregators_model_goes_upstream_as_wan26(make_server: Any, tmp_path: Path, media_dir: Path,
                                                      file_server: str) -> None:
    b = make_server(render_threads=0)
    job = make_job(tmp_path, media_dir, file_server, model="wan26_r2v", audio=True)  # wan2.6-r2v is never silent
    with pytest.raises(Canceled):
        engine_for(b).render(job, lambda p: None, after(3))
    [up] = b_tasks(b)
    assert up.model == "wan2.6-r2v" and up.request.references[0].source.startswith("oss://")


def test_configuration_is_checked_at_start_up() -> None:
    with pytest.raises(ValueError, match="OPENR2V_UPSTREAM_URL"):
        engine_resolver(Settings(engine="dashscope"))
    with pytest.raises(ValueError, match="OPENR2V_UPSTREAM_API_KEY"):
        engine_resolver(Settings(engine_overrides="wan2.7-r2v=dashscope", upstream_url="http://127.0.0.1:9"))
    with pytest.raises(ValueError, match="takes reference_urls but wan2.7-r2v takes media"):
        parse_model_map("wan2.6-r2v=wan2.7-r2v")
    with pytest.raises(ValueError, match="unknown local model"):
        parse_model_map("wan9-r2v=wan2.6-r2v")
    assert parse_model_map(" wan2.6-r2v = wan2.6-r2v-flash ,") == {"wan2.6-r2v": "wan2.6-r2v-flash"}
    resolve = engine_resolver(Settings(engine="dashscope", upstream_url="http://127.0.0.1:9", upstream_api_key="k"))
    assert resolve("wan2.6-r2v").name == "dashscope"


def test_reported_usage_is_completed_from_what_the_upstream_gave() -> None:
    from openr2v.domain.billing import reported_usage
    from openr2v.domain.models import REGISTRY

    spec = REGISTRY["wan2.6-r2v-flash"]
    # The Model Studio guide's example shows only these two keys.
    rep = reported_usage(spec, {"video_duration": 5, "video_ratio": "1280*720"}, width=1280, height=720, audio=True,
                         duration=5)
    assert (rep.input_seconds, rep.output_seconds, rep.billed_seconds) == (0.0, 5.0, 5.0)
    assert rep.usage["video_ratio"] == "1280*720" and rep.usage["duration"] == 5 and rep.usage["SR"] == 720
    assert rep.cost_usd == round(5 * spec.prices[720].audio, 4)
    # The upstream's own figures win, even where openr2v would have counted otherwise.
    rep = reported_usage(spec, {"duration": 7.5, "input_video_duration": 2.5, "output_video_duration": 5}, width=1920,
                         height=1080, audio=False, duration=5)
    assert (rep.input_seconds, rep.output_seconds, rep.billed_seconds) == (2.5, 5.0, 7.5)
    assert rep.cost_usd == round(7.5 * spec.prices[1080].silent, 4)
