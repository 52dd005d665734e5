"""The one domain error type that every service raises and every channel maps to its own form."""

from typing import Any


class ApplicationError(Exception):
    """A failure the caller can act on. `code` is stable; `fields` names bad inputs and why."""

    status = 400
    code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, fields: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.fields = fields or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail, "code": self.code}
        if self.fields:
            body["fields"] = self.fields
        return body


class ValidationFailed(ApplicationError):
    status = 400
    code = "invalid"


class NotAuthenticated(ApplicationError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(ApplicationError):
    status = 403
    code = "permission_denied"


class NotFound(ApplicationError):
    status = 404
    code = "not_found"


class Conflict(ApplicationError):
    status = 409
    code = "conflict"


class RateLimited(ApplicationError):
    """Too many requests: the same request succeeds after `retry_after` whole seconds (every channel says so)."""

    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None):
        super().__init__(detail, code=code)
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, "fields": self.fields, "retry_after": self.retry_after}
