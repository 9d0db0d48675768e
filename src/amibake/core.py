"""From a loaded template to prepared builds: select, interpolate, decode, cross-check.

This is Packer's core for both template formats. For JSON templates the plugin configs are
rendered here with the run's interpolation context (user variables, build name and type,
``{{timestamp}}`` fixed for the run); the keys a plugin renders late, with build data, are left
as written and only checked for syntax. Every problem of every selected build is gathered.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake import PACKER_COMPAT_VERSION, registry
from amibake.errors import InterpolationError, Problem, TemplateError
from amibake.template.facts import PluginFacts
from amibake.template.facts import registered as registered_facts
from amibake.template.model import BuildBlock, PluginBlock, Template

if TYPE_CHECKING:
    from amibake.template.checks import Checks
    from amibake.ui.redact import Redactor


def late_keys(kind: str, type_name: str) -> frozenset[str]:
    """The config keys plugin ``type_name`` renders itself, later, with data only known then."""
    return template_facts().late(kind, type_name)


def build_data_keys(builder_type: str) -> tuple[str, ...]:
    """Every key ``{{ build `X` }}`` / ``build.X`` may name in a build of ``builder_type``."""
    return template_facts().build_data_keys(builder_type)


def complete_build_data(builder_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every key of :func:`build_data_keys` the builder did not supply set to Go's
    ``<no value>`` (see :func:`amibake.template.interpolate.complete_build_data`)."""
    from amibake.template.interpolate import complete_build_data as complete

    return complete(build_data_keys(builder_type), data)


def template_facts() -> PluginFacts:
    """The registered plugins' facts the template layer needs (gathered from the registry once, by
    :func:`amibake.template.facts.registered`); core passes them to the loaders as a parameter."""
    return registered_facts()


@dataclass
class PluginInstance:
    block: PluginBlock
    #: the config after interpolation and ``override``, as given to the plugin's decoder
    raw: dict[str, Any]
    config: Any
    pause_before: float = 0.0
    timeout: float = 0.0

    @property
    def type(self) -> str:
        return self.block.type


@dataclass
class PreparedBuild:
    name: str
    type: str
    build: BuildBlock
    builder: PluginInstance
    provisioners: list[PluginInstance] = field(default_factory=list)
    post_processors: list[list[PluginInstance]] = field(default_factory=list)
    error_cleanup: PluginInstance | None = None
    #: ``-checks FILE``: the checks of this build (provisioners run on a fresh instance of its image
    #: before it is distributed), and where their JUnit report is
    checks: list[PluginInstance] = field(default_factory=list)
    checks_file: Checks | None = None


@dataclass
class RunContext:
    """What is fixed for one run of amibake: user variables, the clock, the run id."""

    template: Template
    user_vars: dict[str, str]
    #: the run's clock, read once when the command starts (Packer's ``InitTime``): every
    #: ``{{timestamp}}``, ``{{isotime}}``, ``{{strftime}}`` and HCL2 ``timestamp()`` of the run shows it
    init_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Packer's PACKER_RUN_UUID: one UUID per run, for every build: ``{{ build `PackerRunUUID` }}``, the
    #: manifest's ``packer_run_uuid``, shell-local's environment and every resource amibake creates
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    check_files: bool = True
    force: bool = False
    #: sensitive data source outputs (Secrets Manager values, decrypted SecureStrings)
    datasource_secrets: list[str] = field(default_factory=list)
    #: HCL2: each executed data source's (outputs, sensitive values) by (type, name), for a second
    #: rendering of the template that must not call them again (the content fingerprint)
    datasource_outputs: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = field(default_factory=dict)

    @property
    def timestamp(self) -> int:
        """``{{timestamp}}``: the run's start in Unix seconds."""
        return int(self.init_time.timestamp())

    def redactor(self) -> Redactor:
        """The one redactor of this run's output: every sensitive value it knows so far."""
        from amibake.ui.redact import Redactor

        return Redactor(self.secrets())

    def secrets(self) -> list[str]:
        """The run's secrets: sensitive variables' values and sensitive data source outputs."""
        return [
            self.user_vars[v.name]
            for v in self.template.variables.values()
            if v.sensitive and self.user_vars.get(v.name)
        ] + self.datasource_secrets

    def interp(self, build_name: str | None, build_type: str | None, **kw: Any) -> Any:
        from amibake.template.interpolate import InterpContext

        facts = template_facts()
        kw.setdefault("extra_funcs", facts.template_funcs)
        kw.setdefault("renamed_funcs", facts.renamed_funcs)
        return InterpContext(
            # HCL2 has no {{user}} variables: a plugin renders legacy templates with none
            user_vars=self.user_vars if self.template.format == "json" else {},
            build_name=build_name,
            build_type=build_type,
            template_dir=str(self.template.template_dir),
            init_time=self.init_time,
            packer_version=PACKER_COMPAT_VERSION,
            **kw,
        )


