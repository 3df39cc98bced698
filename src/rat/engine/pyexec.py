"""Python pipelines: `pipeline.py` runs with `exec` in the run's worker and sets `result`.

The guard-rails here (blocked builtins and imports, no dunder access, a connection wrapper that
refuses file and settings statements) catch mistakes; they are NOT a security boundary and fall
to one line of determined code. The boundary is the OS sandbox the job runs in (bubblewrap,
a dedicated uid, Landlock, seccomp, rlimits: rat.runtime.sandbox and rat.engine.confine).
"""

from __future__ import annotations

import ast
import builtins
import re
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

FILENAME = "pipeline.py"
BLOCKED_MODULES = frozenset({
    "os", "sys", "subprocess", "socket", "shutil", "pathlib", "ctypes", "multiprocessing",
    "threading", "importlib", "pickle", "inspect"})
BLOCKED_BUILTINS = ("eval", "exec", "compile", "open", "breakpoint", "input", "__import__")
REFUSED_STATEMENTS = frozenset({"COPY", "ATTACH", "DETACH", "LOAD", "SET", "PRAGMA", "EXPORT",
                                "VARIABLE_SET"})
_CREATE_SECRET = re.compile(r"^\s*create\s+(or\s+replace\s+)?((persistent|temporary|temp)\s+)?"
                            r"secret\b", re.IGNORECASE)
_CONN_METHODS = ("fetchall", "fetchone", "fetchmany", "fetchdf", "df", "fetch_df", "pl",
                 "fetch_arrow_table", "arrow", "fetchnumpy")


class PythonError(Exception):
    """A user-facing failure of a Python pipeline, naming the line where it happened."""


class PyGlobals(msgspec.Struct, kw_only=True):
    """The values a pipeline sees besides `duckdb_conn`, `pa`, `log` and `result`."""

    ref: Callable[[str], str]
    landing_zone: Callable[[str], str]
    this: str | None
    run_started_at: str
    watermark_value: str | None
    is_incremental: bool
    config: Any


def check_source(source: str) -> list[str]:
    """Guard-rail violations and syntax errors as `line N: message` (empty when fine)."""
    try:
        tree = ast.parse(source, filename=FILENAME)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: SyntaxError: {exc.msg}"]
    problems = []
    for node in ast.walk(tree):
        problem = _node_problem(node)
        if problem:
            problems.append(f"line {getattr(node, 'lineno', 0)}: {problem}")
    return problems


def sets_result(source: str) -> bool:
    """True when the code assigns the global `result` somewhere."""
    try:
        tree = ast.parse(source, filename=FILENAME)
    except SyntaxError:
        return True  # reported as a syntax error instead
    return any(isinstance(n, ast.Name) and n.id == "result" and isinstance(n.ctx, ast.Store)
               for n in ast.walk(tree))


