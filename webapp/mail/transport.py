"""Delivering one message: SMTP from `SMTP_URL`, else one `.eml` file per message in the outbox."""
from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from celery.exceptions import SoftTimeLimitExceeded

from webapp.settings_paths import outbox_dir


class TransientMailError(Exception):
    """The server said "try later" (4xx), hung up or timed out: worth a retry."""


class PermanentMailError(Exception):
    """The server refused the message for good (5xx): retrying will not help."""


def build_message(config, *, key: str, to: str, subject: str, text: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    # Deterministic, so a receiving server can also drop a duplicate.
    message["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@delta>"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def deliver(config, message: EmailMessage, *, key: str) -> None:
    """Send or write `message`; raise TransientMailError or PermanentMailError when it fails."""
    url = config.get("SMTP_URL")
    if not url:
        write_outbox(outbox_dir(config), message, key)
        return
    try:
        send_smtp(url, message, timeout=config.get("SMTP_TIMEOUT", 10))
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if any(400 <= code < 500 for code in codes):
            raise TransientMailError(str(exc)) from exc
        raise PermanentMailError(str(exc)) from exc
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise TransientMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        raise PermanentMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
    except (smtplib.SMTPException, OSError, SoftTimeLimitExceeded) as exc:
        raise TransientMailError(f"{type(exc).__name__}: {exc}") from exc


def send_smtp(url: str, message: EmailMessage, *, timeout: float) -> None:
    """smtp://[user:pass@]host[:port][?starttls=1] or smtps://... (TLS from the first byte)."""
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    secure = parts.scheme == "smtps"
    starttls = query.get("starttls", "0").lower() in {"1", "true", "yes"}
    host = parts.hostname or "localhost"
    port = parts.port or (465 if secure else 587 if starttls else 25)
    context = ssl.create_default_context()
    if query.get("verify", "1").lower() in {"0", "false", "no"}:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if secure:
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if starttls:
            client.starttls(context=context)
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


def write_outbox(folder: Path, message: EmailMessage, key: str) -> Path:
    """One `.eml` per message, written to a temporary name and renamed, so readers never see half."""
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", key)[:80]
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    path = folder / f"{slug}-{digest}.eml"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(bytes(message))
    os.replace(tmp, path)
    return path
