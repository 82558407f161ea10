"""Every Cypher statement PageForge runs; values are always $parameters."""

# Liveness probe used by /health.
PING = "RETURN 1 AS ok"

# Constraints: migration 1 (graph.migrations). A new one goes into a new migration, not here.
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
    "CREATE CONSTRAINT system_key IF NOT EXISTS FOR (s:System) REQUIRE (s.tenant, s.key) IS UNIQUE",
    "CREATE CONSTRAINT sys_version_id IF NOT EXISTS FOR (r:SysVersion) REQUIRE r.id IS UNIQUE",
    "CREATE CONSTRAINT sys_version_name IF NOT EXISTS "
    "FOR (r:SysVersion) REQUIRE (r.tenant, r.system_key, r.version) IS UNIQUE",
    "CREATE CONSTRAINT sys_version_number IF NOT EXISTS "
    "FOR (r:SysVersion) REQUIRE (r.tenant, r.system_key, r.number) IS UNIQUE",
)

# --- Migrations (graph.migrations) -------------------------------------------------------------

SCHEMA_NAMES = "SHOW CONSTRAINTS YIELD name RETURN name"
INDEX_NAMES = "SHOW INDEXES YIELD name RETURN name"

APPLIED_MIGRATIONS = """
MATCH (m:SchemaMigration)
RETURN m.version AS version, m.name AS name, m.applied_at AS applied_at ORDER BY m.version
"""

RECORD_MIGRATION = """
MERGE (m:SchemaMigration {version: $version}) ON CREATE SET m.name = $name, m.applied_at = datetime()
"""

# Versions written before layout prints were stored with them (their definition computes the prints).
VERSIONS_WITHOUT_PRINTS = """
MATCH (v:FormVersion) WHERE v.layout_hash IS NULL AND v.definition IS NOT NULL
RETURN v.id AS id, v.definition AS definition LIMIT $limit
"""

COUNT_VERSIONS_WITHOUT_PRINTS = """
MATCH (v:FormVersion) WHERE v.layout_hash IS NULL AND v.definition IS NOT NULL RETURN count(v) AS count
"""

SET_PRINTS = """
UNWIND $rows AS row
MATCH (v:FormVersion {id: row.id})
SET v.layout_nodes = row.layout_nodes, v.layout_keys = row.layout_keys, v.layout_hash = row.layout_hash
"""

# --- Tenants (TenantRepository) ----------------------------------------------------------------

# A new tenant; the name constraint rejects a second one with the same name.
CREATE_TENANT = """
CREATE (t:Tenant {id: $id, name: $name, created_at: datetime()})
RETURN t.id AS id, t.name AS name
"""

# Attach a new API key (stored as its hash only) to an existing tenant.
ADD_API_KEY = """
MATCH (t:Tenant {name: $name})
CREATE (k:ApiKey {hash: $hash, prefix: $prefix, scope: $scope, scopes: $scopes, label: $label,
                  created_at: datetime(),
                  expires_at: CASE WHEN $expires_ms IS NULL THEN null
                                   ELSE datetime({epochMillis: $expires_ms}) END})-[:AUTHENTICATES]->(t)
RETURN t.id AS id, t.name AS name, k.created_at.epochMillis AS created_ms
"""

# A tenant by its name (the CLI names tenants).
TENANT_BY_NAME = """
MATCH (t:Tenant {name: $name})
RETURN t.id AS id, t.name AS name
"""

# The prefixes of a tenant's API keys (what `tenant keys` shows; a key itself is never stored).
TENANT_KEYS = """
MATCH (t:Tenant {name: $name})
OPTIONAL MATCH (k:ApiKey)-[:AUTHENTICATES]->(t)
WITH t, k ORDER BY k.created_at
RETURN t.id AS id, collect({prefix: k.prefix, created_ms: k.created_at.epochMillis,
                             scope: coalesce(k.scope, 'write'), scopes: k.scopes, label: k.label,
                             expires_ms: k.expires_at.epochMillis}) AS keys
"""

# Delete the tenant's one key with this prefix (or hash); several matches delete nothing.
REVOKE_API_KEY = """
MATCH (t:Tenant {name: $name})
OPTIONAL MATCH (k:ApiKey)-[:AUTHENTICATES]->(t) WHERE k.prefix = $prefix OR k.hash = $hash
WITH t, collect(k) AS keys
FOREACH (k IN CASE WHEN size(keys) = 1 THEN keys ELSE [] END | DETACH DELETE k)
RETURN size(keys) AS matched
"""

# The tenant an API key belongs to, and the key's scope (keys issued before scopes existed may write).
TENANT_FOR_KEY_HASH = """
MATCH (k:ApiKey {hash: $hash})-[:AUTHENTICATES]->(t:Tenant)
RETURN t.id AS id, t.name AS name, coalesce(k.scope, 'write') AS scope, k.scopes AS scopes,
       k.expires_at.epochMillis AS expires_ms
"""

# --- Forms and form versions -------------------------------------------------------------------

# The form, locked for this transaction (the SET takes its write lock), created on first use.
LOCK_FORM = """
MERGE (f:Form {tenant: $tenant, key: $form_key})
  ON CREATE SET f.created_at = datetime(), f.next_number = 1, f.version_count = 0
SET f.locked_at = datetime()
RETURN f.next_number AS next_number
"""

# The version of a form with this content, if any, and whether its layout still waits in the outbox.
VERSION_BY_CONTENT = """
MATCH (v:FormVersion {tenant: $tenant, form_key: $form_key, content_hash: $content_hash})
RETURN v {.*, parents: [(v)-[e:DERIVED_FROM]->(p) | {id: p.id, summary: e.summary, changes: e.changes}],
          index_pending: v:IndexPending} AS version
"""

# Versions by id within a tenant: what a caller may name as parents or pins.
VERSIONS_BY_IDS = """
UNWIND $ids AS id
MATCH (v:FormVersion {tenant: $tenant, id: id})
RETURN v.id AS id, v.form_key AS form_key, v.number AS number, v.definition AS definition
"""

# The latest version of a form (highest number), if any: the last entry of the (tenant, form_key, number)
# index. Neo4j reads it from the index only when the query names all three properties (`number IS NOT
# NULL`) and orders by them; ordering by number alone scanned every version in the graph (bench_graph_scale).
# Events are read from their (tenant, seq) index the same way.
LATEST_VERSION = """
MATCH (f:Form {tenant: $tenant, key: $form_key})
MATCH (v:FormVersion {tenant: $tenant, form_key: $form_key})
WHERE v.number IS NOT NULL
WITH v ORDER BY v.tenant DESC, v.form_key DESC, v.number DESC LIMIT 1
RETURN v.id AS id, v.form_key AS form_key, v.number AS number, v.definition AS definition
"""

