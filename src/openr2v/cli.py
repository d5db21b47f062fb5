"""The ``openr2v`` command: serve (embedded default)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openr2v.spec.models import REGIONS

__all__ = ["app", "main"]

app = typer.Typer(help="openr2v: an open reference-to-video server speaking the Wan R2V API.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """openr2v command line."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (store, uploads, outputs).")] = None,
    region: Annotated[str | None, typer.Option(help="Region this server stands for: intl, cn or us.")] = None,
    workers: Annotated[int | None, typer.Option(help="In-process render workers.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run the API with its in-process workers (SQLite store, files under the data dir)."""
    import uvicorn

    from openr2v.api.app import create_app
    from openr2v.config import Settings

    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if region is not None:
        if region not in REGIONS:
            raise typer.BadParameter(f"region must be one of {', '.join(REGIONS)}", param_hint="--region")
        overrides["region"] = region
    if workers is not None:
        overrides["workers"] = workers
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app_ = create_app(settings)
    rt = app_.state.runtime
    if rt.created_key:
        console.print(f"[bold]API key[/bold] (region {settings.region}): {rt.created_key}")
        console.print(f"  stored in {settings.data_dir / 'api_key'}; set OPENR2V_API_KEYS to choose your own")
    console.print(f"openr2v on http://{host}:{port}  (DashScope base URL: http://{host}:{port}/api/v1)")
    uvicorn.run(app_, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
