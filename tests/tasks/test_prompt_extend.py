"""Prompt extension: an OpenAI-compatible chat model rewrites the prompt in the worker, with the
rule-based form as fallback. The model is a fake chat server speaking the real protocol over a socket."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from openr2v.domain.prompt import ShotPlan, plan_prompt, plan_to_prompt
from openr2v.domain.request import GenerationRequest, Reference
from openr2v.tasks.prompt_extend import LLMConfig, PromptRewriter, accept_rewrite
from tests.helpers import LiveServer, free_port

PROMPT = ("character1 says to character2: 'I'll rely on you tomorrow morning!' "
          "character2 replies: 'You can count on me!'")
GOOD = ("Warm morning light in a small kitchen. Shot 1 [0-2.5s]: medium shot, character1 leans on the counter "
        "and says to character2: \"I'll rely on you tomorrow morning!\" Shot 2 [2.5-5s]: close-up, character2 "
        "smiles and replies: \"You can count on me!\"")
LABELS = ["character1", "character2"]


def request(prompt: str = PROMPT, shot_type: str = "multi", duration: int = 5) -> GenerationRequest:
    refs = [Reference(source=f"http://x/{i}.png", label=label) for i, label in enumerate(LABELS)]
    return GenerationRequest(model="wan2.6-r2v-flash", prompt=prompt, references=refs, duration=duration,
                             shot_type=shot_type, seed=5)


def rule_plan(req: GenerationRequest) -> ShotPlan:
    return plan_prompt(req.prompt, LABELS, req.duration, req.shot_type, 5)


# -- the fake chat server -----------------------------------------------------------------------


@dataclass
class FakeLLM:
    url: str
    mode: str = "ok"  # ok | 500 | garbage | no-choices | slow
    answer: str = GOOD
    calls: list[dict[str, Any]] = field(default_factory=list)


def _handler(fake: FakeLLM) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fake.calls.append({"path": self.path, "auth": self.headers.get("Authorization"),
                               "body": json.loads(raw)})
            if fake.mode == "slow":
                time.sleep(2.0)
            if fake.mode == "500":
                return self._send(500, b'{"error": {"message": "overloaded", "type": "server_error"}}')
            if fake.mode == "garbage":
                return self._send(200, b"<html>not json at all</html>", "text/html")
            if fake.mode == "no-choices":
                return self._send(200, json.dumps({"id": "x", "object": "chat.completion"}).encode())
            reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                     "model": fake.calls[-1]["body"]["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": fake.answer},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 200, "completion_tokens": 80, "total_tokens": 280}}
            self._send(200, json.dumps(reply).encode())

        def _send(self, status: int, data: bytes, ctype: str = "application/json") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout case)
                pass

    return Handler


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake := FakeLLM(url="")))
    srv.daemon_threads = True
    fake.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield fake
    srv.shutdown()
    srv.server_close()


def rewriter(fake: FakeLLM, **kw: Any) -> PromptRewriter:
    return PromptRewriter(LLMConfig(url=fake.url, model="qwen-plus", api_key="sk-llm", **kw))


# -- accepting or refusing an answer --------------------------------------------------------------


def test_a_faithful_rewrite_is_accepted() -> None:
    req = request()
    ext = accept_rewrite(GOOD, req, rule_plan(req), 5)
    assert ext is not None and ext.prompt == GOOD
    assert ext.plan.mode == "timed" and [s.framing for s in ext.plan.shots] == ["medium", "close-up"]
    assert [(ln.speaker, ln.text) for ln in ext.plan.lines] == [
        ("character1", "I'll rely on you tomorrow morning!"), ("character2", "You can count on me!")]
    assert ext.plan.style == "Warm morning light in a small kitchen."


def test_wrapping_is_stripped() -> None:
    req = request()
    ext = accept_rewrite(f"Here is the rewritten prompt:\n```\n{GOOD}\n```", req, rule_plan(req), 5)
    assert ext is not None and ext.prompt == GOOD
    ext = accept_rewrite(f"Rewritten prompt: {GOOD}", req, rule_plan(req), 5)
    assert ext is not None and ext.prompt == GOOD
    # A prompt that merely starts like a preamble keeps its text; label spelling may vary in case and spacing.
    own = "Here is a quiet kitchen. " + GOOD.split(". ", 1)[1].replace("character1 leans", "Character 1 leans")
    ext = accept_rewrite(own, req, rule_plan(req), 5)
    assert ext is not None and ext.prompt == own and ext.plan.style == "Here is a quiet kitchen."


@pytest.mark.parametrize(("why", "answer"), [
    ("a line dropped", GOOD.split(" Shot 2")[0]),
    ("a line reworded", GOOD.replace("count on me", "rely on me")),
    ("a line changed speaker", GOOD.replace("close-up, character2 smiles and replies",
                                            "close-up, character1 smiles and replies")),
    ("an invented character", GOOD.replace("in a small kitchen.", "in a small kitchen where character3 cooks.")),
    ("no shots", "A warm kitchen scene where the two friends talk. character1 says to character2: \"I'll rely on "
                 "you tomorrow morning!\" character2 replies: \"You can count on me!\""),
    ("over the prompt limit", GOOD + " Warm light." * 200),
    ("nothing", "   "),
])
def test_an_unfaithful_rewrite_is_refused(why: str, answer: str) -> None:
    req = request()
    assert accept_rewrite(answer, req, rule_plan(req), 5) is None, why


def test_a_single_shot_request_stays_one_shot() -> None:
    req = request(prompt="character1 waves at character2.", shot_type="single")
    two = "Shot 1 [0-2s]: wide shot, character1 waves. Shot 2 [2-5s]: close-up, character2 waves back."
    one = "Shot 1 [0-5s]: wide shot, character1 waves at character2 across a sunny square."
    assert accept_rewrite(two, req, rule_plan(req), 5) is None
    assert accept_rewrite(one, req, rule_plan(req), 5) is not None


# -- the chat call over a socket ----------------------------------------------------------------


def test_rewrite_speaks_the_chat_completions_protocol(fake_llm: FakeLLM) -> None:
    req = request()
    ext = rewriter(fake_llm).rewrite(req, rule_plan(req), 5)
    assert ext is not None and ext.prompt == GOOD
    (call,) = fake_llm.calls
    assert call["path"] == "/v1/chat/completions" and call["auth"] == "Bearer sk-llm"
    body = call["body"]
    assert body["model"] == "qwen-plus" and body["stream"] is False and body["seed"] == 5
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "character1, character2" in body["messages"][0]["content"]
    assert PROMPT in body["messages"][1]["content"]
    assert plan_to_prompt(rule_plan(req)) in body["messages"][1]["content"]  # the literal form to improve on
    # The full endpoint URL works as well as the base URL.
    full = PromptRewriter(LLMConfig(url=fake_llm.url + "/chat/completions"))
    assert full.rewrite(req, rule_plan(req), 5) is not None
    assert fake_llm.calls[-1]["path"] == "/v1/chat/completions" and fake_llm.calls[-1]["auth"] is None


@pytest.mark.parametrize("mode", ["500", "garbage", "no-choices"])
def test_a_failing_model_gives_none(fake_llm: FakeLLM, mode: str) -> None:
    fake_llm.mode = mode
    req = request()
    assert rewriter(fake_llm).rewrite(req, rule_plan(req), 5) is None
    assert len(fake_llm.calls) == 1


def test_a_slow_model_times_out(fake_llm: FakeLLM) -> None:
    fake_llm.mode = "slow"
    req = request()
    t0 = time.perf_counter()
    assert rewriter(fake_llm, timeout=0.4).rewrite(req, rule_plan(req), 5) is None
    assert time.perf_counter() - t0 < 1.5


def test_an_unreachable_model_gives_none() -> None:
    req = request()
    dead = PromptRewriter(LLMConfig(url=f"http://127.0.0.1:{free_port()}/v1", timeout=2))
    assert dead.rewrite(req, rule_plan(req), 5) is None


# -- through the service: the worker rewrites, the task shows it ------------------------------------

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}


def submit(srv: LiveServer, file_server: str, extend: bool) -> str:
    body = {"model": "wan2.6-r2v-flash",
            "input": {"prompt": PROMPT, "reference_urls": [f"{file_server}/object.png", f"{file_server}/face.webp"]},
            "parameters": {"size": "1280*720", "duration": 5, "shot_type": "multi", "seed": 5,
                           "prompt_extend": extend, "audio": False}}
    with srv.client() as c:
        r = c.post(SUBMIT, json=body, headers=ASYNC)
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]


def plan_of(srv: LiveServer, task_id: str) -> dict[str, Any]:
    with srv.client() as c:
        return c.get(f"/api/v1/tasks/{task_id}/plan").json()["output"]["plan"]


def test_worker_uses_the_models_rewrite(make_server: Any, file_server: str, fake_llm: FakeLLM) -> None:
    srv = make_server(prompt_llm_url=fake_llm.url, prompt_llm_model="qwen-plus", prompt_llm_timeout_seconds=5)
    extended = submit(srv, file_server, extend=True)
    plain = submit(srv, file_server, extend=False)
    out = srv.wait(extended)["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert out["actual_prompt"] == GOOD and out["orig_prompt"] == PROMPT
    plan = plan_of(srv, extended)
    assert plan["mode"] == "timed" and [s["end"] for s in plan["shots"]] == [2.5, 5.0]
    assert plan["style"] == "Warm morning light in a small kitchen."
    out = srv.wait(plain)["output"]
    assert out["task_status"] == "SUCCEEDED" and out["actual_prompt"] == PROMPT
    assert len(fake_llm.calls) == 1  # prompt_extend=false never asks the model


@pytest.mark.parametrize("mode", ["500", "slow"])
def test_worker_falls_back_to_the_rule_based_rewrite(make_server: Any, file_server: str, fake_llm: FakeLLM,
                                                     mode: str) -> None:
    fake_llm.mode = mode
    srv = make_server(prompt_llm_url=fake_llm.url, prompt_llm_timeout_seconds=0.5)
    task_id = submit(srv, file_server, extend=True)
    out = srv.wait(task_id)["output"]
    req = request()
    assert out["task_status"] == "SUCCEEDED" and len(fake_llm.calls) == 1
    assert out["actual_prompt"] == plan_to_prompt(rule_plan(req))
    assert plan_of(srv, task_id)["mode"] == "auto"  # the plan made at submit