# A new version with its lineage edges, in the outbox in the same transaction: :IndexPending for its
# layout, :ContextPending on it and on its parents, whose lineage context (is_latest) it changes and
# whose context_rev it counts up (the index never takes an older context over a newer one).
CREATE_VERSION = """
MATCH (f:Form {tenant: $tenant, key: $form_key})
CREATE (v:FormVersion:IndexPending:ContextPending {
  id: $id, tenant: $tenant, form_key: $form_key, number: f.next_number, content_hash: $content_hash,
  created_at: datetime(), label: $label, metadata: $metadata, definition: $definition,
  source_format: $source_format, title: $title, layout_text: $layout_text, field_count: $field_count,
  layout_nodes: $layout_nodes, layout_keys: $layout_keys, layout_hash: $layout_hash
})-[:VERSION_OF]->(f)
SET f.next_number = f.next_number + 1, f.version_count = f.version_count + 1, f.title = $title,
    f.latest_id = $id
SET f.search = left(toLower(f.key) + '\n' + toLower(coalesce(f.title, '')), 8000)
WITH v
CALL (v) {
  UNWIND $parents AS parent
  MATCH (p:FormVersion {tenant: $tenant, id: parent.id})
  CREATE (v)-[:DERIVED_FROM {summary: parent.summary, changes: parent.changes}]->(p)
  SET p:ContextPending, p.context_rev = coalesce(p.context_rev, 0) + 1
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

# A page of the tenant's forms, by key; with $q, only those whose key or title contains it. The tenant's
# forms are read in key order until the page is full: quick when $q is common, a read of every form of
# the tenant when it is rare (SEARCH_FORMS answers those).
LIST_FORMS = """
MATCH (f:Form {tenant: $tenant})
WHERE f.key > $after
  AND ($q IS NULL OR f.search CONTAINS $q)
RETURN f.key AS key, f.title AS title, f.version_count AS version_count, f.latest_id AS latest_id,
       f.created_at AS created_at
ORDER BY f.key LIMIT $limit
"""

# The forms of every tenant whose search text contains $q, from the trigram text index, at most $bound of
# them; of those, a page of the tenant's by key. `matches` = $bound says there may be more: $q is common,
# and LIST_FORMS fills the page sooner. A form's search text is its key and title, lower-cased, a line
# apart (a $q, which has no line break, is in it exactly when it is in the key or in the title), cut at
# 8,000 characters: the text index refuses a value over 32,766 bytes, and 8,000 characters of UTF-8 fit.
# Every statement that sets a form's title sets it (tests/unit/test_queries.py).
SEARCH_FORMS = """
CALL () {
  MATCH (f:Form) USING TEXT INDEX f:Form(search)
  WHERE f.search CONTAINS $q
  WITH f LIMIT $bound
  RETURN collect(f) AS found
}
CALL (found) {
  UNWIND found AS f
  WITH f WHERE f.tenant = $tenant AND f.key > $after
  ORDER BY f.key LIMIT $limit
  RETURN collect(f {.key, .title, .version_count, .latest_id, .created_at}) AS forms
}
RETURN size(found) AS matches, forms
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

# How many versions of all tenants wait for their layout to be indexed, and for their lineage context.
OUTBOX_BACKLOG = """
CALL () { MATCH (v:IndexPending) RETURN count(v) AS layouts }
CALL () { MATCH (v:ContextPending) RETURN count(v) AS contexts }
RETURN layouts, contexts
"""

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
MATCH (v:FormVersion {id: id})
WHERE v:IndexPending
REMOVE v:IndexPending
RETURN v.tenant AS tenant, v.id AS id, v.form_key AS form_key, v.number AS number
"""

# --- The outbox, continued: versions whose lineage context in the index is out of date -----------

# What a hit shows of a version's place in the graph, and its index point carries: whether it is the
# latest of its lineage (nothing derives from it) and how many releases pin it; rev counts its changes.
# rev is read first: a write that commits meanwhile can then only make the values newer than their rev,
# never older (a newer rev published with them would keep the index from taking the right values).
_LINEAGE_CONTEXT = """
WITH v, coalesce(v.context_rev, 0) AS rev
RETURN v.id AS id, v.tenant AS tenant, NOT EXISTS { (:FormVersion)-[:DERIVED_FROM]->(v) } AS is_latest,
       COUNT { (:SysVersion)-[:INCLUDES]->(v) } AS pin_count, rev
"""

# Open entries whose point is in the index (a pending layout gets its context once it is indexed).
PENDING_CONTEXT = (
    """
MATCH (v:ContextPending)
WHERE NOT v:IndexPending
WITH v LIMIT $limit
"""
    + _LINEAGE_CONTEXT
)

# The current context of these versions, whether or not their entry is open; indexed versions only.
CONTEXT_OF_VERSIONS = (
    """
UNWIND $ids AS id
MATCH (v:FormVersion {id: id})
WHERE NOT v:IndexPending
"""
    + _LINEAGE_CONTEXT
)

# Close context entries whose published context is still the graph's. A write since keeps the entry open (its
# revision moved on). So does a context read while a write was being applied, as readers take no locks and a
# commit applies a node's properties before its relationships: its revision is counted up, so the context
# published next replaces it in the point.
CLEAR_CONTEXT_PENDING = """
UNWIND $published AS published
MATCH (v:FormVersion {id: published.id})
WHERE v:ContextPending AND coalesce(v.context_rev, 0) = published.rev
WITH v, (NOT EXISTS { (:FormVersion)-[:DERIVED_FROM]->(v) }) = published.is_latest
        AND COUNT { (:SysVersion)-[:INCLUDES]->(v) } = published.pin_count AS held
FOREACH (_ IN CASE WHEN held THEN [1] ELSE [] END | REMOVE v:ContextPending)
FOREACH (_ IN CASE WHEN held THEN [] ELSE [1] END | SET v.context_rev = coalesce(v.context_rev, 0) + 1)
"""

# --- Reconciling the layout index with the graph -----------------------------------------------

# A page of versions by id (of one tenant, or of all when $tenant is null): what their points must carry.
VERSION_FINGERPRINTS = """
MATCH (v:FormVersion)
WHERE v.id > $after AND ($tenant IS NULL OR v.tenant = $tenant)
RETURN v.id AS id, v.tenant AS tenant, v.form_key AS form_key, v.number AS number,
       v.content_hash AS content_hash, v:IndexPending AS pending, v:ContextPending AS context_pending,
       NOT EXISTS { (:FormVersion)-[:DERIVED_FROM]->(v) } AS is_latest,
       COUNT { (:SysVersion)-[:INCLUDES]->(v) } AS pin_count
