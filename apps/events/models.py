"""The stored event log of a tenant: what a reconnecting subscriber replays."""

from django.db import models


class Event(models.Model):
    # evt_ ids sort by time, so `id > since` is the replay query.
    id = models.CharField(primary_key=True, max_length=40)
    type = models.CharField(max_length=80)
    source = models.CharField(max_length=20)
    session_id = models.CharField(max_length=40, null=True, blank=True)
    data = models.JSONField(default=dict)
    ts = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["session_id", "id"], name="event_session", condition=models.Q(session_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"
