"""Every Cypher statement PageForge runs; values are always $parameters."""

# Liveness probe used by /health.
PING = "RETURN 1 AS ok"

# Schema, applied idempotently at start-up.
SCHEMA = (
    "CREATE CONSTRAINT tenant_id IF NOT EXISTS FOR (t:Tenant) REQUIRE t.id IS UNIQUE",
    "CREATE CONSTRAINT tenant_name IF NOT EXISTS FOR (t:Tenant) REQUIRE t.name IS UNIQUE",
    "CREATE CONSTRAINT api_key_hash IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.hash IS UNIQUE",
    "CREATE CONSTRAINT form_key IF NOT EXISTS FOR (f:Form) REQUIRE (f.tenant, f.key) IS UNIQUE",
    "CREATE CONSTRAINT form_version_id IF NOT EXISTS FOR (v:FormVersion) REQUIRE v.id IS UNIQUE",
    "CREATE CONSTRAINT form_version_content IF NOT EXISTS "
    "FOR (v:FormVersion) REQUIRE (v.tenant, v.form_key, v.content_hash) IS UNIQUE",
    "CREATE CONSTRAINT form_version_number IF NOT EXISTS "
    "FOR (v:FormVersion) REQUIRE (v.tenant, v.form_key, v.number) IS UNIQUE",
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

# --- Forms and form versions -------------------------------------------------------------------

# The form, locked for this transaction (the SET takes its write lock), created on first use.
LOCK_FORM = """
MERGE (f:Form {tenant: $tenant, key: $form_key})
  ON CREATE SET f.created_at = datetime(), f.next_number = 1, f.version_count = 0
SET f.locked_at = datetime()
RETURN f.next_number AS next_number
"""

# The version of a form with this content, if any.
VERSION_BY_CONTENT = """
MATCH (v:FormVersion {tenant: $tenant, form_key: $form_key, content_hash: $content_hash})
RETURN v {.*, parents: [(v)-[e:DERIVED_FROM]->(p) | {id: p.id, summary: e.summary, changes: e.changes}]}
       AS version
"""

# Versions by id within a tenant: what a caller may name as parents or pins.
VERSIONS_BY_IDS = """
UNWIND $ids AS id
MATCH (v:FormVersion {tenant: $tenant, id: id})
RETURN v.id AS id, v.form_key AS form_key, v.number AS number, v.definition AS definition
"""

# The latest version of a form (highest number), if any.
LATEST_VERSION = """
MATCH (f:Form {tenant: $tenant, key: $form_key})
MATCH (v:FormVersion {tenant: $tenant, form_key: $form_key})
RETURN v.id AS id, v.form_key AS form_key, v.number AS number, v.definition AS definition
ORDER BY v.number DESC LIMIT 1
"""

# A new version with its lineage edges, marked :IndexPending (the outbox) in the same transaction.
CREATE_VERSION = """
MATCH (f:Form {tenant: $tenant, key: $form_key})
CREATE (v:FormVersion:IndexPending {
  id: $id, tenant: $tenant, form_key: $form_key, number: f.next_number, content_hash: $content_hash,
  created_at: datetime(), label: $label, metadata: $metadata, definition: $definition,
  source_format: $source_format, title: $title, layout_text: $layout_text, field_count: $field_count
})-[:VERSION_OF]->(f)
SET f.next_number = f.next_number + 1, f.version_count = f.version_count + 1, f.title = $title,
    f.latest_id = $id
WITH v
CALL (v) {
  UNWIND $parents AS parent
  MATCH (p:FormVersion {tenant: $tenant, id: parent.id})
  CREATE (v)-[:DERIVED_FROM {summary: parent.summary, changes: parent.changes}]->(p)
}
RETURN v {.*, parents: [(v)-[e:DERIVED_FROM]->(p) | {id: p.id, summary: e.summary, changes: e.changes}]}
       AS version
"""

# One version of the tenant with its parents.
VERSION_BY_ID = """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
RETURN v {.*, parents: [(v)-[e:DERIVED_FROM]->(p) | {id: p.id, summary: e.summary, changes: e.changes}]}
       AS version
"""

# A page of the tenant's forms, by key.
LIST_FORMS = """
MATCH (f:Form {tenant: $tenant})
WHERE f.key > $after
RETURN f.key AS key, f.title AS title, f.version_count AS version_count, f.latest_id AS latest_id,
       f.created_at AS created_at
ORDER BY f.key LIMIT $limit
"""

# One form of the tenant.
FORM_BY_KEY = """
MATCH (f:Form {tenant: $tenant, key: $form_key})
RETURN f.key AS key, f.title AS title, f.version_count AS version_count, f.latest_id AS latest_id,
       f.created_at AS created_at
"""

# A page of a form's versions, by number.
LIST_VERSIONS = """
MATCH (v:FormVersion {tenant: $tenant, form_key: $form_key})
WHERE v.number > $after
RETURN v {.id, .form_key, .number, .content_hash, .created_at, .label, .title, .source_format,
          parents: [(v)-[e:DERIVED_FROM]->(p) | {id: p.id, summary: e.summary}]} AS version
ORDER BY v.number LIMIT $limit
"""

# --- The outbox: versions whose layout is not in the index yet -------------------------------

# Oldest pending versions first.
PENDING_INDEX = """
MATCH (v:IndexPending)
RETURN v.id AS id, v.tenant AS tenant, v.form_key AS form_key, v.number AS number,
       v.content_hash AS content_hash, v.layout_text AS layout_text
ORDER BY v.created_at LIMIT $limit
"""

# Close outbox entries once their points are in the index.
CLEAR_PENDING = """
UNWIND $ids AS id
MATCH (v:IndexPending {id: id})
REMOVE v:IndexPending
"""

# --- Reconciling the layout index with the graph -----------------------------------------------

# A tenant's id from its name (the CLI names tenants).
TENANT_ID_BY_NAME = """
MATCH (t:Tenant {name: $name})
RETURN t.id AS id
"""

# A page of versions by id (of one tenant, or of all when $tenant is null): what their points must carry.
VERSION_FINGERPRINTS = """
MATCH (v:FormVersion)
WHERE v.id > $after AND ($tenant IS NULL OR v.tenant = $tenant)
RETURN v.id AS id, v.tenant AS tenant, v.form_key AS form_key, v.number AS number,
       v.content_hash AS content_hash, v:IndexPending AS pending
ORDER BY v.id LIMIT $limit
"""

# The layouts of these versions, to embed again.
LAYOUTS_BY_IDS = """
UNWIND $ids AS id
MATCH (v:FormVersion {id: id})
RETURN v.id AS id, v.tenant AS tenant, v.form_key AS form_key, v.number AS number,
       v.content_hash AS content_hash, v.layout_text AS layout_text
"""
