"""Session: who a run or event belongs to beyond the credential (an end user, a chat), with idle expiry."""

from django.db import models


class Session(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    # Free text from the creator (an end-user id in their system); not a Nexus user.
    user = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    # Bumped by use at most once a minute per process (services.session_bind): expiry is idle time.
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.id
