"""What every CLI verb gets: the tenant, the principal acting, output helpers (rich for people, JSON for tools)."""

import getpass
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from apps.accounts.selectors import principal_for_user
from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.principal import Principal
from apps.events.origin import origin_set
from apps.tenants.connection import use_public, use_tenant
from apps.tenants.selectors import tenant_get


@dataclass
class CliContext:
    tenant_slug: str
    as_user: str | None
    json: bool
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
    # NEXUS_SESSION: every run and every event this command causes is bound to this session.
    session_id: str | None = field(default_factory=lambda: os.environ.get("NEXUS_SESSION") or None)
    _tenant: Any = None

    def __post_init__(self) -> None:
        origin_set(source="cli", session_id=self.session_id)

    @property
    def tenant(self):
        """The tenant of `--tenant`, with the connection switched to its schema."""
        if self._tenant is None:
            use_public()
            self._tenant = tenant_get(slug=self.tenant_slug)
            use_tenant(self._tenant)
        return self._tenant

    @property
    def principal(self) -> Principal:
        tenant = self.tenant
        if self.as_user:
            use_public()
            principal = principal_for_user(username=self.as_user, tenant=tenant)
            use_tenant(tenant)
            return principal
        # The operator at the machine holds the database credentials: the CLI acts as a platform admin
        # unless told to act as a user (`--as`), and says who ran it.
        return Principal(
            kind="system",
            actor=f"cli:{getpass.getuser()}",
            tenant_id=tenant.pk,
            tenant_slug=tenant.slug,
            role="owner",
            is_platform_admin=True,
        )

    def emit(self, data: Any, render=None) -> None:
        """Exactly one JSON document with --json; otherwise a rich rendering for a person."""
        if self.json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        elif render is not None:
            render(self.out, data)
        else:
            self.out.print_json(json.dumps(data, default=str))


def parse_json_option(value: str | None, *, name: str) -> dict:
    if value is None:
        return {}
    try:
        data = json.loads(value)
    except ValueError as error:
        raise ValidationFailed(f"--{name} is not valid JSON: {error}", code="malformed_json", fields={name: str(error)}) from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"--{name} must be a JSON object", fields={name: "must be a JSON object"})
    return data


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    result = Table(title=title, title_justify="left")
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*["" if cell is None else str(cell) for cell in row])
    return result


EXIT_CODES = {400: 2, 401: 4, 403: 4, 404: 3, 409: 5}


def exit_code_for(error: ApplicationError) -> int:
    return EXIT_CODES.get(error.status, 1)
