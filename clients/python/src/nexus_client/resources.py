"""The API's resource groups: `client.workflows`, `client.executions`, `client.sessions`, `client.apps`."""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nexus_client.models import (
    Application,
    ApplicationCredentials,
    Delivery,
    DeployResult,
    Execution,
    ExecutionResult,
    Page,
    Session,
    Workflow,
)

if TYPE_CHECKING:
    from nexus_client.client import NexusClient

API = "/api/v1"


def _segment(value: str, name: str) -> str:
    """One path segment, percent-encoded; an empty id would silently address the collection instead."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _body(**fields: Any) -> dict[str, Any]:
    """A JSON body with the fields the caller gave: None means "leave it to the server", not null."""
    return {name: value for name, value in fields.items() if value is not None}


class _Resource:
    def __init__(self, client: NexusClient) -> None:
        self._client = client


class Workflows(_Resource):
    def list(self) -> Page[Workflow]:
        """`GET /api/v1/workflows/`: every workflow of the tenant with its deployments."""
        return Page.from_api(self._client._call("GET", f"{API}/workflows/"), Workflow.from_api)

    def get(self, ref: str) -> Workflow:
        """`GET /api/v1/workflows/{ref}/` by id (`wf_…`) or slug, with the latest definition."""
        return Workflow.from_api(self._client._call("GET", f"{API}/workflows/{_segment(ref, 'ref')}/"))

    def create(
        self,
        slug: str,
        *,
        definition: dict[str, Any] | None = None,
        template: str | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Workflow:
        """`POST /api/v1/workflows/` from a `definition` (DESIGN §4) or a `template` name such as "basic"."""
        body = _body(slug=slug, definition=definition, template=template, name=name, description=description)
        return Workflow.from_api(self._client._call("POST", f"{API}/workflows/", json=body, expected=(201,)))

    def update(
        self,
        ref: str,
        *,
        definition: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Workflow:
        """`PATCH /api/v1/workflows/{ref}/`: a new `definition` adds a version (deploy it to run it)."""
        body = _body(definition=definition, name=name, description=description)
        return Workflow.from_api(self._client._call("PATCH", f"{API}/workflows/{_segment(ref, 'ref')}/", json=body))

    def delete(self, ref: str) -> None:
        """`DELETE /api/v1/workflows/{ref}/`; its runs stay in the history."""
        self._client._call("DELETE", f"{API}/workflows/{_segment(ref, 'ref')}/", expected=(204,))

    def deploy(self, ref: str, *, environment: str = "production", version: int | None = None) -> DeployResult:
        """`POST /api/v1/workflows/{ref}/deploy/`: the latest version, or `version`, to `environment`."""
        body = _body(environment=environment, version=version)
        return DeployResult.from_api(self._client._call("POST", f"{API}/workflows/{_segment(ref, 'ref')}/deploy/", json=body))

    def execute(
        self,
        ref: str,
        inputs: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        wait: bool = True,
        environment: str | None = None,
    ) -> ExecutionResult:
        """`POST /api/v1/workflows/{ref}/execute/`: run the version deployed to `environment` (production).

        With `wait=True` the answer carries the outputs in `result` once the run finished; a run that is
        still going when the server stops waiting (or `wait=False`) comes back with `finished` False:
        `executions.wait(result.execution_id)` follows it. A run that failed is a result with status
        "failed" and an `error`, not an exception; invalid inputs raise ValidationError naming the fields.
        """
        body = _body(inputs=inputs or {}, session=session, wait=wait, environment=environment)
        path = f"{API}/workflows/{_segment(ref, 'ref')}/execute/"
        return ExecutionResult.from_api(self._client._call("POST", path, json=body, expected=(200, 202)))


class Executions(_Resource):
    def list(
        self,
        *,
        workflow: str | None = None,
        session: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Page[Execution]:
        """`GET /api/v1/executions/`, newest first; `count` is the total matching, `limit` at most 500."""
        params = {
            "workflow": workflow,
            "session": session,
            "channel": channel,
            "status": status,
            "limit": limit,
            "offset": offset,
        }
        return Page.from_api(self._client._call("GET", f"{API}/executions/", params=params), Execution.from_api)

    def get(self, execution_id: str) -> Execution:
        """`GET /api/v1/executions/{id}/` with its node steps."""
        return Execution.from_api(self._client._call("GET", f"{API}/executions/{_segment(execution_id, 'execution_id')}/"))

    def cancel(self, execution_id: str) -> Execution:
        """`POST /api/v1/executions/{id}/cancel/`; a finished run raises ConflictError."""
        path = f"{API}/executions/{_segment(execution_id, 'execution_id')}/cancel/"
        return Execution.from_api(self._client._call("POST", path))

    def wait(self, execution_id: str, *, timeout: float = 60.0, poll_interval: float = 0.5) -> Execution:
        """Poll `get` until the run reaches a terminal status; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get(execution_id)
            if execution.finished:
                return execution
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"execution {execution_id} is still {execution.status} after {timeout} s")
            time.sleep(min(poll_interval, remaining))


