"""Login tokens: a simplejwt access/refresh pair bound to one tenant, and their verification.

simplejwt is used here as a JWT library only (its token classes, signing key and lifetimes from
settings.SIMPLE_JWT); no DRF authentication class reads these tokens. The tenant middleware verifies the
access token and re-checks the membership on every request (apps/accounts/selectors.py), so the `role`
claim is what the role was at login, informative only.

Revocation. Refresh tokens rotate: each is good for one refresh (simplejwt's token_blacklist app keeps every
issued one as an OutstandingToken and every used or revoked one as a BlacklistedToken), and the new one keeps
the old one's expiry, so NEXUS_JWT_REFRESH_DAYS bounds a login session however often it is refreshed. A
password change blacklists all of a user's refresh tokens, a member's removal those bound to that tenant.
Every token also carries `pwv`, a keyed digest of the user's password hash: the membership check refuses an
access or refresh token whose `pwv` no longer matches, so a password changed by any means (the CLI, Django's
admin or `changepassword`) ends the tokens issued before it within NEXUS_AUTH_CACHE_S, and at once in the
process that changed it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from apps.core.errors import NotAuthenticated

PASSWORD_VERSION_CLAIM = "pwv"


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


def password_version(password_hash: str) -> str:
    """A short keyed digest of a user's stored password hash (`user.password`): it changes with the password and
    tells a token's reader nothing about it (unlike simplejwt's CHECK_REVOKE_TOKEN, a plain MD5 of the hash)."""
    return salted_hmac("nexus.accounts.password_version", password_hash, algorithm="sha256").hexdigest()[:16]


def _outstand(refresh: RefreshToken, *, user_id: int) -> None:
    # Recorded whole, claims included, so revoking the tokens of one tenant can read which tenant each is for.
    OutstandingToken.objects.create(
        user_id=user_id,
        jti=refresh["jti"],
        token=str(refresh),
        created_at=timezone.now(),
        expires_at=datetime_from_epoch(refresh["exp"]),
    )


def token_pair_issue(*, user, tenant, role: str) -> TokenPair:
    refresh = RefreshToken()
    refresh[settings.SIMPLE_JWT["USER_ID_CLAIM"]] = str(user.pk)  # as simplejwt writes it
    refresh["username"] = user.username
    refresh["tenant"] = tenant.slug
    refresh["tenant_id"] = tenant.pk
    refresh["role"] = role
    refresh[PASSWORD_VERSION_CLAIM] = password_version(user.password)
    _outstand(refresh, user_id=user.pk)
    return TokenPair(
        access=str(refresh.access_token),
        refresh=str(refresh),
        tenant=tenant.slug,
        role=role,
        expires_in=access_lifetime_s(),
    )


def token_pair_rotate(refresh: RefreshToken, *, role: str) -> TokenPair:
    """Spend a verified refresh token: blacklist it and issue the next pair, with the current `role` and the
    same expiry. Exactly one of two concurrent refreshes with one token wins; the other is refused."""
    with transaction.atomic():
        outstanding = OutstandingToken.objects.select_for_update().filter(jti=refresh["jti"]).first()
        if outstanding is None:  # not issued here (or before refresh tokens were recorded)
            raise NotAuthenticated("invalid or expired token", code="invalid_credentials")
        _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
        if not created:
            raise NotAuthenticated("invalid or expired token", code="invalid_credentials")
        refresh.set_jti()
        refresh.set_iat()
        refresh["role"] = role
        _outstand(refresh, user_id=int(refresh["user_id"]))
    return TokenPair(
        access=str(refresh.access_token),
        refresh=str(refresh),
        tenant=refresh["tenant"],
        role=role,
        expires_in=access_lifetime_s(),
    )


def refresh_tokens_revoke(*, user_id: int, tenant_id: int | None = None) -> int:
    """Blacklist the user's live refresh tokens (only those bound to `tenant_id` when given); how many."""
    live: Iterable[OutstandingToken] = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    if tenant_id is not None:
        live = [token for token in live if _unverified_claims(token.token).get("tenant_id") == tenant_id]
    revoked = BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live], ignore_conflicts=True)
    return len(revoked)


def _unverified_claims(raw: str) -> dict:
    # Our own stored tokens, read only to find their tenant: no signature check needed.
    try:
        return jwt.decode(raw, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}


def _decoded(token_class, raw: str):
    try:
        token = token_class(raw)
        # A token missing these was not issued by user_login: never trust it.
        int(token["user_id"]), int(token["tenant_id"]), str(token[PASSWORD_VERSION_CLAIM])
    except (TokenError, KeyError, TypeError, ValueError):
        raise NotAuthenticated("invalid or expired token", code="invalid_credentials") from None
    return token


def access_verify(raw: str) -> AccessToken:
    """The verified access token (signature, expiry, type); any failure is one 401 answer."""
    return _decoded(AccessToken, raw)


def refresh_verify(raw: str) -> RefreshToken:
    return _decoded(RefreshToken, raw)
