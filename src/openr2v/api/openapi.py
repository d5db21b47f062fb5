"""OpenAPI documents: the app-wide one and one per dialect (``GET /openapi/{dialect}.json``).

Submit handlers read their raw body and parse it themselves (each dialect refuses bad input in
its own order and with its own codes), so FastAPI cannot see their bodies: a route declares its
request body, headers and query parameters with ``openapi_extra`` (``json_body``, ``header``,
``query``) and its responses per status (``errors``). The builder then adds what FastAPI leaves
out or gets wrong for these routes: the pydantic body schemas as components, the Bearer scheme,
``x-request-id`` on every dialect response, and no 422 (dialect routes answer validation errors
with their own 400). The documents are what tests/api/test_fuzz.py fuzzes against the server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

__all__ = ["BEARER", "NO_AUTH", "build_document", "component", "errors", "header", "json_body", "nullable",
           "optional", "query"]

REF = "#/components/schemas/"
BEARER = "bearer"
NO_AUTH: dict[str, Any] = {"security": []}  # openapi_extra of a route that takes no API key

# Component schemas of the bodies routes declare, by component name (json_body fills it).
_COMPONENTS: dict[str, dict[str, Any]] = {}


def _register(model: type[BaseModel], prefix: str) -> str:
    """Put ``model`` (and the models it uses, all named ``prefix`` + class name) into the registry."""
    name = prefix + model.__name__
    if name not in _COMPONENTS:
        schema = model.model_json_schema(ref_template=REF + prefix + "{model}")
        for sub, sub_schema in schema.pop("$defs", {}).items():
            _COMPONENTS.setdefault(prefix + sub, sub_schema)
        _COMPONENTS[name] = schema
    return name


def component(model: type[BaseModel], prefix: str) -> dict[str, str]:
    """A ``$ref`` to ``model``'s schema, for schemas written by hand (e.g. an event's ``contentSchema``)."""
    return {"$ref": REF + _register(model, prefix)}


def json_body(model: type[BaseModel], prefix: str, *, description: str = "",
              extra_content: dict[str, Any] | None = None,
              properties: dict[str, dict[str, Any]] | None = None,
              examples: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON body of ``model`` (plus other media types).

    ``properties`` replaces the schemas of top-level fields the handler checks beyond their type
    (e.g. ``model``: the names the dialect offers, refused with a 400 otherwise). ``examples``
    (name: body) are the documents' own requests: the server must accept each (scripts/fuzz.py sends them)."""
    name = _register(model, prefix)
    for field, schema in (properties or {}).items():
        _COMPONENTS[name]["properties"][field] = schema
    media: dict[str, Any] = {"schema": {"$ref": REF + name}}
    if examples:
        media["examples"] = {k: {"value": v} for k, v in examples.items()}
    content = {"application/json": media, **(extra_content or {})}
    body: dict[str, Any] = {"required": True, "content": content}
    if description:
        body["description"] = description
    return {"requestBody": body}


def header(name: str, schema: dict[str, Any], *, required: bool = False, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema, "description": description}


def query(name: str, schema: dict[str, Any], *, required: bool = False, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def optional(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema where an empty value (``name=``, as httpx sends None) means the default."""
    return {"anyOf": [schema, {"type": "string", "enum": [""]}]}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or JSON null (a field the handler takes null for as absent)."""
    return {"anyOf": [schema, {"type": "null"}]}


def errors(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` entries: ``model`` (the dialect's error envelope) for each status."""
    return {s: {"model": model, "description": HTTPStatus(s).phrase} for s in statuses}


def build_document(routes: Iterable[BaseRoute], *, title: str, version: str, description: str = "") -> dict[str, Any]:
    """The OpenAPI document of ``routes``, completed as the module docstring says."""
    routes = list(routes)
    doc = get_openapi(title=title, version=version, description=description, routes=routes)
    dialect_paths = {r.path for r in routes if isinstance(r, APIRoute) and _is_dialect_route(r)}
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            responses = operation.get("responses", {})
            # Never sent: dialect routes answer with the dialect's 400, and the other routes (/healthz,
            # /files) take nothing FastAPI validates.
            responses.pop("422", None)
            if path in dialect_paths:
                for response in responses.values():
                    response.setdefault("headers", {})["x-request-id"] = {
                        "description": "The request's id (also in the body where the dialect has one).",
                        "required": True, "schema": {"type": "string"}}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    _add_components(doc, schemas)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    doc["components"]["securitySchemes"] = {BEARER: {
        "type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer sk-..."}}
    doc["security"] = [{BEARER: []}]
    return doc


def _is_dialect_route(route: APIRoute) -> bool:
    return type(route).__name__ == "DialectRoute"  # common.dialect_route's class, one per dialect


def _add_components(doc: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Copy every registered component the document refers to (and those they refer to)."""
    pending = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(doc)))
    while pending:
        name = pending.pop()
        if name in schemas or name not in _COMPONENTS:
            continue
        schemas[name] = _COMPONENTS[name]
        pending |= set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(_COMPONENTS[name])))
