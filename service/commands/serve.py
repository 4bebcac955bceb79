"""`collapse-guard serve`: run the REST service (uvicorn), and `hash-key` for API keys."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    ) -> None:
        """Run the REST API (settings from COLLAPSE_GUARD_* environment variables)."""
        from detectors.errors import CollapseGuardError
        from service.cli import console, fail
        from service.settings import load_settings

        try:  # before the web stack is imported: a bad setting answers at once
            settings = load_settings()
        except CollapseGuardError as exc:
            raise fail(str(exc)) from None
        import uvicorn

        from service.main import create_app

        if not settings.api_keys and host not in ("127.0.0.1", "localhost", "::1"):
            raise fail(
                f"refusing to serve on {host} without API keys: set COLLAPSE_GUARD_API_KEYS "
                "(see `collapse-guard hash-key`) or bind to 127.0.0.1"
            )
        console.print(f"collapse-guard on http://{host}:{port} (data in {settings.data_dir})")
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")

    @app.command("hash-key")
    def hash_key_command(
        key: Annotated[str, typer.Argument(help="The API key to hash.")],
    ) -> None:
        """Print the SHA-256 digest to put in COLLAPSE_GUARD_API_KEYS for this key."""
        from service.api.deps import hash_key

        typer.echo(hash_key(key))
