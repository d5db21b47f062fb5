"""The compositor engine: stages the references over a background and encodes the contract's MP4 on CPU."""

from __future__ import annotations

from openr2v.engines.compositor.engine import CompositorEngine

__all__ = ["CompositorEngine"]