def _node_problem(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        blocked = [a.name for a in node.names if a.name.split(".")[0] in BLOCKED_MODULES]
        return f"import of {blocked[0]!r} is not allowed in pipelines" if blocked else None
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return "relative imports are not allowed in pipelines"
        module = node.module or ""
        return f"import of {module!r} is not allowed in pipelines" \
            if module.split(".")[0] in BLOCKED_MODULES else None
    if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
        return f"access to {node.attr!r} is not allowed in pipelines"
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        return f"use of {node.id!r} is not allowed in pipelines"
    if isinstance(node, ast.Name) and node.id in BLOCKED_BUILTINS:
        return f"{node.id}() is not allowed in pipelines"
    return None


def _guarded_import(name: str, globals_: Any = None, locals_: Any = None,
                    fromlist: Any = (), level: int = 0) -> Any:
    if level or name.split(".")[0] in BLOCKED_MODULES:
        raise ImportError(f"import of {name!r} is not allowed in pipelines")
    return builtins.__import__(name, globals_, locals_, fromlist, level)


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    if isinstance(name, str) and name.startswith("__"):
        raise AttributeError(f"access to {name!r} is not allowed in pipelines")
    return getattr(obj, name, *default)


def safe_builtins() -> dict[str, Any]:
    allowed = {k: v for k, v in vars(builtins).items() if k not in BLOCKED_BUILTINS}
    allowed["__import__"] = _guarded_import
    allowed["getattr"] = _guarded_getattr
    return allowed


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse statements that touch files, extensions, settings or secrets."""
    for statement in con.extract_statements(sql):
        kind = statement.type.name
        if kind in REFUSED_STATEMENTS or (kind == "CREATE" and _CREATE_SECRET.match(statement.query)):
            raise PermissionError(f"{kind} statements are not allowed in pipelines")


def wrap_connection(con: duckdb.DuckDBPyConnection) -> Any:
    """A connection facade: statements are checked, the real connection is never reachable."""

    class PipelineConnection:
        __slots__ = ()

        def sql(self, query: str, *, params: Any = None) -> Any:
            check_statement(con, query)
            return con.sql(query, params=params)

        query = sql

        def execute(self, query: str, parameters: Any = None) -> PipelineConnection:
            check_statement(con, query)
            con.execute(query, parameters)
            return self

        def table(self, name: str) -> Any:
            return con.table(name)

        def from_arrow(self, data: Any) -> Any:
            return con.from_arrow(data)

        def register(self, name: str, data: Any) -> PipelineConnection:
            import pyarrow as pa

            # A reader streams from this same connection; scanning it while another statement
            # runs here would deadlock, so it is read into a table first.
            con.register(name, data.read_all() if isinstance(data, pa.RecordBatchReader) else data)
            return self

        def unregister(self, name: str) -> PipelineConnection:
            con.unregister(name)
            return self

        def __getattr__(self, name: str) -> Any:
            if name in _CONN_METHODS:
                return getattr(con, name)
            raise AttributeError(f"duckdb_conn.{name} is not available in pipelines")

    return PipelineConnection()


def make_log(emit: Callable[[str, str], None]) -> Any:
    """`log.info/warning/error/debug`, with %-style arguments like the logging module."""

    def level(name: str) -> Callable[..., None]:
        def write(message: object, *args: object) -> None:
            text = str(message)
            if args:
                try:
                    text = text % args
                except (TypeError, ValueError):
                    text = " ".join([text, *map(str, args)])
            emit(name, text)
        return write

    return types.SimpleNamespace(debug=level("debug"), info=level("info"), warning=level("warn"),
                                 warn=level("warn"), error=level("error"),
                                 exception=level("error"))


def user_line(exc: BaseException) -> int | None:
    """The last line of pipeline.py in the traceback (the user's line, not the library's)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        return f"{FILENAME} line {exc.lineno}: SyntaxError: {exc.msg}"
    line = user_line(exc)
    where = f"{FILENAME} line {line}" if line else FILENAME
    text = str(exc).strip()
    if isinstance(exc, MemoryError) and not text:
        text = "the run exceeded its memory limit (RAT_WORKER_MEMORY_LIMIT)"
    return f"{where}: {type(exc).__name__}" + (f": {text}" if text else "")


def run_pipeline(source: str, con: duckdb.DuckDBPyConnection, values: PyGlobals,
                 log: Callable[[str, str], None]) -> pa.Table:
    """Execute the pipeline and return `result` as an Arrow table; PythonError on any failure."""
    import pyarrow as pa

    problems = check_source(source)
    if problems:
        raise PythonError(f"{FILENAME} {problems[0]}")
    env: dict[str, Any] = {
        "__builtins__": safe_builtins(), "__name__": "pipeline", "duckdb_conn": wrap_connection(con),
        "pa": pa, "log": make_log(log), "result": None, **msgspec.structs.asdict(values)}
    try:
        exec(compile(source, FILENAME, "exec"), env)  # noqa: S102 - running user pipelines is the point
    except Exception as exc:  # reported with the user's line number
        raise PythonError(describe(exc)) from None
    return to_arrow(env.get("result"))


def to_arrow(result: Any) -> pa.Table:
    """Arrow table of an accepted `result`; pandas and polars are detected without importing them."""
    import duckdb
    import pyarrow as pa

    if result is None:
        raise PythonError("pipeline.py must set `result`")
    if isinstance(result, pa.Table):
        return result
    if isinstance(result, pa.RecordBatchReader):
        return result.read_all()
    if isinstance(result, pa.RecordBatch):
        return pa.Table.from_batches([result])
    if isinstance(result, duckdb.DuckDBPyRelation):
        return result.to_arrow_table()
    kind = type(result)
    root = kind.__module__.split(".")[0]
    if kind.__name__ == "DataFrame" and root == "pandas":
        return pa.Table.from_pandas(result, preserve_index=False)
    if kind.__name__ == "DataFrame" and root == "polars":
        return result.to_arrow()
    raise PythonError(
        f"`result` must be a pyarrow Table, DuckDB relation, pandas or polars DataFrame, "
        f"not {kind.__module__}.{kind.__name__}")