ORDER BY v.id LIMIT $limit
"""

# The layouts of these versions, to embed again.
LAYOUTS_BY_IDS = """
UNWIND $ids AS id
MATCH (v:FormVersion {id: id})
RETURN v.id AS id, v.tenant AS tenant, v.form_key AS form_key, v.number AS number,
       v.content_hash AS content_hash, v.layout_text AS layout_text
"""


# --- Systems and releases (SysVersionProcessor) ----------------------------------------------

# The projection every release read ends with: the release `r`, its pins and its parents.
_RETURN_RELEASE = """
RETURN r {.id, .tenant, .system_key, .version, .number, .created_at,
  pins: [(r)-[i:INCLUDES]->(v:FormVersion) |
         {form_key: i.form_key, version_id: v.id, number: v.number, content_hash: v.content_hash}],
  parents: [(r)-[e:DERIVED_FROM]->(p:SysVersion) |
            {id: p.id, version: p.version, summary: e.summary, diff: e.diff}]} AS release
"""

# The system, locked for this transaction (the SET takes its write lock), created on first use.
LOCK_SYSTEM = """
MERGE (s:System {tenant: $tenant, key: $system_key})
  ON CREATE SET s.created_at = datetime(), s.release_count = 0
SET s.locked_at = datetime()
"""

# Form versions by id within a tenant: what a release may pin.
PIN_CANDIDATES = """
UNWIND $ids AS id
MATCH (v:FormVersion {tenant: $tenant, id: id})
RETURN v.id AS version_id, v.form_key AS form_key, v.number AS number, v.content_hash AS content_hash
"""

# The stored diff summaries of the given (child, parent) form-version pairs that are lineage edges.
FORM_LINEAGE_EDGES = """
UNWIND $pairs AS pair
MATCH (c:FormVersion {tenant: $tenant, id: pair.child})-[e:DERIVED_FROM]->(p:FormVersion {tenant: $tenant})
WHERE p.id = pair.parent
RETURN c.id AS child, p.id AS parent, e.summary AS summary
"""

# The system's release with this name, with its pins and parents.
RELEASE_BY_NAME = (
    """
MATCH (r:SysVersion {tenant: $tenant, system_key: $system_key, version: $version})
"""
    + _RETURN_RELEASE
)

# One release of the tenant, with its pins and parents.
RELEASE_BY_ID = (
    """
MATCH (r:SysVersion {tenant: $tenant, id: $id})
"""
    + _RETURN_RELEASE
)

# Releases by id within a tenant: what a new release may derive from.
RELEASES_BY_IDS = (
    """
UNWIND $ids AS id
MATCH (r:SysVersion {tenant: $tenant, id: id})
"""
    + _RETURN_RELEASE
)

# The system's most recent release, if any.
LATEST_RELEASE = (
    """
MATCH (s:System {tenant: $tenant, key: $system_key})
MATCH (r:SysVersion {tenant: $tenant, id: s.latest_id})
"""
    + _RETURN_RELEASE
)

# A new release of a locked system with its pins and its lineage edges (each with the release diff).
CREATE_RELEASE = (
    """
MATCH (s:System {tenant: $tenant, key: $system_key})
CREATE (r:SysVersion {
  id: $id, tenant: $tenant, system_key: $system_key, version: $version,
  number: s.release_count + 1, created_at: datetime()
})-[:RELEASE_OF]->(s)
SET s.release_count = s.release_count + 1, s.latest_id = $id
WITH r
CALL (r) {
  UNWIND $pins AS pin
  MATCH (v:FormVersion {tenant: $tenant, id: pin.version_id})
  WHERE v.form_key = pin.form_key
  CREATE (r)-[:INCLUDES {form_key: pin.form_key}]->(v)
  SET v:ContextPending, v.context_rev = coalesce(v.context_rev, 0) + 1
}
CALL (r) {
  UNWIND $parents AS parent
  MATCH (p:SysVersion {tenant: $tenant, id: parent.id})
  CREATE (r)-[:DERIVED_FROM {summary: parent.summary, diff: parent.diff}]->(p)
}
"""
    + _RETURN_RELEASE
)

# One system of the tenant.
SYSTEM_BY_KEY = """
MATCH (s:System {tenant: $tenant, key: $system_key})
RETURN s.key AS key, s.release_count AS release_count, s.latest_id AS latest_id, s.created_at AS created_at
"""

# A page of the tenant's systems, by key.
LIST_SYSTEMS = """
MATCH (s:System {tenant: $tenant})
WHERE s.key > $after
RETURN s.key AS key, s.release_count AS release_count, s.latest_id AS latest_id, s.created_at AS created_at
ORDER BY s.key LIMIT $limit
"""

# A page of a system's releases, in the order they were created.
LIST_RELEASES = """
MATCH (r:SysVersion {tenant: $tenant, system_key: $system_key})
WHERE r.number > $after
RETURN r.id AS id, r.system_key AS system_key, r.version AS version, r.number AS number,
       r.created_at AS created_at, [(r)-[:DERIVED_FROM]->(p:SysVersion) | p.id] AS parents,
       COUNT { (r)-[:INCLUDES]->() } AS pin_count
ORDER BY r.number LIMIT $limit
"""

# --- Bulk ingest: batched reads and writes of form versions ------------------------------------

# The versions among (form_key, content_hash) pairs that already exist: content already present.
VERSIONS_BY_CONTENTS = """
UNWIND $pairs AS pair
MATCH (v:FormVersion {tenant: $tenant, form_key: pair.form_key, content_hash: pair.content_hash})
RETURN v {.id, .tenant, .form_key, .number, .content_hash, .created_at, .label, .metadata, .source_format,
          .title, parents: [(v)-[e:DERIVED_FROM]->(p) | {id: p.id, summary: e.summary}]} AS version
"""

# The latest version (highest number) of each of several forms, with its definition for diffing (read from
# the index's end, as LATEST_VERSION).
LATEST_VERSIONS = """
UNWIND $form_keys AS form_key
CALL (form_key) {
  MATCH (v:FormVersion {tenant: $tenant, form_key: form_key})
  WHERE v.number IS NOT NULL
  WITH v ORDER BY v.tenant DESC, v.form_key DESC, v.number DESC LIMIT 1
  RETURN v
}
RETURN v.id AS id, v.form_key AS form_key, v.number AS number, v.content_hash AS content_hash,
       v.definition AS definition