def render_build_names(run: RunContext) -> None:
    """Render the user variables in a JSON template's builder ``name`` values, as Packer's core does
    once its variables are known (``Core.initialize``). The build is then known by the rendered name
    everywhere (``-only``/``-except``, output prefix, ``{{build_name}}``, the manifest); provisioner
    and post-processor ``only``/``except``/``override`` keep referring to the name as written.

    The context is Packer's ``Core.Context()``: user variables, ``template_dir``, the run's clock;
    no ``build_name``/``build_type``, no ``env``, no builder functions. Raises :class:`TemplateError`
    for a name that does not render, renders empty, or renders to another build's name (Packer
    1.6.6 silently keeps only the last of two builds with the same rendered name).
    """
    from amibake.template.interpolate import render

    if run.template.format != "json":
        return
    ctx = run.interp(None, None, extra_funcs={})
    problems: list[Problem] = []
    seen: dict[str, PluginBlock] = {}
    for _, source in run.template.all_sources():
        raw = source.raw_name or source.name
        pos = source.key_pos.get("name", source.pos)
        key = f"{source.key_path}.name"
        name = raw
        if "{{" in raw:
            try:
                name = render(raw, ctx)
            except InterpolationError as e:
                problems.append(Problem(f"Error interpolating builder '{raw}': {e.message}", key, pos))
                continue
            if not name:
                problems.append(Problem(f"builder name '{raw}' renders to an empty string", key, pos))
                continue
        other = seen.get(name)
        if other is not None:
            problems.append(
                Problem(
                    f"builder name '{raw}' renders to '{name}', the name of {other.key_path} too: "
                    "each build needs its own name",
                    key,
                    pos,
                )
            )
            continue
        seen[name] = source
        if name != raw:
            source.raw_name, source.name = raw, name
    if problems:
        raise TemplateError(problems)



def select_builds(
    template: Template, only: Sequence[str] = (), except_: Sequence[str] = ()
) -> list[tuple[BuildBlock, PluginBlock]]:
    """Packer's ``-only``/``-except``: names or glob patterns of build names."""
    out = []
    for build, source in template.all_sources():
        name = source.name
        candidates = (
            {name, f"{source.type}.{name.rsplit('.', 1)[-1]}"} if template.format == "hcl2" else {name}
        )
        if only and not any(fnmatch.fnmatchcase(c, pat) for c in candidates for pat in only):
            continue
        if except_ and any(fnmatch.fnmatchcase(c, pat) for c in candidates for pat in except_):
            continue
        out.append((build, source))
    return out


def check_min_version(template: Template) -> list[Problem]:
    want = template.min_packer_version
    if not want or template.format != "json":
        return []

    def parts(v: str) -> tuple[int, ...]:
        nums = []
        for p in v.strip().lstrip("v").split("-")[0].split("."):
            nums.append(int(p) if p.isdigit() else 0)
        return tuple(nums)

    try:
        ok = parts(want) <= parts(PACKER_COMPAT_VERSION)
    except ValueError:
        return [Problem(f"min_packer_version is not a version: {want!r}", key="min_packer_version")]
    if ok:
        return []
    return [
        Problem(
            f"This template requires Packer version {want} or higher; amibake is compatible with Packer "
            f"{PACKER_COMPAT_VERSION}",
            key="min_packer_version",
        )
    ]


