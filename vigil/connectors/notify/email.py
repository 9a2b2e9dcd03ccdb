"""E-mail channel over SMTP: HTML body with a plain-text alternative, one message per match."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import nh3

from vigil.config.channels import EmailConfig
from vigil.connectors.notify.delivery import Channel, ChannelEnv, Messages, need
from vigil.connectors.notify.render import render
from vigil.errors import DeliveryError


def build_message(
    config: EmailConfig, event: dict[str, Any], messages: Messages, request_id: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = render(messages.subject, event, "plain", limit=250).replace("\n", " ")
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="vigil.local")
    message["X-Vigil-Request-Id"] = request_id
    message.set_content(render(messages.body, event, "plain"))
    # the template's own HTML goes through, sanitised: no script, style or event handlers
    html = nh3.clean(render(messages.body, event, "email"))
    message.add_alternative(f"<!doctype html><html><body>{html}</body></html>", subtype="html")
    return message


class EmailChannel(Channel):
    kind = "email"

    @classmethod
    def preview(
        cls, config: EmailConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        [event] = events
        message = build_message(config, event, messages, "preview")
        return {
            "subject": message["Subject"],
            "to": message["To"],
            "text": message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
            "html": message.get_body(("html",)).get_content(),  # type: ignore[union-attr]
        }

    @classmethod
    def build(cls, config: EmailConfig, env: ChannelEnv) -> EmailChannel:
        return cls(config, env.secret(config.password_secret))

    def __init__(
        self, config: EmailConfig, password: str | None, *, context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(config.alias, config.max_attempts, config.timeout)
        self.config, self._password = config, password
        self._context = context or ssl.create_default_context()

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        smtp_class = smtplib.SMTP_SSL if config.security == "tls" else smtplib.SMTP
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        if config.security == "tls":
            kwargs["context"] = self._context
        try:
            with smtp_class(config.host, config.port, **kwargs) as smtp:
                if config.security == "starttls":
                    smtp.starttls(context=self._context)
                if config.username:
                    password = need(self._password, config.password_secret, f"email {self.alias}")
                    smtp.login(config.username, password)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP authentication as {config.username!r} failed: {exc.smtp_code}",
                permanent=True,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(
                f"SMTP {config.host}:{config.port} offers no login (AUTH) with security: "
                f"{config.security}; servers offer it after STARTTLS: set security: starttls "
                "or tls",
                permanent=True,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"SMTP refused the recipients {sorted(exc.recipients)}", permanent=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP {config.host}:{config.port}: {type(exc).__name__}: {exc}"
            ) from None

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int | None:
        [event] = events
        await asyncio.to_thread(self._send, build_message(self.config, event, messages, request_id))
        return None
