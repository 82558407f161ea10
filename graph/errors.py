"""What can go wrong in the lineage graph, in domain terms."""


class GraphError(Exception):
    """Base of every graph-layer error."""


class GraphUnavailable(GraphError):
    """Neo4j cannot be reached or did not answer in time."""


class SchemaOutOfDate(GraphError):
    """The graph's recorded migrations are not the ones this PageForge needs."""


class TenantExists(GraphError):
    """A tenant with that name already exists."""


class TenantNotFound(GraphError):
    """No tenant with that name."""


class ApiKeyNotFound(GraphError):
    """No key (or more than one) of the tenant matches what was given."""
