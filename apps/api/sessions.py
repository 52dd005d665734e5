"""REST API for sessions: create, show, update metadata, and the session's runs."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.api import serializers as s
from apps.api.base import ERRORS, TenantApiView
from apps.nexus_sessions.representation import session_data
from apps.nexus_sessions.selectors import session_executions, session_get
from apps.nexus_sessions.services import session_create, session_update
from apps.runs.representation import execution_data


class SessionCreateSerializer(s.RequestSerializer):
    user = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    metadata = serializers.DictField(required=False, default=dict)


class SessionUpdateSerializer(s.RequestSerializer):
    metadata = serializers.DictField()


class SessionListView(TenantApiView):
    @extend_schema(
        operation_id="sessions_create",
        request=SessionCreateSerializer,
        responses={201: s.SessionSerializer, **ERRORS},
        summary="Create a session",
    )
    def post(self, request):
        data = self.validated(SessionCreateSerializer, request.data)
        session = session_create(**self.scope, user=data["user"], metadata=data["metadata"])
        return Response(session_data(session), status=status.HTTP_201_CREATED)


class SessionDetailView(TenantApiView):
    @extend_schema(operation_id="sessions_retrieve", responses={200: s.SessionSerializer, **ERRORS}, summary="Show a session")
    def get(self, request, session_id: str):
        return Response(session_data(session_get(**self.scope, session_id=session_id)))

    @extend_schema(
        operation_id="sessions_update",
        request=SessionUpdateSerializer,
        responses={200: s.SessionSerializer, **ERRORS},
        summary="Replace a session's metadata",
    )
    def patch(self, request, session_id: str):
        data = self.validated(SessionUpdateSerializer, request.data)
        return Response(session_data(session_update(**self.scope, session_id=session_id, metadata=data["metadata"])))


class SessionExecutionsView(TenantApiView):
    @extend_schema(
        operation_id="sessions_executions",
        responses={200: s.SessionExecutionsSerializer, **ERRORS},
        summary="Every run of a session with its channel, newest first",
    )
    def get(self, request, session_id: str):
        session, executions = session_executions(**self.scope, session_id=session_id)
        return Response(
            {
                "session": session.id,
                "count": len(executions),
                "results": [execution_data(e, with_steps=False) for e in executions],
            }
        )
