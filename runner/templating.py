"""Jinja rendering of models, tests and macros.

One `Templates` object holds the Jinja environment of a project: its macro
files (the project's `macros/` and the runner's built-in ones) and every
template's source. `render` runs one template with a namespace of context
functions (`ref`, `source`, `config`, `var`, ...) that the caller builds with
`ModelContext`; every macro sees the same namespace, so a macro that calls
`ref()` or `var()` behaves as if it were written in the model.

    >>> t = Templates({"models/a.sql": "select {{ var('x') }}"}, {})
    >>> ctx = ModelContext(path="models/a.sql", vars={"x": 1}, this=None)
    >>> t.render("models/a.sql", ctx.namespace())
    'select 1'
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nodes

from runner.errors import CompilationError
from runner.nodes import Macro, Relation, quote_literal
from runner.state_tables import last_seen_load_id_sql

BUILTIN_MACRO_DIR = Path(__file__).parent / "macros"
_TEST_BLOCK = re.compile(r"{%(-?)\s*test\s+(\w+)\s*\(")
_END_TEST_BLOCK = re.compile(r"{%(-?)\s*endtest\s*(-?)%}")
_REF_OR_SOURCE = re.compile(r"^\s*(ref|source)\s*\(.*\)\s*$", re.DOTALL)
# the end of a macro's text: `{% endmacro %}`, or a generic test's `{% endtest %}`
_END_DEFINITION = re.compile(r"{%-?\s*end(macro|test)\b.*?%}", re.DOTALL)
# what a template calls: names followed by `(` in its `{{ }}` and `{% %}`, outside
# comments and string literals (a regex: parsing every template would double a parse)
_COMMENT = re.compile(r"{#.*?#}", re.DOTALL)
_CODE = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.DOTALL)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")
BUILTIN_PACKAGE = "kpi"


class MacroReturn(Exception):
    """Raised by `{{ return(value) }}` to hand a value back from a macro."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def _do_return(value: Any) -> None:
    raise MacroReturn(value)


class _ReturningMacro(jinja2.runtime.Macro):
    """A macro that ends at `{{ return(value) }}` and hands back `value`.

    Every macro a template defines is one of these, so a macro that calls a
    sibling from its own file gets the sibling's return value, instead of the
    sibling's `return` ending the caller too.
    """

    def _invoke(self, arguments: list[Any], autoescape: bool) -> Any:
        try:
            return super()._invoke(arguments, autoescape)
        except MacroReturn as exc:
            return exc.value


class _Template(jinja2.Template):
    """A template whose `{% macro %}` definitions build `_ReturningMacro`s."""

    @classmethod
    def _from_namespace(
        cls,
        environment: jinja2.Environment,
        namespace: Any,
        globals: Any,
    ) -> Any:
        namespace["Macro"] = _ReturningMacro
        return super()._from_namespace(environment, namespace, globals)


def translate_test_blocks(source: str) -> str:
    """Turn dbt's `{% test name(...) %}` blocks into `test_name` macros."""
    source = _TEST_BLOCK.sub(lambda m: f"{{%{m.group(1)} macro test_{m.group(2)}(", source)
    return _END_TEST_BLOCK.sub(lambda m: f"{{%{m.group(1)} endmacro {m.group(2)}%}}", source)


class _SourceLoader(jinja2.BaseLoader):
    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = dict(sources)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if template not in self.sources:
            raise jinja2.TemplateNotFound(template)
        text = self.sources[template]
        return text, template, lambda: self.sources.get(template) == text


