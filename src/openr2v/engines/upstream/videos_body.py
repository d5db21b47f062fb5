"""What the ``videos`` engine sends to an OpenAI-style ``/v1/videos`` server, per flavor.

A ``Unit`` is one upstream video: the whole prompt, or one shot of the plan with the references on
screen in it (relabelled as the upstream's first, second ... reference). Flavors:

- ``vllm-omni``: multipart; ``input_reference`` is an uploaded file (the first frame, else the first
  image, else the first video); a voice (or the soundtrack) makes it speech-to-video:
  ``image_reference`` + ``audio_reference`` as JSON with data URLs; ``width``, ``height``,
  ``num_frames``, ``fps``, ``seed``, ``negative_prompt``, ``generate_sound`` and the sampling fields.
  It takes one reference a request: the others reach it shot by shot (OPENR2V_UPSTREAM_SHOTS=each).
- ``openr2v``: multipart; every reference a file in ``references[]`` (in prompt order), openr2v's
  ``parameters[...]`` (audio, shot_type, watermark, prompt_extend), ``seed``; the local model name.
- ``sglang``: multipart with the ``input_reference`` file and the rest in ``extra_body`` (JSON) when
  there is an image; JSON otherwise (its multipart create requires a file).
- ``fastvideo``: JSON; ``input_reference`` is the image as a data URL.
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openr2v.domain.prompt import ShotPlan, label_pattern
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.errors import InvalidParameter
from openr2v.media.probe import sniff_format

__all__ = ["FLAVORS", "Request", "Unit", "build_request", "shot_units", "whole_unit"]

FLAVORS = ("vllm-omni", "sglang", "fastvideo", "openr2v")
MIN_SECONDS = 2  # the shortest video the upstream is asked for; shots are cut to length here
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "bmp": "image/bmp", "mp4": "video/mp4",
         "mov": "video/quicktime", "wav": "audio/wav", "mp3": "audio/mpeg"}


@dataclass
class Unit:
    index: int
    prompt: str
    references: list[ResolvedReference]
    first_frame: ResolvedReference | None
    seconds: int  # asked of the upstream
    frames: int  # kept of its video (at the job's fps)


@dataclass
class Request:
    """One create call: a multipart form (``data`` + ``files``) or a JSON body (``json``)."""

    data: list[tuple[str, str]] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    json: dict[str, Any] | None = None

    def form(self) -> dict[str, list[str]] | None:
        """``data`` as httpx takes a form (name -> values); a form without files still goes as multipart."""
        if self.data is None:
            return None
        out: dict[str, list[str]] = {}
        for k, v in self.data:
            out.setdefault(k, []).append(v)
        return out


def whole_unit(job: RenderJob) -> Unit:
    return Unit(0, job.request.prompt, list(job.references), job.first_frame, job.duration,
                job.duration * job.fps)


def shot_units(job: RenderJob) -> list[Unit]:
    """One unit per shot of the job's plan; frames add up to the job's exactly."""
    if not job.plan:
        return [whole_unit(job)]
    plan = ShotPlan.from_dict(job.plan)
    total = job.duration * job.fps
    units: list[Unit] = []
    for i, shot in enumerate(plan.shots):
        start = round(shot.start * job.fps)
        end = total if i == len(plan.shots) - 1 else round(shot.end * job.fps)
        if end <= start:
            continue
        on = [r for r in job.references if r.label in shot.on_screen] or list(job.references[:1])
        prompt = _relabel(" ".join(p for p in (plan.style, shot.text) if p), on, job.request.model)
        seconds = max(MIN_SECONDS, math.ceil((end - start) / job.fps))
        units.append(Unit(i, prompt, on, job.first_frame if i == 0 else None, seconds, end - start))
    return units


def _relabel(text: str, refs: list[ResolvedReference], model: str) -> str:
    """Rename the references on screen to the labels they carry upstream (the shot's first is character1)."""
    wan27 = model.startswith("wan2.7")
    counts = {"image": 0, "video": 0}
    marks: dict[str, str] = {}
    for i, ref in enumerate(refs):
        if wan27:
            counts[ref.kind] += 1
            new = f"{'Image' if ref.kind == 'image' else 'Video'} {counts[ref.kind]}"
        else:
            new = f"character{i + 1}"
        mark = f"\x00{i}\x00"
        text = re.sub(label_pattern(ref.label), mark, text, flags=re.I)
        marks[mark] = new
    for mark, new in marks.items():
        text = text.replace(mark, new)
    return text


def _mime(path: Path) -> str:
    with path.open("rb") as fh:
        fmt = sniff_format(fh.read(32))
    return _MIME.get(fmt or "", mimetypes.guess_type(path.name)[0] or "application/octet-stream")


def _file(path: Path, stem: str) -> tuple[str, bytes, str]:
    mime = _mime(path)
    ext = (mimetypes.guess_extension(mime) or "").replace(".jpe", ".jpg")
    return f"{stem}{ext}", path.read_bytes(), mime


def _data_url(path: Path) -> str:
    return f"data:{_mime(path)};base64,{base64.b64encode(path.read_bytes()).decode()}"


def build_request(job: RenderJob, unit: Unit, flavor: str, model: str | None) -> Request:
    req = job.request
    common: dict[str, Any] = {"prompt": unit.prompt, "size": f"{job.width}x{job.height}",
                              "seconds": str(unit.seconds), "seed": job.seed}
    if model:
        common["model"] = model
    if req.negative_prompt:
        common["negative_prompt"] = req.negative_prompt
    sampling: dict[str, Any] = dict(req.extensions.get("sampling") or {})
    if flavor == "openr2v":
        return _openr2v(job, unit, common, sampling)
    extra: dict[str, Any] = {"width": job.width, "height": job.height, "num_frames": unit.seconds * job.fps,
                             "fps": job.fps, **sampling}
    image = unit.first_frame or next((r for r in unit.references if r.kind == "image"), None)
    if flavor == "vllm-omni":
        return _vllm_omni(job, unit, common, extra, image)
    if flavor == "sglang":
        if image is None:
            return Request(json={**common, **extra})
        fields = {k: v for k, v in common.items() if k != "seed"}
        return Request(data=_strings(fields | {"fps": job.fps, "num_frames": extra["num_frames"],
                                               "extra_body": json.dumps({"seed": job.seed, **extra})}),
                       files=[("input_reference", _file(image.path, "input"))])
    if flavor == "fastvideo":
        body = {**common, **{k: v for k, v in extra.items() if k not in ("width", "height")}}
        if image is not None:
            body["input_reference"] = _data_url(image.path)
        return Request(json=body)
    raise InvalidParameter(f"OPENR2V_UPSTREAM_FLAVOR {flavor!r} is not one of {', '.join(FLAVORS)}.")


def _vllm_omni(job: RenderJob, unit: Unit, common: dict[str, Any], extra: dict[str, Any],
               image: ResolvedReference | None) -> Request:
    fields = {**common, **extra, "generate_sound": job.audio}
    voice = next((r.voice_path for r in unit.references if r.voice_path is not None), None) or job.soundtrack
    files: list[tuple[str, tuple[str, bytes, str]]] = []
    if voice is not None and image is not None:  # speech-to-video: the image and the voice, as JSON
        fields["image_reference"] = json.dumps({"image_url": _data_url(image.path)})
        fields["audio_reference"] = json.dumps({"audio_url": _data_url(voice)})
    else:
        first = image or next(iter(unit.references), None)
        if first is not None:
            files.append(("input_reference", _file(first.path, "input")))
    return Request(data=_strings(fields), files=files or None)


def _openr2v(job: RenderJob, unit: Unit, common: dict[str, Any], sampling: dict[str, Any]) -> Request:
    req = job.request
    fields = {**common, "parameters[audio]": job.audio, "parameters[shot_type]": req.shot_type if len(
        unit.references) == len(job.references) else "single", "parameters[watermark]": job.watermark,
              "parameters[prompt_extend]": req.prompt_extend, **sampling}
    if req.extensions.get("captions"):
        fields["parameters[captions]"] = True
    files = [("references[]", _file(r.path, f"reference{i + 1}")) for i, r in enumerate(unit.references)]
    if unit.first_frame is not None or any(r.voice_path is not None for r in unit.references):
        raise InvalidParameter("The openr2v flavor of the videos engine sends references as files, which carry "
                               "no first frame or voice; use the dashscope engine for those.")
    return Request(data=_strings(fields), files=files or None)


def _strings(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """Form values: booleans as true/false, objects as JSON."""
    out: list[tuple[str, str]] = []
    for k, v in fields.items():
        if isinstance(v, bool):
            out.append((k, "true" if v else "false"))
        elif isinstance(v, dict | list):
            out.append((k, json.dumps(v)))
        else:
            out.append((k, str(v)))
    return out
