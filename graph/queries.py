"""Every Cypher statement PageForge runs; values are always $parameters."""

# Liveness probe used by /health.
PING = "RETURN 1 AS ok"

# Schema, applied idempotently at start-up.
SCHEMA = (
    "CREATE CONSTRAINT tenant_id IF NOT EXISTS FOR (t:Tenant) REQUIRE t.id IS UNIQUE",
    "CREATE CONSTRAINT tenant_name IF NOT EXISTS FOR (t:Tenant) REQUIRE t.name IS UNIQUE",
    "CREATE CONSTRAINT api_key_hash IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.hash IS UNIQUE",
)

# A new tenant; the name constraint rejects a second one with the same name.
CREATE_TENANT = """
CREATE (t:Tenant {id: $id, name: $name, created_at: datetime()})
RETURN t.id AS id, t.name AS name
"""

# Attach a new API key (stored as its hash only) to an existing tenant.
ADD_API_KEY = """
MATCH (t:Tenant {name: $name})
CREATE (:ApiKey {hash: $hash, prefix: $prefix, created_at: datetime()})-[:AUTHENTICATES]->(t)
RETURN t.id AS id, t.name AS name
"""

# The tenant an API key belongs to.
TENANT_FOR_KEY_HASH = """
MATCH (:ApiKey {hash: $hash})-[:AUTHENTICATES]->(t:Tenant)
RETURN t.id AS id, t.name AS name
"""
