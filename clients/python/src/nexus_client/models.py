"""Typed views of the API's JSON: one frozen dataclass per resource, built from a response body.

Each keeps the whole body in `raw`, so a field a newer server adds is reachable before the client knows it;
fields the API documents as always present raise `UnexpectedResponseError` naming them when missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from nexus_client.errors import UnexpectedResponseError

T = TypeVar("T")

#: Statuses after which an execution never changes again.
TERMINAL_STATUSES = frozenset({"completed", "completed_with_recovery", "failed", "cancelled", "timed_out"})


def _require(data: dict[str, Any], name: str, kind: str) -> Any:
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"{kind}: expected a JSON object, got {type(data).__name__}", code="unexpected_response")
    if name not in data:
        raise UnexpectedResponseError(f"{kind}: the response has no {name!r} field", code="unexpected_response")
    return data[name]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"  # fromisoformat reads "Z" only from Python 3.11
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list endpoint: `count` is the total the server reports, `results` this page's items."""

    count: int
    results: list[T]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[T]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> T:
        return self.results[index]

    @classmethod
    def from_api(cls, data: dict[str, Any], item: Callable[[dict[str, Any]], T], *, key: str = "results") -> Page[T]:
        items = _require(data, key, "list")
        if not isinstance(items, list):
            raise UnexpectedResponseError(f"list: {key!r} is not a list", code="unexpected_response")
        count = data.get("count", len(items))
        return cls(count=int(count), results=[item(entry) for entry in items], raw=data)


@dataclass(frozen=True)
class Health:
    healthy: bool
    status: str  # healthy | degraded | down
    checks: dict[str, Any]
    node: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Health:
        return cls(
            healthy=bool(_require(data, "healthy", "Health")),
            status=_require(data, "status", "Health"),
            checks=data.get("checks") or {},
            node=data.get("node") or {},
            raw=data,
        )


@dataclass(frozen=True)
class Deployment:
    environment: str
    version: int
    version_id: str
    deployed_by: str
    deployed_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            environment=_require(data, "environment", "Deployment"),
            version=_require(data, "version", "Deployment"),
            version_id=_require(data, "version_id", "Deployment"),
            deployed_by=data.get("deployed_by", ""),
            deployed_at=_time(data.get("deployed_at")),
            raw=data,
        )


@dataclass(frozen=True)
class DeployResult:
    """What `workflows.deploy` answers: the deployment, and `status` = "deployed"."""

    status: str
    workflow_id: str
    environment: str
    version: int
    version_id: str
    deployed_by: str
    deployed_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> DeployResult:
        deployment = Deployment.from_api(data)
        return cls(
            status=_require(data, "status", "DeployResult"),
            workflow_id=_require(data, "workflow_id", "DeployResult"),
            environment=deployment.environment,
            version=deployment.version,
            version_id=deployment.version_id,
            deployed_by=deployment.deployed_by,
            deployed_at=deployment.deployed_at,
            raw=data,
        )


@dataclass(frozen=True)
class Workflow:
    id: str
    slug: str
    name: str
    description: str
    version: int | None
    version_id: str | None
    input_schema: dict[str, Any] | None
    created_by: str
    created_at: datetime | None
    updated_at: datetime | None
    deployments: list[Deployment]
    #: The latest version's definition; only `get`, `create` and `update` return it.
    definition: dict[str, Any] | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Workflow:
        return cls(
            id=_require(data, "id", "Workflow"),
            slug=_require(data, "slug", "Workflow"),
            name=data.get("name", ""),
            description=data.get("description", ""),
            version=data.get("version"),
            version_id=data.get("version_id"),
            input_schema=data.get("input_schema"),
            created_by=data.get("created_by", ""),
            created_at=_time(data.get("created_at")),
            updated_at=_time(data.get("updated_at")),
            deployments=[Deployment.from_api(d) for d in data.get("deployments") or []],
            definition=data.get("definition"),
            raw=data,
        )


@dataclass(frozen=True)
class ExecutionResult:
    """What `workflows.execute` answers: the run's id and status, and its outputs once it finished.

    `finished` is False when the server answered 202 (`wait=False`, or the wait budget ran out): poll
    `executions.get(execution_id)` or call `executions.wait(execution_id)`.
    """

    execution_id: str
    status: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    workflow: str | None
    version: int | None
    duration_ms: float | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in ("completed", "completed_with_recovery")

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ExecutionResult:
        return cls(
            execution_id=_require(data, "execution_id", "ExecutionResult"),
            status=_require(data, "status", "ExecutionResult"),
            result=data.get("result"),
            error=data.get("error"),
            workflow=data.get("workflow"),
            version=data.get("version"),
            duration_ms=data.get("duration_ms"),
            raw=data,
        )