"""

# New versions in one statement, each written as CREATE_VERSION writes it (its form locked, its lineage
# edges and outbox labels) unless its form already holds that content. Each row runs in its own
# subquery, which sees the rows before it: several versions of one form get consecutive numbers, and a
# version may derive from one created earlier in the same statement.
CREATE_VERSIONS = """
UNWIND $versions AS new
CALL (new) {
  MERGE (f:Form {tenant: $tenant, key: new.form_key})
    ON CREATE SET f.created_at = datetime(), f.next_number = 1, f.version_count = 0
  SET f.locked_at = datetime()
  WITH f, new
  OPTIONAL MATCH (existing:FormVersion {
    tenant: $tenant, form_key: new.form_key, content_hash: new.content_hash
  })
  CALL (f, new, existing) {
    WITH f, new, existing
    WHERE existing IS NULL
    CREATE (v:FormVersion:IndexPending:ContextPending {
      id: new.id, tenant: $tenant, form_key: new.form_key, number: f.next_number,
      content_hash: new.content_hash, created_at: datetime(), label: new.label, metadata: new.metadata,
      definition: new.definition, source_format: new.source_format, title: new.title,
      layout_text: new.layout_text, field_count: new.field_count, layout_nodes: new.layout_nodes,
      layout_keys: new.layout_keys, layout_hash: new.layout_hash
    })-[:VERSION_OF]->(f)
    SET f.next_number = f.next_number + 1, f.version_count = f.version_count + 1, f.title = new.title,
        f.latest_id = new.id
    SET f.search = left(toLower(f.key) + '\n' + toLower(coalesce(f.title, '')), 8000)
    WITH v, new
    CALL (v, new) {
      UNWIND new.parents AS parent
      MATCH (p:FormVersion {tenant: $tenant, id: parent.id})
      CREATE (v)-[:DERIVED_FROM {summary: parent.summary, changes: parent.changes}]->(p)
      SET p:ContextPending, p.context_rev = coalesce(p.context_rev, 0) + 1
    }
    RETURN v, true AS created
    UNION
    WITH existing
    WHERE existing IS NOT NULL
    RETURN existing AS v, false AS created
  }
  RETURN v, created
}
RETURN new.id AS request_id, created,
       v {.id, .tenant, .form_key, .number, .content_hash, .created_at, .label, .metadata, .source_format,
          .title, parents: [(v)-[e:DERIVED_FROM]->(p) | {id: p.id, summary: e.summary}]} AS version
"""

# A version and all its ancestors along DERIVED_FROM, nearest first (depth 0 is the version itself).
VERSION_ANCESTRY = """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
MATCH path = (v)-[:DERIVED_FROM*0..]->(a:FormVersion)
WITH a, min(length(path)) AS depth
RETURN a.id AS id, a.form_key AS form_key, a.number AS number, a.content_hash AS content_hash, depth
ORDER BY depth, a.number
"""

# What a tenant holds in the graph: forms, versions, lineage edges, open outbox entries.
TENANT_GRAPH_COUNTS = """
CALL () { MATCH (f:Form {tenant: $tenant}) RETURN count(f) AS forms }
CALL () { MATCH (v:FormVersion {tenant: $tenant}) RETURN count(v) AS versions }
CALL () {
  MATCH (:FormVersion {tenant: $tenant})-[e:DERIVED_FROM]->(:FormVersion) RETURN count(e) AS edges
}
CALL () { MATCH (v:IndexPending {tenant: $tenant}) RETURN count(v) AS pending }
RETURN forms, versions, edges, pending
"""

# --- Renders (LayoutRenderer) -------------------------------------------------------------------

# What a render of one version of the tenant needs: its definition and content hash.
RENDER_SOURCE = """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
RETURN v {.id, .form_key, .content_hash, .field_count, .definition} AS version
"""

# The version a release of the tenant pins for a form (null when it pins none), if the release exists.
RELEASE_PINNED_RENDER_SOURCE = """
MATCH (r:SysVersion {tenant: $tenant, id: $release_id})
OPTIONAL MATCH (r)-[:INCLUDES {form_key: $form_key}]->(v:FormVersion {tenant: $tenant})
RETURN r.id AS release_id, v {.id, .form_key, .content_hash, .field_count, .definition} AS version
"""

# --- Similar layouts: scopes and hit context resolved in the graph ------------------------------

# A version with the ids of its ancestors and descendants (when $lineage), to scope a vector query.
SIMILARITY_SOURCE = """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
RETURN v.id AS id, v.form_key AS form_key,
  CASE WHEN $lineage THEN [(v)-[:DERIVED_FROM*1..]->(a:FormVersion) | a.id] ELSE [] END AS ancestors,
  CASE WHEN $lineage THEN [(d:FormVersion)-[:DERIVED_FROM*1..]->(v) | d.id] ELSE [] END AS descendants
"""

# The form versions pinned by any release of the system.
SYSTEM_PINNED_VERSIONS = """
MATCH (:System {tenant: $tenant, key: $system_key})<-[:RELEASE_OF]-(:SysVersion)-[:INCLUDES]->(v:FormVersion)
RETURN collect(DISTINCT v.id) AS ids
"""

# No row when the tenant has no such release (the grouping key keeps collect() from making one).
RELEASE_PINNED_VERSIONS = """
MATCH (r:SysVersion {tenant: $tenant, id: $release_id})
OPTIONAL MATCH (r)-[:INCLUDES]->(v:FormVersion)
RETURN r.id AS release, collect(v.id) AS ids
"""

# A version's layout prints (its definition when it was stored without them), and up to $bound + 1 of the
# tenant's other versions created before it and as many created not before it, read in (tenant,
# created_at) order from that index: a side that comes back with more than $bound is too long to name in a
# vector filter (SimilarityService.suggested_parents).
VERSIONS_AROUND = """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
CALL (v) {
  OPTIONAL MATCH (c:FormVersion)
  WHERE c.tenant = $tenant AND c.created_at < v.created_at
  WITH c ORDER BY c.tenant DESC, c.created_at DESC LIMIT $bound + 1
  RETURN collect(c.id) AS before
}
CALL (v) {
  OPTIONAL MATCH (c:FormVersion)
  WHERE c.tenant = $tenant AND c.created_at >= v.created_at AND c.id <> v.id
  WITH c ORDER BY c.tenant, c.created_at LIMIT $bound + 1
  RETURN collect(c.id) AS not_before
}
RETURN v.layout_nodes AS layout_nodes, v.layout_keys AS layout_keys, v.layout_hash AS layout_hash,
       CASE WHEN v.layout_hash IS NULL THEN v.definition END AS definition, before, not_before