class Templates:
    """The Jinja environment of one project.

    `sources` maps template names (project-relative paths) to their text;
    `macro_sources` does the same for macro files. Built-in macros load first,
    so a project macro of the same name replaces a built-in one.
    """

    def __init__(
        self,
        sources: Mapping[str, str],
        macro_sources: Mapping[str, str],
        cache_dir: Path | None = None,
    ) -> None:
        builtin = {
            f"<runner>/{p.name}": p.read_text(encoding="utf-8")
            for p in sorted(BUILTIN_MACRO_DIR.glob("*.sql"))
        }
        self.macro_files = [*builtin, *macro_sources]
        self._macro_texts = {**builtin, **macro_sources}
        all_sources = {
            **sources,
            **{k: translate_test_blocks(v) for k, v in {**builtin, **macro_sources}.items()},
        }
        self.env = jinja2.Environment(
            loader=_SourceLoader(all_sources),
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
            keep_trailing_newline=True,
            autoescape=False,
            bytecode_cache=_bytecode_cache(cache_dir),
        )
        self.env.template_class = _Template
        self._lock = threading.RLock()
        self._namespace: dict[str, Any] | None = None
        self._macro_values: dict[str, Any] = {}
        self._expressions: dict[str, Callable[..., Any]] = {}
        self.macro_names: dict[str, str] = {}
        self._macro_trees = {name: self._parse(name) for name in self.macro_files}
        for name, tree in self._macro_trees.items():
            for macro in tree.find_all(jinja2.nodes.Macro):
                self.macro_names[macro.name] = name

    def _parse(self, name: str) -> jinja2.nodes.Template:
        source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
        try:
            return self.env.parse(source, name, name)
        except jinja2.TemplateSyntaxError as exc:
            raise _compilation_error(exc, name) from exc

    def macros_called(self, name: str) -> tuple[str, ...]:
        """The macros template `name` calls, by name, sorted."""
        source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
        return _macro_calls(source, self.macro_names)

    def macro_definitions(self, package: str) -> dict[str, Macro]:
        """Every macro in force (a project macro replaces a built-in one of the
        same name), with its text and the macros it calls; `package` is the
        project's name."""
        found: dict[str, Macro] = {}
        for file in self.macro_files:
            builtin = file.startswith("<runner>/")
            for macro in self._macro_trees[file].find_all(jinja2.nodes.Macro):
                if self.macro_names.get(macro.name) != file:
                    continue
                text = _definition_text(self._macro_texts[file], macro)
                body = text[text.find("%}") + 2 :]  # its calls, not its own head
                found[macro.name] = Macro(
                    name=macro.name,
                    package=BUILTIN_PACKAGE if builtin else package,
                    path=f"runner/macros/{file[len('<runner>/') :]}" if builtin else file,
                    sql=text,
                    arguments=tuple(arg.name for arg in macro.args),
                    calls=_macro_calls(body, self.macro_names),
                )
        return found

    def expression(self, text: str) -> Callable[..., Any]:
        """A compiled Jinja expression (`ref('dim_reps')`), compiled once."""
        if text not in self._expressions:
            self._expressions[text] = self.env.compile_expression(text, undefined_to_none=False)
        return self._expressions[text]

    def add_source(self, name: str, text: str) -> None:
        """Add (or replace) a template, e.g. an ad-hoc query of `kpi show`."""
        loader = self.env.loader
        assert isinstance(loader, _SourceLoader)
        loader.sources[name] = text

    def generic_tests(self) -> set[str]:
        """Names of the generic tests that exist (`not_null`, user tests, ...)."""
        return {n[len("test_") :] for n in self.macro_names if n.startswith("test_")}

    def render(self, name: str, namespace: dict[str, Any]) -> str:
        """Render template `name`; errors name the file and line."""
        try:
            template = self.env.get_template(name)
            with self._lock:
                return template.render(self._shared(namespace))
        except CompilationError:
            raise
        except MacroReturn as exc:
            return str(exc.value)
        except jinja2.TemplateSyntaxError as exc:
            raise _compilation_error(exc, name) from exc
        except Exception as exc:
            raise _compilation_error(exc, name) from exc

    def call_macro(self, macro: str, namespace: dict[str, Any], **kwargs: Any) -> str:
        """Call macro `macro` with `kwargs` in `namespace` and return its text."""
        try:
            with self._lock:
                return str(self._shared(namespace)[macro](**kwargs))
        except CompilationError:
            raise
        except Exception as exc:
            raise _compilation_error(exc, self.macro_names.get(macro, "<macro>")) from exc

    def _shared(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """The namespace every render and every macro sees, with this render's
        context functions (`ref`, `this`, ...) put in it.

        The macro files are turned into modules once per `Templates`; their
        macros look names up in this same dict at call time, so a macro that
        calls `ref()` or `var()` sees the model being rendered. Renders hold
        `self._lock`, so one render's context never leaks into another's.
        """
        if self._namespace is None:
            self._namespace = {"return": _do_return, **namespace}
            for file in self.macro_files:
                module = self.env.get_template(file).make_module(self._namespace, shared=True)
                for attr in dir(module):
                    value = getattr(module, attr)
                    if isinstance(value, jinja2.runtime.Macro):
                        self._namespace[attr] = value  # a _ReturningMacro: handles return()
            self._macro_values = {
                k: self._namespace[k] for k in self.macro_names if k in self._namespace
            }
        else:
            self._namespace.update(namespace)
            self._namespace.update(self._macro_values)
        return self._namespace


def _definition_text(text: str, macro: jinja2.nodes.Macro) -> str:
    """The text of `macro` as its file has it: from its `{% macro name(` (or a
    generic test's `{% test name(`) on its line to the end tag after it."""
    words = rf"macro\s+{macro.name}" + (
        rf"|test\s+{macro.name[len('test_') :]}" if macro.name.startswith("test_") else ""
    )
    line_start = sum(len(line) for line in text.splitlines(keepends=True)[: macro.lineno - 1])
    head = re.compile(rf"{{%-?\s*(?:{words})\s*\(").search(text, line_start)
    end = _END_DEFINITION.search(text, head.end()) if head else None
    return text[head.start() : end.end()] if head and end else ""


def _macro_calls(text: str, known: Mapping[str, str]) -> tuple[str, ...]:
    """The macros of `known` that Jinja text calls, sorted: every call in its
    code, in a branch taken or not (a macro only an incremental run calls is
    listed too)."""
    called: set[str] = set()
    for match in _CODE.finditer(_COMMENT.sub("", text)):
        code = _STRING.sub("''", match.group(1) or match.group(2))
        called.update(name for name in _CALL.findall(code) if name in known)
    return tuple(sorted(called))


def _bytecode_cache(cache_dir: Path | None) -> jinja2.BytecodeCache | None:
    if cache_dir is None:
        return None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(cache_dir))


