"""The `pageforge` command line: serve, manage the local Neo4j, tenants, conversions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
import uvicorn

from app import __version__
from app.audit import operator, security_event
from app.observability import configure_logging
from app.resources import freeze_startup_heap, open_graph, prepare_graph
from app.scopes import KEY_SCOPES, Scope
from app.settings import ServiceName, Settings
from graph.errors import GraphError
from graph.migrations import MIGRATIONS, MigrationStatus, Migrator
from graph.server import ADMIN_USER, LocalNeo4jServer, Neo4jServerError
from graph.tenants import SHOWN_PREFIX, KeyScope, TenantRepository
from ingest import (
    DefinitionError,
    FormDefinition,
    diff_definitions,
    export_native,
    import_definition,
    parse_document,
)
from vectors.server import LocalQdrantServer, QdrantServerError

if TYPE_CHECKING:
    from app.formversions.reconcile import IndexReconciler, ReconcileReport

T = TypeVar("T")

cli = typer.Typer(help="PageForge: form lineage, similar layouts and renders.", no_args_is_help=True)
neo4j_cli = typer.Typer(help="The PageForge-managed local Neo4j server.", no_args_is_help=True)
qdrant_cli = typer.Typer(
    help="A Qdrant server on 127.0.0.1 for development (PAGEFORGE_QDRANT__*).", no_args_is_help=True
)
tenant_cli = typer.Typer(help="Tenants and their API keys.", no_args_is_help=True)
cli.add_typer(neo4j_cli, name="neo4j")
cli.add_typer(qdrant_cli, name="qdrant")
cli.add_typer(tenant_cli, name="tenant")


def managed_server(settings: Settings) -> LocalNeo4jServer:
    neo4j = settings.neo4j
    if neo4j.password is not None and neo4j.user != ADMIN_USER:
        raise Neo4jServerError(
            f"the managed Neo4j has one user, {ADMIN_USER!r}; PAGEFORGE_NEO4J__USER is {neo4j.user!r}"
        )
    credentials = neo4j.credentials()
    return LocalNeo4jServer(
        data_dir=neo4j.data_dir,
        bolt_port=neo4j.bolt_port,
        heap=neo4j.heap,
        page_cache=neo4j.page_cache,
        password=credentials[1] if credentials else None,
    )


def _require_managed(settings: Settings) -> LocalNeo4jServer:
    if not settings.neo4j.managed:
        typer.echo(
            f"PAGEFORGE_NEO4J__URI is set ({settings.neo4j.uri}): PageForge manages no Neo4j.", err=True
        )
        raise typer.Exit(2)
    return managed_server(settings)


def _with_graph(settings: Settings, work: Callable[[TenantRepository], Awaitable[T]]) -> T:
    async def run() -> T:
        graph = open_graph(settings)
        try:
            await prepare_graph(graph, settings)
            return await work(TenantRepository(graph))
        finally:
            await graph.close()

    return asyncio.run(run())


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings).")] = None,
    service: Annotated[
        ServiceName | None,
        typer.Option(
            help="all (the default: gateway and services in one process), one of formversions, "
            "sysversions, renderer, or gateway (default: PAGEFORGE_SERVICE)."
        ),
    ] = None,
) -> None:
    """Run the API (or one service of it); with every service in this process on the embedded default,
    start the managed Neo4j first (and stop it after)."""
    from app.main import create_app

    settings = Settings()
    if service is not None:
        settings = settings.model_copy(update={"service": service})
    configure_logging(settings.log_level)
    host, port = host or settings.api.host, port or settings.api.port
    listening = _listen(host, port)  # before the model loads: a taken port fails in a moment
    # One process per service shares a Neo4j that it does not start or stop (`pageforge neo4j start`).
    with listening, _managed_neo4j_running(settings, when=settings.service == "all"):
        config = uvicorn.Config(
            create_app(settings),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.api.shutdown_timeout_s,
        )
        server = ServingServer(config)
        try:
            server.run(sockets=[listening])
        except SystemExit as failed:  # uvicorn's exit when start-up fails (status 3)
            typer.echo("error: PageForge did not start (the log above says why)", err=True)
            raise typer.Exit(failed.code if isinstance(failed.code, int) else 3) from None


class ServingServer(uvicorn.Server):
    """uvicorn's server, which once the app has started (its lifespan done) freezes the startup heap."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            freeze_startup_heap()


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and listening; exits with a clear message when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on connections of sockets that name it, and without
    # it every response waited about 40 ms for the client's delayed ACK (Nagle's algorithm).
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from exc
    listening.listen(2048)
    listening.set_inheritable(True)
    return listening


def _pid_note(pid: int | None) -> str:
    return f" (pid {pid})" if pid is not None else ""


