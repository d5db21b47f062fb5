"""The web console at /, driven by Debian's Chromium: from references and a prompt to playback."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import KEY, LiveServer, assert_contract_mp4

DROP = """async ([b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const zone = document.querySelector('#dropzone');
  for (const kind of ['dragenter', 'dragover', 'drop']) {
    zone.dispatchEvent(new DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true }));
  }
}"""


def open_console(browser: Any, url: str, key: str | None = KEY) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The page runs under a strict Content-Security-Policy: any violation is a bug of the page.
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(url + "/")
    if key is not None:
        page.fill("#api-key", key)
        page.click("#save-key")
    return page, errors


def test_submit_to_playback(server: LiveServer, chromium: Any, media_dir: Path, tmp_path: Path) -> None:
    page, errors = open_console(chromium, server.url)
    page.wait_for_selector("#key-status.ok")
    assert "region intl" in page.text_content("#key-status")
    page.select_option("#model", "wan2.6-r2v-flash")

    # References: two through the file picker, one dropped on the drop zone; all uploaded via getPolicy.
    page.set_input_files("#file-input", [str(media_dir / "person1.mp4"), str(media_dir / "object.png")])
    jpeg = base64.b64encode((media_dir / "background.jpg").read_bytes()).decode()
    page.evaluate(DROP, [jpeg, "background.jpg", "image/jpeg"])
    page.wait_for_function("() => document.querySelectorAll('#refs li.ready').length === 3", timeout=30000)
    assert page.eval_on_selector_all("#refs li", "els => els.map(e => e.dataset.label)") == [
        "character1", "character2", "character3"]
    assert page.eval_on_selector_all("#refs .ref-name", "els => els.map(e => e.textContent)") == [
        "character1 person1.mp4", "character2 object.png", "character3 background.jpg"]

    # The prompt, with chips inserting the references' names at the cursor.
    page.click("#prompt")
    page.keyboard.type("Shot 1 [0-1s]: wide shot,")
    page.click("[data-insert=character1]")
    page.keyboard.type(" says to")
    page.click("[data-insert=character2]")
    page.keyboard.type(': "hello there". Shot 2 [1-2s]: close-up of')
    page.click("[data-insert=character3]")
    page.keyboard.type(".")
    assert page.input_value("#prompt") == ('Shot 1 [0-1s]: wide shot, character1 says to character2: "hello there". '
                                           'Shot 2 [1-2s]: close-up of character3.')
    page.select_option("#size", "1280*720")
    page.select_option("#duration", "2")
    page.select_option("#shot-type", "multi")

    # The shot plan and the cost follow the prompt as it is typed.
    page.wait_for_function("() => document.querySelectorAll('#timeline .shot').length === 2", timeout=10000)
    assert page.eval_on_selector_all("#timeline .shot", "els => els.map(e => e.className)") == ["shot wide",
                                                                                              "shot closeup"]
    assert "character1 to character2: “hello there”" in page.text_content("#timeline")
    page.wait_for_function("() => document.querySelector('#estimate').textContent.includes('$')")
    # 3 references -> 1.65 s cap for the 2.5 s video; + 2 s of output; measured in the browser, so exact.
    page.wait_for_function("() => document.querySelector('#estimate').textContent.includes('3.65 billed s')")
    assert "at most" not in page.text_content("#estimate")

    page.click("#submit")
    page.wait_for_selector("#current[data-status=RUNNING], #current[data-status=SUCCEEDED]", timeout=30000)
    page.wait_for_selector("#current[data-status=SUCCEEDED]", timeout=120000)
    assert page.eval_on_selector("#current-progress", "p => p.value") == 100
    task_id = page.get_attribute("#current", "data-task-id")

    # Playback: the browser decodes the H.264 MP4 and plays it.
    page.wait_for_function("() => document.querySelector('#player').readyState >= 2", timeout=30000)
    assert abs(page.eval_on_selector("#player", "v => v.duration") - 2.0) < 0.1
    assert page.eval_on_selector("#player", "v => [v.videoWidth, v.videoHeight]") == [1280, 720]
    page.eval_on_selector("#player", "v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.2", timeout=10000)
    page.eval_on_selector("#player", "v => v.pause()")

    # Download, as the user would click it.
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "downloaded.mp4"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"openr2v-{task_id}.mp4"
    assert_contract_mp4(saved, 1280, 720, 2, audio=True)

    page.wait_for_selector(f"#tasks tr[data-task-id='{task_id}'][data-status=SUCCEEDED]", timeout=10000)
    shot = tmp_path / "console.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"console screenshot: {shot}")
    assert shot.stat().st_size > 10_000 and not errors, errors
    page.close()


def test_key_is_kept_tasks_cancel_and_wan27_labels(make_server: Any, chromium: Any, media_dir: Path) -> None:
    srv = make_server(render_threads=0)  # tasks stay PENDING, so they can be canceled
    with srv.client() as c:
        task_id = c.post("/api/v1/services/aigc/video-generation/video-synthesis", headers={
            "X-DashScope-Async": "enable"}, json={"model": "wan2.6-r2v-flash", "input": {
                "prompt": "character1 waves.", "reference_urls": ["https://example.com/a.png"]}}).json()["output"][
            "task_id"]

    page, errors = open_console(chromium, srv.url, key="sk-wrong")
    page.wait_for_selector("#key-status.error")
    assert "InvalidApiKey" in page.text_content("#key-status")
    page.fill("#api-key", KEY)
    page.click("#save-key")
    page.wait_for_selector("#key-status.ok")
    page.reload()  # the key is kept in localStorage: no need to type it again
    page.wait_for_selector("#key-status.ok")
    assert page.input_value("#api-key") == KEY

    row = f"#tasks tr[data-task-id='{task_id}']"
    page.wait_for_selector(f"{row}[data-status=PENDING]")
    page.click(f"[data-cancel='{task_id}']")
    page.wait_for_selector(f"{row}[data-status=CANCELED]", timeout=10000)
    assert httpx.get(f"{srv.api}/tasks/{task_id}", headers={"Authorization": f"Bearer {KEY}"}).json()[
        "output"]["task_status"] == "CANCELED"

    # wan2.7 names images and videos separately; a first frame is not named; a lone one is "reference ...".
    page.select_option("#model", "wan2.7-r2v")
    page.set_input_files("#file-input", [str(media_dir / "face.webp"), str(media_dir / "person1.mp4")])
    page.wait_for_function("() => document.querySelectorAll('#refs li.ready').length === 2", timeout=30000)
    chips = "els => els.map(e => e.dataset.insert)"
    assert page.eval_on_selector_all("#chips .chip", chips) == ["Image 1", "Video 1"]
    page.select_option("#refs li:first-child select.kind", "first_frame")
    deadline = time.time() + 5
    while page.eval_on_selector_all("#chips .chip", chips) != ["reference video"] and time.time() < deadline:
        time.sleep(0.05)
    assert page.eval_on_selector_all("#chips .chip", chips) == ["reference video"]
    assert page.is_visible("#resolution") and not page.is_visible("#size")
    assert not errors, errors
    page.close()