"""

# Which of these versions of the tenant were created before version $id.
VERSIONS_CREATED_BEFORE = """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
UNWIND $ids AS candidate
MATCH (c:FormVersion {tenant: $tenant, id: candidate})
WHERE c.created_at < v.created_at
RETURN collect(c.id) AS ids
"""

# What a hit shows about its lineage: is it the latest (no descendants), how many releases pin it; with
# $with_prints its layout prints, or its definition when it was stored without them.
# created_at in epoch milliseconds: the driver decodes a temporal value several times slower.
HIT_CONTEXT = """
UNWIND $ids AS id
MATCH (v:FormVersion {tenant: $tenant, id: id})
RETURN v.id AS id, v.form_key AS form_key, v.number AS number, v.created_at.epochMillis AS created_at,
  NOT EXISTS { (:FormVersion)-[:DERIVED_FROM]->(v) } AS is_latest,
  COUNT { (:SysVersion)-[:INCLUDES]->(v) } AS pin_count,
  CASE WHEN $with_prints THEN v.layout_nodes END AS layout_nodes,
  CASE WHEN $with_prints THEN v.layout_keys END AS layout_keys,
  CASE WHEN $with_prints THEN v.layout_hash END AS layout_hash,
  CASE WHEN $with_prints AND v.layout_hash IS NULL THEN v.definition END AS definition
"""

# --- Lineage (LineageRepository) ---------------------------------------------------------------

# The deepest lineage one request may walk; also the only value ever formatted into a statement.
LINEAGE_MAX_DEPTH = 1000

# Each node `a` of a lineage, `distance` steps up or down, with its DERIVED_FROM edges to its parents,
# as positional lists with created_at in epoch milliseconds: for a 1000-node lineage, decoding maps and
# temporal values costs several times the traversal itself.
_LINEAGE_NODES = """
WITH a, min(distance) AS distance, relation ORDER BY distance, a.number
RETURN collect([a.id, a.form_key, a.number, a.content_hash, a.created_at.epochMillis, a.label, distance,
  relation, [(a)-[e:DERIVED_FROM]->(p:FormVersion) | [p.id, e.summary]],
  COUNT { (a)<-[:DERIVED_FROM]-(:FormVersion) }, COUNT { (:SysVersion)-[:INCLUDES]->(a) }]) AS nodes
"""

# A version and its ancestors up to __DEPTH__ steps away; with min(length(path)) the planner walks
# breadth-first and visits each node once (no path enumeration, so merges do not multiply the work).
_LINEAGE_UP = (
    """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
CALL (v) {
  MATCH path = (v)-[:DERIVED_FROM*0..__DEPTH__]->(a:FormVersion {tenant: $tenant})
  RETURN a, min(length(path)) AS distance, 'ancestor' AS relation
}
"""
    + _LINEAGE_NODES
)

# A version and its descendants up to __DEPTH__ steps away.
_LINEAGE_DOWN = (
    """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
CALL (v) {
  MATCH path = (v)<-[:DERIVED_FROM*0..__DEPTH__]-(a:FormVersion {tenant: $tenant})
  RETURN a, min(length(path)) AS distance, 'descendant' AS relation
}
"""
    + _LINEAGE_NODES
)

# A version, its ancestors and its descendants up to __DEPTH__ steps away.
_LINEAGE_BOTH = (
    """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
CALL (v) {
  MATCH path = (v)-[:DERIVED_FROM*0..__DEPTH__]->(a:FormVersion {tenant: $tenant})
  RETURN a, min(length(path)) AS distance, 'ancestor' AS relation
  UNION ALL
  MATCH path = (v)<-[:DERIVED_FROM*1..__DEPTH__]-(a:FormVersion {tenant: $tenant})
  RETURN a, min(length(path)) AS distance, 'descendant' AS relation
}
"""
    + _LINEAGE_NODES
)

# The lineage templates by direction; graph.lineage.lineage_statement fills in a validated depth.
LINEAGE_TEMPLATES = {"up": _LINEAGE_UP, "down": _LINEAGE_DOWN, "both": _LINEAGE_BOTH}


# The ancestors (self included) of two versions, each with its parents' ids: their merge base.
MERGE_BASE_ANCESTRIES = """
MATCH (a:FormVersion {tenant: $tenant, id: $id})
MATCH (b:FormVersion {tenant: $tenant, id: $other})
RETURN
  COLLECT { MATCH (a)-[:DERIVED_FROM*0..]->(x:FormVersion) WITH DISTINCT x
            RETURN x {.id, .form_key, .number, parents: [(x)-[:DERIVED_FROM]->(p) | p.id]} } AS left,
  COLLECT { MATCH (b)-[:DERIVED_FROM*0..]->(x:FormVersion) WITH DISTINCT x
            RETURN x {.id, .form_key, .number, parents: [(x)-[:DERIVED_FROM]->(p) | p.id]} } AS right
"""

# A version of the form (its latest when $version_id is null) and its ancestors, each with the stored
# changes from each parent; roots carry their definition (what they introduced).
FIELD_LINEAGE = """
MATCH (f:Form {tenant: $tenant, key: $form_key})
MATCH (start:FormVersion {tenant: $tenant, form_key: $form_key, id: coalesce($version_id, f.latest_id)})
RETURN start.id AS id, COLLECT {
  MATCH (start)-[:DERIVED_FROM*0..]->(x:FormVersion) WITH DISTINCT x
  WITH x, [(x)-[e:DERIVED_FROM]->(p:FormVersion) | {id: p.id, changes: e.changes}] AS parents
  RETURN x {.id, .number, .created_at, parents: parents,
            definition: CASE WHEN size(parents) = 0 THEN x.definition END}
} AS versions
"""

# The projection of a release `r` pinning version `pv`, as used-by lists it.
_USED_BY_RELEASE = """
  RETURN r {.id, .system_key, .version, .number, .created_at, version_id: pv.id, version_number: pv.number}
  ORDER BY r.system_key, r.number LIMIT $limit
"""

# A page of the releases pinning the version, by (system key, release number) after the cursor. Both walk
# from the version (or its form's versions) to the releases pinning them: a match that starts from the
# releases reads every release in the graph (bench_graph_scale).
USED_BY_VERSION = (
    """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
