"""Celery tasks run in the audit context `worker`, with the request id of the call that queued them.

A header carries the id across the broker (set when a task is published from inside a request, a command or
another task); a task queued by beat gets its own id.
"""

import contextlib
from contextvars import Token

from celery.signals import before_task_publish, task_postrun, task_prerun

from apps.audit.context import context_reset, context_set, current_context, request_id_from

HEADER = "nexus_request_id"
_tokens: dict[str, Token] = {}


@before_task_publish.connect(weak=False, dispatch_uid="nexus_audit_request_id")
def _send_request_id(headers=None, **kwargs) -> None:
    request_id = current_context().request_id
    if request_id and headers is not None:
        headers.setdefault(HEADER, request_id)


def _header(task) -> str | None:
    request = task.request
    if request.headers and HEADER in request.headers:  # some brokers keep custom headers apart
        return request.headers.get(HEADER)
    return request.get(HEADER)


@task_prerun.connect(weak=False, dispatch_uid="nexus_audit_task_context")
def _enter(task_id=None, task=None, **kwargs) -> None:
    request_id = _header(task) if task is not None else None
    _tokens[task_id] = context_set(channel="worker", request_id=request_id_from(request_id or task_id))


@task_postrun.connect(weak=False, dispatch_uid="nexus_audit_task_context_end")
def _leave(task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        with contextlib.suppress(ValueError):  # reset from another context (a task run eagerly elsewhere): nothing to undo
            context_reset(token)
