"""PageForge on a 3-node Qdrant cluster (Raft on loopback ports; the collection with 2 shards, replication
factor 2): one node SIGKILLed mid-run loses no acknowledged layout and changes no hit; it rejoins and
catches up; with too few nodes left for a shard, searches and /health answer 503 naming the index."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from app.main import create_app
from app.settings import Settings, VectorSettings
from graph.server import LocalNeo4jServer
from tests.conftest import settings_for
from tests.corpora import QDRANT_BINARY
from tests.e2e.conftest import TenantKey, create_tenant, revision_files
from vectors.server import ClusterPeer, LocalQdrantServer

pytestmark = pytest.mark.slow

NODES = 3
SHARDS = 2
REPLICATION = 2
# Revision chains of real forms, posted before, during and after the outage.
BEFORE = ("conditional-page", "datagrid", "activities")
DURING = ("accordion", "attachments")
SETTLED_WITHIN_S = 120.0


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together, so none is handed out twice)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]


@dataclass
class Cluster:
    nodes: list[LocalQdrantServer]
    api_key: str

    @property
    def entry(self) -> LocalQdrantServer:
        """The node PageForge's URL names."""
        return self.nodes[0]

    @cached_property
    def admin(self) -> QdrantClient:
        """qdrant-client on the entry node, for what the test looks at or arranges directly."""
        return QdrantClient(url=self.entry.url, api_key=self.api_key, timeout=30, check_compatibility=False)

    def peer_ids(self) -> list[int]:
        """Each node's Raft peer id, in node order."""
        peers = self.admin.http.distributed_api.cluster_status().result
        assert peers is not None
        assert peers.status == "enabled"
        by_port = {
            int(peer.uri.rstrip("/").rsplit(":", 1)[1]): int(peer_id) for peer_id, peer in peers.peers.items()
        }
        return [by_port[node.peer.p2p_port] for node in self.nodes if node.peer is not None]

    def cluster_info(self, collection: str) -> qm.CollectionClusterInfo:
        info = self.admin.http.distributed_api.collection_cluster_info(collection).result
        assert info is not None
        return info

    def placement(
        self, collection: str, info: qm.CollectionClusterInfo | None = None
    ) -> dict[int, dict[int, str]]:
        """shard id -> {peer id: replica state}, as the entry node sees it."""
        info = info or self.cluster_info(collection)
        placement: dict[int, dict[int, str]] = {}
        for local in info.local_shards:
            placement.setdefault(local.shard_id, {})[info.peer_id] = str(local.state)
        for remote in info.remote_shards:
            placement.setdefault(remote.shard_id, {})[remote.peer_id] = str(remote.state)
        return placement

    def wait_settled(self, collection: str) -> None:
        """Until every replica is active and no shard transfer runs."""
        deadline = time.monotonic() + SETTLED_WITHIN_S
        while True:
            info = self.cluster_info(collection)
            placement = self.placement(collection, info)
            active = all(
                state == str(qm.ReplicaState.ACTIVE)
                for shard in placement.values()
                for state in shard.values()
            )
            if not info.shard_transfers and active:
                return
            assert time.monotonic() < deadline, f"cluster not settled: {placement}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("qdrant-cluster")
    api_key = f"cluster-{uuid.uuid4().hex}"
    ports = free_ports(3 * NODES)
    nodes = [
        LocalQdrantServer(
            binary=QDRANT_BINARY,
            storage_dir=root / f"node-{index}",
            http_port=ports[3 * index],
            grpc_port=ports[3 * index + 1],
            api_key=api_key,
            peer=ClusterPeer(ports[3 * index + 2], None if index == 0 else ports[2]),
        )
        for index in range(NODES)
    ]
    try:
        for node in nodes:
            node.start()
        cluster = Cluster(nodes, api_key)
        deadline = time.monotonic() + SETTLED_WITHIN_S
        while len(set(cluster.peer_ids())) < NODES:
            assert time.monotonic() < deadline, "the nodes did not form one cluster"
            time.sleep(0.2)
        yield cluster
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(scope="module")
def cluster_settings(
    cluster: Cluster, neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    vectors = VectorSettings(
        qdrant_url=cluster.entry.url,
        qdrant_api_key=SecretStr(cluster.api_key),
        collection=f"layouts-{uuid.uuid4().hex[:12]}",
        shards=SHARDS,
        replication_factor=REPLICATION,
    )
    return settings_for(neo4j_server.bolt_uri, tmp_path_factory.mktemp("cluster-app")).model_copy(
        update={"vectors": vectors}
    )


def post_chains(client: TestClient, tenant: TenantKey, corpora: Path, forms: tuple[str, ...]) -> list[str]:
    """Post each form's revisions in order; every answer must say its layout is indexed. The versions' ids."""
    ids = []
    for form in forms:
        for definition in revision_files(corpora, form):
            response = client.post(
                f"/api/v1/forms/{form}/versions", headers=tenant.headers, json={"definition": definition}
            )
            # 200: a revision identical to an earlier version of the form is that version.
            assert response.status_code in (200, 201), response.text
            assert response.json()["index_pending"] is False, response.text
            ids.append(response.json()["id"])
    return list(dict.fromkeys(ids))


def hits(client: TestClient, tenant: TenantKey, version_id: str) -> list[tuple[float, frozenset[str] | int]]:
    """The top 10 as (score, ids with that score), best first. Equal scores (identical layouts) come in any
    order, and the last group may be cut anywhere by k: it is compared by its size alone."""
    response = client.get(
        f"/api/v1/form-versions/{version_id}/similar", headers=tenant.headers, params={"k": 10}
    )
    assert response.status_code == 200, response.text
    groups: dict[float, set[str]] = {}
    for item in response.json()["items"]:
        groups.setdefault(round(item["score"], 4), set()).add(item["version_id"])
    ranked: list[tuple[float, frozenset[str] | int]] = [
        (score, frozenset(ids)) for score, ids in groups.items()
    ]
    if ranked:
        score, last = ranked[-1]
        ranked[-1] = (score, len(last))  # type: ignore[arg-type]
    return ranked


def search(client: TestClient, tenant: TenantKey, text: str) -> Any:
    return client.post("/api/v1/layouts/search", headers=tenant.headers, json={"text": text, "k": 10})


def vectors_health(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/health")
    return response.status_code, response.json()["dependencies"]["vectors"]


def test_one_node_lost_changes_no_hit_loses_nothing_and_rejoins(
    cluster: Cluster, cluster_settings: Settings, corpora: Path
) -> None:
    collection = cluster_settings.vectors.collection
    with TestClient(create_app(cluster_settings)) as client:
        tenant = create_tenant(cluster_settings)
        acknowledged = post_chains(client, tenant, corpora, BEFORE)
        placement = cluster.placement(collection)
        assert sorted(placement) == list(range(SHARDS))
        assert all(len(replicas) == REPLICATION for replicas in placement.values()), placement

        # The entry node holds at most one replica of each shard; with one shard only on the other two
        # nodes, losing both of them must leave that shard without an answer (the last act below).
        entry, *others = cluster.peer_ids()
        if all(entry in replicas for replicas in placement.values()):
            target = next(peer for peer in others if peer not in placement[1])
            cluster.admin.cluster_collection_update(
                collection,
                qm.MoveShardOperation(
                    move_shard=qm.MoveShard(shard_id=1, from_peer_id=entry, to_peer_id=target)
                ),
            )
            cluster.wait_settled(collection)
        placement = cluster.placement(collection)
        assert any(entry not in replicas for replicas in placement.values()), placement

        before = {version_id: hits(client, tenant, version_id) for version_id in acknowledged}
        text_hits = search(client, tenant, "page with conditional fields").json()["items"]
        assert len(text_hits) == 10
        assert vectors_health(client) == (
            200,
            {"status": "up", "detail": None, "latency_ms": pytest.approx(0, abs=10_000)},
        )

        cluster.nodes[2].kill()  # SIGKILL, mid-run
        assert {version_id: hits(client, tenant, version_id) for version_id in acknowledged} == before
        assert search(client, tenant, "page with conditional fields").json()["items"] == text_hits
        acknowledged += post_chains(client, tenant, corpora, DURING)
        status, vectors = vectors_health(client)
        assert status == 200, vectors
        assert vectors["status"] == "up"
        assert "degraded" in vectors["detail"]
        assert f"1 of {REPLICATION} replicas active" in vectors["detail"]

        cluster.nodes[2].start()
        cluster.wait_settled(collection)
        assert vectors_health(client)[1]["detail"] is None
        rejoined = {version_id: hits(client, tenant, version_id) for version_id in acknowledged}
        # Node 1 goes now: every shard is answered by the rejoined node 2 or the entry node, so node 2 must
        # have caught up on what was written while it was down.
        cluster.nodes[1].kill()
        after = {version_id: hits(client, tenant, version_id) for version_id in acknowledged}
        assert after == rejoined
        counted = cluster.admin.count(collection, exact=True).count
        assert counted == len(acknowledged)

        cluster.nodes[2].kill()  # a shard with no replica on the entry node now has none at all
        refused = client.get(f"/api/v1/form-versions/{acknowledged[0]}/similar", headers=tenant.headers)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "vector index" in refused.json()["detail"]
        status, vectors = vectors_health(client)
        assert status == 503
        assert vectors["status"] == "down"
        # Two of three nodes gone: no Raft quorum is left to mark replicas dead, so the read itself fails.
        assert "read operations failed" in vectors["detail"], vectors

        for node in cluster.nodes[1:]:
            node.start()
        cluster.wait_settled(collection)
        assert {version_id: hits(client, tenant, version_id) for version_id in acknowledged} == after
