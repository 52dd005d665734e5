"""Login tokens: a simplejwt access/refresh pair bound to one tenant, and their verification.

simplejwt is used here as a JWT library only (its token classes, signing key and lifetimes from
settings.SIMPLE_JWT); no DRF authentication class reads these tokens. The tenant middleware verifies the
access token and re-checks the membership on every request (apps/accounts/selectors.py), so the `role`
claim is what the role was at login, informative only.
"""

from dataclasses import dataclass

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.core.errors import NotAuthenticated


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: str
    refresh: str
    tenant: str
    role: str
    expires_in: int

    def as_dict(self) -> dict:
        return {
            "access": self.access,
            "refresh": self.refresh,
            "tenant": self.tenant,
            "role": self.role,
            "expires_in": self.expires_in,
        }


def access_lifetime_s() -> int:
    return int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())


def _claims(token, *, user, tenant, role: str) -> None:
    token["username"] = user.username
    token["tenant"] = tenant.slug
    token["tenant_id"] = tenant.pk
    token["role"] = role


def token_pair_issue(*, user, tenant, role: str) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    _claims(refresh, user=user, tenant=tenant, role=role)
    return TokenPair(
        access=str(refresh.access_token),
        refresh=str(refresh),
        tenant=tenant.slug,
        role=role,
        expires_in=access_lifetime_s(),
    )


def access_issue_from_refresh(refresh: RefreshToken, *, role: str) -> str:
    access = refresh.access_token
    access["role"] = role
    return str(access)


def _decoded(token_class, raw: str):
    try:
        token = token_class(raw)
        # A token missing these was not issued by user_login: never trust it.
        int(token["user_id"]), int(token["tenant_id"])
    except (TokenError, KeyError, TypeError, ValueError):
        raise NotAuthenticated("invalid or expired token", code="invalid_credentials") from None
    return token


def access_verify(raw: str) -> AccessToken:
    """The verified access token (signature, expiry, type); any failure is one 401 answer."""
    return _decoded(AccessToken, raw)


def refresh_verify(raw: str) -> RefreshToken:
    return _decoded(RefreshToken, raw)