@neo4j_cli.command("build")
def neo4j_build() -> None:
    """Fetch Neo4j from Maven Central and build the launcher (once)."""
    managed_server(Settings()).build()


@neo4j_cli.command("start")
def neo4j_start() -> None:
    """Start the managed Neo4j; returns once Bolt answers."""
    settings = Settings()
    server = _require_managed(settings)
    server.start(timeout=settings.neo4j.start_timeout_s)
    typer.echo(f"neo4j running at {server.bolt_uri} (data: {settings.neo4j.data_dir})")


@neo4j_cli.command("stop")
def neo4j_stop() -> None:
    """Shut the managed Neo4j down cleanly."""
    _require_managed(Settings()).stop()
    typer.echo("neo4j stopped")


@neo4j_cli.command("status")
def neo4j_status() -> None:
    """Whether the managed Neo4j is running; exit code 1 when it is not."""
    status = _require_managed(Settings()).status()
    typer.echo(
        f"neo4j {'running' if status.running else 'stopped'} at {status.bolt_uri}{_pid_note(status.pid)}"
    )
    if not status.running:
        raise typer.Exit(1)


def local_qdrant(settings: Settings) -> LocalQdrantServer:
    api_key = settings.vectors.qdrant_api_key
    if api_key is None or not api_key.get_secret_value():
        typer.echo(
            "error: set PAGEFORGE_VECTORS__QDRANT_API_KEY: the Qdrant server requires it, and PageForge "
            "sends it",
            err=True,
        )
        raise typer.Exit(2)
    qdrant = settings.qdrant
    return LocalQdrantServer(
        binary=qdrant.binary,
        storage_dir=qdrant.data_dir,
        http_port=qdrant.http_port,
        grpc_port=qdrant.grpc_port,
        api_key=api_key.get_secret_value(),
    )


@qdrant_cli.command("start")
def qdrant_start() -> None:
    """Start the Qdrant server with the API key; returns once /readyz answers."""
    settings = Settings()
    server = local_qdrant(settings)
    server.start(timeout=settings.qdrant.start_timeout_s)
    typer.echo(f"qdrant running at {server.url} (storage: {settings.qdrant.data_dir})")
    if settings.vectors.qdrant_url != server.url:
        typer.echo(f"PageForge uses it with PAGEFORGE_VECTORS__QDRANT_URL={server.url}")


@qdrant_cli.command("stop")
def qdrant_stop() -> None:
    """Shut the Qdrant server down (SIGTERM; SIGKILL after 30 s)."""
    local_qdrant(Settings()).stop()
    typer.echo("qdrant stopped")


@qdrant_cli.command("status")
def qdrant_status() -> None:
    """Whether the Qdrant server is running; exit code 1 when it is not."""
    status = local_qdrant(Settings()).status()
    typer.echo(f"qdrant {'running' if status.running else 'stopped'} at {status.url}{_pid_note(status.pid)}")
    if not status.running:
        raise typer.Exit(1)


@contextlib.contextmanager
def _managed_neo4j_running(settings: Settings, *, when: bool = True) -> Iterator[None]:
    """The managed Neo4j started for the command if it was not running (and stopped after); nothing when a
    Neo4j server is configured (or `when` is false)."""
    server = managed_server(settings) if settings.neo4j.managed and when else None
    started_here = server is not None and not server.status().running
    if server is not None:
        server.start(timeout=settings.neo4j.start_timeout_s)
    try:
        yield
    finally:
        if server is not None and started_here:
            server.stop()


def _migration_status(found: MigrationStatus) -> None:
    for done in found.applied:
        typer.echo(f"{done.version:>4}  applied {done.applied_at:%Y-%m-%d %H:%M} UTC  {done.name}")
    for pending in found.pending:
        typer.echo(f"{pending.version:>4}  pending                   {pending.name}")
    for unknown in found.unknown:
        typer.echo(f"{unknown.version:>4}  unknown to this PageForge {unknown.name}")
    if not found.current:
        typer.echo(found.problem(), err=True)


@cli.command()
def migrate(
    status: Annotated[
        bool, typer.Option("--status", help="List applied and pending migrations; exit 1 if any is pending.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what each pending migration would do; change nothing.")
    ] = False,
) -> None:
    """Apply the graph migrations this PageForge needs, in order (each is recorded in the graph)."""
    settings = Settings()
    configure_logging(settings.log_level)

    async def run(migrator: Migrator) -> bool:
        if status:
            found = await migrator.status()
            _migration_status(found)
            return found.current
        if dry_run:
            previews = await migrator.preview()
            for migration, effect in previews:
                typer.echo(f"{migration.version:>4}  {migration.name}: {effect}")
            typer.echo("dry run: nothing changed" if previews else "nothing to apply")
            return True
        for migration, changed in await migrator.migrate():
            typer.echo(f"{migration.version:>4}  applied {migration.name}: {changed} changed")
        typer.echo(f"the graph has every migration ({len(MIGRATIONS)})")
        return True

    async def with_graph() -> bool:
        graph = open_graph(settings)
        try:
            return await run(Migrator(graph))
        finally:
            await graph.close()

    with _managed_neo4j_running(settings):
        current = asyncio.run(with_graph())
    if not current:
        raise typer.Exit(1)


