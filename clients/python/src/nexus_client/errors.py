"""The errors the client raises: one class per HTTP status family, all carrying Nexus's `{detail, code, fields}`."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx


class NexusError(Exception):
    """A request Nexus refused or could not serve.

    `status` is the HTTP status (None when no response arrived), `code` the stable machine-readable reason
    (`not_found`, `invalid_inputs`, …), `detail` the human sentence, `fields` names each bad input and why.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str = "error",
        fields: dict[str, Any] | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.fields: dict[str, Any] = fields or {}
        self.response = response

    def __str__(self) -> str:
        prefix = f"{self.status} {self.code}" if self.status is not None else self.code
        text = f"{prefix}: {self.detail}"
        if self.fields:
            text += " (" + "; ".join(f"{name}: {why}" for name, why in self.fields.items()) + ")"
        return text

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status={self.status!r}, code={self.code!r}, detail={self.detail!r}, fields={self.fields!r})"


class ValidationError(NexusError):
    """400: the request was malformed or a field was invalid (see `fields`)."""


class AuthenticationError(NexusError):
    """401: no credential, or a wrong, revoked or expired one (or the OAuth2 token endpoint refused the client)."""


class PermissionDeniedError(NexusError):
    """403: the credential's role or scopes do not allow this."""


class NotFoundError(NexusError):
    """404: no such thing in the credential's tenant (another tenant's things do not exist for you)."""


class ConflictError(NexusError):
    """409: the thing exists already, or is not in a state that allows this (e.g. not deployed)."""


class RateLimitError(NexusError):
    """429: too many requests. Wait `retry_after` seconds, then try again.

    `limit`, `remaining` and `reset` come from the `RateLimit-Limit`, `RateLimit-Remaining` and
    `RateLimit-Reset` headers (None when absent); `reset` is in seconds, like `retry_after`.
    """

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float,
        limit: int | None = None,
        remaining: int | None = None,
        reset: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.reset = reset


class ServerError(NexusError):
    """5xx: Nexus failed to serve the request."""


class NexusConnectionError(NexusError):
    """No response: the server could not be reached or did not answer in time (`status` is None)."""


class UnexpectedResponseError(NexusError):
    """A response the client cannot read: not JSON, or missing a field the API documents."""


_BY_STATUS: dict[int, type[NexusError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
}


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _header_float(response: httpx.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(response: httpx.Response) -> NexusError:
    """The NexusError subclass for a non-2xx response, with the body's `detail`, `code` and `fields`."""
    status = response.status_code
    detail, code, fields = f"HTTP {status}", "error", {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        # Nexus errors are {detail, code, fields}; the OAuth2 token endpoint answers {error, error_description}.
        detail = str(body.get("detail") or body.get("error_description") or body.get("error") or detail)
        code = str(body.get("code") or body.get("error") or code)
        raw_fields = body.get("fields")
        if isinstance(raw_fields, dict):
            fields = raw_fields
    elif response.text:
        detail = f"HTTP {status}: {response.text[:200]}"
    kwargs: dict[str, Any] = {"status": status, "code": code, "fields": fields, "response": response}
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        reset = _header_float(response, "RateLimit-Reset")
        if retry_after is None:
            retry_after = reset if reset is not None else 1.0
        return RateLimitError(
            detail,
            retry_after=retry_after,
            limit=_header_int(response, "RateLimit-Limit"),
            remaining=_header_int(response, "RateLimit-Remaining"),
            reset=reset,
            **kwargs,
        )
    if status >= 500:
        return ServerError(detail, **kwargs)
    return _BY_STATUS.get(status, NexusError)(detail, **kwargs)
