"""Credentials: an API key sent as a bearer token, or OAuth2 client credentials exchanged for cached tokens."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from nexus_client.errors import AuthenticationError, UnexpectedResponseError, error_from_response

#: Fetch a new token this long before the current one expires (at most a tenth of its lifetime), so a
#: request never leaves with a token that expires on the way.
EXPIRY_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class ClientCredentials:
    """OAuth2 client-credentials grant (RFC 6749 §4.4) at `POST {base_url}/oauth/token/`.

    `client_id` and `client_secret` are what `apps.register()` returned; `scope` (space-separated) narrows
    the token further, None asks for everything the application may do.
    """

    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    token_path: str = "/oauth/token/"


@dataclass
class _Token:
    access_token: str
    expires_at: float  # time.monotonic() deadline after which it is refetched


class OAuthTokenCache:
    """Fetches a token when there is none or it is about to expire; thread-safe, one fetch at a time."""

    def __init__(self, credentials: ClientCredentials) -> None:
        self.credentials = credentials
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def token(self, http: httpx.Client) -> str:
        with self._lock:
            token = self._token
            if token is None or time.monotonic() >= token.expires_at:
                token = self._fetch(http)
                self._token = token
            return token.access_token

    def invalidate(self, used: str) -> None:
        """Forget `used` (the server refused it), unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token.access_token == used:
                self._token = None

    def _fetch(self, http: httpx.Client) -> _Token:
        data = {"grant_type": "client_credentials"}
        if self.credentials.scope:
            data["scope"] = self.credentials.scope
        response = http.post(
            self.credentials.token_path,
            data=data,
            auth=(self.credentials.client_id, self.credentials.client_secret),
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            error = error_from_response(response)
            if response.status_code in (400, 401) and not isinstance(error, AuthenticationError):
                # RFC 6749 §5.2: a refused client or grant is a 400 or 401 `{"error": "invalid_client", …}`.
                raise AuthenticationError(
                    error.detail, status=error.status, code=error.code, fields=error.fields, response=response
                )
            raise error
        try:
            body = response.json()
            access_token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise UnexpectedResponseError(
                "the OAuth2 token endpoint answered without an 'access_token'", status=200, code="unexpected_response"
            ) from None
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 10)
        return _Token(access_token=str(access_token), expires_at=time.monotonic() + lifetime - margin)
