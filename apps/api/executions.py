"""REST API for executions: list, show with node steps, cancel."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from apps.api import serializers as s
from apps.api.base import ERRORS, TenantApiView
from apps.runs.representation import execution_data
from apps.runs.selectors import run_get, run_list
from apps.runs.services import run_cancel


class ExecutionListView(TenantApiView):
    @extend_schema(
        operation_id="executions_list",
        parameters=[s.ExecutionListQuerySerializer],
        responses={200: s.ExecutionListSerializer, **ERRORS},
        summary="List executions, newest first",
    )
    def get(self, request):
        query = self.validated(s.ExecutionListQuerySerializer, request.query_params)
        count, executions = run_list(**self.scope, **query)
        return Response({"count": count, "results": [execution_data(e, with_steps=False) for e in executions]})


class ExecutionDetailView(TenantApiView):
    @extend_schema(
        operation_id="executions_retrieve",
        responses={200: s.ExecutionSerializer, **ERRORS},
        summary="Show an execution with its node steps",
    )
    def get(self, request, run_id: str):
        return Response(execution_data(run_get(**self.scope, run_id=run_id)))


class ExecutionCancelView(TenantApiView):
    @extend_schema(
        operation_id="executions_cancel",
        request=None,
        responses={200: s.ExecutionSerializer, 409: s.ErrorSerializer, **ERRORS},
        summary="Cancel a queued or running execution",
    )
    def post(self, request, run_id: str):
        return Response(execution_data(run_cancel(**self.scope, run_id=run_id)))
