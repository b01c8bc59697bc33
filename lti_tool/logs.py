"""Structured JSON logs with a request id; people appear only as a keyed hash of their sub.

Never log names, emails, tokens or raw subs (Quebec's Law 25).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
from typing import Any

from flask import g, has_request_context

_HASH_KEY = b""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and g.get("request_id"):
            data["request_id"] = g.request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            data.update(extra)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str, secret_key: str) -> None:
    global _HASH_KEY
    _HASH_KEY = hashlib.sha256(b"log-subject:" + secret_key.encode()).digest()
    root = logging.getLogger("lti_tool")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level)


def subject_hash(issuer: str, sub: str) -> str:
    """Stable pseudonym of a person for logs: HMAC of (issuer, sub), 16 hex chars."""
    return hmac.new(_HASH_KEY, f"{issuer}\n{sub}".encode(), hashlib.sha256).hexdigest()[:16]


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, event, extra={"fields": {"event": event, **fields}})
