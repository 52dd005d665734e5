"""The OAuth2-style scopes an API application may hold, and the actions each grants (apps/accounts/access.py).

Pure data: the settings module reads the descriptions (the OAuth2 provider's SCOPES) before any app is loaded.
"""

# Scopes narrow what an API application may do (its role still applies): each grants the actions listed. Every
# action of apps/accounts/access.py is granted by some scope (tests/unit/accounts/test_scopes.py).
SCOPES: dict[str, tuple[str, frozenset[str]]] = {
    "workflows:read": ("read workflows and their versions", frozenset({"workflow.read"})),
    "workflows:write": (
        "create, update, delete, deploy and test workflows",
        frozenset({"workflow.create", "workflow.update", "workflow.delete", "workflow.deploy", "workflow.test"}),
    ),
    "executions:read": ("read executions and their steps", frozenset({"execution.read"})),
    # Rendering a chart into an artifact and sending mail outside a run were `workflow.execute` before they had
    # actions of their own: the scope that granted them then grants them now.
    "executions:run": (
        "run deployed workflows, cancel runs, render charts and send mail",
        frozenset({"workflow.execute", "execution.cancel", "artifact.create", "mail.send"}),
    ),
    "sessions:read": ("read sessions and their runs", frozenset({"session.read"})),
    "sessions:write": ("create and update sessions", frozenset({"session.write"})),
    "datasets:read": ("read and query datasets", frozenset({"dataset.read"})),
    "datasets:write": ("upload and change datasets", frozenset({"dataset.write"})),
    "artifacts:read": ("read and download artifacts", frozenset({"artifact.read"})),
    "mail:read": ("read the mail the tenant sent or captured in its outbox", frozenset({"mail.read"})),
    "apps:read": ("read API applications and their webhook deliveries", frozenset({"app.read"})),
    "apps:write": ("register, change, rotate and revoke API applications", frozenset({"app.write"})),
    "apikeys:read": ("list API keys", frozenset({"apikey.read"})),
    "apikeys:write": ("create and revoke API keys", frozenset({"apikey.create", "apikey.revoke"})),
    "members:read": ("list the tenant's members", frozenset({"member.read"})),
    "members:write": ("add, change and remove members", frozenset({"member.write"})),
    "audit:read": ("read the tenant's audit log", frozenset({"audit.read"})),
}
SCOPE_DESCRIPTIONS: dict[str, str] = {scope: description for scope, (description, _) in SCOPES.items()}
