"""Where the CLI's work happens: the local data directory (default) or a running service (--url).

Both backends take the same calls and return the service's own models (`service.schemas`), so
`audit --json` prints the same JSON either way. The local backend runs `service.audit.run_audit`
in-process on the data directory from `service.settings.Settings`; the remote one goes through
`service.client.Client`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from detectors.errors import CollapseGuardError, InvalidInputError

Progress = Callable[[int, int], None]


class CoreUnavailableError(CollapseGuardError):
    """The service core this command needs is not part of this installation."""


def _core(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or "a dependency"
        hint = "install it" if "." not in missing else "it is not part of this build"
        raise CoreUnavailableError(
            f"{module} cannot be loaded: {missing} is missing ({hint})"
        ) from None


@dataclass(frozen=True)
class AuditOutcome:
    result: Any  # service.schemas.AuditResult
    extras: dict[str, Any] = field(default_factory=dict)  # display-only data for the report


@dataclass(frozen=True)
class BuildOptions:
    """How `reference build` runs: chunk size, and whether it resumes or discards a staged build."""

    chunk_documents: int | None = None  # None: the setting build_chunk_documents
    resume: bool = False
    restart: bool = False
    notice: Callable[[str], None] | None = None  # hears what a resume kept


class Backend(Protocol):
    def build_reference(
        self,
        name: str,
        texts: Iterable[str],
        *,
        progress: Progress,
        stage: Callable[[str], Progress] | None = None,
        options: BuildOptions = BuildOptions(),
    ) -> Any: ...
    def list_references(self) -> list[Any]: ...
    def show_reference(self, name: str) -> Any: ...
    def audit(
        self,
        reference: str,
        texts: Iterable[str],
        *,
        policy: Any,
        plan: Any,
        progress: Progress,
        keep_vectors: bool,
        stage: Callable[[str], Progress] | None = None,
    ) -> AuditOutcome: ...
    def close(self) -> None: ...


@contextmanager
def open_backend(
    url: str | None, api_key: str | None, *, engine: str = "local"
) -> Iterator[Backend]:
    if engine not in ("local", "ray"):
        raise InvalidInputError(f"unknown engine {engine!r}: choose local or ray")
    backend: Backend
    if url is not None:
        backend = RemoteBackend(url, api_key=api_key)
    else:
        if api_key is not None:
            raise InvalidInputError("--api-key is only used with --url")
        backend = LocalBackend(engine=engine)
    try:
        yield backend
    finally:
        backend.close()


def load_policy(path: Path | None) -> Any:
    """The policy from a TOML file (validated by the service's Policy model), or None = defaults."""
    if path is None:
        return None
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such policy file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: not valid TOML ({exc})") from None
    policy = _core("service.policy")
    return _validated(policy.Policy, raw, str(path))


def parse_plan(spec: str) -> Any:
    """A retraining plan from 'key=value,...', e.g. 'generations=5,policy=keep-real,beta=0.1'."""
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--plan: {part!r} is not key=value")
        name = key.strip().replace("-", "_")
        if name in values:
            raise InvalidInputError(f"--plan: {key.strip()!r} is given twice: give it once")
        values[name] = value.strip()
    forecast = _core("simulations.forecast")
    return _validated(forecast.Plan, values, "--plan")


def _validated(model: Any, values: dict[str, Any], where: str) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(values, strict=False)  # text from a flag or a file
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInputError(f"{where}: {problems}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


VERDICT_STYLES = {"keep": "green", "top-up": "yellow", "reject": "red", "inconclusive": "magenta"}


def verdict_panel(result: Any) -> Any:
    from rich.panel import Panel

    verdict = result.verdict
    style = VERDICT_STYLES.get(verdict.decision, "white")
    lines = [f"[bold {style}]{verdict.decision.upper()}[/]"]
    if verdict.top_up_documents:
        lines.append(f"add {verdict.top_up_documents:,} fresh human documents")
    lines += [f"- {_reason_text(r)}" for r in verdict.reasons]
    synthetic = getattr(result, "synthetic_fraction", None)
    if synthetic is not None and synthetic.visibility:
        from service.schemas import visibility_line

        lines.append(f"[dim]{visibility_line(synthetic.visibility)}[/]")
    return Panel("\n".join(lines), title="verdict", expand=False)


def _reason_text(reason: Any) -> str:
    return reason if isinstance(reason, str) else getattr(reason, "message", str(reason))


class LocalBackend:
    """The data directory of `Settings`, with the embedder loaded once, in this process."""

    def __init__(self, *, engine: str = "local") -> None:
        settings_module = _core("service.settings")
        store_module = _core("service.store")
        self.settings = settings_module.load_settings()
        self.store = store_module.Store(self.settings)
        self.engine = engine
        self._embedder: Any = None

    def close(self) -> None:
        self.store.close()

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            if self.engine == "ray":
                engines = _core("detectors.engines")
                self._embedder = engines.get_engine(
                    "ray",
                    model=self.settings.embedding_model,
                    precision=self.settings.embedding_precision,
                )
            else:
                from detectors.embedding import Embedder
                from service.commands.common import quiet_model_loading

                quiet_model_loading()

                self._embedder = Embedder(
                    model=self.settings.embedding_model,
                    precision=self.settings.embedding_precision,
                )
        return self._embedder

    def build_reference(
        self,
        name: str,
        texts: Iterable[str],
        *,
        progress: Progress,
        stage: Callable[[str], Progress] | None = None,
        options: BuildOptions = BuildOptions(),
    ) -> Any:
        audit = _core("service.audit")
        building = _core("service.building")
        # Checked before the model loads: the build would refuse the name only after that.
        building.check_build_name(
            self.store,
            name,
            self.settings.data_dir,
            resume=options.resume,
            restart=options.restart,
        )
        return audit.build_reference(
            self.store,
            name,
            texts,
            embedder=self.embedder,
            settings=self.settings,
            progress=progress,
            stage=stage,
            chunk_documents=options.chunk_documents or self.settings.build_chunk_documents,
            resume=options.resume,
            restart=options.restart,
            notice=options.notice,
        )

    def list_references(self) -> list[Any]:
        return list(self.store.list_references())

    def show_reference(self, name: str) -> Any:
        return self.store.reference_info(name)

    def audit(
        self,
        reference: str,
        texts: Iterable[str],
        *,
        policy: Any,
        plan: Any,
        progress: Progress,
        keep_vectors: bool,
        stage: Callable[[str], Progress] | None = None,
    ) -> AuditOutcome:
        audit = _core("service.audit")
        self.store.reference_info(reference)  # unknown name: fail before reading the corpus
        run = audit.execute_audit(
            self.store,
            reference,
            texts,
            embedder=self.embedder,
            settings=self.settings,
            policy=policy,
            plan=plan,
            progress=progress,
            stage=stage,
        )
        extras: dict[str, Any] = {}
        if keep_vectors:
            extras = {"reference": run.reference, "candidate_vectors": run.candidate_vectors}
            top_up = run.result.top_up
            if top_up is not None and top_up.beta > 0:
                # The top-up search already simulated the plan with this beta.
                extras["top_up_forecast"] = run.top_up_forecast
        return AuditOutcome(result=run.result, extras=extras)


class RemoteBackend:
    """A running service, through `service.client.Client`: the same models come back."""

    def __init__(self, url: str, *, api_key: str | None) -> None:
        from service.client import Client

        self.client = Client(url, api_key=api_key)

    def close(self) -> None:
        self.client.close()

    def _finish(self, answer: Any, progress: Progress) -> Any:
        """A 202 job is waited for (with progress); anything else is the answer itself."""
        from service.schemas import Job

        if not isinstance(answer, Job):
            return answer
        done = self.client.wait_for_job(answer, progress=progress)
        return done.reference if done.kind == "reference" else done.audit

    def build_reference(
        self,
        name: str,
        texts: Iterable[str],
        *,
        progress: Progress,
        stage: Callable[[str], Progress] | None = None,
        options: BuildOptions = BuildOptions(),
    ) -> Any:
        if options.resume or options.restart or options.chunk_documents is not None:
            raise InvalidInputError(
                "--resume, --restart and --chunk-size are for local builds: a service stages "
                "its own builds and resumes an interrupted job when it restarts"
            )
        docs = list(texts)  # sent in one request body (the service's limits apply)
        return self._finish(self.client.create_reference(name, docs), progress)

    def list_references(self) -> list[Any]:
        return self.client.list_references()

    def show_reference(self, name: str) -> Any:
        return self.client.reference(name)

    def audit(
        self,
        reference: str,
        texts: Iterable[str],
        *,
        policy: Any,
        plan: Any,
        progress: Progress,
        keep_vectors: bool,
        stage: Callable[[str], Progress] | None = None,  # server-side steps: not reported
    ) -> AuditOutcome:
        self.client.reference(reference)  # unknown name: fail before reading the corpus
        if callable(getattr(texts, "sample", None)):
            # Files: sampled here (two-stage when large) with this machine's settings; only the
            # sample goes in the body, with the size of the corpus it came from.
            settings = _core("service.settings").load_settings()
            answer = self.client.audit_files(
                reference,
                texts,
                audit_size=settings.audit_size,
                full_read_bytes=settings.full_read_bytes,
                block_bytes=settings.sample_block_bytes,
                seed=settings.random_state,
                policy=policy,
                plan=plan,
            )
        else:
            answer = self.client.audit(reference, list(texts), policy=policy, plan=plan)
        result = self._finish(answer, progress)
        # The candidate's vectors stay on the server: no projection or top-up trajectory here.
        return AuditOutcome(result=result)
