"""Every request example of the Model Studio guides (wan2.6-r2v, wan2.7-r2v), sent as written; only reference
URLs point at local files.

These render the documented full sizes and durations, so they also check the output exactly.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import pytest
from dashscope import VideoSynthesis

from tests.api.dialects.dashscope.conftest import download
from tests.helpers import KEY, LiveServer, assert_contract_mp4

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
HEADERS = {"X-DashScope-Async": "enable", "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

FOUR_REFERENCES = ('Character2 sits on a chair by the window, holding character3, and plays a soothing American '
                   'country folk song next to character4. Character1 says to Character2: "that sounds great"')
HOLIDAY = ("Create a festive holiday unboxing experience.Shot 1 [0-2s]: Character1 sits by a beautifully decorated "
           "Christmas tree with twinkling lights, holding a wrapped gift box with elegant red and gold wrapping. "
           "Shot 2 [2-4s]: Close-up as Character1 carefully unwraps the gift, revealing premium skincare products "
           "inside. Shot 3 [4-6s]: Character1 applies the product with delight, saying: \"This holiday glow is "
           "exactly what I wanted!\" Shot 4 [6-10s]: Character1 admires their radiant skin in a handheld mirror, "
           "surrounded by festive decorations, ending with a warm smile to camera.")


def wan26_guide_bodies(files: str) -> dict[str, dict[str, Any]]:
    return {
        "quick-start": {
            "model": "wan2.6-r2v-flash",
            "input": {"prompt": "character1 gives an enthusiastic product introduction to camera, smiling and "
                                "gesturing naturally.",
                      "reference_urls": [f"{files}/person1.mp4"]},
            "parameters": {"size": "1280*720", "duration": 5},
        },
        "four-references": {
            "model": "wan2.6-r2v-flash",
            "input": {"prompt": FOUR_REFERENCES,
                      "reference_urls": [f"{files}/person1.mp4", f"{files}/person2.mp4", f"{files}/object.png",
                                         f"{files}/background.jpg"]},
            "parameters": {"size": "1280*720", "duration": 10, "audio": True, "shot_type": "multi",
                           "watermark": True},
        },
        "holiday-unboxing": {
            "model": "wan2.6-r2v-flash",
            "input": {"prompt": HOLIDAY, "reference_urls": [f"{files}/person2.mp4"]},
            "parameters": {"size": "1280*720", "duration": 10, "shot_type": "multi", "watermark": True},
        },
        "silent-dance": {
            "model": "wan2.6-r2v-flash",
            "input": {"prompt": "character1 drinks bubble tea while dancing spontaneously to the music.",
                      "reference_urls": [f"{files}/person1.mp4"]},
            "parameters": {"size": "1280*720", "duration": 5, "shot_type": "multi", "audio": False,
                           "watermark": True},
        },
    }


def test_wan26_guide_curl_examples(server: LiveServer, file_server: str) -> None:
    bodies = wan26_guide_bodies(file_server)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        submitted = {}
        for name, body in bodies.items():
            r = c.post(SUBMIT, json=body, headers=HEADERS)
            assert r.status_code == 200, (name, r.text)
            out = r.json()
            assert out["output"]["task_status"] == "PENDING" and out["request_id"]
            submitted[name] = out["output"]["task_id"]
    expected = {"quick-start": (5, True, 2.5), "four-references": (10, True, 2.5),
                "holiday-unboxing": (10, True, 3.0), "silent-dance": (5, False, 2.5)}
    for name, task_id in submitted.items():
        task = server.wait(task_id, timeout=300)
        out = task["output"]
        assert out["task_status"] == "SUCCEEDED", (name, out)
        for field in ("submit_time", "scheduled_time", "end_time", "orig_prompt", "video_url"):
            assert out[field], (name, field)
        seconds, audio, billed_in = expected[name]
        assert task["usage"]["output_video_duration"] == seconds
        # person1 lasts 2.5 s, person2 3 s; four references -> 1.25 s each for the two videos.
        assert task["usage"]["input_video_duration"] == pytest.approx(billed_in), name
        assert_contract_mp4(download(out["video_url"]), 1280, 720, seconds, audio=audio)


def test_wan27_guide_sdk_examples(sdk: LiveServer, file_server: str) -> None:
    f = file_server
    examples = {
        "multi-entity-voice": dict(
            media=[{"type": "reference_video", "url": f"{f}/person1.mp4", "reference_voice": f"{f}/voice.mp3"},
                   {"type": "reference_image", "url": f"{f}/face.webp", "reference_voice": f"{f}/voice.wav"},
                   {"type": "reference_image", "url": f"{f}/background.jpg"}],
            resolution="720P", ratio="16:9",
            prompt="Video 1 walks in from the deep left side of the frame. Then the shot cuts to a close-up of "
                   "Image 1. Video 1 is leaning against the rusty wall on the right side from Image 2. Hearing the "
                   "footsteps, she slowly turns her head. After seeing Image 1, Video 1 says, \"Why did you still "
                   "come?\" Image 1 replies, \"Let's talk.\"",
            size=(1280, 720)),
        "storyboard": dict(
            media=[{"type": "reference_image", "url": f"{f}/background.jpg"}],
            resolution="720P", ratio="16:9",
            prompt="Reference image, 3D cartoon adventure movie style. Storyboard: 1. Wide shot: Tall trees. "
                   "2. Medium shot: The boy pushes aside vines to explore. 3. Close-up: An old treasure map.",
            size=(1280, 720)),
        "first-frame": dict(
            media=[{"type": "first_frame", "url": f"{f}/frame.bmp"},
                   {"type": "reference_image", "url": f"{f}/face.webp"},
                   {"type": "reference_image", "url": f"{f}/object.png"}],
            resolution="720P",
            prompt="An overhead shot captures a blue planet. The camera gradually zooms in toward the surface and "
                   "cuts to a close-up of Image 1, who is holding Image 2 and eating it while saying: Why is not "
                   "anyone coming to hang out with me?",
            size=(1088, 832)),  # the 800x600 first frame is 4:3
    }

    def run(kw: dict[str, Any]) -> Any:
        size = kw.pop("size")
        rsp = VideoSynthesis.call(api_key=KEY, model="wan2.7-r2v", duration=10, prompt_extend=False,
                                  watermark=True, **kw)
        return rsp, size

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, examples.values()))
    for (rsp, (w, h)), name in zip(results, examples, strict=True):
        assert rsp.status_code == 200 and rsp.output.task_status == "SUCCEEDED", (name, rsp)
        assert rsp.usage["output_video_duration"] == 10
        assert_contract_mp4(download(rsp.output.video_url), w, h, 10, audio=True)
