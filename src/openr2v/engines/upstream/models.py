"""Which upstream model serves which local model, and the settings check done at start-up."""

from __future__ import annotations

from collections.abc import Mapping

from openr2v.client.wire import normalize_base_url
from openr2v.config import Settings, parse_pairs
from openr2v.domain.models import REGISTRY, ModelSpec

__all__ = ["check_settings", "parse_model_map", "upstream_model"]


def parse_model_map(text: str) -> dict[str, str]:
    """``"wan2.6-r2v=wan2.6-r2v-flash,wan2.7-r2v=wan2.7-r2v"`` -> ``{local: upstream}``.

    Raises ValueError naming a malformed pair, an unknown local model, or an upstream model of the
    registry that takes references another way than the local one (the prompt's labels, character1
    or Image 1, would then name the wrong references).
    """
    mapping = parse_pairs(text, "OPENR2V_UPSTREAM_MODELS", "a local=upstream pair")
    for local, remote in mapping.items():
        spec = REGISTRY.get(local)
        if spec is None:
            raise ValueError(f"OPENR2V_UPSTREAM_MODELS: unknown local model {local!r}; known: "
                             f"{', '.join(REGISTRY)}")
        other = REGISTRY.get(remote)
        if other is not None and other.input_style != spec.input_style:
            raise ValueError(f"OPENR2V_UPSTREAM_MODELS: {local} takes {spec.input_style} but {remote} takes "
                             f"{other.input_style}; map a model only to one that takes references the same way")
    return mapping


def upstream_model(spec: ModelSpec, mapping: Mapping[str, str]) -> str:
    """The configured upstream name, else the registry's ``upstream_model``, else the model's own name."""
    return mapping.get(spec.name) or spec.upstream_model or spec.name


def check_settings(settings: Settings) -> None:
    """Raise ValueError (at start-up) if the ``dashscope`` engine cannot work with these settings."""
    if not settings.upstream_url:
        raise ValueError("the dashscope engine needs OPENR2V_UPSTREAM_URL (e.g. "
                         "https://dashscope-intl.aliyuncs.com/api/v1 or http://host:8000)")
    normalize_base_url(settings.upstream_url)  # InvalidRequestError is a ValueError
    if not settings.upstream_api_key:
        raise ValueError("the dashscope engine needs OPENR2V_UPSTREAM_API_KEY (the key this server uses upstream)")
    parse_model_map(settings.upstream_models)
