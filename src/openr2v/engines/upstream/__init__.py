"""The ``dashscope`` engine: upstream mode, forwarding tasks to a server that speaks DashScope.

The upstream is Alibaba Cloud's Wan API or any server speaking it (another openr2v included); this
server keeps its own keys, billing, storage and durable tasks in front of it. One render call:

1. stage and upload the references the worker fetched (``getPolicy`` + the OSS form POST, sent as
   ``oss://`` with ``X-DashScope-OssResourceResolve: enable``); public http(s) URLs too, unless
   ``upstream_forward_urls`` forwards them as they are
2. submit in the model's own protocol (``reference_urls`` or ``media``), ``X-DashScope-Async: enable``;
   a refusal that created nothing (429, 503, no connection) is retried with backoff for a while
3. record the upstream task id in ``Task.extra`` *before* waiting, so that a re-run after a crash
   polls that task instead of submitting a second one
4. poll with backoff (``Retry-After`` honoured), relaying cancellation upstream
5. copy the video into a local file before the upstream URL expires; report the upstream's usage

Errors: the upstream's FAILED code and message become the task's (``UpstreamError``); a submit the
upstream refused does too (``InvalidParameter``, ``InvalidApiKey``, ``Throttling.RateQuota`` ...).
"""

from openr2v.engines.upstream.engine import DashScopeEngine, UpstreamError
from openr2v.engines.upstream.models import check_settings, parse_model_map, upstream_model

__all__ = ["DashScopeEngine", "UpstreamError", "check_settings", "parse_model_map", "upstream_model"]
