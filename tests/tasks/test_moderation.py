"""Moderation (tasks/moderation.py): the matching rules, then live servers in every dialect: refusals
at submit (HTTP 400), refusals after rendering (FAILED, nothing kept or billed), a broken hook (never
a 5xx, always a terminal task) and a prompt LLM whose rewrite brings in a blocked word."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openr2v.config import Settings
from openr2v.domain.request import GenerationRequest
from openr2v.errors import DataInspectionFailed, IPInfringementSuspect
from openr2v.tasks.moderation import (
    Content,
    ModerationUnavailable,
    Moderator,
    PhraseMatcher,
    moderator_from_settings,
    output_texts,
)
from tests.helpers import LiveServer
from tests.tasks import moderation_hooks as hooks
from tests.tasks.test_prompt_extend import GOOD, FakeLLM, fake_llm, submit  # noqa: F401 - a fixture

BLOCKLIST = "ass,forbidden fruit,禁止词"
PROTECTED = "Mickey Mouse,Spider-Man"
TINY = "tests.engines.upstream_engines:tiny_engine"  # a 320x192 MP4 in a blink: what is tested is the check
HOOKS = "tests.tasks.moderation_hooks"


def req(prompt: str = "character1 waves.", negative: str | None = None) -> GenerationRequest:
    return GenerationRequest(model="wan2.6-r2v-flash", prompt=prompt, negative_prompt=negative)


# -- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["ass", "What an ASS!", "a s s", "a.s.s", "A-s-s!", "a\u200bss", "ａｓｓ",
                                  "you  ass,", "the (ass)"])
def test_a_blocked_word_is_found_whatever_its_spelling(text: str) -> None:
    assert PhraseMatcher(["ass"]).find(text) == "ass"


@pytest.mark.parametrize("text", ["class", "assistant", "passion", "bass guitar", "a classy assassin", "as s",
                                  "Mass at the cathedral", "sass"])
def test_a_blocked_word_inside_other_words_is_not(text: str) -> None:
    assert PhraseMatcher(["ass"]).find(text) is None


def test_phrases_match_across_spacing_and_punctuation_but_in_order() -> None:
    m = PhraseMatcher(["forbidden fruit", "Spider-Man"])
    assert m.find("the FORBIDDEN   fruit tree") == "forbidden fruit"
    assert m.find("forbidden, fruit") == "forbidden fruit"
    assert m.find("spider man swings") == m.find("SPIDER-MAN") == m.find("spider.man") == "spider man"
    assert m.find("the fruit is forbidden") is None
    assert m.find("forbidden fruitcake") is None
    assert m.find("spiderman") is None  # one word, not the listed two: add it to the list if wanted


def test_accents_case_and_unspaced_scripts() -> None:
    m = PhraseMatcher(["nude", "禁止词"])
    assert m.find("a NÜDE figure") == "nude"
    assert m.find("这是一个禁止词的例子") == "禁止词"
    assert m.find("禁止 词") == "禁止词"
    assert m.find("禁止") is None
    assert not PhraseMatcher(["", " ", "!!"]) and PhraseMatcher(["x"])


def test_rules_order_and_messages() -> None:
    mod = Moderator(["ass"], [r"\bkill\s+all\b"], ["Mickey Mouse"])
    mod.check_input(req("character1 teaches a class about mice."))
    with pytest.raises(DataInspectionFailed) as e:
        mod.check_input(req("character1 says: kill   ALL of them"))
    assert type(e.value) is DataInspectionFailed and e.value.param == "prompt"
    assert e.value.message == "Input data may contain inappropriate content (the prompt)."
    assert "kill" not in e.value.message  # the term is logged, never told
    with pytest.raises(IPInfringementSuspect) as e:
        mod.check_input(req("character1 waves.", negative="no mickey-mouse ears"))
    assert e.value.code == "IPInfringementSuspect" and e.value.http_status == 400
    assert e.value.param == "negative_prompt"
    assert e.value.message == "Input data is suspected of being involved in IP infringement (the negative prompt)."
    with pytest.raises(DataInspectionFailed) as e:  # a blocked word wins over a protected name
        mod.check_input(req("Mickey Mouse, you ass"))
    assert e.value.code == "DataInspectionFailed"
    with pytest.raises(DataInspectionFailed) as e:
        mod.check_texts("output", {"captions": "Mickey Mouse says hello"})
    assert e.value.code == "IPInfringementSuspect" and e.value.param is None
    assert e.value.message.startswith("Output data is suspected") and "(the captions); the video was discarded" \
        in e.value.message


def test_the_regex_sees_through_invisible_characters() -> None:
    mod = Moderator(patterns=[r"\bfree\s+money\b"])
    with pytest.raises(DataInspectionFailed):
        mod.check_texts("input", {"prompt": "FREE\u200b money for all"})
    mod.check_texts("input", {"prompt": "money-free zone"})


def test_hook_answers() -> None:
    def hook_answering(answer: object) -> Moderator:
        return Moderator(hook=lambda content: answer)

    hook_answering(None).check_input(req())
    hook_answering(False).check_input(req())
    with pytest.raises(DataInspectionFailed, match=r"^Input data may contain inappropriate content\.$"):
        hook_answering(True).check_input(req())
    with pytest.raises(DataInspectionFailed, match="^nope$"):
        hook_answering("nope").check_input(req())
    with pytest.raises(IPInfringementSuspect, match="^mine$"):
        hook_answering(IPInfringementSuspect("mine")).check_input(req())
    with pytest.raises(ModerationUnavailable, match="answered a int") as e:
        hook_answering(42).check_input(req())
    assert e.value.code == "InternalError"
    with pytest.raises(ModerationUnavailable, match=r"hook failed \(RuntimeError\)"):
        Moderator(hook=hooks.crash).check_input(req())


def test_a_hung_hook_gives_up_at_its_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(ModerationUnavailable, match=r"did not answer within 0.3 s\.$"):
        Moderator(hook=hooks.hang, hook_timeout_seconds=0.3).check_input(req())
    assert time.monotonic() - started < 2  # not the hook's 3 s


def test_a_hung_hook_fails_the_task_closed(make_server: Any, file_server: str) -> None:
    srv = make_server(engine=TINY, moderation_hook=f"{HOOKS}:hang", moderation_hook_timeout_seconds=0.3)
    status, body = dialect_submit(srv, "dashscope", "character1 waves.", file_server)
    assert status == 200, body  # a hung hook at submit is no refusal: the worker asks again
    code, message = poll_failure(srv, "dashscope", task_id_of("dashscope", body))
    assert code == "InternalError" and "the moderation hook did not answer within 0.3 s." in message
    assert_nothing_kept(srv)


def test_the_hook_sees_what_each_stage_has(tmp_path: Path) -> None:
    seen: list[Content] = []
    mod = Moderator(hook=lambda content: seen.append(content))
    request = req("character1 says: 'Hello.'", negative="blur")
    mod.check_input(request)
    video = tmp_path / "out.mp4"
    video.write_bytes(b"mp4")
    plan = {"shots": [{"lines": [{"text": "Hello."}]}, {"lines": []}]}
    texts = output_texts("Shot 1 [0-2s]: character1 says: \"Hello.\"", plan, {"captions": ["Hello."]})
    assert texts == {"actual_prompt": "Shot 1 [0-2s]: character1 says: \"Hello.\"", "captions": "Hello.",
                     "dialogue": "Hello."}
    mod.check_output(request, texts, video, "task-1", {"engine": "tiny"})
    inp, out = seen
    assert (inp.stage, dict(inp.texts), inp.request, inp.video) == (
        "input", {"prompt": request.prompt, "negative_prompt": "blur"}, request, None)
    assert (out.stage, out.texts, out.video, out.task_id, out.extra) == ("output", texts, video, "task-1",
                                                                         {"engine": "tiny"})
    assert output_texts(None, None, {}) == {}


def test_settings(tmp_path: Path) -> None:
    assert moderator_from_settings(Settings(data_dir=tmp_path)) is None  # nothing configured: no checks at all
    listed = tmp_path / "blocklist.txt"
    listed.write_text("# the operator's list\nforbidden fruit\n\n  gore  \n", encoding="utf-8")
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("\\bfree\\s+money\\b\n# comment\n\\d{16}\n", encoding="utf-8")
    mod = moderator_from_settings(Settings(data_dir=tmp_path, moderation_blocklist=f"@{listed}",
                                           moderation_regex=f"@{patterns}", protected_names="Mickey Mouse, Pluto",
                                           moderation_hook=f"{HOOKS}:record"))
    assert mod is not None and mod.hook is hooks.record
    for text in ("forbidden  fruit", "GORE", "free money", "card 4111111111111111"):
        with pytest.raises(DataInspectionFailed):
            mod.check_texts("input", {"prompt": text})
    with pytest.raises(IPInfringementSuspect):
        mod.check_texts("input", {"prompt": "pluto!"})
    mod.check_texts("input", {"prompt": "# the operator's list"})  # comments are not entries
    one = moderator_from_settings(Settings(data_dir=tmp_path, moderation_regex=r"a{2,3},b"))  # commas are regex
    assert one is not None and [p.pattern for p in one.patterns] == ["a{2,3},b"]
    for bad, message in [(dict(moderation_regex="(unclosed"), "not a valid regular expression"),
                         (dict(moderation_blocklist=f"@{tmp_path / 'missing.txt'}"), "cannot read"),
                         (dict(moderation_hook="no_colon"), "package.module:callable"),
                         (dict(moderation_hook="tests.tasks.nowhere:hook"), "cannot be loaded"),
                         (dict(moderation_hook=f"{HOOKS}:missing"), "cannot be loaded"),
                         (dict(moderation_hook=f"{HOOKS}:OUTPUT_MESSAGE"), "not callable")]:
        with pytest.raises(ValueError, match=message):
            moderator_from_settings(Settings(data_dir=tmp_path, **bad))  # type: ignore[arg-type]


# -- live servers: refused at submit, in every dialect ---------------------------------------------

DASHSCOPE = "/api/v1/services/aigc/video-generation/video-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}


def dialect_submit(srv: LiveServer, dialect: str, prompt: str, file_server: str,
                   negative: str | None = None) -> tuple[int, dict[str, Any]]:
    """POST a short submit in ``dialect`` (2 s; the gateway's wan2.6-r2v: 5 s); (status, JSON body)."""
    png, mp4 = f"{file_server}/object.png", f"{file_server}/person1.mp4"
    neg = {"negative_prompt": negative} if negative else {}
    if dialect == "dashscope":
        path, body, headers = DASHSCOPE, {"model": "wan2.6-r2v-flash", "input": {
            "prompt": prompt, "reference_urls": [png], **neg},
            "parameters": {"size": "1280*720", "duration": 2, "audio": False}}, ASYNC
    elif dialect == "aggregator":
        path, body, headers = "/model/v1/generation", {"model": "wan26_r2v", "input": {
            "prompt": prompt, "reference_urls": [png], **neg}, "parameters": {"size": "1280*720", "duration": 2}}, {}
    elif dialect == "gateway":
        path, body, headers = "/v1/video/generations", {"prompt": prompt, "model": "wan2.6-r2v", "metadata": {
            "input": {"reference_video_urls": [mp4], **neg}, "parameters": {"size": "1280*720", "duration": 5}}}, {}
    else:
        path, body, headers = "/v1/videos", {"prompt": prompt, "model": "wan2.6-r2v-flash", "seconds": "2",
                                             "size": "1280x720", "references": [png], **neg,
                                             "parameters": {"audio": False}}, {}
    with srv.client() as c:
        r = c.post(path, json=body, headers=headers)
    return r.status_code, r.json()


def refusal(dialect: str, body: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a refused submit, in the dialect's own error shape."""
    if dialect == "dashscope":
        return body["code"], body["message"]
    if dialect == "gateway":
        assert body["data"] is None
        return body["code"], body["message"]
    return body["error"]["code"], body["error"]["message"]


def task_id_of(dialect: str, body: dict[str, Any]) -> str:
    return str(body["output"]["task_id"] if dialect == "dashscope" else body["id"])


DIALECTS = ["dashscope", "aggregator", "gateway", "openai"]
# The aggregator has numeric codes only (the aggregator's docs): a refused submit is its "Task creation error".
SUBMIT_CODES = {"aggregator": "001028099"}


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Moderation on, no workers: accepted tasks stay PENDING (only the submit check is tested)."""
    from tests.helpers import run_server, test_settings

    settings = test_settings(tmp_path_factory.mktemp("strict"), render_threads=0, moderation_blocklist=BLOCKLIST,
                             moderation_regex=r"\bkill\s+(?:them\s+)?all\b", protected_names=PROTECTED,
                             moderation_hook=f"{HOOKS}:flag_lighthouse_as_ip")
    with run_server(settings) as srv:
        yield srv


@pytest.mark.parametrize("dialect", DIALECTS)
def test_submit_refuses_prohibited_prompts(strict_server: LiveServer, file_server: str, dialect: str) -> None:
    srv = strict_server
    cases = [  # (prompt, negative prompt, code, words of the message, param)
        ("character1 calls character2 an a.s.s", None, "DataInspectionFailed", "inappropriate content (the prompt)",
         "prompt"),
        ("character1 picks the Forbidden  Fruit", None, "DataInspectionFailed", "(the prompt)", "prompt"),
        ("character1 shouts: KILL them all!", None, "DataInspectionFailed", "(the prompt)", "prompt"),
        ("character1 waves.", "no 禁止词 here", "DataInspectionFailed", "(the negative prompt)", "negative_prompt"),
        ("character1 dressed as spider man", None, "IPInfringementSuspect", "IP infringement (the prompt)", "prompt"),
        ("character1 meets the Lighthouse Keeper", None, "IPInfringementSuspect", "protected character (test hook)",
         None),
    ]
    with srv.client() as c:
        before = c.get("/api/v1/tasks", params={"page_size": 100}).json()["total"]
    for prompt, negative, code, words, param in cases:
        status, body = dialect_submit(srv, dialect, prompt, file_server, negative)
        got_code, message = refusal(dialect, body)
        assert status == 400, (prompt, body)
        assert got_code == SUBMIT_CODES.get(dialect, code), (prompt, body)
        assert words in message and ("IP infringement" in message or "protected" in message) == (
            code == "IPInfringementSuspect"), (prompt, message)
        if dialect == "openai":
            assert body["error"]["type"] == "invalid_request_error"
            assert body["error"]["param"] == param
    with srv.client() as c:
        assert c.get("/api/v1/tasks", params={"page_size": 100}).json()["total"] == before  # nothing stored
    # Innocent words that merely contain a blocked one pass.
    status, body = dialect_submit(srv, dialect, "character1 teaches a class on bass and passion fruit.", file_server)
    assert status == 200, body


# -- live servers: refused after rendering ------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    hooks.CALLS.clear()


def poll_failure(srv: LiveServer, dialect: str, task_id: str) -> tuple[str, str]:
    """(code, message) of a FAILED task as the dialect's own poll shows it."""
    srv.wait(task_id)
    with srv.client() as c:
        if dialect == "dashscope":
            out = c.get(f"/api/v1/tasks/{task_id}").json()["output"]
            assert out["task_status"] == "FAILED" and "video_url" not in out
            return out["code"], out["message"]
        if dialect == "aggregator":
            body = c.get(f"/model/v1/generation/{task_id}").json()
            assert body["status"] == "failed" and "output" not in body and "usage" not in body
            return body["error"]["code"], body["error"]["message"]
        if dialect == "gateway":
            data = c.get(f"/v1/video/generations/{task_id}").json()["data"]
            assert data["status"] == "FAILURE"
            out = data["data"]["output"]
            assert data["fail_reason"] == f"task failed, code: {out['code']} , message: {out['message']}"
            return out["code"], out["message"]
        body = c.get(f"/v1/videos/{task_id}").json()
        assert body["status"] == "failed" and body["expires_at"] is None
        return body["error"]["code"], body["error"]["message"]


def assert_nothing_kept(srv: LiveServer) -> None:
    data = srv.settings.data_dir
    assert not list((data / "objects").rglob("outputs/*")), "no output may be stored"
    assert not [p for p in (data / "work").glob("*") if p.is_dir()], "the work directory must be gone"
    with srv.client() as c:
        assert c.get("/api/v1/openr2v/ledger").json()["output"] == {"tasks": 0, "billed_seconds": 0.0,
                                                                     "cost_usd": 0.0}


def test_a_hook_refusing_the_output_fails_the_task_in_every_dialect(make_server: Any, file_server: str) -> None:
    srv = make_server(engine=TINY, moderation_hook=f"{HOOKS}:flag_output", moderation_blocklist="ass")
    ids = {}
    for dialect in DIALECTS:
        status, body = dialect_submit(srv, dialect, "character1 waves at the camera.", file_server)
        assert status == 200, body
        ids[dialect] = task_id_of(dialect, body)
    for dialect, task_id in ids.items():
        code, message = poll_failure(srv, dialect, task_id)
        if dialect == "aggregator":  # numeric: "Internal generation error", the canonical code in the message
            assert code == "001028095" and message == f"Internal generation error: DataInspectionFailed: " \
                                                      f"{hooks.OUTPUT_MESSAGE}"
        else:
            assert (code, message) == ("DataInspectionFailed", hooks.OUTPUT_MESSAGE), dialect
    outputs = [call for call in hooks.CALLS if call.content.stage == "output"]
    assert len(outputs) == 4 and len(hooks.CALLS) == 8
    for call in outputs:
        assert call.video_bytes and call.video_bytes > 1000  # the hook saw the real MP4 ...
        assert call.content.video is not None and not call.content.video.exists()  # ... which is gone now
        assert call.content.task_id in ids.values()
    assert_nothing_kept(srv)


def test_captions_and_dialogue_are_checked_on_the_compositors_output(make_server: Any, file_server: str) -> None:
    srv = make_server(moderation_hook=f"{HOOKS}:flag_harbour_captions")
    png = f"{file_server}/object.png"

    def submit(line: str) -> str:
        body = {"model": "wan2.6-r2v-flash", "input": {"prompt": f"character1 says: '{line}'",
                                                       "reference_urls": [png]},
                "parameters": {"size": "1280*720", "duration": 2, "audio": False, "captions": True,
                               "prompt_extend": False}}
        with srv.client() as c:
            r = c.post(DASHSCOPE, json=body, headers=ASYNC)
        assert r.status_code == 200, r.text
        return str(r.json()["output"]["task_id"])

    flagged, clean = submit("Meet me at the harbour."), submit("Meet me at the station.")
    out = srv.wait(flagged)["output"]
    assert (out["task_status"], out["code"]) == ("FAILED", "DataInspectionFailed")
    assert out["message"] == "Output data may contain inappropriate content (the video); the video was discarded."
    assert srv.wait(clean)["output"]["task_status"] == "SUCCEEDED"
    seen = {call.content.task_id: call.content for call in hooks.CALLS if call.content.stage == "output"}
    caption = "character1: Meet me at the harbour."  # as burned in, speaker first
    assert seen[flagged].texts == {"captions": caption, "dialogue": "Meet me at the harbour."}
    assert seen[flagged].extra["captions"] == [caption]
    with srv.client() as c:
        ledger = c.get("/api/v1/openr2v/ledger").json()["output"]
    assert ledger["tasks"] == 1  # the clean one only
    assert len(list((srv.settings.data_dir / "objects").rglob("outputs/*.mp4"))) == 1


# -- a broken hook: never a 5xx, always a terminal task, fail closed ----------------------------


def test_a_hook_that_crashes_fails_the_task_closed(make_server: Any, file_server: str) -> None:
    srv = make_server(engine=TINY, moderation_hook=f"{HOOKS}:crash")
    for dialect in DIALECTS:
        status, body = dialect_submit(srv, dialect, "character1 waves.", file_server)
        assert status == 200, (dialect, body)  # accepted: the worker asks the hook again
        code, message = poll_failure(srv, dialect, task_id_of(dialect, body))
        assert code == ("001028095" if dialect == "aggregator" else "InternalError")
        assert "Content moderation could not be completed: the moderation hook failed (RuntimeError)." in message
    assert [c.content.stage for c in hooks.CALLS] == ["input"] * 8  # never rendered, never asked about output
    assert_nothing_kept(srv)


def test_a_hook_crashing_on_the_output_or_answering_nonsense(make_server: Any, file_server: str) -> None:
    for hook, why in [("crash_on_output", "hook failed (ConnectionError)"), ("nonsense", "hook answered a int")]:
        srv = make_server(engine=TINY, moderation_hook=f"{HOOKS}:{hook}")
        status, body = dialect_submit(srv, "dashscope", "character1 waves.", file_server)
        assert status == 200, body  # nonsense at submit: accepted, asked again by the worker
        code, message = poll_failure(srv, "dashscope", task_id_of("dashscope", body))
        assert code == "InternalError" and why in message
        assert_nothing_kept(srv)


def test_a_transient_hook_failure_at_submit_is_checked_again_by_the_worker(make_server: Any,
                                                                           file_server: str) -> None:
    srv = make_server(engine=TINY, moderation_hook=f"{HOOKS}:crash_once")
    status, body = dialect_submit(srv, "dashscope", "character1 waves.", file_server)
    assert status == 200, body
    out = srv.wait(task_id_of("dashscope", body))["output"]
    assert out["task_status"] == "SUCCEEDED", out
    assert [c.content.stage for c in hooks.CALLS] == ["input", "input", "output"]


# -- a prompt LLM's rewrite ---------------------------------------------------------------------


def test_a_rewrite_bringing_a_blocked_word_fails_before_rendering(make_server: Any, file_server: str,
                                                                  fake_llm: FakeLLM) -> None:  # noqa: F811
    fake_llm.answer = GOOD.replace("small kitchen", "small haunted kitchen")
    srv = make_server(engine=TINY, prompt_llm_url=fake_llm.url, prompt_llm_timeout_seconds=5,
                      moderation_blocklist="haunted", moderation_hook=f"{HOOKS}:record")
    task_id = submit(srv, file_server, extend=True)  # accepted: the client's prompt is clean
    with srv.client() as c:
        out = srv.wait(task_id)["output"]
        assert (out["task_status"], out["code"]) == ("FAILED", "DataInspectionFailed")
        assert out["message"] == ("Output data may contain inappropriate content (the rewritten prompt); "
                                  "the video was discarded.")
        plan = c.get(f"/api/v1/tasks/{task_id}/plan").json()["output"]
    assert len(fake_llm.calls) == 1
    assert not re.search("haunted", plan["actual_prompt"] or "")  # the refused rewrite is not kept
    assert [c.content.stage for c in hooks.CALLS] == ["input"]  # refused before rendering
    assert_nothing_kept(srv)

