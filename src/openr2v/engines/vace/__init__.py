"""The vace engine: Wan2.1-VACE (1.3B or 14B) or Wan2.2-VACE-Fun (two experts), diffusers format, from a local
folder, never a hub; sampled by a recipe (docs/engines/vace.md).

torch and diffusers are imported only when the engine is built, so the rest of openr2v works
without them (they come with the ``vace`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openr2v.config import Settings
from openr2v.engines.vace.loader import missing_packages
from openr2v.engines.vace.options import VaceOptions

if TYPE_CHECKING:
    from openr2v.engines.vace.engine import VaceEngine

__all__ = ["VaceEngine", "VaceOptions", "check_settings"]


def check_settings(settings: Settings) -> None:
    """Raise ValueError when the vace settings cannot work here (no model folder, no torch); imports neither."""
    VaceOptions.from_settings(settings)
    reason = missing_packages()
    if reason:
        raise ValueError(reason)


def __getattr__(name: str) -> object:
    if name == "VaceEngine":  # lazily: importing it imports numpy-heavy engines.common code, not torch
        from openr2v.engines.vace.engine import VaceEngine

        return VaceEngine
    raise AttributeError(name)
