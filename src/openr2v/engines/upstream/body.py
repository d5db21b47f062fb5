"""The upstream submit body of a render job, in the model's own protocol.

wan2.6 (``reference_urls``, ``size``, ``audio``) or wan2.7 (``media`` with ``first_frame`` and
``reference_voice``, ``resolution`` + ``ratio``), as the Model Studio guides write them. Every file goes
through ``send``, which answers the URL the upstream will read: an ``oss://`` upload, or the
original public URL when forwarding is on.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openr2v.domain.models import ModelSpec
from openr2v.engines.base import RenderJob
from openr2v.media.probe import sniff_format

__all__ = ["SendFn", "build_body", "stage"]

# (local file, the source the client gave, a neutral file name stem) -> the URL sent upstream
SendFn = Callable[[Path, str | None, str], str]

_EXT = {"jpeg": "jpg"}


def stage(path: Path, folder: Path, stem: str) -> Path:
    """``path`` under a name with the extension of its content (``reference1.png``).

    The worker's cache names files by hash, without extension; the upstream judges uploads by
    their name (DashScope refuses an ``oss://`` key whose extension it does not accept).
    """
    with path.open("rb") as fh:
        fmt = sniff_format(fh.read(32))
    dest = folder / (f"{stem}.{_EXT.get(fmt, fmt)}" if fmt else stem)
    folder.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(path, dest)  # same file system as the cache: no copy
    except OSError:
        shutil.copyfile(path, dest)
    return dest


def build_body(job: RenderJob, spec: ModelSpec, model: str, send: SendFn) -> dict[str, Any]:
    """``{model, input, parameters}`` for ``model`` upstream; ``spec`` is the local model's entry."""
    req = job.request
    inp: dict[str, Any] = {"prompt": req.prompt}
    if req.negative_prompt:
        inp["negative_prompt"] = req.negative_prompt
    par: dict[str, Any] = {}
    pairs = list(zip(req.references, job.references, strict=True))
    if spec.input_style == "reference_urls":
        inp["reference_urls"] = [send(res.path, ref.source, f"reference{i + 1}")
                                 for i, (ref, res) in enumerate(pairs)]
        par["size"] = f"{job.width}*{job.height}"
        par["audio"] = req.audio
    else:
        media: list[dict[str, Any]] = []
        if job.first_frame is not None:
            media.append({"type": "first_frame", "url": send(job.first_frame.path, req.first_frame, "first_frame")})
        for i, (ref, res) in enumerate(pairs):
            item: dict[str, Any] = {"type": f"reference_{res.kind}", "url": send(res.path, ref.source,
                                                                                 f"reference{i + 1}")}
            if res.voice_path is not None:
                item["reference_voice"] = send(res.voice_path, ref.voice, f"voice{i + 1}")
            media.append(item)
        inp["media"] = media
        # With a first frame the upstream sizes the video after it; resolution and ratio still go.
        if req.resolution:
            par["resolution"] = req.resolution
        if req.ratio:
            par["ratio"] = req.ratio
    if job.soundtrack is not None:
        inp["audio_url"] = send(job.soundtrack, req.audio_url, "audio")
    # The seed is the one this task records (chosen here when the client gave none), so the
    # upstream's render is the one the task says it is.
    par.update(duration=job.duration, shot_type=req.shot_type, watermark=job.watermark, seed=job.seed,
               prompt_extend=req.prompt_extend)
    if req.extensions.get("captions"):
        par["captions"] = True  # openr2v's own extension; other servers ignore unknown parameters
    return {"model": model, "input": inp, "parameters": par}
