"""E-mail triggers of tasks: an SMTP ingress (aiosmtpd) where mail to ``<task id>@…`` runs
that task, when the task's ``email.senders`` allow the envelope sender.

A refused recipient is answered at RCPT (550, saying why), so the sender's server bounces
it; an accepted message becomes an ``email`` request on ``tasks.requests``, its body the
message's metadata: from, to, subject, date, message id, the text and HTML parts, the
headers and each attachment's name, type and size (the content stays out of Kafka). The
run id is the message's, so a message delivered twice runs once.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import json
import logging
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from vigil.clock import SYSTEM, Clock
from vigil.config.models import TaskConfig
from vigil.schemas.codec import Codec
from vigil.schemas.records import task_request
from vigil.settings import Settings
from vigil.streams.config_topics import applied
from vigil.streams.kafka import producer

log = logging.getLogger(__name__)
TEXT_LIMIT = 100_000  # characters of each body part a run receives


def message_body(message: EmailMessage, recipient: str, sender: str) -> dict[str, Any]:
    """What a run gets of a message (``request.body``)."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    attachments = [
        {
            "filename": part.get_filename(),
            "contentType": part.get_content_type(),
            "size": len(part.get_payload(decode=True) or b""),
        }
        for part in message.iter_attachments()
    ]
    return {
        "from": str(message.get("From", sender)),
        "sender": sender,
        "to": recipient,
        "subject": str(message.get("Subject", "")),
        "date": str(message.get("Date", "")),
        "messageId": str(message.get("Message-ID", "")),
        "text": text.get_content()[:TEXT_LIMIT] if text is not None else "",
        "html": html.get_content()[:TEXT_LIMIT] if html is not None else "",
        "headers": {name: str(value) for name, value in message.items()},
        "attachments": attachments,
    }


class EmailTriggers:
    """The aiosmtpd handler: RCPT checks the task and the sender, DATA requests the run."""

    def __init__(
        self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM
    ) -> None:
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.requests = settings.topic("tasks.requests")
        self.sink = producer(settings, bootstrap, client_id="vigil-task-email", linger_ms=0)

    def _task(self, recipient: str) -> tuple[str, TaskConfig | None]:
        task_id = recipient.split("@", 1)[0].lower()
        record = applied(self.settings, self.bootstrap, self.codec, "task").get(task_id)
        if record is None or not record.get("spec"):
            return task_id, None
        return task_id, TaskConfig.model_validate(json.loads(record["spec"])["config"])

    def refusal(self, recipient: str, sender: str) -> str | None:
        """Why mail from ``sender`` to ``recipient`` is refused (an SMTP reply), or None."""
        task_id, task = self._task(recipient)
        if task is None:
            return f"550 5.1.1 no task {task_id!r} is applied"
        if task.email is None:
            return f"550 5.7.1 task {task_id!r} takes no e-mail (no email: in its file)"
        if task.paused:
            return f"450 4.7.1 task {task_id!r} is paused"
        if not task.email.allows(sender):
            return f"550 5.7.1 {sender or '<>'} may not trigger task {task_id!r}"
        return None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refused = await asyncio.to_thread(self.refusal, address, envelope.mail_from or "")
        if refused is not None:
            log.info("e-mail from %s to %s refused: %s", envelope.mail_from, address, refused)
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        digest = hashlib.sha256(str(message.get("Message-ID", "")).encode() or raw).hexdigest()
        runs = []
        for recipient in envelope.rcpt_tos:
            task_id = recipient.split("@", 1)[0].lower()
            run_id = f"email:{digest[:32]}:{task_id}"
            body = message_body(message, recipient, envelope.mail_from or "")
            request = task_request(run_id, task_id, "email", body, self.clock.ms())
            value = self.codec.encode(self.requests, "TaskRequest", request)
            await asyncio.to_thread(self._send, run_id, value)
            runs.append(run_id)
        log.info("e-mail from %s: runs %s", envelope.mail_from, ", ".join(runs))
        return f"250 OK: {', '.join(runs)}"

    def _send(self, run_id: str, value: bytes) -> None:
        self.sink.send(self.requests, key=run_id.encode(), value=value).get(30)

    def close(self) -> None:
        self.sink.close()


def start_ingress(settings: Settings, bootstrap: str, codec: Codec) -> tuple[Controller, Any]:
    """The SMTP ingress on VIGIL_EMAIL_BIND, started; stop the controller, close the handler."""
    assert settings.email_bind is not None
    host, port = settings.email_bind.rsplit(":", 1)
    handler = EmailTriggers(settings, bootstrap, codec)
    controller = Controller(handler, hostname=host, port=int(port))
    controller.start()
    log.info("e-mail triggers: SMTP on %s", settings.email_bind)
    return controller, handler
