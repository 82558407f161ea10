"""Response bodies of the platform endpoints."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.scopes import Scope


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


class ApiKeyCreate(BaseModel):
    """A new API key of the caller's tenant."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Scope] = Field(min_length=1, description="What the key may do.")
    expires_in_s: int | None = Field(
        default=None, ge=60, le=10 * 365 * 86_400, description="Seconds until it stops working; none: never."
    )
    label: str | None = Field(default=None, min_length=1, max_length=200, description="What it is for.")


class ApiKeyRead(BaseModel):
    prefix: str = Field(description="Its first characters: how it is listed and revoked.")
    scopes: list[str]
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    expired: bool


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself, shown this once: PageForge keeps only its SHA-256.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyRead]
