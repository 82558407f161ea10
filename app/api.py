"""Where the REST API lives: every operation's path starts with this."""

API_PREFIX = "/api/v1"
