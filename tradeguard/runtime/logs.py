"""Structured logs: one JSON object per line, with credentials scrubbed.

``TRADEGUARD_LOG_FORMAT=json`` makes the worker log this way (what Kubernetes
log pipelines want); ``text`` keeps Faust's human format for a terminal.

>>> import logging
>>> fmt = JsonFormatter(secrets=["hunter2"])
>>> rec = logging.LogRecord("agents.worker", logging.WARNING, __file__, 1,
...                         "login to %s with password=%s", ("kafka", "hunter2"), None)
>>> line = fmt.format(rec)
>>> import json; doc = json.loads(line)
>>> doc["level"], doc["logger"], doc["message"]
('warning', 'agents.worker', 'login to kafka with password=***')
"""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from tradeguard.runtime.settings import Settings

__all__ = ["JsonFormatter", "logging_config", "scrub"]

# key=value / key: value / "key": "value" where the key names a credential.
_CREDENTIAL = re.compile(
    r"""(?P<key>["']?\b[\w.-]*(?:password|passwd|secret|token|sasl_plain_password|credentials?)"""
    r"""["']?\s*[=:]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;)}\]]+)""",
    re.IGNORECASE,
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace credential values in ``text`` with ``***``.

    >>> scrub("sasl_plain_password='s3cr3t', user=bob")
    'sasl_plain_password=***, user=bob'
    >>> scrub("connect failed for token abc", secrets=["abc"])
    'connect failed for token ***'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _CREDENTIAL.sub(lambda m: m.group("key") + "***", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ms), level, logger, message, pid, exc (if any)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc)
                          .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage(), self.secrets),
            "pid": record.process,
        }
        if record.exc_info:
            doc["exc"] = scrub(self.formatException(record.exc_info), self.secrets)
        return orjson.dumps(doc).decode()


def logging_config(settings: Settings) -> dict[str, Any] | None:
    """A ``logging.config.dictConfig`` for the worker, or None for Faust's own text format."""
    if settings.log_format != "json":
        return None
    secrets = [settings.sasl_password]
    if settings.sasl_password_file and os.path.exists(settings.sasl_password_file):
        secrets.append(settings.password())
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "secrets": secrets}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stdout"}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stdout"]},
    }
