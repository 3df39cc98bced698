"""The SQL Jinja environment: sandboxed, StrictUndefined, time- and size-bounded rendering."""

from __future__ import annotations

import bisect
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import msgspec
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

RENDER_SECONDS = 5.0
MAX_OUTPUT_BYTES = 10 * 1024 * 1024
BUILTIN_GLOBALS = ("ref", "this", "landing_zone", "run_started_at", "watermark_value",
                   "is_incremental", "is_append_only", "is_delete_insert", "is_scd2",
                   "is_snapshot")
_STRATEGY_TESTS = {"is_incremental": "incremental", "is_append_only": "append_only",
                   "is_delete_insert": "delete_insert", "is_scd2": "scd2", "is_snapshot": "snapshot"}


class CompileError(Exception):
    """The template cannot be rendered into one SELECT; the message is shown to the user."""


class RenderContext(msgspec.Struct, kw_only=True):
    """What a template can see. `ref`/`landing_zone` callbacks resolve once per run."""

    namespace: str
    layer: str
    name: str
    merge_strategy: str
    run_started_at: str
    ref: Callable[[str], str]
    landing_zone: Callable[[str], str]
    this: Callable[[], str]
    watermark_value: str | None = None
    helpers: dict[str, Callable[..., Any]] = msgspec.field(default_factory=dict)


class _Deadline:
    """Abort Python execution in this thread after a wall-clock budget (works off the main thread)."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds
        self.calls = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        self.calls += 1
        if self.calls % 256 == 0 and time.monotonic() > self.until:
            raise CompileError(f"template rendering took longer than {RENDER_SECONDS:.0f} s")
        return self


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                keep_trailing_newline=True)


_ENV = _environment()


def _globals(ctx: RenderContext) -> dict[str, Any]:
    values: dict[str, Any] = {name: fn for name, fn in ctx.helpers.items()
                              if name not in BUILTIN_GLOBALS}
    values.update({
        "ref": ctx.ref, "landing_zone": ctx.landing_zone,
        "run_started_at": ctx.run_started_at, "watermark_value": ctx.watermark_value,
    })
    for fn_name, strategy in _STRATEGY_TESTS.items():
        values[fn_name] = (lambda s=strategy: ctx.merge_strategy == s)
    return values


class _This:
    """`this` renders lazily so templates that never touch it work on a first run."""

    def __init__(self, resolve: Callable[[], str]) -> None:
        self._resolve = resolve

    def __str__(self) -> str:
        return self._resolve()

    __html__ = __str__


def _collect(chunks: Iterator[str]) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT_BYTES:
            raise CompileError("rendered SQL is larger than 10 MB")
        out.append(chunk)
    return "".join(out)


def render(source: str, ctx: RenderContext, *, filename: str = "pipeline.sql") -> str:
    """Render `source`; CompileError carries a user-facing message with the line number."""
    try:
        template = _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise CompileError(f"{filename} line {exc.lineno}: {exc.message}") from None
    variables = _globals(ctx)
    variables["this"] = _This(ctx.this)
    deadline = _Deadline(RENDER_SECONDS)
    previous = sys.gettrace()
    sys.settrace(deadline)
    try:
        return _collect(template.generate(**variables))
    except CompileError:
        raise
    except UndefinedError as exc:
        raise CompileError(f"{filename}: {exc.message}") from None
    except SecurityError as exc:
        raise CompileError(f"{filename}: not allowed in templates: {exc}") from None
    except TemplateSyntaxError as exc:
        raise CompileError(f"{filename} line {exc.lineno}: {exc.message}") from None
    except LookupError as exc:
        raise CompileError(f"{filename}: {exc.args[0] if exc.args else exc}") from None
    except Exception as exc:
        raise CompileError(f"{filename}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.settrace(previous)


def parse(source: str) -> nodes.Template:
    """Jinja AST of `source`; TemplateSyntaxError propagates for the caller to report."""
    return _ENV.parse(source)


def calls(tree: nodes.Template, names: tuple[str, ...]) -> Iterator[tuple[str, nodes.Call]]:
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in names:
            yield call.node.name, call


def constant_args(source: str, name: str) -> list[str]:
    """Constant string arguments of every `name(...)` call (for lineage and ref checks)."""
    out = []
    for _fn, call in calls(parse(source), (name,)):
        if len(call.args) == 1 and isinstance(call.args[0], nodes.Const) and \
                isinstance(call.args[0].value, str):
            out.append(call.args[0].value)
    return out


def dynamic_call_lines(source: str) -> list[tuple[int, str]]:
    """Lines where ref()/landing_zone() get a non-constant argument (publish error)."""
    bad = []
    for fn, call in calls(parse(source), ("ref", "landing_zone")):
        ok = len(call.args) == 1 and not call.kwargs and isinstance(call.args[0], nodes.Const) \
            and isinstance(call.args[0].value, str)
        if not ok:
            bad.append((call.lineno, fn))
    return bad


def jinja_string_args(source: str, names: tuple[str, ...] = ("ref", "landing_zone")) \
        -> list[tuple[int, str, str]]:
    """(line, function, argument) of constant string arguments that contain Jinja delimiters.

    Jinja does not expand `{{ }}` inside a string literal, so `ref('bronze.{{ x }}')` would look
    for a table literally named that; publish refuses it.
    """
    delimiters = (_ENV.variable_start_string, _ENV.variable_end_string, _ENV.block_start_string,
                  _ENV.block_end_string, _ENV.comment_start_string, _ENV.comment_end_string)
    return [(call.lineno, fn, arg.value) for fn, call in calls(parse(source), names)
            for arg in call.args if isinstance(arg, nodes.Const) and isinstance(arg.value, str)
            and any(d in arg.value for d in delimiters)]


def bare_ref_lines(source: str) -> list[int]:
    """Lines with `ref(` written in plain SQL text (outside {{ }}, comments and literals).

    The template's text parts are joined (each Jinja tag becomes a space) and read with DuckDB's
    tokenizer, which skips `--` and `/* */` comments and sees string literals as one token.
    """
    import duckdb

    chunks: list[tuple[int, int, str]] = []  # (offset in the joined text, line, text)
    offset = 0
    for lineno, kind, value in _ENV.lex(source):
        if kind == "data":
            chunks.append((offset, lineno, value))
            offset += len(value) + 1
    text = " ".join(value for _offset, _line, value in chunks)
    tokens = [o for o, _kind in duckdb.tokenize(text)]
    lines = []
    for here, after in itertools.pairwise(tokens):
        if text[here:here + 3].lower() == "ref" and not text[here + 3:after].strip() \
                and text[after] == "(":
            start, line, _value = chunks[bisect.bisect_right([c[0] for c in chunks], here) - 1]
            lines.append(line + text.count("\n", start, here))
    return lines