class Sessions(_Resource):
    def create(self, user: str = "", metadata: dict[str, Any] | None = None) -> Session:
        """`POST /api/v1/sessions/`: a session (`ses_…`) to bind runs and events to."""
        body = {"user": user, "metadata": metadata or {}}
        return Session.from_api(self._client._call("POST", f"{API}/sessions/", json=body, expected=(201,)))

    def get(self, session_id: str) -> Session:
        """`GET /api/v1/sessions/{id}/`."""
        return Session.from_api(self._client._call("GET", f"{API}/sessions/{_segment(session_id, 'session_id')}/"))

    def update(self, session_id: str, metadata: dict[str, Any]) -> Session:
        """`PATCH /api/v1/sessions/{id}/`: replace the session's metadata."""
        path = f"{API}/sessions/{_segment(session_id, 'session_id')}/"
        return Session.from_api(self._client._call("PATCH", path, json={"metadata": metadata}))

    def executions(self, session_id: str) -> Page[Execution]:
        """`GET /api/v1/sessions/{id}/executions/`: every run of the session, newest first, any channel."""
        path = f"{API}/sessions/{_segment(session_id, 'session_id')}/executions/"
        return Page.from_api(self._client._call("GET", path), Execution.from_api)


class Apps(_Resource):
    def register(
        self,
        name: str,
        *,
        webhook_url: str | None = None,
        webhook_events: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        role: str | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> ApplicationCredentials:
        """`POST /api/v1/apps/`: an application with an API key, OAuth2 client credentials and (with a
        `webhook_url`) a webhook signing secret, all shown only in this answer."""
        body = _body(
            name=name,
            webhook_url=webhook_url,
            webhook_events=list(webhook_events) if webhook_events is not None else None,
            scopes=list(scopes) if scopes is not None else None,
            role=role,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        return ApplicationCredentials.from_api(self._client._call("POST", f"{API}/apps/", json=body, expected=(201,)))

    def list(self) -> Page[Application]:
        """`GET /api/v1/apps/`: the tenant's applications, revoked ones included."""
        return Page.from_api(self._client._call("GET", f"{API}/apps/"), Application.from_api)

    def get(self, app_id: str) -> Application:
        """`GET /api/v1/apps/{id}/`."""
        return Application.from_api(self._client._call("GET", f"{API}/apps/{_segment(app_id, 'app_id')}/"))

    def update(
        self,
        app_id: str,
        *,
        name: str | None = None,
        webhook_url: str | None = None,
        webhook_events: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> ApplicationCredentials:
        """`PATCH /api/v1/apps/{id}/`: change what is given, keep the rest (`webhook_url=""` stops webhooks).
        The answer carries a `webhook_secret` only when this gave the application its first webhook URL."""
        body = _body(
            name=name,
            webhook_url=webhook_url,
            webhook_events=list(webhook_events) if webhook_events is not None else None,
            scopes=list(scopes) if scopes is not None else None,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        path = f"{API}/apps/{_segment(app_id, 'app_id')}/"
        return ApplicationCredentials.from_api(self._client._call("PATCH", path, json=body))

    def rotate(self, app_id: str, credentials: Sequence[str] | None = None) -> ApplicationCredentials:
        """`POST /api/v1/apps/{id}/rotate/`: new secrets for `credentials` ("api_key", "client_secret",
        "webhook_secret"; None: the key, the client secret and, with a webhook URL, the webhook secret); the old
        ones stop working. The new secrets are in the answer, and only there."""
        body = _body(credentials=list(credentials) if credentials is not None else None)
        return ApplicationCredentials.from_api(
            self._client._call("POST", f"{API}/apps/{_segment(app_id, 'app_id')}/rotate/", json=body)
        )

    def revoke(self, app_id: str) -> Application:
        """`POST /api/v1/apps/{id}/revoke/`: its key, OAuth2 client and tokens stop working (idempotent)."""
        return Application.from_api(self._client._call("POST", f"{API}/apps/{_segment(app_id, 'app_id')}/revoke/"))

    def deliveries(
        self, app_id: str, *, status: str | None = None, event_type: str | None = None, limit: int | None = None
    ) -> builtins.list[Delivery]:
        """`GET /api/v1/apps/{id}/deliveries/`, newest first; `status` is pending, delivered or failed."""
        path = f"{API}/apps/{_segment(app_id, 'app_id')}/deliveries/"
        data = self._client._call("GET", path, params={"status": status, "event_type": event_type, "limit": limit})
        return list(Page.from_api(data, Delivery.from_api, key="deliveries"))

    def delivery(self, app_id: str, delivery_id: str) -> Delivery:
        """`GET /api/v1/apps/{id}/deliveries/{whd}/`: one delivery, with the event it carries in `payload`."""
        path = f"{API}/apps/{_segment(app_id, 'app_id')}/deliveries/{_segment(delivery_id, 'delivery_id')}/"
        return Delivery.from_api(self._client._call("GET", path))

    def redeliver(self, app_id: str, delivery_id: str) -> Delivery:
        """`POST /api/v1/apps/{id}/deliveries/{whd}/redeliver/`: back to pending with fresh attempts, sent
        shortly (202); ConflictError if the application is revoked, has no URL, or an attempt is in flight."""
        path = f"{API}/apps/{_segment(app_id, 'app_id')}/deliveries/{_segment(delivery_id, 'delivery_id')}/redeliver/"
        return Delivery.from_api(self._client._call("POST", path, expected=(202,)))
