"""Response bodies of the platform endpoints."""

from typing import Literal

from pydantic import BaseModel


class DependencyHealth(BaseModel):
    status: Literal["up", "down"]
    detail: str | None = None
    latency_ms: float | None = None


class HealthRead(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    dependencies: dict[str, DependencyHealth]


class TenantRead(BaseModel):
    id: str
    name: str