@tenant_cli.command("create")
def tenant_create(name: str) -> None:
    """Create a tenant and print its first API key."""
    settings = Settings()

    async def work(tenants: TenantRepository) -> str:
        await tenants.create(name)
        security_event("tenant.created", tenant=name, by=operator())
        key = await tenants.issue_key(name)
        security_event(
            "key.created",
            tenant=name,
            key_prefix=key[:SHOWN_PREFIX],
            scopes=sorted(KEY_SCOPES["write"]),
            by=operator(),
        )
        return key

    configure_logging(settings.log_level)
    typer.echo(_with_graph(settings, work))


@tenant_cli.command("key")
def tenant_key(
    name: str,
    create: Annotated[bool, typer.Option("--create", help="Create the tenant if it does not exist.")] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="A key that may read and search but not ingest.")
    ] = False,
    admin: Annotated[
        bool, typer.Option("--admin", help="A key that may also manage the tenant's keys over REST.")
    ] = False,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", min=0.001, help="Stop working after this many days.")
    ] = None,
) -> None:
    """Issue another API key for a tenant and print it."""
    from graph.errors import TenantExists

    if read_only and admin:
        raise typer.BadParameter("a key is --read-only or --admin, not both")
    scope: KeyScope = "read" if read_only else "write"
    scopes = tuple(sorted(KEY_SCOPES[scope] | {Scope.ADMIN})) if admin else None
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None

    async def work(tenants: TenantRepository) -> str:
        if create:
            with contextlib.suppress(TenantExists):
                await tenants.create(name)
                security_event("tenant.created", tenant=name, by=operator())
        key = await tenants.issue_key(name, scope=scope, scopes=scopes, expires_at=expires_at)
        granted = sorted(scopes or KEY_SCOPES[scope])
        security_event(
            "key.created", tenant=name, key_prefix=key[:SHOWN_PREFIX], scopes=granted, by=operator()
        )
        return key

    settings = Settings()
    configure_logging(settings.log_level)
    typer.echo(_with_graph(settings, work))


@tenant_cli.command("keys")
def tenant_keys(name: str) -> None:
    """List the tenant's API keys by their first characters, oldest first."""

    async def work(tenants: TenantRepository) -> str:
        keys = await tenants.keys(name)
        return "\n".join(
            f"{key.prefix}  {key.scope:5}  issued {key.created_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f"  expires {key.expires_at:%Y-%m-%d %H:%M:%S} UTC" if key.expires_at else "")
            + (f"  scopes {' '.join(key.scopes)}" if key.scopes is not None else "")
            for key in keys
        )

    listing = _with_graph(Settings(), work)
    typer.echo(listing or f"tenant {name!r} has no API keys")


@tenant_cli.command("revoke-key")
def tenant_revoke_key(
    name: str,
    key: Annotated[
        str, typer.Argument(help="The whole key, or its first characters as `tenant keys` lists them.")
    ],
) -> None:
    """Revoke one API key of a tenant: Neo4j forgets it at once; servers stop accepting it within
    PAGEFORGE_API__KEY_CACHE_S seconds."""

    async def work(tenants: TenantRepository) -> None:
        await tenants.revoke_key(name, key)
        security_event("key.revoked", tenant=name, key_prefix=key[:SHOWN_PREFIX], by=operator())

    settings = Settings()
    configure_logging(settings.log_level)
    _with_graph(settings, work)
    typer.echo(f"revoked {key[:10]}… of tenant {name!r}")


def _read_definition(path: Path, source_format: str | None) -> FormDefinition:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc
    return import_definition(parse_document(raw), format=source_format)


@cli.command()
def convert(
    file: Annotated[Path, typer.Argument(help="A Form.io, SurveyJS, JSON Schema or native JSON/YAML file.")],
    source_format: Annotated[
        str | None, typer.Option("--from", help="formio, surveyjs, jsonschema or native (default: detect).")
    ] = None,
) -> None:
    """Print the canonical (native) JSON of a form definition."""
    definition = _read_definition(file, source_format)
    typer.echo(json.dumps(export_native(definition), indent=2, ensure_ascii=False))


