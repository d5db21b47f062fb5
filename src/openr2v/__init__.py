"""openr2v: an open, self-hostable reference-to-video service speaking the Wan R2V API.

``openr2v.Client`` and ``openr2v.AsyncClient`` are the Python SDK (``openr2v.client``), loaded
on first use so that importing the server does not import the SDK, nor the other way round.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "AsyncClient"):
        from openr2v import client

        return getattr(client, name)
    raise AttributeError(f"module 'openr2v' has no attribute {name!r}")
