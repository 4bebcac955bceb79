"""CLI command groups, one module each (`simulate`, `serve`, `reference`, `audit`, ...).

Each module defines `register(app: typer.Typer) -> None`; `service.cli` calls every module's
`register` at import. Keep heavy imports (torch, the embedder, FastAPI) inside the command
functions so `collapse-guard --help` stays fast.
"""