RETURN v.id AS id, COLLECT {
  MATCH (v)<-[:INCLUDES]-(r:SysVersion)
  WITH v AS pv, r
  WHERE r.tenant = $tenant
    AND (r.system_key > $after_system OR (r.system_key = $after_system AND r.number > $after_number))
"""
    + _USED_BY_RELEASE
    + "} AS releases"
)

# A page of the releases pinning any version of the version's form, after the cursor.
USED_BY_FORM = (
    """
MATCH (v:FormVersion {tenant: $tenant, id: $id})-[:VERSION_OF]->(f:Form)
RETURN v.id AS id, COLLECT {
  MATCH (f)<-[:VERSION_OF]-(pv:FormVersion)<-[:INCLUDES]-(r:SysVersion)
  WHERE r.tenant = $tenant
    AND (r.system_key > $after_system OR (r.system_key = $after_system AND r.number > $after_number))
"""
    + _USED_BY_RELEASE
    + "} AS releases"
)

# A page of the version and its descendants by (distance, number), each with the releases pinning it.
IMPACT = """
MATCH (v:FormVersion {tenant: $tenant, id: $id})
RETURN v.id AS id, COLLECT {
  MATCH path = (v)<-[:DERIVED_FROM*0..]-(d:FormVersion {tenant: $tenant})
  WITH d, min(length(path)) AS distance
  WHERE distance > $after_distance OR (distance = $after_distance AND d.number > $after_number)
  WITH d, distance ORDER BY distance, d.number LIMIT $limit
  RETURN d {.id, .form_key, .number, .content_hash, .created_at, distance: distance,
            releases: COLLECT { MATCH (r:SysVersion {tenant: $tenant})-[:INCLUDES]->(d)
                                RETURN r {.id, .system_key, .version, .number}
                                ORDER BY r.system_key, r.number }}
} AS items
"""

# A release and a page of its pins by form key, each with the newer versions on its lineage.
DRIFT = """
MATCH (r:SysVersion {tenant: $tenant, id: $id})
RETURN r.id AS id, r.system_key AS system_key, r.version AS version, COLLECT {
  MATCH (r)-[i:INCLUDES]->(v:FormVersion {tenant: $tenant})
  WHERE i.form_key > $after
  WITH i, v ORDER BY i.form_key LIMIT $limit
  CALL (v) {
    MATCH path = (v)<-[:DERIVED_FROM*1..]-(d:FormVersion {tenant: $tenant})
    WITH d, min(length(path)) AS distance
    RETURN collect(d {.id, .number, .created_at, distance: distance,
                      parents: [(d)-[e:DERIVED_FROM]->(p:FormVersion) | {id: p.id, summary: e.summary}]})
           AS newer
  }
  RETURN {form_key: i.form_key, version_id: v.id, number: v.number, newer: newer}
} AS pins
"""

# New versions of one form as a chain in one statement, each derived from the one before it (seeds long
# lineages); numbers continue the form's, the chain's first version gets no parent edge.
CREATE_VERSION_CHAIN = """
MERGE (f:Form {tenant: $tenant, key: $form_key})
  ON CREATE SET f.created_at = datetime(), f.next_number = 1, f.version_count = 0
WITH f
UNWIND range(0, size($versions) - 1) AS i
WITH f, i, $versions[i] AS new
CREATE (v:FormVersion:IndexPending {
  id: new.id, tenant: $tenant, form_key: $form_key, number: f.next_number + i,
  content_hash: new.content_hash, created_at: datetime(), label: new.label, metadata: new.metadata,
  definition: new.definition, source_format: new.source_format, title: new.title,
  layout_text: new.layout_text, field_count: new.field_count, layout_nodes: new.layout_nodes,
  layout_keys: new.layout_keys, layout_hash: new.layout_hash
})-[:VERSION_OF]->(f)
WITH f, collect(v) AS chain
SET f.next_number = f.next_number + size(chain), f.version_count = f.version_count + size(chain),
    f.latest_id = chain[-1].id, f.title = chain[-1].title
SET f.search = left(toLower(f.key) + '\n' + toLower(coalesce(f.title, '')), 8000)
WITH chain
UNWIND range(1, size(chain) - 1) AS i
WITH chain[i] AS child, chain[i - 1] AS parent, $versions[i] AS new
CREATE (child)-[:DERIVED_FROM {summary: new.summary, changes: new.changes}]->(parent)
RETURN count(*) AS edges
"""

# --- Events and webhook deliveries (graph.events) ----------------------------------------------------

# Migration 3: events by id, a tenant's events in order, endpoints by id, deliveries by id.
EVENT_SCHEMA = (
    "CREATE CONSTRAINT event_id IF NOT EXISTS FOR (e:Event) REQUIRE e.id IS UNIQUE",
    "CREATE CONSTRAINT event_seq IF NOT EXISTS FOR (e:Event) REQUIRE (e.tenant, e.seq) IS UNIQUE",
    "CREATE CONSTRAINT webhook_endpoint_id IF NOT EXISTS FOR (w:WebhookEndpoint) REQUIRE w.id IS UNIQUE",
    "CREATE CONSTRAINT delivery_id IF NOT EXISTS FOR (d:Delivery) REQUIRE d.id IS UNIQUE",
)

# Migration 4: stream tokens by hash, jobs by id and by state (the runners look for waiting ones).
JOB_SCHEMA = (
    "CREATE CONSTRAINT stream_token_hash IF NOT EXISTS FOR (s:StreamToken) REQUIRE s.hash IS UNIQUE",
    "CREATE CONSTRAINT job_id IF NOT EXISTS FOR (j:Job) REQUIRE j.id IS UNIQUE",
    "CREATE INDEX job_state IF NOT EXISTS FOR (j:Job) ON (j.state)",
    "CREATE INDEX job_input IF NOT EXISTS FOR (i:JobInput) ON (i.job)",
    "CREATE INDEX job_output IF NOT EXISTS FOR (o:JobOutput) ON (o.job)",
)

# Migration 5: what keeps reads off whole-label scans as the graph grows: an endpoint's deliveries, an
# event's deliveries, events by age (pruning), a tenant's versions by age (parent suggestion).
# tests/integration/test_query_plans.py checks every statement's plan.
GROWTH_SCHEMA = (
    "CREATE INDEX delivery_endpoint IF NOT EXISTS FOR (d:Delivery) ON (d.endpoint_id)",
    "CREATE INDEX delivery_event IF NOT EXISTS FOR (d:Delivery) ON (d.event_id)",
    "CREATE INDEX event_created IF NOT EXISTS FOR (e:Event) ON (e.created_at)",
    "CREATE INDEX form_version_created IF NOT EXISTS FOR (v:FormVersion) ON (v.tenant, v.created_at)",
)

# Migration 6: forms found by a substring of their key or title through a trigram text index on their
# search text (SEARCH_FORMS), which forms stored before it get a batch at a time.
SEARCH_SCHEMA = ("CREATE TEXT INDEX form_search IF NOT EXISTS FOR (f:Form) ON (f.search)",)
# SEARCH_FORMS names the index in a hint, which a query may not do before the index is online.
AWAIT_SEARCH_INDEX = "CALL db.awaitIndex('form_search', $timeout_s)"

SET_MISSING_FORM_SEARCH = """
MATCH (f:Form) WHERE f.search IS NULL
WITH f LIMIT $limit
SET f.search = left(toLower(f.key) + '\n' + toLower(coalesce(f.title, '')), 8000)
RETURN count(f) AS count
"""

COUNT_FORMS_WITHOUT_SEARCH = """
MATCH (f:Form) WHERE f.search IS NULL RETURN count(f) AS count
"""

# A short-lived token that opens the tenant's event stream; the tenant's expired ones go.
ADD_STREAM_TOKEN = """
MATCH (t:Tenant {id: $tenant})
OPTIONAL MATCH (old:StreamToken)-[:OPENS_STREAM_OF]->(t) WHERE old.expires_at < datetime()
DETACH DELETE old
WITH DISTINCT t
CREATE (:StreamToken {hash: $hash, scopes: $scopes, expires_at: datetime({epochMillis: $expires_ms})})
       -[:OPENS_STREAM_OF]->(t)
RETURN t.id AS id
"""

TENANT_FOR_STREAM_TOKEN = """
MATCH (s:StreamToken {hash: $hash})-[:OPENS_STREAM_OF]->(t:Tenant)
RETURN t.id AS id, t.name AS name, s.scopes AS scopes, s.expires_at.epochMillis AS expires_ms
"""

# The next `count` numbers of the tenant's event sequence (the tenant's node is locked until the commit:
# events are numbered in commit order).
NEXT_EVENT_SEQS = """
MATCH (t:Tenant {id: $tenant})
SET t.event_seq = coalesce(t.event_seq, 0) + $count
RETURN t.event_seq AS last
"""

# Events, each with a delivery for every enabled endpoint of the tenant that takes its type (written in the
# transaction of the change they announce: none for a change that rolled back, none lost after a commit).
RECORD_EVENTS = """
UNWIND $events AS event
CREATE (e:Event {id: event.id, tenant: $tenant, seq: event.seq, type: event.type, subject: event.subject,
                 created_at: datetime(), payload: event.payload})
WITH e
CALL (e) {
  MATCH (w:WebhookEndpoint {tenant: $tenant, enabled: true})
  WHERE e.type IN w.event_types
  CREATE (:Delivery:DeliveryPending {id: e.id + '/' + w.id, event_id: e.id, endpoint_id: w.id,
                                     tenant: $tenant, seq: e.seq, attempts: 0, next_at: timestamp(),
                                     status: 'pending'})
}
"""

CREATE_WEBHOOK = """
CREATE (w:WebhookEndpoint {id: $id, tenant: $tenant, url: $url, event_types: $event_types, secret: $secret,
                           enabled: true, disabled_reason: null, created_at: datetime()})
RETURN w {.id, .url, .event_types, .enabled, .disabled_reason, created_ms: w.created_at.epochMillis}
       AS endpoint
"""

LIST_WEBHOOKS = """
MATCH (w:WebhookEndpoint {tenant: $tenant})
OPTIONAL MATCH (d:DeliveryPending {endpoint_id: w.id})
WITH w, count(d) AS pending ORDER BY w.created_at
RETURN w {.id, .url, .event_types, .enabled, .disabled_reason, created_ms: w.created_at.epochMillis,
          pending: pending} AS endpoint
"""

DELETE_WEBHOOK = """
MATCH (w:WebhookEndpoint {tenant: $tenant, id: $id})
OPTIONAL MATCH (d:Delivery {endpoint_id: w.id})
DETACH DELETE w, d
RETURN count(*) AS deleted
"""

# The deliveries of one endpoint, newest first (its delivery log).
WEBHOOK_DELIVERIES = """
MATCH (w:WebhookEndpoint {tenant: $tenant, id: $id})
MATCH (d:Delivery {endpoint_id: w.id})
MATCH (e:Event {id: d.event_id})
RETURN d {.event_id, .status, .attempts, .next_at, .last_status, .last_error, .last_latency_ms,
          type: e.type, seq: e.seq} AS delivery
ORDER BY e.seq DESC LIMIT $limit
"""

# For each enabled endpoint, its oldest pending delivery, when it is due: an endpoint gets its events one
# at a time, in the order they were committed.
DUE_DELIVERIES = """
MATCH (d:DeliveryPending)
WITH d.endpoint_id AS endpoint_id, min(d.seq) AS head
MATCH (d:DeliveryPending {endpoint_id: endpoint_id, seq: head})
WHERE d.next_at <= $now
MATCH (w:WebhookEndpoint {id: endpoint_id, enabled: true})
MATCH (e:Event {id: d.event_id})
MATCH (t:Tenant {id: e.tenant})
RETURN d.id AS id, d.attempts AS attempts, w.id AS endpoint_id, w.url AS url, w.secret AS secret,
       CASE WHEN w.previous_until > $now THEN w.previous_secret END AS previous_secret,
       e.id AS event_id, e.type AS type, e.created_at.epochMillis AS created_ms, e.payload AS payload,
       t.name AS tenant
LIMIT $limit
"""

# The earliest time a pending delivery of an enabled endpoint falls due (null: none pending).
NEXT_DUE = """
MATCH (d:DeliveryPending)
MATCH (w:WebhookEndpoint {id: d.endpoint_id, enabled: true})
RETURN min(d.next_at) AS next_at
"""

DELIVERY_ATTEMPTED = """
MATCH (d:Delivery {id: $id})
SET d.attempts = d.attempts + 1, d.last_status = $last_status, d.last_error = $last_error,
    d.last_latency_ms = $latency_ms, d.next_at = $next_at, d.status = $outcome
FOREACH (_ IN CASE WHEN $outcome = 'pending' THEN [] ELSE [1] END | REMOVE d:DeliveryPending)
"""

# A new secret; the old one still signs deliveries (beside the new) until previous_until (epoch ms).
ROTATE_WEBHOOK_SECRET = """
MATCH (w:WebhookEndpoint {tenant: $tenant, id: $id})
SET w.previous_secret = w.secret, w.previous_until = $previous_until, w.secret = $secret
RETURN w.id AS id
"""

# Change an endpoint's URL, event types or state (null: unchanged); enabling clears why it was disabled.
UPDATE_WEBHOOK = """
MATCH (w:WebhookEndpoint {tenant: $tenant, id: $id})
SET w.url = coalesce($url, w.url), w.event_types = coalesce($event_types, w.event_types),
    w.enabled = coalesce($enabled, w.enabled),
    w.disabled_reason = CASE WHEN $enabled = true THEN null
                             WHEN $enabled = false THEN 'disabled by the tenant' ELSE w.disabled_reason END
WITH w
OPTIONAL MATCH (d:DeliveryPending {endpoint_id: w.id})
WITH w, count(d) AS pending
RETURN w {.id, .url, .event_types, .enabled, .disabled_reason, created_ms: w.created_at.epochMillis,
          pending: pending} AS endpoint
"""

# Deliver one event to the endpoint again (whatever became of it), as soon as its turn comes.
REDELIVER = """
MATCH (w:WebhookEndpoint {tenant: $tenant, id: $endpoint_id})
MATCH (d:Delivery {endpoint_id: w.id, event_id: $event_id})
SET d:DeliveryPending, d.status = 'pending', d.next_at = timestamp(), d.attempts = 0
RETURN d.id AS id
"""

DISABLE_WEBHOOK = """
MATCH (w:WebhookEndpoint {id: $id})
SET w.enabled = false, w.disabled_reason = $reason
"""

# The tenant's events after a sequence number, in order (the live stream).
EVENTS_AFTER = """
MATCH (e:Event {tenant: $tenant})
WHERE e.seq > $after
WITH e ORDER BY e.tenant, e.seq LIMIT $limit
RETURN e.id AS id, e.seq AS seq, e.type AS type, e.created_at.epochMillis AS created_ms, e.payload AS payload
"""

# The tenant's last event number, and the oldest one still kept.
EVENT_BOUNDS = """
MATCH (t:Tenant {id: $tenant})
CALL (t) {
  OPTIONAL MATCH (e:Event {tenant: $tenant})
  WHERE e.seq IS NOT NULL
  WITH e ORDER BY e.tenant, e.seq LIMIT 1
  RETURN e.seq AS oldest
}
RETURN coalesce(t.event_seq, 0) AS last, oldest
"""

# Events past the retention window, once no delivery of theirs is pending (their deliveries go with them).
PRUNE_EVENTS = """
MATCH (e:Event)
WHERE e.created_at < datetime() - duration({seconds: $retention_s})
  AND NOT EXISTS { MATCH (d:Delivery {event_id: e.id}) WHERE d:DeliveryPending }
WITH e LIMIT $limit
OPTIONAL MATCH (d:Delivery {event_id: e.id})
DETACH DELETE d, e
RETURN count(DISTINCT e) AS pruned
"""

# --- Jobs (graph.jobs) -------------------------------------------------------------------------------

CREATE_JOB = """
CREATE (j:Job {id: $id, tenant: $tenant, kind: $kind, state: 'queued', params: $params, done: 0, total: 0,
               created_at: datetime(), cancel_requested: false, attempts: 0})
CREATE (:JobInput {job: $id, data: $data})
RETURN j {.*, created_ms: j.created_at.epochMillis} AS job
"""

JOB_FIELDS = """
j {.id, .tenant, .kind, .state, .params, .done, .total, .result, .errors, .cancel_requested, .attempts,
   created_ms: j.created_at.epochMillis, started_ms: j.started_at.epochMillis,
   finished_ms: j.finished_at.epochMillis} AS job
"""

GET_JOB = (
    """
MATCH (j:Job {id: $id, tenant: $tenant})
RETURN """
    + JOB_FIELDS
)

LIST_JOBS = (
    """
MATCH (j:Job {tenant: $tenant})
WITH j ORDER BY j.created_at DESC LIMIT $limit
RETURN """
    + JOB_FIELDS
)

# The oldest job waiting (or whose runner's lease ran out: it died) of a tenant below its share of running
# jobs: a candidate, read without a lock.
NEXT_JOB = """
CALL () {
  MATCH (j:Job {state: 'queued'}) RETURN j
  UNION
  MATCH (j:Job {state: 'running'}) WHERE j.lease_until < timestamp() RETURN j
}
WITH j WHERE j.kind IN $kinds
WITH j ORDER BY j.created_at LIMIT 50
CALL (j) {
  OPTIONAL MATCH (other:Job {tenant: j.tenant, state: 'running'})
  WHERE other.lease_until >= timestamp() AND other.id <> j.id
  RETURN count(other) AS running
}
WITH j WHERE running < $per_tenant
RETURN j.id AS id LIMIT 1
"""

# The candidate's write lock (the SET), then its state as committed: another runner may have taken it.
LOCK_JOB = """
MATCH (j:Job {id: $id})
SET j.locked_at = timestamp()
RETURN j.state = 'queued' OR (j.state = 'running' AND j.lease_until < timestamp()) AS claimable
"""

# The locked candidate taken until the lease ends, with its input.
CLAIM_JOB = (
    """
MATCH (j:Job {id: $id})
SET j.state = 'running', j.lease_until = timestamp() + $lease_ms, j.attempts = j.attempts + 1,
    j.started_at = coalesce(j.started_at, datetime())
WITH j
MATCH (input:JobInput {job: j.id})
RETURN input.data AS data, """
    + JOB_FIELDS
)

# The job's progress, its lease renewed; whether it was asked to stop.
JOB_PROGRESS = """
MATCH (j:Job {id: $id, state: 'running'})
SET j.done = $done, j.total = $total, j.lease_until = timestamp() + $lease_ms
RETURN j.cancel_requested AS cancel_requested
"""

FINISH_JOB = """
MATCH (j:Job {id: $id})
SET j.state = $state, j.result = $result, j.errors = $errors, j.done = $done, j.total = $total,
    j.finished_at = datetime(), j.lease_until = null
WITH j
OPTIONAL MATCH (input:JobInput {job: j.id})
DELETE input
WITH DISTINCT j
FOREACH (output IN $outputs |
  CREATE (:JobOutput {job: j.id, data: output.data, media_type: output.media_type}))
RETURN j.tenant AS tenant
"""

# What a finished job made (a PDF), for its tenant.
JOB_OUTPUT = """
MATCH (j:Job {id: $id, tenant: $tenant})
OPTIONAL MATCH (output:JobOutput {job: j.id})
RETURN j.state AS state, output.data AS data, output.media_type AS media_type
"""

# Finished jobs older than the retention, with what they made (at most $limit at a time).
PRUNE_JOBS = """
MATCH (j:Job)
WHERE j.state IN ['succeeded', 'failed', 'cancelled']
  AND j.finished_at < datetime() - duration({milliseconds: $retention_ms})
WITH j LIMIT $limit
OPTIONAL MATCH (output:JobOutput {job: j.id})
DETACH DELETE output, j
RETURN count(DISTINCT j) AS pruned
"""

# A waiting job is cancelled at once; a running one is asked to stop (its runner cancels it). The SET takes
# the job's lock first, so `before` is its committed state (a runner may have just taken it).
CANCEL_JOB = (
    """
MATCH (j:Job {id: $id, tenant: $tenant})
SET j.locked_at = timestamp()
WITH j, j.state AS before
FOREACH (_ IN CASE WHEN before = 'queued' THEN [1] ELSE [] END |
  SET j.state = 'cancelled', j.finished_at = datetime())
FOREACH (_ IN CASE WHEN before = 'running' THEN [1] ELSE [] END | SET j.cancel_requested = true)
WITH j, before
OPTIONAL MATCH (input:JobInput {job: j.id}) WHERE before = 'queued'
DELETE input
RETURN DISTINCT before, """
    + JOB_FIELDS
)
