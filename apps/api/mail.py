"""REST API for the tenant's outbox: the mail its runs and agents sent, or captured without a mail server."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apps.api.base import ERRORS, TenantApiView
from apps.api.serializers import MAX_OFFSET, RequestSerializer
from apps.mail.models import MailStatus
from apps.mail.representation import mail_data
from apps.mail.selectors import MAX_LIMIT, mail_get, mail_list


class MailListQuerySerializer(RequestSerializer):
    execution = serializers.CharField(required=False, min_length=1, max_length=40, help_text="only the mail of this run (run_…)")
    workflow = serializers.CharField(
        required=False, min_length=1, max_length=80, help_text="only the mail of this workflow (wf_… or its slug)"
    )
    status = serializers.ChoiceField(required=False, choices=MailStatus.choices)
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=MAX_LIMIT)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class MailAttachmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    artifact_id = serializers.CharField(allow_null=True, help_text="art_…: download it at /api/v1/artifacts/{id}/download/")


class MailSerializer(serializers.Serializer):
    """apps/mail/representation.py `mail_data`."""

    id = serializers.CharField(help_text="msg_…")
    message_id = serializers.CharField(help_text="the Message-ID header")
    # `from` is a Python keyword: the field is declared under another name and renamed below.
    from_ = serializers.CharField(help_text="the sender address (NEXUS_EMAIL_FROM)")
    to = serializers.ListField(child=serializers.CharField())
    cc = serializers.ListField(child=serializers.CharField())
    subject = serializers.CharField(allow_blank=True)
    attachments = MailAttachmentSerializer(many=True)
    execution_id = serializers.CharField(allow_null=True, help_text="the run that sent it (run_…); null for an MCP call")
    workflow_id = serializers.CharField(allow_null=True, help_text="wf_…")
    workflow = serializers.CharField(allow_null=True, help_text="the workflow's slug when it was sent")
    actor = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class, so this does not shadow Field.source at run time
    source = serializers.CharField(help_text="email_node, send_email_report, …")  # type: ignore[assignment]
    delivered_to = serializers.CharField(help_text="`local outbox` (no mail server configured) or smtp://host:port")
    status = serializers.ChoiceField(choices=MailStatus.choices)
    error = serializers.CharField(allow_null=True, help_text="why the server refused it (status failed)")
    created_at = serializers.DateTimeField()
    body = serializers.CharField(allow_blank=True, required=False, help_text="the plain-text body (not in lists)")
    html = serializers.CharField(allow_null=True, required=False, help_text="the HTML alternative (not in lists)")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class MailListSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="every matching message, not only this page")
    results = MailSerializer(many=True)


class MailListView(TenantApiView):
    @extend_schema(
        operation_id="mail_list",
        parameters=[MailListQuerySerializer],
        responses={200: MailListSerializer, **ERRORS},
        summary="List the tenant's outbox (sent and captured mail, without bodies), newest first",
    )
    def get(self, request):
        query = self.validated(MailListQuerySerializer, request.query_params)
        count, messages = mail_list(**self.scope, **query)
        return Response({"count": count, "results": [mail_data(m, with_body=False) for m in messages]})


class MailDetailView(TenantApiView):
    @extend_schema(
        operation_id="mail_retrieve",
        responses={200: MailSerializer, **ERRORS},
        summary="Show one message of the outbox with its bodies",
    )
    def get(self, request, mail_id: str):
        return Response(mail_data(mail_get(**self.scope, mail_id=mail_id)))
