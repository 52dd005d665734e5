"""NexusClient: one httpx connection pool, the credential, retries, and the resource groups."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

import httpx

from nexus_client._version import __version__
from nexus_client.auth import ClientCredentials, OAuthTokenCache
from nexus_client.errors import NexusConnectionError, RateLimitError, UnexpectedResponseError, error_from_response
from nexus_client.models import Health
from nexus_client.resources import Apps, Executions, Sessions, Workflows

#: Methods that change nothing, so a request that may or may not have reached the server can be sent again.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Answers from a proxy or an overloaded node that a repeated idempotent request may not get.
RETRYABLE_GATEWAY_STATUSES = frozenset({502, 503, 504})
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0


class NexusClient:
    """A client for one Nexus deployment and one credential.

    ```python
    with NexusClient("https://nexus.example.com", api_key="nxk_…", max_retries=3) as nexus:
        run = nexus.workflows.execute("hello-world", {"name": "World"})
        print(run.result)
    ```

    Authenticate with `api_key` (an `nxk_…` key; any bearer token such as a JWT works too) or with
    `oauth=ClientCredentials(client_id, client_secret)`, whose tokens are fetched from `/oauth/token/`,
    cached, refetched shortly before they expire and once more if the API refuses one. With neither, only
    `health()` works. `tenant` sends `X-Nexus-Tenant`, for a credential that may act in several tenants.

    With `max_retries=N` a request answered 429 is sent again after the `Retry-After` the server gave
    (when that is at most `max_retry_wait` seconds; otherwise RateLimitError is raised at once), and a
    GET that failed to connect, timed out or got 502/503/504 is sent again after a short backoff; a
    request that surely never left (connection refused) is retried whatever its method. `max_retries=0`
    (the default) raises at the first failure.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        oauth: ClientCredentials | None = None,
        tenant: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 0,
        max_retry_wait: float = 60.0,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if api_key is not None and oauth is not None:
            raise ValueError("give api_key or oauth, not both")
        if api_key is not None and not api_key.strip():
            raise ValueError("api_key is empty")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        if max_retry_wait < 0:
            raise ValueError(f"max_retry_wait must be 0 or more, got {max_retry_wait}")
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._api_key = api_key
        self._oauth = OAuthTokenCache(oauth) if oauth is not None else None
        default_headers = {"User-Agent": f"nexus-client/{__version__}", "Accept": "application/json"}
        if tenant:
            default_headers["X-Nexus-Tenant"] = tenant
        default_headers.update(headers or {})
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=default_headers, verify=verify, transport=transport
        )
        self.workflows = Workflows(self)
        self.executions = Executions(self)
        self.sessions = Sessions(self)
        self.apps = Apps(self)

    # --- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NexusClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        auth = "api_key" if self._api_key else "oauth" if self._oauth else "anonymous"
        return f"NexusClient({self.base_url!r}, auth={auth}, tenant={self.tenant!r})"

    # --- endpoints outside /api/v1/ --------------------------------------------------------------------

    def health(self) -> Health:
        """`GET /health`: the node's status. A `down` node answers 503 with the same body, returned too."""
        response = self.request("GET", "/health", expected=(200, 503), authenticate=False)
        return Health.from_api(self._json(response))

    # --- the transport ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        expected: tuple[int, ...] = (200,),
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send one API request with the credential and the retry policy; a status outside `expected`
        raises the matching NexusError."""
        method = method.upper()
        query = {name: value for name, value in (params or {}).items() if value is not None}
        attempt = 0
        reauthenticated = False
        while True:
            token: str | None = None
            try:
                if authenticate:
                    token = self._bearer()
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = self._http.request(method, path, json=json, params=query or None, headers=headers)
            except RateLimitError as error:  # the token endpoint itself was rate limited
                if not self._may_wait(error, attempt):
                    raise
                attempt += 1
                time.sleep(error.retry_after)
                continue
            except httpx.TransportError as error:
                if attempt < self.max_retries and self._may_resend(method, error):
                    time.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise NexusConnectionError(
                    f"{method} {self.base_url}{path} failed: {type(error).__name__}: {error}", code="connection_error"
                ) from error
            status = response.status_code
            if status in expected:
                return response
            if status == 401 and token and self._oauth is not None and not reauthenticated:
                # The cached token was revoked or expired early: fetch a new one, once.
                self._oauth.invalidate(token)
                reauthenticated = True
                continue
            refusal = error_from_response(response)
            if isinstance(refusal, RateLimitError) and self._may_wait(refusal, attempt):
                attempt += 1
                time.sleep(refusal.retry_after)
                continue
            if status in RETRYABLE_GATEWAY_STATUSES and method in IDEMPOTENT_METHODS and attempt < self.max_retries:
                time.sleep(self._backoff(attempt))
                attempt += 1
                continue
            raise refusal

    def _bearer(self) -> str | None:
        if self._api_key is not None:
            return self._api_key
        if self._oauth is not None:
            return self._oauth.token(self._http)
        return None

    def _may_wait(self, error: RateLimitError, attempt: int) -> bool:
        return attempt < self.max_retries and error.retry_after <= self.max_retry_wait

    @staticmethod
    def _may_resend(method: str, error: httpx.TransportError) -> bool:
        if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            return True  # the request never reached the server
        return method in IDEMPOTENT_METHODS

    @staticmethod
    def _backoff(attempt: int) -> float:
        ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter, not a secret

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponseError(
                f"{response.request.method} {response.request.url.path} answered {response.status_code} "
                f"with a body that is not JSON ({response.headers.get('content-type', 'no content type')})",
                status=response.status_code,
                code="unexpected_response",
                response=response,
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        expected: tuple[int, ...] = (200,),
    ) -> Any:
        """`request`, then the JSON body (None for an empty body such as a 204)."""
        response = self.request(method, path, json=json, params=params, expected=expected)
        if response.status_code == 204 or not response.content:
            return None
        return self._json(response)
