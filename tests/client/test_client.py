"""The SDK against a live openr2v: uploads, both model families, waiting, listing, errors, downloads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import openr2v
from openr2v.client import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    NotFoundError,
    Ref,
    TaskFailed,
    TaskStatus,
    WaitTimeout,
)
from tests.helpers import KEY, OTHER_KEY, LiveServer, assert_contract_mp4


@pytest.fixture
def client(server: LiveServer) -> Client:
    with Client(server.url, api_key=KEY, poll_interval=0.2, max_poll_interval=0.5) as c:
        yield c  # type: ignore[misc]


def test_generate_uploads_local_files_and_downloads(client: Client, media_dir: Path, file_server: str,
                                                    tmp_path: Path) -> None:
    updates: list[tuple[str, int | None]] = []
    task = client.generate(
        "character1 says to character2: 'hello there'. Close-up of character3.",
        [media_dir / "person1.mp4", str(media_dir / "object.png"), f"{file_server}/background.jpg"],
        model="wan2.6-r2v-flash", size="1280*720", duration=2, shot_type="multi", seed=3,
        on_progress=lambda t: updates.append((t.status, t.progress)), output=tmp_path / "out.mp4")
    assert task.succeeded and task.status == TaskStatus.SUCCEEDED and task.progress == 100
    assert task.video_url and task.usage is not None
    # Three references -> 1.65 s cap for the one 2.5 s video.
    assert task.usage.input_video_duration == pytest.approx(1.65) and task.usage.output_video_duration == 2
    assert task.orig_prompt and task.orig_prompt.startswith("character1 says")
    assert_contract_mp4(tmp_path / "out.mp4", 1280, 720, 2, audio=True)
    statuses = [s for s, _ in updates]
    assert statuses[0] == "PENDING" and statuses[-1] == "SUCCEEDED" and "RUNNING" in statuses
    # Live events carry the percentage (how many steps show depends on the render's speed).
    assert all(p is not None for s, p in updates if s == "RUNNING"), updates


def test_openr2v_client_is_the_sdk(server: LiveServer, media_dir: Path, tmp_path: Path) -> None:
    client = openr2v.Client(base_url=f"{server.url}/api/v1", api_key=KEY)
    task = client.generate("character1 waves.", [media_dir / "face.webp"], size="960*960", duration=2)
    saved = task.download(tmp_path / "sub" / "v.mp4")
    assert_contract_mp4(saved, 960, 960, 2, audio=True)
    client.close()


def test_wan27_media_voices_and_first_frame(client: Client, media_dir: Path, file_server: str) -> None:
    task = client.generate(
        "Video 1 walks in. Image 1 says: 'Why did you still come?'",
        [Ref.video(media_dir / "person1.mp4"), Ref.image(f"{file_server}/face.webp", voice=media_dir / "voice.wav")],
        model="wan2.7-r2v", first_frame=media_dir / "frame.bmp", size="1280*720", duration=2, prompt_extend=False)
    # The size is sent as resolution + ratio for wan2.7; the 4:3 first frame decides the shape.
    assert task.usage is not None and task.usage.size == "1088*832"
    assert task.actual_prompt is None or task.actual_prompt == task.orig_prompt


def test_submit_get_wait_by_polling(client: Client, media_dir: Path) -> None:
    task = client.submit("character1 nods.", [media_dir / "object.png"], size="1280*720", duration=2)
    assert task.status == "PENDING" and task.task_id
    again = client.get(task.task_id)
    assert again.task_id == task.task_id and again.submit_time
    seen: list[str] = []
    done = client.wait(task.task_id, live=False, on_progress=lambda t: seen.append(t.status))
    assert done.succeeded and seen[-1] == "SUCCEEDED"
    assert done.progress == 100  # polled tasks know no percentage until the end


def test_list_shows_my_tasks_with_models(client: Client, media_dir: Path) -> None:
    task = client.generate("character1 nods.", [media_dir / "object.png"], size="1280*720", duration=2)
    page = client.list(page_size=100, status="SUCCEEDED")
    ours = [t for t in page.tasks if t.task_id == task.task_id]
    assert ours and ours[0].model == "wan2.6-r2v-flash" and ours[0].status == "SUCCEEDED"
    assert page.total >= 1 and page.page_size == 100 and all(t.status == "SUCCEEDED" for t in page.tasks)


def test_errors_carry_code_message_and_request_id(server: LiveServer, client: Client, media_dir: Path) -> None:
    with pytest.raises(BadRequestError) as bad:
        client.submit("character1 nods.", [media_dir / "object.png"], size="1234*567", duration=2)
    assert bad.value.code == "InvalidParameter" and "parameters.size" in bad.value.message
    assert bad.value.request_id and bad.value.status_code == 400
    with pytest.raises(AuthenticationError) as auth:
        Client(server.url, api_key="sk-wrong").get("x")
    assert auth.value.code == "InvalidApiKey" and auth.value.status_code == 401 and auth.value.request_id
    task = client.submit("character1 nods.", [media_dir / "object.png"], size="1280*720", duration=2)
    with Client(server.url, api_key=OTHER_KEY) as other, pytest.raises(NotFoundError) as nf:
        other.get(task.task_id)
    assert nf.value.code == "NotFound"
    unknown = client.get("00000000-0000-0000-0000-000000000000")
    assert unknown.status == "UNKNOWN" and unknown.finished
    client.wait(task)


def test_failed_task_raises_with_the_task(client: Client, file_server: str) -> None:
    with pytest.raises(TaskFailed) as failed:
        client.generate("character1 nods.", [f"{file_server}/notanimage.png"], size="1280*720", duration=2)
    assert failed.value.task.status == "FAILED" and failed.value.code == failed.value.task.code
    assert failed.value.code in ("UnsupportedFileFormat", "InvalidParameter"), failed.value


def test_cancel_and_wait_timeout(make_server: Any, media_dir: Path) -> None:
    srv = make_server(render_threads=0)  # tasks stay PENDING
    with Client(srv.url, api_key=KEY, poll_interval=0.1) as c:
        task = c.submit("character1 nods.", [media_dir / "object.png"], size="1280*720", duration=2)
        with pytest.raises(WaitTimeout) as slow:
            c.wait(task, timeout=1.0)
        assert slow.value.task.status == "PENDING"
        c.cancel(task.task_id)
        assert c.wait(task).status == "CANCELED"
        with pytest.raises(BadRequestError) as again:
            c.cancel(task.task_id)
        assert again.value.code == "UnsupportedOperation"


def test_async_client(server: LiveServer, media_dir: Path, tmp_path: Path) -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        async def on_progress(t: Any) -> None:
            seen.append(t.status)

        async with AsyncClient(server.url, api_key=KEY, poll_interval=0.2) as c:
            task = await c.generate("character1 waves.", [media_dir / "person2.mp4"], size="720*1280", duration=2,
                                    audio=False, on_progress=on_progress)
            await task.download(tmp_path / "a.mp4")
            page = await c.list(page_size=5)
            assert any(t.task_id == task.task_id for t in page.tasks)
            polled = await c.submit("character1 waves.", [media_dir / "object.png"], size="1280*720", duration=2)
            assert (await c.wait(polled, live=False)).succeeded
        return seen

    seen = asyncio.run(main())
    assert seen[0] == "PENDING" and seen[-1] == "SUCCEEDED"
    assert_contract_mp4(tmp_path / "a.mp4", 720, 1280, 2, audio=False)


def test_async_client_over_the_asgi_app_in_process(tmp_path: Path, media_dir: Path) -> None:
    """An injected transport: the SDK drives our ASGI app with no socket (uploads and downloads included)."""
    import httpx

    from openr2v.api.app import create_app
    from tests.helpers import test_settings

    app = create_app(test_settings(tmp_path / "srv"))
    runtime = app.state.runtime
    runtime.start()  # ASGITransport sends no lifespan events: start the workers by hand

    async def main() -> Any:
        async with AsyncClient("http://openr2v.test", api_key=KEY, transport=httpx.ASGITransport(app=app)) as c:
            return await c.generate("character1 waves.", [media_dir / "object.png"], size="1280*720", duration=2,
                                    output=tmp_path / "asgi.mp4")

    try:
        task = asyncio.run(main())
    finally:
        runtime.stop()
    assert task.succeeded and task.video_url.startswith("http://openr2v.test/files/")
    assert_contract_mp4(tmp_path / "asgi.mp4", 1280, 720, 2, audio=True)


def test_extensions_estimate_plan_and_quota(make_server: Any, media_dir: Path) -> None:
    """openr2v's own endpoints through both clients: the estimate measures uploaded files, the plan needs only
    names, the quota shows the key's reservations."""
    srv = make_server(render_threads=0, quotas='{"default": {"seconds_per_day": 100}}')
    refs = [media_dir / "person1.mp4", "https://example.com/b.png"]
    with openr2v.Client(srv.url, api_key=KEY) as c:
        est = c.estimate(refs, model="wan2.6-r2v", size="1280*720", duration=5)
        # Two references: the 2.5 s video is billed whole under the 2.5 s split, plus 5 s of output.
        assert est["exact"] is True and est["billed_seconds"] == 7.5 and est["cost_usd"] == 0.75
        plan = c.plan("character1 waves at character2.", ["a.mp4", "b.png"], model="wan2.6-r2v", seed=3)
        assert plan["labels"] == ["character1", "character2"] and plan["actual_prompt"]
        c.submit("character1 waves.", ["https://example.com/b.png"], size="1280*720", duration=5)
        day = c.quota()["windows"]["day"]
        assert (day["reserved_seconds"], day["seconds_limit"], day["seconds_remaining"]) == (5, 100, 95)

    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with AsyncClient(srv.url, api_key=KEY) as ac:
            return (await ac.estimate(refs, model="wan2.6-r2v", size="1280*720", duration=5),
                    await ac.plan("character1 waves at character2.", ["a.mp4", "b.png"], model="wan2.6-r2v", seed=3),
                    await ac.quota())

    a_est, a_plan, a_quota = asyncio.run(main())
    assert a_est == est and a_plan == plan and a_quota["windows"]["day"]["reserved_seconds"] == 5