def _compilation_error(exc: BaseException, name: str) -> CompilationError:
    """Turn any exception raised while rendering `name` into a located error."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return CompilationError(
            f"Jinja syntax error: {exc.message}.",
            path=exc.filename or name,
            line=exc.lineno,
        )
    path, line = name, None
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if frame.filename == name or not frame.filename.endswith(".py"):
            path, line = frame.filename, frame.lineno
            break
    called_from = ""
    if path != name:
        caller = next((f for f in frames if f.filename == name), None)
        called_from = f" (called from {name}:{caller.lineno})" if caller else f" (rendering {name})"
    if isinstance(exc, jinja2.UndefinedError):
        message = f"{exc.message}{called_from}."
        hint = "Define it (a macro in macros/, a var in [tool.kpi.vars]) or fix the spelling."
        return CompilationError(message, path=path, line=line, hint=hint)
    return CompilationError(f"{type(exc).__name__}: {exc}{called_from}", path=path, line=line)


def call_site_line(template_name: str) -> int | None:
    """The line of `template_name` that is calling us right now, if any."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == template_name:
            globals_ = frame.f_globals
            debug_info = globals_.get("debug_info")
            if isinstance(debug_info, str) and debug_info:
                pairs = [tuple(map(int, p.split("="))) for p in debug_info.split("&")]
                line = 1
                for template_line, code_line in pairs:
                    if code_line > frame.f_lineno:
                        break
                    line = template_line
                return line
            return None
        frame = frame.f_back  # type: ignore[assignment]
    return None


@dataclass(frozen=True)
class Target:
    """What `{{ target }}` shows: the warehouse the run writes to."""

    name: str = "dev"
    schema: str = "main"
    type: str = "duckdb"
    path: str = ""
    threads: int = 1
    profile_name: str = "kpi"


def is_ref_call(value: Any) -> bool:
    """Whether a test argument is a `ref(...)` or `source(...)` call."""
    return isinstance(value, str) and _REF_OR_SOURCE.match(value) is not None


def evaluate_argument(
    templates: Templates,
    expression: str,
    context: ModelContext,
    path: str | None,
    line: int | None,
) -> Any:
    """Evaluate a test argument such as `ref('dim_reps')` in `context`."""
    try:
        return templates.expression(expression)(**context.namespace())
    except CompilationError:
        raise
    except Exception as exc:
        raise CompilationError(
            f"test argument {expression!r} does not evaluate: {exc}.", path=path, line=line
        ) from exc