@dataclass(frozen=True)
class Execution:
    id: str
    workflow_id: str | None
    workflow: str | None
    version_id: str | None
    version: int | None
    environment: str | None
    status: str
    channel: str
    actor: str
    session: str | None
    parent: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    recovery: Any
    inline: bool
    attempt: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    #: Per-node steps; only `executions.get` returns them (None in lists).
    steps: list[dict[str, Any]] | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Execution:
        return cls(
            id=_require(data, "id", "Execution"),
            workflow_id=data.get("workflow_id"),
            workflow=data.get("workflow"),
            version_id=data.get("version_id"),
            version=data.get("version"),
            environment=data.get("environment"),
            status=_require(data, "status", "Execution"),
            channel=data.get("channel", ""),
            actor=data.get("actor", ""),
            session=data.get("session"),
            parent=data.get("parent"),
            inputs=data.get("inputs") or {},
            outputs=data.get("outputs"),
            error=data.get("error"),
            recovery=data.get("recovery"),
            inline=bool(data.get("inline", False)),
            attempt=int(data.get("attempt") or 0),
            created_at=_time(data.get("created_at")),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            duration_ms=data.get("duration_ms"),
            steps=data.get("steps"),
            raw=data,
        )


@dataclass(frozen=True)
class Session:
    id: str
    user: str
    metadata: dict[str, Any]
    created_by: str
    created_at: datetime | None
    last_seen_at: datetime | None
    expires_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Session:
        return cls(
            id=_require(data, "id", "Session"),
            user=data.get("user", ""),
            metadata=data.get("metadata") or {},
            created_by=data.get("created_by", ""),
            created_at=_time(data.get("created_at")),
            last_seen_at=_time(data.get("last_seen_at")),
            expires_at=_time(data.get("expires_at")),
            raw=data,
        )


@dataclass(frozen=True)
class Application:
    """An API application (`app_…`): an external system bound to one tenant, with a role narrowed by scopes."""

    id: str
    name: str
    tenant: str
    role: str
    scopes: list[str]
    webhook_url: str | None
    webhook_events: list[str]
    rate_limit_per_minute: int | None  # None: the tenant plan's default for applications
    api_key_id: str | None
    api_key_prefix: str | None  # the public part of the key: nxk_<prefix>_…
    client_id: str | None  # the OAuth2 client id
    created_by: str
    created_at: datetime | None
    revoked_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Application:
        return cls(**_application_fields(data, "Application"), raw=data)


def _application_fields(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": _require(data, "id", kind),
        "name": _require(data, "name", kind),
        "tenant": data.get("tenant", ""),
        "role": data.get("role", ""),
        "scopes": list(data.get("scopes") or []),
        "webhook_url": data.get("webhook_url") or None,
        "webhook_events": list(data.get("webhook_events") or []),
        "rate_limit_per_minute": data.get("rate_limit_per_minute"),
        "api_key_id": data.get("api_key_id"),
        "api_key_prefix": data.get("api_key_prefix"),
        "client_id": data.get("client_id"),
        "created_by": data.get("created_by", ""),
        "created_at": _time(data.get("created_at")),
        "revoked_at": _time(data.get("revoked_at")),
    }


@dataclass(frozen=True)
class ApplicationCredentials(Application):
    """An application with the secrets Nexus shows only once: on registration, on rotation, and (the webhook
    secret) on the update that gives it its first webhook URL.

    A secret that was not issued (or not rotated) is None. Store them now: they cannot be read again.
    """

    api_key: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ApplicationCredentials:
        return cls(
            **_application_fields(data, "ApplicationCredentials"),
            raw=data,
            api_key=data.get("api_key"),
            client_secret=data.get("client_secret"),
            webhook_secret=data.get("webhook_secret"),
        )


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery (`whd_…`) of one event to an application's webhook URL."""

    id: str
    application: str
    event_id: str
    event_type: str
    status: str  # pending | delivered | failed
    attempts: int
    response_code: int | None
    latency_ms: float | None
    last_error: str
    next_attempt_at: datetime | None
    created_at: datetime | None
    delivered_at: datetime | None
    #: The event as sent; only `apps.delivery()` returns it (None in lists).
    payload: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            id=_require(data, "id", "Delivery"),
            application=data.get("application", ""),
            event_id=_require(data, "event_id", "Delivery"),
            event_type=_require(data, "event_type", "Delivery"),
            status=_require(data, "status", "Delivery"),
            attempts=int(data.get("attempts") or 0),
            response_code=data.get("response_code"),
            latency_ms=data.get("latency_ms"),
            last_error=data.get("last_error") or "",
            next_attempt_at=_time(data.get("next_attempt_at")),
            created_at=_time(data.get("created_at")),
            delivered_at=_time(data.get("delivered_at")),
            payload=data.get("payload"),
            raw=data,
        )