class Preparer:
    def __init__(self, run: RunContext, checks: Checks | None = None) -> None:
        self.run = run
        self.checks = checks
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def _render(
        self, block: PluginBlock, raw: Mapping[str, Any], ctx: Any, late: frozenset[str]
    ) -> dict[str, Any]:
        from amibake.template.interpolate import check, render_deep

        out: dict[str, Any] = {}
        for key, value in raw.items():
            try:
                if key in late:
                    for text in strings_in(value):
                        for msg in check(text, ctx):
                            self._problem(block, key, msg)
                    out[key] = value
                else:
                    out[key] = render_deep(value, ctx)
            except InterpolationError as e:
                self._problem(block, key, f"template error in {_short(value)}: {e.message}")
                out[key] = value
        return out

    def _problem(self, block: PluginBlock, key: str | None, message: str) -> None:
        self.problems.append(
            Problem(
                message,
                key=f"{block.key_path}.{key}" if key else block.key_path,
                pos=block.key_pos.get(key, block.pos) if key else block.pos,
            )
        )

    def instance(
        self, block: PluginBlock, build: str, builder_type: str, override: Mapping[str, Any] | None = None
    ) -> PluginInstance | None:
        from amibake.config.base import CheckContext, decode
        from amibake.config.durations import parse_duration
        from amibake.template.interpolate import placeholder_build_data

        kind = block.kind
        spec = registry.lookup(kind, block.type)
        if spec is None:
            known = ", ".join(registry.known(kind))
            self._problem(
                block,
                None,
                f'unknown {kind} type "{block.type}": amibake does not implement it (it may be a third-party '
                f"plugin). Known {kind}s: {known}",
            )
            return None
        raw = dict(block.config)
        if override:
            raw.update(override)
        # Packer's plugins render legacy {{ }} templates in their option values, from JSON and HCL2 alike
        # provisioners see Packer's placeholder build data: {{ build `ID` }} becomes {{.ID}}, rendered
        # with the build's data later; a key this builder never offers is an error now, as in Packer
        placeholders = None
        if kind == "provisioner":
            placeholders = placeholder_build_data(build_data_keys(builder_type))
        ctx = self.run.interp(build, builder_type, keep_unknown_fields=True, build_fn_data=placeholders)
        raw = self._render(block, raw, ctx, late_keys(kind, block.type))
        check_ctx = CheckContext(
            template_dir=self.run.template.template_dir,
            key_path=block.key_path,
            key_pos=block.key_pos,
            check_files=self.run.check_files,
            build_name=build,
            force=self.run.force,
        )
        def decoded(r: Mapping[str, Any]) -> tuple[Any, list[Problem], list[str]]:
            return decode(spec.config_class(), r, check_ctx)

        if self.run.template.format == "hcl2":
            from amibake.template.hcl import unknowns

            # validate without executed data sources: values they feed are unknown, never value-checked
            config, problems, warnings = unknowns.prepare(decoded, raw, block.key_path)
        else:  # a JSON template has no unknown values (no data sources): no HCL2 code for it
            config, problems, warnings = decoded(raw)
        self.problems += problems
        self.warnings += [f"{block.key_path}: {w}" for w in warnings]
        inst = PluginInstance(block=block, raw=raw, config=config)
        for key in ("pause_before", "timeout"):
            text = getattr(block, key)
            if text:
                try:
                    setattr(inst, key, parse_duration(text))
                except ValueError as e:
                    self._problem(block, key, str(e))
        return inst if config is not None else None

    def prepare(self, build: BuildBlock, source: PluginBlock) -> PreparedBuild | None:
        name = source.name
        n_before = len(self.problems)
        builder = self.instance(source, name, source.type)
        prepared_provs: list[PluginInstance] = []
        short = name.rsplit(".", 1)[-1]
        # HCL2: "type.name" or the name; JSON: the builder's name as written (Packer's rawName)
        hcl2 = self.run.template.format == "hcl2"
        ref_names = {name, f"{source.type}.{short}"} if hcl2 else {source.ref_name}

        def applies(block: PluginBlock) -> bool:
            if block.only and not ref_names & set(block.only):
                return False
            return not (block.except_ and ref_names & set(block.except_))

        for p in build.provisioners:
            if not applies(p):
                continue
            override = p.override.get(source.ref_name) or p.override.get(short)
            inst = self.instance(p, name, source.type, override)
            if inst is not None:
                prepared_provs.append(inst)
        pps: list[list[PluginInstance]] = []
        for seq in build.post_processors:
            chain = []
            for pp in seq:
                if not applies(pp):
                    continue
                inst = self.instance(pp, name, source.type)
                if inst is not None:
                    chain.append(inst)
            if chain:
                pps.append(chain)
        cleanup = None
        if build.error_cleanup_provisioner is not None:
            cleanup = self.instance(build.error_cleanup_provisioner, name, source.type)
        checks = self._checks(name, source, ref_names, applies) if self.checks is not None else []
        if builder is None or len(self.problems) > n_before:
            return None
        return PreparedBuild(
            name=name,
            type=source.type,
            build=build,
            builder=builder,
            provisioners=prepared_provs,
            post_processors=pps,
            error_cleanup=cleanup,
            checks=checks,
            checks_file=self.checks if checks else None,
        )

    def _checks(self, name: str, source: PluginBlock, ref_names: set[str],
                applies: Callable[[PluginBlock], bool]) -> list[PluginInstance]:
        """The checks of ``-checks FILE`` that apply to this build, prepared as its provisioners are;
        a builder that cannot test its image is refused by name."""
        assert self.checks is not None
        blocks = [b for b in self.checks.blocks if applies(b)]
        spec = registry.lookup("builder", source.type)
        if blocks and spec is not None and not spec.checks:
            self._problem(source, None, f'-checks {self.checks.path}: builder type "{source.type}" cannot '
                          "test its image on a fresh instance; checks run only for builders that make an "
                          "image from an instance (`amibake plugins installed`)")
            return []
        out = []
        short = name.rsplit(".", 1)[-1]
        for block in blocks:
            override = block.override.get(source.ref_name) or block.override.get(short)
            inst = self.instance(block, name, source.type, override)
            if inst is not None:
                out.append(inst)
        return out


