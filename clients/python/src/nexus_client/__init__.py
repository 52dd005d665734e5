"""nexus-client: a small typed client for the Nexus REST API."""

from nexus_client._version import __version__
from nexus_client.auth import ClientCredentials
from nexus_client.client import NexusClient
from nexus_client.errors import (
    AuthenticationError,
    ConflictError,
    NexusConnectionError,
    NexusError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
)
from nexus_client.models import (
    TERMINAL_STATUSES,
    Application,
    ApplicationCredentials,
    Delivery,
    Deployment,
    DeployResult,
    Execution,
    ExecutionResult,
    Health,
    Page,
    Session,
    Workflow,
)

__all__ = [
    "TERMINAL_STATUSES",
    "Application",
    "ApplicationCredentials",
    "AuthenticationError",
    "ClientCredentials",
    "ConflictError",
    "Delivery",
    "DeployResult",
    "Deployment",
    "Execution",
    "ExecutionResult",
    "Health",
    "NexusClient",
    "NexusConnectionError",
    "NexusError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "Session",
    "UnexpectedResponseError",
    "ValidationError",
    "Workflow",
    "__version__",
]
