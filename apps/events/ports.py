"""The events port a workflow run uses (the `notify` node): publish with the run's channel as source."""

from apps.core.errors import ApplicationError
from apps.engine import NodeError
from apps.events.services import publish


class EventsPort:
    def __init__(self, *, source: str, session_id: str | None = None, execution_id: str | None = None):
        self.source = source
        self.session_id = session_id
        self.execution_id = execution_id

    def publish(self, *, type: str, data: dict) -> dict:
        try:
            event = publish(
                type=type,
                source=self.source,
                data={**data, "execution_id": self.execution_id} if self.execution_id else data,
                session_id=self.session_id,
            )
        except ApplicationError as error:
            raise NodeError(error.code, error.detail) from None
        return {"id": event["id"], "type": event["type"]}
