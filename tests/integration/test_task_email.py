"""E-mail triggers: mail sent with smtplib to vigil's SMTP ingress becomes an ``email`` run
request of the task it is addressed to, on the real broker; recipients the task does not
take are refused at RCPT, saying why."""

import json
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import applied_project, read_topic
from vigil.settings import Settings
from vigil.stack.broker import free_port
from vigil.streams.task_email import start_ingress

pytestmark = pytest.mark.integration


def project(root: Path) -> Path:
    (root / "tasks").mkdir(parents=True)
    (root / "vigil.yaml").write_text("networks: {}\n")
    (root / "tasks" / "code.py").write_text("def handler(event):\n    return event\n")
    (root / "tasks" / "keeper.yaml").write_text(
        "name: keeper\ncode: code.py\nemail:\n  senders: [ops@example.com, trusted.org]\n"
    )
    (root / "tasks" / "plain.yaml").write_text("name: plain\ncode: code.py\n")
    return root


def message(sender: str, to: str, subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    mail["Message-ID"] = f"<{subject.replace(' ', '-')}@example.com>"
    mail.set_content("Pause the pool, please.")
    mail.add_alternative("<p>Pause the <b>pool</b>, please.</p>", subtype="html")
    mail.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="report.csv")
    return mail


def test_mail_to_a_task_requests_its_run_and_others_are_refused(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    port = free_port()
    root = project(tmp_path / "p")
    settings, codec = applied_project(settings, kafka, root, email_bind=f"127.0.0.1:{port}")
    controller, handler = start_ingress(settings, kafka, codec)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            sent = message("Ops <ops@example.com>", "keeper@vigil.local", "pause now")
            assert smtp.send_message(sent, "ops@example.com", ["keeper@vigil.local"]) == {}
            # the same message again (a retrying relay): the same run id
            smtp.send_message(sent, "ops@example.com", ["keeper@vigil.local"])
            other = message("x@trusted.org", "keeper@vigil.local", "from the domain")
            smtp.send_message(other, "x@trusted.org", ["keeper@vigil.local"])
            for sender, to, says in [
                ("evil@example.com", "keeper@vigil.local", "may not trigger task 'keeper'"),
                ("ops@example.com", "plain@vigil.local", "task 'plain' takes no e-mail"),
                ("ops@example.com", "nope@vigil.local", "no task 'nope' is applied"),
            ]:
                with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                    smtp.send_message(message(sender, to, "no"), sender, [to])
                [(code, reply)] = refused.value.recipients.values()
                assert code == 550 and says in reply.decode(), reply
    finally:
        controller.stop()
        handler.close()
    # read in partition order, not sending order: grouped by run id
    requests = read_topic(settings, codec, kafka, "tasks.requests", "TaskRequest")
    assert [(r["taskId"], r["trigger"]) for r in requests] == [("keeper", "email")] * 3
    by_run: dict[str, list[dict[str, Any]]] = {}
    for request in requests:
        by_run.setdefault(request["runId"], []).append(json.loads(request["body"]))
    [twice] = [bodies for bodies in by_run.values() if len(bodies) == 2]  # one run id
    [once] = [bodies for bodies in by_run.values() if len(bodies) == 1]
    assert twice[0]["messageId"] == twice[1]["messageId"] and once[0]["from"] == "x@trusted.org"
    body = twice[0]
    assert (body["from"], body["sender"], body["to"]) == (
        "Ops <ops@example.com>",
        "ops@example.com",
        "keeper@vigil.local",
    )
    assert body["subject"] == "pause now" and body["text"].strip() == "Pause the pool, please."
    assert "<b>pool</b>" in body["html"]
    assert body["attachments"] == [{"filename": "report.csv", "contentType": "text/csv", "size": 8}]
    assert body["headers"]["Message-ID"] == "<pause-now@example.com>"
