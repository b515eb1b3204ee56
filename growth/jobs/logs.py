"""JSON-lines logs of the jobs: one object per record, with the job's context fields."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from growth.store.engine import redact

_STD_ATTRS = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message and every ``extra`` field,
    database passwords hidden (:func:`growth.store.redact`)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str))


class _Context(logging.Filter):
    """Adds the job's fields (campaign_date, campaign, run_id, ...) to every record."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__()
        self.fields = fields

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self.fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _Forward(logging.Handler):
    """Passes records at or above ``level`` on to the root logger's handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


@contextmanager
def json_logging(fields: dict[str, Any], *, log_file: Path | None, stderr: bool) -> Iterator[None]:
    """Route the ``growth`` loggers' INFO+ records as JSON lines to ``log_file``/stderr.

    The ``growth`` logger stops propagating meanwhile; what the root logger would
    have shown before (its effective level) is still forwarded to it.
    """
    logger = logging.getLogger("growth")
    before = (logger.level, logger.propagate, logger.getEffectiveLevel())
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    context = _Context(fields)
    for h in handlers:
        h.setFormatter(JsonLinesFormatter())
        h.addFilter(context)
    forward = _Forward(level=before[2])
    for h in (*handlers, forward):
        logger.addHandler(h)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        for h in (*handlers, forward):
            logger.removeHandler(h)
            h.close()
        logger.setLevel(before[0])
        logger.propagate = before[1]
