"""Publish-time validation of a pipeline's files: config, templates, tests, Python guard-rails.

Returns per-file errors (which block publishing) and warnings, with line numbers. Templates are
rendered with placeholder relations so the statement count and type can be checked without any
table existing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec
from jinja2 import TemplateSyntaxError

from rat.engine import extensions, quality
from rat.engine.config import STRATEGY_KEYS, ConfigResult, build_config, strip_annotations
from rat.engine.pyexec import check_source, sets_result
from rat.engine.render import (
    CompileError,
    RenderContext,
    bare_ref_lines,
    constant_args,
    dynamic_call_lines,
    jinja_string_args,
    render,
)
from rat.engine.sqlcheck import single_select

ENTRY_FILES = ("pipeline.sql", "pipeline.py")
PLACEHOLDER = "__rat_placeholder"


class FileReport(msgspec.Struct, kw_only=True):
    path: str
    valid: bool = True
    errors: list[str] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)


class Validation(msgspec.Struct, kw_only=True):
    valid: bool
    files: list[FileReport]
    config: dict[str, object] | None = None


def _placeholder_context(namespace: str, strategy: str) -> RenderContext:
    # watermark_value is set so incremental-only blocks are rendered and checked too.
    return RenderContext(namespace=namespace, layer="silver", name=PLACEHOLDER,
                         merge_strategy=strategy, run_started_at="2000-01-01T00:00:00+00:00",
                         ref=lambda _name: PLACEHOLDER, landing_zone=lambda _zone: "/placeholder/*",
                         this=lambda: PLACEHOLDER, watermark_value="0",
                         helpers=dict(extensions.JINJA_HELPERS))


class _Checker:
    def __init__(self, namespace: str, table_exists: Callable[[str], bool]) -> None:
        self.namespace = namespace
        self.table_exists = table_exists

    def template(self, text: str, report: FileReport, strategy: str) -> None:
        """Jinja syntax, ref() arguments, unknown tables, and one SELECT after rendering."""
        source = strip_annotations(text)
        try:
            dynamic = dynamic_call_lines(source)
        except TemplateSyntaxError as exc:
            report.errors.append(f"line {exc.lineno}: {exc.message}")
            return
        report.errors.extend(f"line {line}: {fn}() needs one constant string argument "
                             "(no Jinja inside it)" for line, fn in dynamic)
        report.warnings.extend(f"line {line}: ref( written outside {{{{ }}}}: it is not resolved"
                               for line in bare_ref_lines(source))
        templated = jinja_string_args(source)
        report.errors.extend(f"line {line}: {fn}({value!r}): the name contains Jinja delimiters, "
                             "which are not expanded inside a string; write the name "
                             "literally" for line, fn, value in templated)
        for name in constant_args(source, "ref"):
            if any(value == name for _line, fn, value in templated if fn == "ref"):
                continue
            ident = name if name.count(".") == 2 else f"{self.namespace}.{name}"
            if name.count(".") not in (1, 2):
                report.errors.append(f"ref({name!r}): use 'layer.name' or 'namespace.layer.name'")
            elif not self.table_exists(ident):
                report.warnings.append(f"ref({name!r}): table {ident} does not exist yet")
        if not dynamic:
            try:
                single_select(render(source, _placeholder_context(self.namespace, strategy)))
            except CompileError as exc:
                report.errors.append(str(exc).removeprefix("pipeline.sql "))


def _entry_report(path: str, text: str, result: ConfigResult, checker: _Checker, *,
                  has_yaml: bool) -> FileReport:
    report = FileReport(path=path)
    # Without a config.yaml, strategy errors (e.g. a missing unique_key) belong to the entry file.
    report.errors.extend(e for e in result.errors if not has_yaml or e not in result.config_errors)
    report.warnings.extend(w for w in result.warnings if w.startswith("line "))
    if path.endswith(".py"):
        report.errors.extend(check_source(text))
        if not report.errors and not sets_result(text):
            report.errors.append("pipeline.py must set `result`")
    else:
        checker.template(text, report, result.config.merge_strategy)
    return report


def _config_report(path: str, result: ConfigResult) -> FileReport:
    return FileReport(path=path, errors=list(result.config_errors),
                      warnings=[w for w in result.warnings if not w.startswith("line ")])


def _test_report(path: str, text: str, strategy: str, checker: _Checker) -> FileReport:
    report = FileReport(path=path)
    name = quality.test_name(path) or ""
    if not quality.valid_test_name(name):
        report.errors.append("test names must match ^[a-z][a-z0-9_-]*$")
    parsed = quality.parse_test_file(text)
    report.warnings.extend(parsed.warnings)
    checker.template(parsed.body, report, strategy)
    return report


def validate(files: Mapping[str, str], *, prefix: str, namespace: str,
             table_exists: Callable[[str], bool],
             strategies: Mapping[str, tuple[str, ...]] = STRATEGY_KEYS) -> Validation:
    """Validate a pipeline's files (paths relative to the pipeline folder)."""
    checker = _Checker(namespace, table_exists)
    entries = [f for f in ENTRY_FILES if f in files]
    reports: dict[str, FileReport] = {}
    if len(entries) != 1:
        where = entries[0] if entries else "pipeline.sql"
        reports[where] = FileReport(path=where, errors=[
            "a pipeline needs exactly one entry file (pipeline.sql or pipeline.py), "
            f"found {len(entries)}"])
    entry = entries[0] if entries else None
    result = build_config(files[entry] if entry else "", files.get("config.yaml"),
                          python=entry == "pipeline.py", strategies=strategies)
    if entry is not None and len(entries) == 1:
        reports[entry] = _entry_report(entry, files[entry], result, checker,
                                       has_yaml="config.yaml" in files)
    if "config.yaml" in files:
        reports["config.yaml"] = _config_report("config.yaml", result)
    for path in sorted(files):
        if quality.test_name(path) is not None:
            reports[path] = _test_report(path, files[path], result.config.merge_strategy, checker)
    out = []
    for report in reports.values():
        report.valid = not report.errors
        report.path = prefix + report.path
        out.append(report)
    valid = all(r.valid for r in out)
    config = msgspec.to_builtins(result.config) if valid else None
    return Validation(valid=valid, files=out, config=config)
