"""S3 storage against an S3-protocol server running locally (moto's server mode, a subprocess)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dashscope
import httpx
import pytest
from dashscope import VideoSynthesis

from openr2v.storage_s3 import S3Storage, parse_s3_url
from tests.helpers import KEY, assert_contract_mp4, run_server
from tests.helpers import test_settings as settings_for


def storage(s3: Any, cache: Path, prefix: str = "pre/fix", **kw: Any) -> S3Storage:
    return S3Storage(f"s3://{s3.bucket}/{prefix}", cache, endpoint_url=s3.endpoint, region="us-east-1",
                     access_key_id=s3.ACCESS_KEY, secret_access_key=s3.SECRET_KEY, **kw)


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://b/a/b/") == ("b", "a/b/")
    assert parse_s3_url("s3://b") == ("b", "")
    with pytest.raises(ValueError):
        parse_s3_url("https://b/x")


def test_put_path_url_delete(moto_s3: Any, tmp_path: Path) -> None:
    st = storage(moto_s3, tmp_path / "cache")
    src = tmp_path / "v.mp4"
    src.write_bytes(b"first")
    st.put("outputs/t1.mp4", src)
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key="pre/fix/outputs/t1.mp4")
    assert head["ContentType"] == "video/mp4"

    local = st.path("outputs/t1.mp4")
    assert local is not None and local.read_bytes() == b"first" and local.name == "t1.mp4"
    src.write_bytes(b"second, longer")
    st.put("outputs/t1.mp4", src)  # replaced: the cache notices by the ETag
    assert st.path("outputs/t1.mp4").read_bytes() == b"second, longer"  # type: ignore[union-attr]

    url = st.url("outputs/t1.mp4", int(time.time()) + 600, "http://ignored")
    assert url.startswith(moto_s3.endpoint) and "X-Amz-Signature=" in url
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == b"second, longer"

    st.delete("outputs/t1.mp4")
    assert st.path("outputs/t1.mp4") is None
    assert not local.exists()
    st.delete("outputs/t1.mp4")  # absent is fine
    assert st.verify("outputs/t1.mp4", 0, "x", 0) == "forged"  # no /files/ URLs over S3
    with pytest.raises(ValueError):
        st.put("../escape", src)


def test_presigned_urls_expire_with_the_task(moto_s3: Any, tmp_path: Path) -> None:
    # moto serves presigned URLs without checking their expiry, so the expiry is checked as signed.
    st = storage(moto_s3, tmp_path / "cache")
    now = int(time.time())
    for expires, ttl in ((now + 3600, 3600), (now - 5, 1), (now + 30 * 24 * 3600, 7 * 24 * 3600)):
        q = parse_qs(urlsplit(st.url("outputs/t.mp4", expires, "")).query)
        assert abs(int(q["X-Amz-Expires"][0]) - ttl) <= 2, (expires, q)
        signed_at = datetime.strptime(q["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        assert abs(signed_at - now) <= 5


def test_public_endpoint_in_presigned_urls(moto_s3: Any, tmp_path: Path) -> None:
    st = storage(moto_s3, tmp_path / "cache", public_endpoint_url="https://media.example.com")
    url = st.url("outputs/t.mp4", int(time.time()) + 60, "")
    assert urlsplit(url).netloc == "media.example.com"


def test_the_cache_is_trimmed_least_recently_used_first(moto_s3: Any, tmp_path: Path) -> None:
    st = storage(moto_s3, tmp_path / "cache", cache_bytes=2500)
    for name in ("a", "b", "c"):
        src = tmp_path / name
        src.write_bytes(name.encode() * 1000)
        st.put(f"uploads/{name}.png", src)
    a = st.path("uploads/a.png")
    time.sleep(0.02)
    b = st.path("uploads/b.png")
    time.sleep(0.02)
    c = st.path("uploads/c.png")  # 3000 bytes > 2500: the oldest goes
    assert a is not None and b is not None and c is not None
    assert not a.exists() and b.exists() and c.exists()
    assert st.path("uploads/a.png").read_bytes() == b"a" * 1000  # type: ignore[union-attr]  # fetched again


def test_a_server_on_s3_uploads_renders_and_presigns(moto_s3: Any, tmp_path: Path, media_dir: Path) -> None:
    settings = settings_for(tmp_path / "srv", storage_url=f"s3://{moto_s3.bucket}/r2v",
                            s3_endpoint_url=moto_s3.endpoint, s3_access_key_id=moto_s3.ACCESS_KEY,
                            s3_secret_access_key=moto_s3.SECRET_KEY, s3_region="us-east-1")
    saved = dashscope.base_http_api_url, dashscope.api_key
    with run_server(settings) as srv:
        dashscope.base_http_api_url, dashscope.api_key = srv.api, KEY
        try:
            # file:// references: the SDK uploads them through getPolicy + /oss-upload, into the bucket.
            rsp = VideoSynthesis.call(model="wan2.6-r2v-flash", prompt="character1 waves.",
                                      reference_urls=[f"file://{media_dir / 'object.png'}"], size="1280*720",
                                      duration=2, audio=False, seed=3)
        finally:
            dashscope.base_http_api_url, dashscope.api_key = saved
        assert rsp.status_code == HTTPStatus.OK and rsp.output.task_status == "SUCCEEDED", rsp
        url = rsp.output.video_url
        assert url.startswith(f"{moto_s3.endpoint}/{moto_s3.bucket}/r2v/outputs/") and "X-Amz-Expires=" in url
        video = httpx.get(url, timeout=30)
        assert video.status_code == 200
        assert_contract_mp4(video.content, 1280, 720, 2, audio=False)
        keys = [o["Key"] for o in moto_s3.client().list_objects_v2(Bucket=moto_s3.bucket)["Contents"]]
        assert any(k.startswith("r2v/uploads/dashscope-instant/") and k.endswith("object.png") for k in keys), keys
        assert not (tmp_path / "srv" / "objects").exists()  # nothing went to local storage
        path = urlsplit(url).path.removeprefix(f"/{moto_s3.bucket}/r2v/")
        assert httpx.get(f"{srv.url}/files/{path}?Expires=9999999999&Signature=x").status_code == 404
