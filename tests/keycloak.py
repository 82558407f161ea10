"""A real Keycloak 26 on 127.0.0.1 for the tests: realms imported from deploy/keycloak, real OIDC tokens.

The Keycloak distribution comes from Maven Central through Maven (cached in ~/.m2), is unpacked once into
var/cache/keycloak-<version>/ and warmed up there once: the first `kc.sh start-dev` of a distribution
re-augments it (rewrites lib/quarkus for the development profile and the build options), which two pytest
workers must not do at once, so it is done under a file lock before any server of the run starts.

Every server gets a home of its own (`-Dkc.home.dir`): a data directory holding the realm files to import
and Keycloak's transaction log, with lib/, conf/, themes/ and providers/ linked to the shared
distribution. The database is H2 in memory (`--db=dev-mem`): nothing outlives the process and no two
servers share state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from graph.server import free_port
from processes import DetachedProcess, exclusive_lock, private_directory

KEYCLOAK_VERSION = "26.7.3"
KEYCLOAK_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO_ROOT / "var" / "cache"
REALM_DIR = REPO_ROOT / "deploy" / "keycloak"
REALM_FILES = (REALM_DIR / "pageforge-realm.json", REALM_DIR / "other-realm.json")
# Keycloak 26 needs Java 21 or later; the default `java` here is 17.
DEFAULT_JAVA_HOME = Path(os.environ.get("PAGEFORGE_KEYCLOAK_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))
LOOPBACK = "127.0.0.1"

# What deploy/keycloak/*.json define.
REALM = "pageforge"
OTHER_REALM = "other"
AUDIENCE = "pageforge"
TENANT_CLAIM = "pageforge_tenant"
TENANT = "acme"
CI_CLIENT = "pageforge-ci"
CI_SECRET = "pageforge-ci-secret"
CLI_CLIENT = "pageforge-cli"  # public, password grant
OTHER_CLIENT = "other-ci"
OTHER_SECRET = "other-ci-secret"
ALICE = "alice"
ALICE_PASSWORD = "alice-password"
ACCESS_TOKEN_LIFESPAN_S = 60  # the realms' accessTokenLifespan
DEFAULT_SCOPES = ("forms:read", "renders:read")
OPTIONAL_SCOPES = ("forms:write", "releases:write", "admin")

# Build-time options: they decide what the one-time augmentation of the shared distribution builds, so every
# server of the distribution must pass exactly these (any other value would make `start-dev` re-augment the
# shared lib/quarkus while other servers run from it).
BUILD_OPTIONS = ("--db=dev-mem",)
READY_STAMP = ".pageforge-warmed-up"
REAUGMENTATION_NOTICE = "Updating the configuration and installing your custom providers"
HOME_MARKER = "-Dkc.home.dir="
LOG_FILE_NAME = "keycloak.log"
PID_FILE_NAME = "keycloak.pid"
_POLL_S = 0.25
_LOG_TAIL_LINES = 60
_KILL_GRACE_S = 10.0


class KeycloakError(RuntimeError):
    """Keycloak could not be obtained, started or asked for a token."""


class LocalKeycloak:
    """`kc.sh start-dev` of Keycloak on 127.0.0.1:`port`, the hostname pinned to http://127.0.0.1:`port`
    (so `iss` is exactly `issuer(realm)`, whatever Host a request carries), `realm_files` imported at start.

    Without a `home`, a temporary one is made and removed by `stop()`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        home: Path | None = None,
        realm_files: Sequence[Path] = REALM_FILES,
        java_home: Path = DEFAULT_JAVA_HOME,
        heap: str = "512m",
        jvm_options: Sequence[str] = ("-XX:TieredStopAtLevel=1",),
        cache_root: Path = CACHE_ROOT,
        mvn: str = "mvn",
    ) -> None:
        self.port = port or free_port()
        self._own_home = home is None
        self.home = Path(home).resolve() if home else Path(tempfile.mkdtemp(prefix="pageforge-keycloak-"))
        self.realm_files = tuple(Path(path).resolve() for path in realm_files)
        self.java_home = Path(java_home)
        self.heap = heap
        self.jvm_options = tuple(jvm_options)
        self.dist = Path(cache_root).resolve() / f"keycloak-{KEYCLOAK_VERSION}"
        self.mvn = mvn
        self.log_file = self.home / LOG_FILE_NAME
        self._process = DetachedProcess(self.home / PID_FILE_NAME, markers=[self._home_argument])

    # --- addresses -------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def issuer(self, realm: str = REALM) -> str:
        """The `iss` of the realm's tokens (the pinned hostname plus /realms/<realm>)."""
        return f"{self.base_url}/realms/{realm}"

    def discovery_url(self, realm: str = REALM) -> str:
        return f"{self.issuer(realm)}/.well-known/openid-configuration"

    def token_url(self, realm: str = REALM) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/token"

    def jwks_url(self, realm: str = REALM) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/certs"

    # --- tokens ----------------------------------------------------------------------------------------

    def token(self, client_id: str, secret: str, scope: str | None = None, *, realm: str = REALM) -> str:
        """An access token from the client-credentials grant; `scope` asks for optional scopes too."""
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return str(self.token_response(form, scope=scope, realm=realm)["access_token"])

    def password_token(
        self,
        client_id: str,
        username: str,
        password: str,
        secret: str | None = None,
        scope: str | None = None,
        *,
        realm: str = REALM,
    ) -> str:
        """An access token from the password grant (`secret` only for a confidential client)."""
        form = {"grant_type": "password", "client_id": client_id, "username": username, "password": password}
        if secret is not None:
            form["client_secret"] = secret
        return str(self.token_response(form, scope=scope, realm=realm)["access_token"])

    def token_response(
        self, form: Mapping[str, str], *, scope: str | None = None, realm: str = REALM
    ) -> dict[str, Any]:
        """The token endpoint's whole JSON answer to `form`; raises with Keycloak's error otherwise."""
        data = dict(form)
        if scope is not None:
            data["scope"] = scope
        response = httpx.post(self.token_url(realm), data=data, timeout=30.0)
        if response.status_code != 200:
            raise KeycloakError(
                f"token request for {form.get('client_id')} in realm {realm} failed: "
                f"{response.status_code} {response.text}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    # --- life cycle ------------------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        """Start the server (obtaining and warming up the distribution first if needed: not counted in
        `timeout`); return once the pageforge realm's discovery document answers with the pinned issuer."""
        if self._process.running_pid() is not None:
            self._wait_ready(time.monotonic() + timeout)
            return
        self._require_java()
        prepare_distribution(self.dist, java_home=self.java_home, mvn=self.mvn, realm_files=self.realm_files)
        self._make_home()
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            command = self.command()
            log.write(f"--- starting: {' '.join(command)}\n".encode())
            log.flush()
            self._process.spawn(command, cwd=self.home, env=self.environment(), log=log)
        self._wait_ready(time.monotonic() + timeout)
        with self.log_file.open("rb") as log:
            log.seek(log_offset)
            if REAUGMENTATION_NOTICE.encode() in log.read():
                # Harmless to this server, but it rewrote the shared lib/quarkus under any other running one.
                self.stop()
                raise KeycloakError(
                    f"Keycloak re-augmented the shared distribution {self.dist} at start: its build options "
                    f"no longer match the warmed-up ones ({' '.join(BUILD_OPTIONS)}); stopped it"
                )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (kc.sh forwards it to the JVM), SIGKILL to the whole process group after `timeout`;
        a temporary home is removed."""
        pid = self._process.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._process.wait_for_exit(pid, timeout):
                # The group is the session spawn() started: kc.sh and the JVM it runs.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                if not self._process.wait_for_exit(pid, _KILL_GRACE_S):
                    raise KeycloakError(f"Keycloak (pid {pid}) survived SIGKILL")
        self._process.forget()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def running(self) -> bool:
        return self._process.running_pid() is not None

    def __enter__(self) -> LocalKeycloak:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the process -----------------------------------------------------------------------------------

    @property
    def _home_argument(self) -> str:
        return f"{HOME_MARKER}{self.home}"

    def command(self) -> list[str]:
        """kc.sh start-dev with this server's home, port, pinned hostname and realm import."""
        return server_command(self.dist, self.home, self.port)

    def environment(self) -> dict[str, str]:
        """This process's environment without anything Keycloak or kc.sh would read as configuration,
        plus Java 21+, the heap and the JVM options."""
        return keycloak_environment(self.java_home, self.heap, self.jvm_options)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        if not self.log_file.exists():
            return "(no log written)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _make_home(self) -> None:
        private_directory(self.home)
        link_distribution(self.dist, self.home)
        imports = self.home / "data" / "import"
        shutil.rmtree(imports, ignore_errors=True)
        imports.mkdir(parents=True)
        for path in self.realm_files:
            shutil.copyfile(path, imports / path.name)

    def _require_java(self) -> None:
        if not (self.java_home / "bin" / "java").is_file():
            raise KeycloakError(
                f"no Java at {self.java_home}/bin/java: Keycloak {KEYCLOAK_VERSION} needs Java 21 or later "
                "(set PAGEFORGE_KEYCLOAK_JAVA_HOME)"
            )

    def _wait_ready(self, deadline: float) -> None:
        expected = self.issuer(REALM)
        while True:
            pid = self._process.running_pid()
            if pid is None:
                self._process.forget()
                raise KeycloakError(
                    f"Keycloak exited during start-up; log {self.log_file}:\n{self.log_tail()}"
                )
            issuer = discovered_issuer(self.discovery_url(REALM))
            if issuer == expected:
                return
            if issuer is not None:
                self.stop()
                raise KeycloakError(f"Keycloak announces issuer {issuer!r}, not {expected!r}; stopped it")
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise KeycloakError(
                    f"Keycloak did not answer {self.discovery_url(REALM)} in time; stopped it. "
                    f"Log {self.log_file}:\n{tail}"
                )
            time.sleep(_POLL_S)


def discovered_issuer(url: str) -> str | None:
    """The `issuer` of the discovery document at `url`, or None while nothing answers 200 there."""
    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    issuer = response.json().get("issuer")
    return str(issuer) if issuer is not None else None


def server_command(dist: Path, home: Path, port: int) -> list[str]:
    return [
        str(dist / "bin" / "kc.sh"),
        "start-dev",
        # kc.sh passes its own -Dkc.home.dir first; the JVM keeps the last one given.
        f"{HOME_MARKER}{home}",
        *BUILD_OPTIONS,
        "--import-realm",
        f"--http-host={LOOPBACK}",
        f"--http-port={port}",
        # Hostname v2: a full URL pins scheme, host and port; strict: never taken from the request's Host.
        f"--hostname=http://{LOOPBACK}:{port}",
        "--hostname-strict=true",
        "--log-console-color=false",
    ]


def keycloak_environment(java_home: Path, heap: str, jvm_options: Sequence[str]) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("KC_", "KEYCLOAK_", "JAVA_OPTS", "JAVA_ADD_OPENS", "QUARKUS_"))
        and name not in {"JAVA", "JAVA_HOME", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "DEBUG", "DEBUG_PORT"}
    }
    environment["JAVA_HOME"] = str(java_home)
    environment["JAVA_OPTS_KC_HEAP"] = f"-Xms64m -Xmx{heap}"
    if jvm_options:
        environment["JAVA_OPTS_APPEND"] = " ".join(jvm_options)
    return environment


