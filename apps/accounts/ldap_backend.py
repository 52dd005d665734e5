"""The LDAP authentication backend: django-auth-ldap, plus tenant memberships from LDAP groups at each login.

Enabled only when NEXUS_LDAP_URI is set (see apps/accounts/auth_config.py for the settings it reads).
"""

from django.conf import settings
from django_auth_ldap.backend import LDAPBackend

from apps.accounts.services import memberships_sync_from_groups


class NexusLDAPBackend(LDAPBackend):
    def get_or_build_user(self, username, ldap_user):
        """Directory users are created locally with an unusable password. An existing account with a
        usable password, or a platform admin, is a local account: a directory entry with the same uid
        must not log in as it (that would hand a local admin's rights to whoever owns the uid in LDAP)."""
        user, built = super().get_or_build_user(username, ldap_user)
        if not built and (user.has_usable_password() or user.is_superuser):
            raise ldap_user.AuthenticationFailed(f"'{username}' is a local account")
        return user, built

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is not None:
            memberships_sync_from_groups(user=user, group_dns=ldap_user.group_dns, role_map=settings.NEXUS_LDAP_ROLE_MAP)
        return user