@cli.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The older definition.")],
    new: Annotated[Path, typer.Argument(help="The newer definition.")],
) -> None:
    """Print the one-line summary and the structural changes from OLD to NEW."""
    result = diff_definitions(_read_definition(old, None), _read_definition(new, None))
    typer.echo(result.summary)
    for change in result.model_dump(mode="json")["changes"]:
        typer.echo(json.dumps(change, ensure_ascii=False))


async def _tenant_id(settings: Settings, name: str) -> str:
    """The id of the tenant with this name; TenantNotFound if there is none."""
    graph = open_graph(settings)
    try:
        return (await TenantRepository(graph).named(name)).id
    finally:
        await graph.close()


def _owning_index(
    settings: Settings, tenant: str | None, work: Callable[[IndexReconciler, str | None], Awaitable[T]]
) -> T:
    """Run work with graph, model and index opened as the server opens them (managed Neo4j started),
    and the id of the named tenant (None: all tenants)."""
    from app.formversions.reconcile import owning_index
    from vectors.embedder import EmbedderUnavailable
    from vectors.index import VectorIndexUnavailable

    configure_logging(settings.log_level)

    async def run() -> T:
        tenant_id = await _tenant_id(settings, tenant) if tenant else None
        async with owning_index(settings) as reconciler:
            return await work(reconciler, tenant_id)

    try:
        with _managed_neo4j_running(settings):
            return asyncio.run(run())
    except (VectorIndexUnavailable, EmbedderUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


TenantOption = Annotated[str | None, typer.Option("--tenant", help="Only this tenant (default: all).")]


@cli.command()
def reconcile(
    tenant: TenantOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the drift, repair nothing.")] = False,
) -> None:
    """Compare the layout index with the graph; repair missing, orphaned and stale points (stale context:
    a point whose is_latest or pin_count is not the graph's)."""

    async def work(reconciler: IndexReconciler, tenant_id: str | None) -> ReconcileReport:
        return await reconciler.reconcile(tenant_id, dry_run=dry_run)

    report = _owning_index(Settings(), tenant, work)
    typer.echo(f"{report.versions} versions in the graph, {report.points} points in the index")
    typer.echo(f"before: {report.before}")
    if report.after is None:
        typer.echo("dry run: nothing repaired")
        return
    typer.echo(f"after: {report.after}")
    if not report.after.clean:
        raise typer.Exit(1)


@cli.command()
def reindex(tenant: TenantOption = None) -> None:
    """Rebuild the layout index from the graph: delete the points, embed every version again."""

    async def work(reconciler: IndexReconciler, tenant_id: str | None) -> int:
        return await reconciler.reindex(tenant_id)

    typer.echo(f"reindexed {_owning_index(Settings(), tenant, work)} layouts")


@cli.command()
def ingest(
    path: Annotated[
        Path, typer.Argument(help="A folder of definitions, or a corpus folder with manifest.jsonl.")
    ],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the versions belong to.")],
    source_format: Annotated[
        str | None, typer.Option("--format", help="formio, surveyjs, jsonschema or native (default: detect).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Versions per write and per encoding batch.")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Processes that import files (0: in this process).")
    ] = 0,
) -> None:
    """Ingest many definitions as versions, revision chains as lineage; exit 1 if any file failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.errors import Invalid
    from app.formversions.bulk import BulkIngestReport, owned_bulk_ingestor, plan_ingest
    from vectors.embedder import EmbedderUnavailable
    from vectors.index import VectorIndexUnavailable

    settings = Settings()
    if batch_size is not None:
        settings = settings.model_copy(
            update={"embedder": settings.embedder.model_copy(update={"batch_size": batch_size})}
        )
    configure_logging(settings.log_level)
    try:
        units = plan_ingest(path)
    except Invalid as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    async def run() -> BulkIngestReport:
        tenant_key = await _tenant_id(settings, tenant)
        async with owned_bulk_ingestor(settings, workers=workers) as ingestor:
            with Progress(*columns, transient=True) as progress:
                task = progress.add_task("ingest", total=sum(len(unit.files) for unit in units))
                return await ingestor.ingest(
                    tenant=tenant_key,
                    units=units,
                    source_format=source_format,
                    on_progress=lambda done, _total: progress.update(task, completed=done),
                )

    try:
        with _managed_neo4j_running(settings):
            report = asyncio.run(run())
    except (VectorIndexUnavailable, EmbedderUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for failure in report.failures:
        typer.echo(f"failed: {failure.path}: {failure.reason}", err=True)
    typer.echo(report.summary())
    if report.failures:
        raise typer.Exit(1)


@cli.command()
def version() -> None:
    """Print the PageForge version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point: known failures print one clear line and exit 1, never a traceback."""
    try:
        cli()
    except (GraphError, DefinitionError, Neo4jServerError, QdrantServerError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
