"""The scope vocabulary: every action is granted by some scope, and scopes narrow a role without widening it."""

from apps.accounts.access import ACTION_SCOPES, ACTIONS, SCOPES, can
from apps.core.principal import Principal


def _principal(role: str, scopes=None, *, platform_admin: bool = False) -> Principal:
    return Principal(
        kind="application",
        actor="app:app_test",
        tenant_id=1,
        tenant_slug="t",
        role=role,
        application_id="app_test",
        scopes=scopes,
        is_platform_admin=platform_admin,
    )


def test_every_action_is_granted_by_a_scope_and_every_scope_grants_known_actions():
    assert {action for action, scopes in ACTION_SCOPES.items() if not scopes} == set()
    for scope, (description, actions) in SCOPES.items():
        assert description and actions and actions <= set(ACTIONS), scope
        assert scope.count(":") == 1 and scope == scope.lower()


def test_scopes_narrow_the_role():
    reader = _principal("owner", frozenset({"workflows:read"}))
    assert can(reader, "workflow.read")
    assert not can(reader, "workflow.execute") and not can(reader, "app.write")


def test_scopes_never_widen_the_role():
    viewer = _principal("viewer", frozenset(SCOPES))
    assert can(viewer, "workflow.read") and not can(viewer, "workflow.execute")


def test_no_scopes_means_no_narrowing_and_an_empty_set_means_nothing():
    assert can(_principal("operator"), "workflow.execute")
    assert not can(_principal("owner", frozenset()), "workflow.read")


def test_scopes_bind_even_a_platform_admin_and_unknown_actions_are_nobodys():
    assert not can(_principal("owner", frozenset({"workflows:read"}), platform_admin=True), "audit.read")
    assert not can(_principal("owner"), "workflow.fly")
