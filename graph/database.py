"""The one Neo4j driver of a process, its schema, and translation of driver failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, LiteralString, TypeVar

from neo4j import READ_ACCESS, AsyncDriver, AsyncGraphDatabase, AsyncManagedTransaction, EagerResult
from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

from graph import queries
from graph.errors import GraphUnavailable

T = TypeVar("T")
# First pause before a read is retried; it doubles each time, within the transaction retry time.
READ_RETRY_DELAY_S = 0.1


@contextmanager
def neo4j_errors_translated() -> Iterator[None]:
    """Turn "cannot reach Neo4j" driver failures into GraphUnavailable. Its message goes to clients, so it
    names no address; the driver's own error stays its cause, for the log."""
    try:
        yield
    except (ServiceUnavailable, SessionExpired) as exc:
        raise GraphUnavailable("neo4j is unavailable: no connection could be made") from exc
    except TimeoutError as exc:
        raise GraphUnavailable("neo4j did not answer in time") from exc
    except DriverError as exc:
        raise GraphUnavailable(f"neo4j driver error ({type(exc).__name__})") from exc


class Graph:
    """Owns the async driver; every repository runs its statements through it."""

    def __init__(
        self,
        *,
        uri: str,
        auth: tuple[str, str] | None,
        database: str | None = None,
        connection_timeout_s: float = 5.0,
    ) -> None:
        self.uri = uri
        self.database = database
        # Retries of a statement Neo4j cannot take end within the timeout: a request waits about that long
        # for Neo4j before it is answered 503 (an attempt under way when time runs out still finishes).
        self._retry_time_s = connection_timeout_s
        self._driver: AsyncDriver = AsyncGraphDatabase.driver(
            uri,
            auth=auth,
            connection_timeout=connection_timeout_s,
            connection_acquisition_timeout=connection_timeout_s,
            max_transaction_retry_time=self._retry_time_s,
            notifications_min_severity="OFF",
        )

    async def run(self, query: LiteralString, **params: Any) -> EagerResult:
        """Run one statement in its own managed transaction (retried on transient errors)."""
        with neo4j_errors_translated():
            return await self._driver.execute_query(query, params, database_=self.database)

    async def fetch(self, query: LiteralString, **params: Any) -> EagerResult:
        """Run one read-only statement as an auto-commit read, retried on transient errors.

        One round trip (RUN and PULL go together) where a managed transaction takes two (its COMMIT is
        another); the driver retries only managed transactions, but a read is always safe to retry.
        """
        deadline = time.monotonic() + self._retry_time_s
        delay = READ_RETRY_DELAY_S
        with neo4j_errors_translated():
            while True:
                try:
                    async with self._driver.session(
                        database=self.database,
                        default_access_mode=READ_ACCESS,
                        bookmark_manager=self._driver.execute_query_bookmark_manager,
                    ) as session:
                        result = await session.run(query, params)
                        return await result.to_eager_result()
                except (DriverError, Neo4jError) as exc:
                    if not exc.is_retryable() or time.monotonic() + delay > deadline:
                        raise
                await asyncio.sleep(delay)
                delay *= 2

    async def write(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]]) -> T:
        """Run `work` in one write transaction, retried as a whole on transient errors."""
        with neo4j_errors_translated():
            async with self._driver.session(database=self.database) as session:
                return await session.execute_write(work)

    async def read(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]]) -> T:
        """Run `work` in one read transaction."""
        with neo4j_errors_translated():
            async with self._driver.session(database=self.database) as session:
                return await session.execute_read(work)

    async def ping(self) -> None:
        """Raise GraphUnavailable unless Neo4j answers a query."""
        await self.run(queries.PING)

    async def close(self) -> None:
        await self._driver.close()


__all__ = ["Graph", "GraphUnavailable", "Neo4jError", "neo4j_errors_translated"]


def from_epoch_millis(millis: int | None) -> datetime | None:
    """A time Cypher returned as epoch milliseconds (`.epochMillis`), in UTC; None stays None."""
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC)
