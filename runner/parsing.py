"""Loading a project: find its files, read its yml, render each model once.

`load_project` returns a `LoadedProject`: plain frozen nodes with their
configs and dependencies, plus the `Templates` that compile them later.
Dependencies come from the `ref`/`source` calls recorded while rendering
each model with a parse-time context, never from scanning text.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runner import graph
from runner.config import CONFIG_KEYS, make_config
from runner.crm_formats import (
    CONTRACT_TABLES_VAR,
    CRM_VAR,
    LEAD_FIELDS_VAR,
    active_sources,
    with_lead_fields,
)
from runner.errors import DependencyError, ProjectError
from runner.loaded import DISABLED, DISABLED_HINT, LoadedProject
from runner.metrics import Metric, parse_metric
from runner.nodes import (
    Column,
    Node,
    RefRecord,
    Relation,
    ResourceType,
    SourceTable,
    TestSpec,
)
from runner.settings import Settings, check_reporting_settings
from runner.templating import ModelContext, Templates, evaluate_argument, is_ref_call
from runner.yml_files import line_of, read_yml

_TEST_NAME_MAX = 64


@dataclass
class _Files:
    models: dict[str, str] = field(default_factory=dict)  # relpath -> text
    ymls: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)
    macros: dict[str, str] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)


@dataclass
class _Properties:
    models: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    model_files: dict[str, str] = field(default_factory=dict)
    seeds: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    sources: dict[str, SourceTable] = field(default_factory=dict)
    metrics: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # (yml, entry)


def load_project(settings: Settings, cli_vars: Mapping[str, Any] | None = None) -> LoadedProject:
    """Parse the project in `settings.project_dir`."""
    files = _discover(settings)
    props = _read_properties(settings, files)
    templates = Templates(
        {**files.models, **files.tests},
        files.macros,
        cache_dir=settings.target_path / "jinja_cache",
    )
    project_vars = {**settings.vars, **(cli_vars or {})}
    check_reporting_settings(project_vars)
    props.sources = active_sources(
        props.sources,
        str(project_vars.get(CRM_VAR) or "contract"),
        tuple(project_vars.get(CONTRACT_TABLES_VAR) or ()),
    )
    props.sources, lead_fields = with_lead_fields(
        props.sources, project_vars.get(LEAD_FIELDS_VAR) or {}
    )
    if lead_fields:
        project_vars[LEAD_FIELDS_VAR] = lead_fields
    env_reads: dict[str, str | None] = {}
    warnings: list[str] = []
    nodes: dict[str, Node] = {}
    names: dict[str, str] = {}

    for path, text in sorted(files.models.items()):
        node = _parse_model(settings, templates, project_vars, env_reads, props, path, text)
        _claim_name(names, node.name, path)
        if node.config.enabled:
            nodes[node.unique_id] = node
    for path in sorted(files.seeds):
        node = _parse_seed(settings, props, path)
        _claim_name(names, node.name, path)
        if node.config.enabled:
            nodes[node.unique_id] = node
    for name, entry in props.models.items():
        if name not in names:
            warnings.append(
                f"{props.model_files[name]}:{line_of(entry) or 1}: properties for "
                f"'{name}', but there is no model or seed of that name."
            )

    by_name = {n.name: n for n in nodes.values() if not n.is_test}
    tests = _parse_generic_tests(
        settings, templates, project_vars, env_reads, props, nodes, by_name
    )
    tests += _parse_singular_tests(settings, templates, project_vars, env_reads, files)
    test_names: dict[str, str] = {}
    for test in tests:
        _claim_name(test_names, test.name, test.yml_path or test.path)
        if test.config.enabled:
            nodes[test.unique_id] = test

    nodes = _resolve_dependencies(nodes, props.sources, by_name, names)
    nodes = _resolve_valid_keys(nodes, by_name)
    _add_env_names(
        env_reads, [*files.models.values(), *files.tests.values(), *files.macros.values()]
    )
    graph.check_acyclic({uid: n.depends_on for uid, n in nodes.items()}, _label(nodes))
    loaded = LoadedProject(
        settings=settings,
        nodes=MappingProxyType(nodes),
        sources=MappingProxyType(props.sources),
        vars=MappingProxyType(project_vars),
        template_sources={**files.models, **files.tests},
        macro_sources=files.macros,
        warnings=tuple(warnings),
        env_reads=env_reads,
        metrics=MappingProxyType(_metrics(props, by_name)),
        macros=MappingProxyType(templates.macro_definitions(settings.name)),
        parsed_with=templates,
    )
    return loaded


ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")


def _add_env_names(env_reads: dict[str, str | None], texts: Iterable[str]) -> None:
    """Add every environment variable named in an `env_var('NAME')` call.

    Parsing renders each model once, as a full build would; a call in a branch
    it did not take (`{% if is_incremental() %}`) is found here, so that the
    compile cache's key still covers its value.
    """
    for text in texts:
        for name in ENV_VAR_CALL.findall(text):
            env_reads.setdefault(name, os.environ.get(name))


def _resolve_valid_keys(nodes: dict[str, Node], by_name: Mapping[str, Node]) -> dict[str, Node]:
    """Turn each `valid_keys` model name into its relation; the model must
    ref it, so that it is built first."""
    for uid, node in list(nodes.items()):
        name = node.config.valid_keys
        if not name:
            continue
        target = by_name.get(name)
        if target is None or target.unique_id not in node.depends_on:
            raise ProjectError(
                f"valid_keys '{name}' of model '{node.name}' is not a model it refs.",
                path=node.path,
                hint="Name a model the model reads with ref(), e.g. "
                "valid_keys='int_months_reported'.",
            )
        config = replace(node.config, valid_keys=str(target.relation))
        nodes[uid] = replace(node, config=config)
    return nodes


def _metrics(props: _Properties, by_name: Mapping[str, Node]) -> dict[str, Metric]:
    """The `metrics:` of every yml file, checked against the marts they name."""
    metrics: dict[str, Metric] = {}
    for path, entry in props.metrics:
        mart = by_name.get(str(entry.get("mart") or ""))
        columns = mart.columns if mart is not None and mart.is_model else {}
        metric = parse_metric(entry, path, columns)
        if metric.name in metrics:
            raise ProjectError(
                f"metric '{metric.name}' is declared twice: in {metrics[metric.name].path} "
                "and here.",
                path=path,
                line=line_of(entry),
                hint="Declare every metric once, next to its mart.",
            )
        metrics[metric.name] = metric
    return metrics


def _label(nodes: Mapping[str, Node]) -> Any:
    return lambda uid: nodes[uid].name if uid in nodes else uid


def _claim_name(names: dict[str, str], name: str, path: str) -> None:
    if name in names:
        raise DependencyError(
            f"two nodes are named '{name}': {names[name]} and {path}.",
            path=path,
            hint="Names must be unique across models and seeds; rename one file.",
        )
    names[name] = path


def _discover(settings: Settings) -> _Files:
    root = settings.project_dir
    files = _Files()

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    def read(p: Path) -> str:
        try:
            return p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ProjectError("is not UTF-8 text.", path=rel(p)) from exc

    for folder in settings.model_paths:
        for p in sorted((root / folder).rglob("*")):
            if p.suffix == ".sql" and p.is_file():
                files.models[rel(p)] = read(p)
            elif p.suffix in (".yml", ".yaml") and p.is_file():
                files.ymls.append(rel(p))
    for folder in settings.seed_paths:
        for p in sorted((root / folder).rglob("*")):
            if p.suffix == ".csv" and p.is_file():
                files.seeds.append(rel(p))
            elif p.suffix in (".yml", ".yaml") and p.is_file():
                files.ymls.append(rel(p))
    for folder in settings.macro_paths:
        for p in sorted((root / folder).rglob("*.sql")):
            files.macros[rel(p)] = read(p)
    for folder in settings.test_paths:
        for p in sorted((root / folder).rglob("*.sql")):
            files.tests[rel(p)] = read(p)
    return files


def _read_properties(settings: Settings, files: _Files) -> _Properties:
    props = _Properties()
    for path in files.ymls:
        document = read_yml(settings.project_dir / path, path)
        for key, target in (("models", props.models), ("seeds", props.seeds)):
            for entry in _entries(document, key, path):
                name = str(entry["name"])
                if name in target:
                    raise ProjectError(
                        f"'{name}' is described twice: in {props.model_files[name]} and here.",
                        path=path,
                        line=line_of(entry),
                    )
                target[name] = entry
                props.model_files[name] = path
        props.metrics += [(path, entry) for entry in _entries(document, "metrics", path)]
        for entry in _entries(document, "sources", path):
            for table in source_tables(entry, path):
                if table.unique_id in props.sources:
                    raise ProjectError(
                        f"source table {table.source_name}.{table.name} is declared "
                        f"twice (also in {props.sources[table.unique_id].path}).",
                        path=path,
                    )
                props.sources[table.unique_id] = table
    return props


def _entries(document: Mapping[str, Any], key: str, path: str) -> list[Mapping[str, Any]]:
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise ProjectError(f"'{key}:' must be a list of entries.", path=path)
    for entry in entries:
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ProjectError(
                f"every entry under '{key}:' needs a name.", path=path, line=line_of(entry)
            )
    return entries


def _columns(entry: Mapping[str, Any]) -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for column in entry.get("columns") or []:
        if not isinstance(column, Mapping) or "name" not in column:
            continue
        columns[str(column["name"])] = Column(
            name=str(column["name"]),
            description=str(column.get("description") or ""),
            data_type=column.get("data_type"),
            meta=MappingProxyType(dict(column.get("meta") or {})),
        )
    return columns


def source_tables(entry: Mapping[str, Any], path: str) -> list[SourceTable]:
    """The tables of one `sources:` entry of a yml file."""
    source_name = str(entry["name"])
    tables = []
    for table in entry.get("tables") or []:
        if not isinstance(table, Mapping) or "name" not in table:
            raise ProjectError(
                f"every table of source '{source_name}' needs a name.",
                path=path,
                line=line_of(table) or line_of(entry),
            )
        name = str(table["name"])
        specs = _test_specs(table, path)
        for column in table.get("columns") or []:
            specs += _test_specs(column, path, column_name=str(column["name"]))
        tables.append(
            SourceTable(
                source_name=source_name,
                name=name,
                schema=str(entry.get("schema") or source_name),
                identifier=str(table.get("identifier") or name),
                path=path,
                description=str(table.get("description") or ""),
                columns=MappingProxyType(_columns(table)),
                meta=MappingProxyType(dict(table.get("meta") or {})),
                source_meta=MappingProxyType(dict(entry.get("meta") or {})),
                tests=tuple(specs),
            )
        )
    return tables


def _test_specs(
    entry: Mapping[str, Any], path: str, column_name: str | None = None
) -> list[TestSpec]:
    raw = entry.get("data_tests")
    if raw is None:
        raw = entry.get("tests")
    specs = []
    for item in raw or []:
        specs.append(_test_spec(item, path, column_name, line_of(entry)))
    return specs


def _test_spec(item: Any, path: str, column_name: str | None, parent_line: int | None) -> TestSpec:
    line = line_of(item) or parent_line
    if isinstance(item, str):
        return TestSpec(_bare_test_name(item), {}, column_name, {}, None, path, line)
    if not isinstance(item, Mapping) or not item:
        raise ProjectError(
            f"a test must be a name or a mapping, not {item!r}.", path=path, line=line
        )
    if "test_name" in item:
        test_name, body = (
            str(item["test_name"]),
            {k: v for k, v in item.items() if k != "test_name"},
        )
    elif len(item) == 1:
        test_name, body = next(iter(item.items()))
        body = dict(body or {})
    else:
        raise ProjectError(
            f"a test mapping has one key, the test's name; found {sorted(item)}.",
            path=path,
            line=line,
        )
    body = dict(body)
    config = dict(body.pop("config", None) or {})
    custom_name = body.pop("name", None)
    kwargs = dict(body.pop("arguments", None) or {})
    for key, value in body.items():
        if key in CONFIG_KEYS:
            config[key] = value
        else:
            kwargs[key] = value
    column = kwargs.pop("column_name", column_name)
    return TestSpec(
        _bare_test_name(str(test_name)), kwargs, column, config, custom_name, path, line
    )


def _bare_test_name(name: str) -> str:
    """`dbt_utils.expression_is_true` -> `expression_is_true`."""
    return name.rsplit(".", 1)[-1]


def _checksum(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _fqn(settings: Settings, path: str) -> tuple[str, ...]:
    parts = Path(path).with_suffix("").parts
    return (settings.name, *parts[1:])


def _relative_dir(path: str) -> str:
    return "/".join(Path(path).parts[1:-1])


def _parse_model(
    settings: Settings,
    templates: Templates,
    project_vars: Mapping[str, Any],
    env_reads: dict[str, str | None],
    props: _Properties,
    path: str,
    text: str,
) -> Node:
    name = Path(path).stem
    entry = props.models.get(name, {})
    folder = settings.folder_config("models", _relative_dir(path))
    yml_config = dict(entry.get("config") or {})
    pre = make_config({}, folder, yml_config, path=path)
    this = Relation(pre.schema, pre.alias or name)
    context = ModelContext(path=path, vars=project_vars, this=this, env_reads=env_reads)
    templates.render(path, context.namespace())
    config = make_config({}, folder, yml_config, context.config, path=path)
    return Node(
        unique_id=f"model.{settings.name}.{name}",
        resource_type=ResourceType.MODEL,
        name=name,
        path=path,
        raw_code=text,
        checksum=_checksum(text),
        config=config,
        refs=tuple(dict.fromkeys(r for r, _ in context.refs)),
        sources=tuple(dict.fromkeys((s, t) for s, t, _ in context.sources)),
        description=str(entry.get("description") or ""),
        columns=MappingProxyType(_columns(entry)),
        fqn=_fqn(settings, path),
        yml_path=props.model_files.get(name),
        calls=_calls(context),
        macros=templates.macros_called(path),
    )


def _calls(context: ModelContext, line: int | None = None) -> tuple[RefRecord, ...]:
    """The `ref()`/`source()` calls of a render (resolved to ids later); a call
    without a line of its own is placed on `line`."""
    calls = [RefRecord("ref", name, at or line) for name, at in context.refs]
    calls += [RefRecord("source", f"{s}.{t}", at or line) for s, t, at in context.sources]
    return tuple(dict.fromkeys(calls))


def _parse_seed(settings: Settings, props: _Properties, path: str) -> Node:
    name = Path(path).stem
    entry = props.seeds.get(name) or props.models.get(name) or {}
    folder = settings.folder_config("seeds", _relative_dir(path))
    config = make_config(
        {"materialized": "seed"}, folder, dict(entry.get("config") or {}), path=path
    )
    data = (settings.project_dir / path).read_bytes()
    return Node(
        unique_id=f"seed.{settings.name}.{name}",
        resource_type=ResourceType.SEED,
        name=name,
        path=path,
        raw_code="",
        checksum=_checksum(data),
        config=config,
        description=str(entry.get("description") or ""),
        columns=MappingProxyType(_columns(entry)),
        fqn=_fqn(settings, path),
        yml_path=props.model_files.get(name),
    )


def _parse_generic_tests(
    settings: Settings,
    templates: Templates,
    project_vars: Mapping[str, Any],
    env_reads: dict[str, str | None],
    props: _Properties,
    nodes: Mapping[str, Node],
    by_name: Mapping[str, Node],
) -> list[Node]:
    known = templates.generic_tests()
    tests: list[Node] = []
    targets: list[tuple[str, str, list[TestSpec]]] = []
    for node in nodes.values():
        entry = (
            props.models.get(node.name)
            if node.is_model
            else (props.seeds.get(node.name) or props.models.get(node.name))
        )
        if not entry:
            continue
        path = props.model_files[node.name]
        specs = _test_specs(entry, path)
        for column in entry.get("columns") or []:
            if isinstance(column, Mapping) and "name" in column:
                specs += _test_specs(column, path, column_name=str(column["name"]))
        targets.append((node.unique_id, node.name, specs))
    for source in props.sources.values():
        targets.append(
            (source.unique_id, f"{source.source_name}_{source.name}", list(source.tests))
        )

    for target_id, target_name, specs in targets:
        for spec in specs:
            if spec.test_name not in known:
                close = difflib.get_close_matches(spec.test_name, sorted(known), n=1)
                raise ProjectError(
                    f"unknown test '{spec.test_name}'"
                    + (f" (did you mean '{close[0]}'?)." if close else "."),
                    path=spec.yml_path,
                    line=spec.yml_line,
                    hint="Built-in tests: "
                    + ", ".join(sorted(known))
                    + "; define others with {% test name(model, column_name) %} in macros/.",
                )
            tests.append(
                _generic_test_node(
                    settings, templates, project_vars, env_reads, spec, target_id, target_name
                )
            )
    return tests


def _generic_test_node(
    settings: Settings,
    templates: Templates,
    project_vars: Mapping[str, Any],
    env_reads: dict[str, str | None],
    spec: TestSpec,
    target_id: str,
    target_name: str,
) -> Node:
    name = spec.custom_name or generic_test_name(
        spec.test_name, target_name, spec.column_name, spec.kwargs
    )
    context = ModelContext(path=spec.yml_path, vars=project_vars, this=None, env_reads=env_reads)
    for value in spec.kwargs.values():
        if is_ref_call(value):
            evaluate_argument(templates, value, context, spec.yml_path, spec.yml_line)
    folder = settings.folder_config("data_tests", "")
    config = make_config(
        {"materialized": "test", "schema": "audit"},
        folder,
        spec.config,
        path=spec.yml_path,
        line=spec.yml_line,
    )
    return Node(
        unique_id=f"test.{settings.name}.{name}",
        resource_type=ResourceType.TEST,
        name=name,
        path=spec.yml_path,
        raw_code="",
        checksum=_checksum(repr((spec.test_name, target_id, spec.column_name, spec.kwargs))),
        config=config,
        depends_on=(target_id,),
        calls=_calls(context, spec.yml_line),  # at the test's line of the yml
        test_metadata=MappingProxyType(
            {"name": spec.test_name, "kwargs": dict(spec.kwargs), "attached_node": target_id}
        ),
        column_name=spec.column_name,
        fqn=(settings.name, name),
        yml_path=spec.yml_path,
        macros=(f"test_{spec.test_name}",),
    )


def generic_test_name(
    test_name: str, target_name: str, column_name: str | None, kwargs: Mapping[str, Any]
) -> str:
    """dbt's naming: `accepted_values_stg_users_role__rep__manager`, shortened
    with a hash when longer than 64 characters."""
    base = "_".join(p for p in (test_name, target_name, column_name) if p)
    suffix_parts: list[str] = []
    for key in sorted(kwargs):
        value = kwargs[key]
        values = value if isinstance(value, list | tuple) else [value]
        suffix_parts += [str(v) for v in values]
    suffix = "__".join(suffix_parts)
    full = re.sub(r"[^0-9A-Za-z_]+", "_", f"{base}__{suffix}" if suffix else base)
    if len(full) <= _TEST_NAME_MAX:
        return full
    digest = hashlib.md5(full.encode("utf-8")).hexdigest()[:10]
    return f"{full[: _TEST_NAME_MAX - 11]}_{digest}"


def _parse_singular_tests(
    settings: Settings,
    templates: Templates,
    project_vars: Mapping[str, Any],
    env_reads: dict[str, str | None],
    files: _Files,
) -> list[Node]:
    tests = []
    for path, text in sorted(files.tests.items()):
        name = Path(path).stem
        context = ModelContext(path=path, vars=project_vars, this=None, env_reads=env_reads)
        templates.render(path, context.namespace())
        folder = settings.folder_config("data_tests", "")
        config = make_config(
            {"materialized": "test", "schema": "audit"}, folder, context.config, path=path
        )
        tests.append(
            Node(
                unique_id=f"test.{settings.name}.{name}",
                resource_type=ResourceType.TEST,
                name=name,
                path=path,
                raw_code=text,
                checksum=_checksum(text),
                config=config,
                calls=_calls(context),
                refs=tuple(dict.fromkeys(r for r, _ in context.refs)),
                sources=tuple(dict.fromkeys((s, t) for s, t, _ in context.sources)),
                fqn=(settings.name, "data", name),
                macros=templates.macros_called(path),
            )
        )
    return tests


def _resolve_dependencies(
    nodes: Mapping[str, Node],
    sources: Mapping[str, SourceTable],
    by_name: Mapping[str, Node],
    paths: Mapping[str, str],
) -> dict[str, Node]:
    """Add the unique ids that each node's `ref()`/`source()` calls name
    (`paths`: the file of every model and seed, enabled or not)."""
    resolved: dict[str, Node] = {}
    for uid, node in nodes.items():
        deps = list(node.depends_on)
        for call in node.calls:
            if call.kind == "ref":
                target = by_name.get(call.name)
                if target is None and call.name in paths:
                    raise DependencyError(
                        f"ref('{call.name}') names {paths[call.name]}, which {DISABLED}",
                        path=node.yml_path if node.is_test and node.test_metadata else node.path,
                        line=call.line,
                        hint=DISABLED_HINT,
                    )
                if target is None:
                    _missing(call.name, sorted(by_name), node, call.line, "model")
                deps.append(target.unique_id)  # type: ignore[union-attr]
            else:
                uid_ = f"source.{call.name}"
                if uid_ not in sources:
                    names = sorted(f"{s.source_name}.{s.name}" for s in sources.values())
                    _missing(call.name, names, node, call.line, "source")
                deps.append(uid_)
        resolved[uid] = replace(node, depends_on=tuple(dict.fromkeys(deps)))
    return resolved


def _missing(name: str, candidates: list[str], node: Node, line: int | None, kind: str) -> None:
    close = difflib.get_close_matches(name, candidates, n=1)
    hint = f"Did you mean '{close[0]}'?" if close else f"No {kind} has a similar name."
    call = f"ref('{name}')" if kind == "model" else "source('{}', '{}')".format(*name.split(".", 1))
    raise DependencyError(
        f"{call} names a {kind} that does not exist.",
        path=node.yml_path if node.is_test and node.test_metadata else node.path,
        line=line,
        hint=hint,
    )
