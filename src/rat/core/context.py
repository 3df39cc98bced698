"""Per-task context that log lines carry: the request being served and the run being executed."""

from __future__ import annotations

import contextvars

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("rat_request_id", default="")
RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("rat_run_id", default="")