@dataclass
class ModelContext:
    """The context functions one rendering sees, and what they recorded.

    `resolve_ref(name, line)` and `resolve_source(source, table, line)` turn a
    call into a relation; the defaults used while parsing return placeholders.
    Every call is recorded in `refs`, `sources` and `config`.
    """

    path: str
    vars: Mapping[str, Any]
    this: Relation | None
    target: Target = field(default_factory=Target)
    resolve_ref: Callable[[str, int | None], Any] | None = None
    resolve_source: Callable[[str, str, int | None], Any] | None = None
    incremental: bool = False
    refs: list[tuple[str, int | None]] = field(default_factory=list)
    sources: list[tuple[str, str, int | None]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    env_reads: dict[str, str | None] = field(default_factory=dict)
    unique_id: str = ""
    last_seen: int | None = None  # `last_seen_load_id()` as this literal (Spark)

    def namespace(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "source": self.source,
            "config": self.set_config,
            "var": self.var,
            "env_var": self.env_var,
            "is_incremental": self.is_incremental,
            "last_seen_load_id": self.last_seen_load_id,
            "this": self.this,
            "target": self.target,
            "log": _log,
            "raise_compiler_error": self.raise_compiler_error,
            "exceptions": _Exceptions(self),
            "run_started_at": None,
            "sql_literal": sql_literal,
            **self.extra,
        }

    def ref(self, *args: str, **kwargs: Any) -> Any:
        if not args or len(args) > 2:
            self.raise_compiler_error("ref() takes a model name: ref('my_model').")
        name = args[-1]
        line = call_site_line(self.path)
        self.refs.append((name, line))
        if self.resolve_ref is None:
            return Relation("__ref__", name)
        return self.resolve_ref(name, line)

    def source(self, source_name: str, table_name: str) -> Any:
        line = call_site_line(self.path)
        self.sources.append((source_name, table_name, line))
        if self.resolve_source is None:
            return Relation("__source__", f"{source_name}.{table_name}")
        return self.resolve_source(source_name, table_name, line)

    def set_config(self, *args: Any, **kwargs: Any) -> str:
        if args and isinstance(args[0], Mapping):
            kwargs = {**args[0], **kwargs}
        self.config.update(kwargs)
        return ""

    def var(self, name: str, *default: Any) -> Any:
        if name in self.vars:
            return self.vars[name]
        if default:
            return default[0]
        self.raise_compiler_error(
            f"var('{name}') has no value and no default.",
            hint=f"Set it in [tool.kpi.vars] or pass --vars '{{{name}: ...}}'.",
        )

    def env_var(self, name: str, *default: Any) -> Any:
        self.env_reads[name] = os.environ.get(name)
        if name in os.environ:
            return os.environ[name]
        if default:
            return default[0]
        self.raise_compiler_error(
            f"env_var('{name}'): the environment variable is not set and has no default."
        )

    def is_incremental(self) -> bool:
        return self.incremental

    def last_seen_load_id(self) -> str:
        """SQL for the newest raw load this model had seen when it was last
        built (0 before its first build): rows with a greater `_load_id` are
        new or changed since. A subquery, so the compiled SQL stays the same
        from run to run."""
        if self.this is None or not self.unique_id:
            return "0"
        if self.last_seen is not None:
            return str(int(self.last_seen))
        return last_seen_load_id_sql(self.unique_id)

    def raise_compiler_error(self, message: str, hint: str | None = None) -> None:
        raise CompilationError(message, path=self.path, line=call_site_line(self.path), hint=hint)


class _Exceptions:
    def __init__(self, context: ModelContext) -> None:
        self._context = context

    def raise_compiler_error(self, message: str) -> None:
        self._context.raise_compiler_error(message)

    def warn(self, message: str) -> str:
        _log(f"Warning: {message}", info=True)
        return ""


def sql_literal(value: Any) -> str:
    """A value as a SQL literal, for splicing vars safely: strings are quoted
    (`it's` -> `'it''s'`), numbers and booleans are written as such, None as
    `null`; a float that is not finite as a cast (`cast('nan' as double)`).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return f"cast('{value}' as double)"
    if isinstance(value, int | float):
        return repr(value)
    return quote_literal(str(value))


def _log(message: Any, info: bool = False) -> str:
    if info:
        print(message, file=sys.stderr)
    return ""
