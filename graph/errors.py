"""What can go wrong in the lineage graph, in domain terms."""


class GraphError(Exception):
    """Base of every graph-layer error."""


class GraphUnavailable(GraphError):
    """Neo4j cannot be reached or did not answer in time."""


class SchemaOutOfDate(GraphError):
    """The graph's recorded migrations are not the ones this PageForge needs."""


class LatestMoved(GraphError):
    """The form's latest version is no longer the one a write was prepared against."""

    def __init__(self, form_key: str, latest_id: str | None) -> None:
        super().__init__(f"the latest version of form {form_key!r} is now {latest_id}")
        self.form_key = form_key
        self.latest_id = latest_id


class ParentsNotFound(GraphError):
    """A new version names parents the graph does not hold; nothing of the write was kept."""

    def __init__(self, version_id: str, missing: list[str]) -> None:
        super().__init__(f"version {version_id} derives from versions not found: {', '.join(missing)}")
        self.version_id = version_id
        self.missing = missing


class TenantExists(GraphError):
    """A tenant with that name already exists."""


class TenantNotFound(GraphError):
    """No tenant with that name."""


class ApiKeyNotFound(GraphError):
    """No key (or more than one) of the tenant matches what was given."""