def link_distribution(dist: Path, home: Path) -> None:
    """Make `home` a Keycloak home sharing the distribution's read-only parts (lib/ must be there: Keycloak
    reads the options the distribution was built with from <home>/lib/quarkus)."""
    for name in ("lib", "conf", "themes", "providers"):
        link = home / name
        if not link.is_symlink():
            link.symlink_to(dist / name, target_is_directory=True)


# --- the distribution ----------------------------------------------------------------------------------


def prepare_distribution(
    dist: Path, *, java_home: Path, mvn: str = "mvn", realm_files: Sequence[Path] = REALM_FILES
) -> None:
    """Fetch, unpack and warm up the distribution at `dist` unless that was done with these build options."""
    stamp = dist / READY_STAMP
    wanted = json.dumps({"version": KEYCLOAK_VERSION, "build_options": list(BUILD_OPTIONS)})
    if _read(stamp) == wanted:
        return
    dist.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(dist.parent / f"{dist.name}.lock"):
        if _read(stamp) == wanted:  # another worker did it while we waited
            return
        if not (dist / "bin" / "kc.sh").is_file():
            _unpack(_fetch(dist.parent, mvn), dist)
        _warm_up(dist, java_home, realm_files)
        stamp.write_text(wanted)


def _fetch(cache_root: Path, mvn: str) -> Path:
    """The distribution zip, copied out of ~/.m2 by Maven (which downloads it from Maven Central once)."""
    executable = shutil.which(mvn)
    if executable is None:
        raise KeycloakError(
            f"Maven ('{mvn}') is not on PATH; it fetches {KEYCLOAK_ARTIFACT} from Maven Central"
        )
    staging = Path(tempfile.mkdtemp(prefix=".keycloak-zip-", dir=cache_root))
    result = subprocess.run(
        [
            executable,
            "-q",
            "-B",
            "dependency:copy",
            f"-Dartifact={KEYCLOAK_ARTIFACT}",
            f"-DoutputDirectory={staging}",
        ],
        cwd=staging,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    archives = list(staging.glob("*.zip"))
    if result.returncode != 0 or len(archives) != 1:
        shutil.rmtree(staging, ignore_errors=True)
        output = (result.stdout + result.stderr).strip().splitlines()
        raise KeycloakError(
            f"Maven could not fetch {KEYCLOAK_ARTIFACT} (exit {result.returncode}):\n"
            + "\n".join(output[-_LOG_TAIL_LINES:])
        )
    return archives[0]


def _unpack(archive: Path, dist: Path) -> None:
    """Unzip `archive` (its single top directory becomes `dist`), keeping the files' modes; the zip goes."""
    staging = Path(tempfile.mkdtemp(prefix=".keycloak-unzip-", dir=dist.parent))
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                target = Path(zipped.extract(member, staging))
                mode = (member.external_attr >> 16) & 0o777
                if mode:
                    target.chmod(mode)
        (top,) = staging.iterdir()
        shutil.rmtree(dist, ignore_errors=True)
        top.rename(dist)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(archive.parent, ignore_errors=True)


def _warm_up(dist: Path, java_home: Path, realm_files: Sequence[Path]) -> None:
    """Start and stop one server: its start-dev re-augments the distribution for the development profile
    and BUILD_OPTIONS (about 20 s), which every later start then finds done."""
    server = LocalKeycloak(realm_files=realm_files, java_home=java_home, cache_root=dist.parent)
    server._make_home()
    try:
        with server.log_file.open("ab") as log:
            server._process.spawn(server.command(), cwd=server.home, env=server.environment(), log=log)
        try:
            server._wait_ready(time.monotonic() + 300.0)
        except KeycloakError as exc:
            raise KeycloakError(f"warming up the Keycloak distribution at {dist} failed: {exc}") from exc
    finally:
        server.stop()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