def prepare_builds(
    run: RunContext, only: Sequence[str] = (), except_: Sequence[str] = (), checks: Checks | None = None
) -> tuple[list[PreparedBuild], list[str]]:
    """Prepare every selected build (with ``checks``, the ``-checks FILE`` that apply to each);
    raises :class:`TemplateError` with all problems of all builds."""
    problems = check_min_version(run.template)
    selected = select_builds(run.template, only, except_)
    prep = Preparer(run, checks)
    out = []
    for build, source in selected:
        p = prep.prepare(build, source)
        if p is not None:
            out.append(p)
    problems += prep.problems
    if problems:
        raise TemplateError(problems)
    return out, run.template.warnings + prep.warnings


def refuse_unbuildable(builds: Sequence[PreparedBuild]) -> None:
    """``build``'s first check: raises :class:`TemplateError` naming every builder, provisioner
    (``error-cleanup-provisioner`` included) and post-processor of the selected builds that amibake
    validates but cannot run (a registry spec without an implementation), before anything starts."""
    problems: dict[tuple[str, str], Problem] = {}
    for b in builds:
        blocks = [b.builder, *b.provisioners, *(i for chain in b.post_processors for i in chain), *b.checks]
        if b.error_cleanup is not None:
            blocks.append(b.error_cleanup)
        for inst in blocks:
            block = inst.block
            spec = registry.lookup(block.kind, block.type)
            if spec is None or spec.runnable:
                continue
            where = (block.key_path, str(block.pos))
            if where not in problems:
                problems[where] = Problem(
                    f'{block.kind} type "{block.type}" is validated but cannot be built by amibake yet '
                    "(`amibake plugins installed` lists the types it can run)",
                    block.key_path,
                    block.pos,
                )
    if problems:
        in_order = sorted(problems.values(), key=_in_file_order)
        raise TemplateError(in_order)


def _in_file_order(p: Problem) -> tuple[str, int, int]:
    pos = p.pos
    return (pos.file, pos.line or 0, pos.column or 0) if pos else ("", 0, 0)


def strings_in(value: Any) -> list[str]:
    """Every string in a config value, dict keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (strings_in(k) + strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def load_template(
    path: Path,
    var_files: Sequence[Path] = (),
    cli_vars: Mapping[str, str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    execute_datasources: bool = True,
    started: datetime | None = None,
    datasource_replay: Mapping[tuple[str, str], tuple[dict[str, Any], list[str]]] | None = None,
) -> RunContext:
    """Load a JSON or HCL2 template (file or directory) and resolve its variables.

    HCL2 data sources are always configured (strictly checked); they are executed only with
    ``execute_datasources`` (``build``, ``validate -evaluate-datasources``), else their outputs
    stay unknown, as in Packer's ``validate``. ``started``: the run's clock, read once by the
    command (default: now); variables, locals, plugin configs and build names all use it.
    ``datasource_replay``: data source outputs of an earlier load (``RunContext.datasource_outputs``),
    used instead of executing them again.
    """
    from amibake.template.load import is_hcl2, load

    init_time = started or datetime.now(UTC)
    if is_hcl2(path):
        from amibake.datasources import DatasourceRunner

        runner = DatasourceRunner(
            execute=execute_datasources, template_dir=path if path.is_dir() else path.parent,
            replay=datasource_replay,
        )
        try:
            template = load(
                path, var_files=var_files, vars=cli_vars, env=env, datasource_resolver=runner,
                init_time=init_time, facts=template_facts(),
            )
        except TemplateError as err:
            raise _redacted(err, runner.secrets) from None
        values = {n: v.default for n, v in template.variables.items() if isinstance(v.default, str)}
        return RunContext(
            template=template, user_vars=values, init_time=init_time, datasource_secrets=list(runner.secrets),
            datasource_outputs=dict(runner.outputs),
        )
    if not path.exists():
        raise TemplateError([Problem(f"template file not found: {path}")])
    from amibake.template.variables import resolve_json_variables

    template = load(path)
    secrets: list[str] = []  # values read by aws_secretsmanager: redacted like data source secrets
    try:
        values = resolve_json_variables(template, var_files, cli_vars, env=env, init_time=init_time,
                                        secrets=secrets)
    except TemplateError as err:
        raise _redacted(err, secrets) from None
    run = RunContext(template=template, user_vars=values, init_time=init_time, datasource_secrets=secrets)
    render_build_names(run)
    return run


def _redacted(err: TemplateError, secrets: Sequence[str]) -> TemplateError:
    """``err`` with every sensitive data source output masked in its messages."""
    if not secrets:
        return err
    from amibake.ui.redact import without_secrets

    return without_secrets(err, secrets)
