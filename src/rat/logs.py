"""Process logging: JSON lines by default, plain text for humans; request ids on every line."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import msgspec

from rat.core.context import REQUEST_ID, RUN_ID


class ContextFilter(logging.Filter):
    """Stamp each record with the request and run it was logged for (from context variables)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        run_id = getattr(record, "run_id", None) or RUN_ID.get()
        context = [f"{k}={v}" for k, v in (("request_id", request_id), ("run_id", run_id)) if v]
        record.__dict__.update(request_id=request_id, run_id=run_id,
                               context=f" [{' '.join(context)}]" if context else "")
        return True


class JsonFormatter(logging.Formatter):
    """`{ts, level, logger, msg, request_id?, run_id?, exc?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        for key in ("request_id", "run_id"):
            value = getattr(record, key, None)
            if value:
                out[key] = str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(out).decode()


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "pyiceberg", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
