"""The two ways out: e-mail over SMTP (stdlib ``smtplib``) and a webhook (HTTP POST of JSON, httpx).
Each ``send`` either returns or raises ``DeliveryError`` with a reason a technician can act on."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from dataclasses import dataclass
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid

import httpx

from fleet.notify.message import Rendered


class DeliveryError(Exception):
    """A delivery failed; ``permanent`` when trying again cannot help (a refused address)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "giamsat-kiosk@localhost"
    #: "starttls" (submission, port 587), "ssl" (port 465) or "none" (a relay on the center's LAN)
    security: str = "none"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


class EmailSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, to: str, message: Rendered) -> None:
        s = self.settings
        # The legacy MIMEText/Header pair, not EmailMessage: Python 3.11's new folding drops the space
        # where a long Vietnamese subject is cut into encoded words ("Máy in phiếu" arrived as "Máy
        # inphiếu"; seen in test_ingest_browser). Header encodes the space inside the encoded word.
        mail = MIMEText(message.body, "plain", "utf-8")
        mail["From"] = s.sender
        mail["To"] = to
        mail["Subject"] = Header(message.subject, "utf-8")  # type: ignore[assignment]  # what it takes
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=s.sender.rpartition("@")[2] or "localhost")
        try:
            if s.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_s, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with client:
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password or "")
                refused = client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"SMTP {s.host}:{s.port} refused {to}: {exc.recipients}", permanent=True
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise DeliveryError(f"SMTP {s.host}:{s.port} refused {to}: {refused}", permanent=True)


class WebhookSender:
    """POST the notification's JSON; any 2xx answer is a delivery. With a secret, the body is signed
    (``X-Fleet-Signature: sha256=<HMAC-SHA256 of the body>``) so the receiver can tell it is ours."""

    def __init__(self, timeout_s: float = 5.0, secret: bytes | None = None) -> None:
        self.timeout_s = timeout_s
        self.secret = secret

    def send(self, url: str, message: Rendered) -> None:
        body = json.dumps(message.json, ensure_ascii=False, sort_keys=True).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "motcua-fleet/1"}
        if self.secret:
            digest = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            headers["X-Fleet-Signature"] = f"sha256={digest}"
        try:
            response = httpx.post(
                url, content=body, headers=headers, timeout=self.timeout_s, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {url}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(
                f"webhook {url}: HTTP {response.status_code}",
                permanent=response.status_code in (400, 404, 410),
            )
