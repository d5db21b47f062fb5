"""Work behind ``/v1/videos`` that is more than translation: uploads, cursor lists, delete, previews.

- An uploaded ``input_reference`` is stored as an upload of the caller's key and referenced as
  ``oss://<key>``, which the worker resolves like the DashScope dialect's temporary uploads.
- Lists page by cursor (``after`` = the last id seen) in ``submit_time`` order, one keyset query a page.
- Delete (TaskService.delete) removes the task and its file; a task still rendering stops at the worker's next
  cancellation check (the worker treats a vanished task as canceled and bills nothing).
- ``thumbnail`` (WEBP, a middle frame) and ``spritesheet`` (JPEG, 10 frames in a 5x2 grid) are
  cut from the stored MP4 on request.
"""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import av
from PIL import Image
from starlette.datastructures import UploadFile

from openr2v.domain.task import Task
from openr2v.errors import InvalidParameter, NotFound
from openr2v.runtime import Runtime

__all__ = ["frames_preview", "list_tasks", "store_upload"]

UPLOAD_KINDS = {"image": "image", "video": "video"}


def store_upload(rt: Runtime, owner: str, file: UploadFile, field: str = "input_reference") -> tuple[str, str | None]:
    """Keep an uploaded file as an upload of ``owner``; return (oss:// source, kind or None)."""
    name = Path(file.filename or "upload").name
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-80:] or "upload"
    key = f"openai/{owner}/{uuid.uuid4()}/{safe}"
    content_type = (file.content_type or "").lower()
    rt.service.add_upload(owner, key, file.file, rt.settings.max_upload_bytes, content_type or None,
                          field=field)
    return f"oss://{key}", UPLOAD_KINDS.get(content_type.split("/", 1)[0])


def list_tasks(rt: Runtime, owner: str, after: str | None, limit: int, order: str) -> tuple[list[Task], bool]:
    """This key's live tasks after the cursor, in ``order``; and whether more follow."""
    mark = None
    if after:
        anchor = rt.store.get(after)
        if anchor is None or anchor.owner != owner or anchor.expires_at <= time.time():
            raise InvalidParameter(f"after: no video with id {after!r}.", param="after")
        mark = (anchor.submit_time, anchor.id)
    rows = rt.store.page_after(owner, after=mark, limit=limit + 1, descending=order == "desc",
                                now=rt.service.clock())
    return rows[:limit], len(rows) > limit


def frames_preview(path: Path, variant: str) -> tuple[bytes, str]:
    """(bytes, media type) of a thumbnail or spritesheet of the MP4 at ``path``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 1
        wanted = {total // 2} if variant == "thumbnail" else {round(i * (total - 1) / 9) for i in range(10)}
        frames = [f.to_image() for i, f in enumerate(container.decode(stream)) if i in wanted]
    if not frames:
        raise NotFound("The video has no frames to preview.")
    out = io.BytesIO()
    if variant == "thumbnail":
        frames[0].save(out, format="WEBP", quality=80)
        return out.getvalue(), "image/webp"
    w = 256
    h = max(1, round(frames[0].height * w / frames[0].width))
    sheet = Image.new("RGB", (w * 5, h * 2))
    for i, frame in enumerate(frames[:10]):
        sheet.paste(frame.resize((w, h)), ((i % 5) * w, (i // 5) * h))
    sheet.save(out, format="JPEG", quality=80)
    return out.getvalue(), "image/jpeg"
