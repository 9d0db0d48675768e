"""Loads HCL2 Packer templates (``*.pkr.hcl``) into :class:`amibake.template.model.Template`.

Semantics follow Packer's ``hcl2template`` package:

* variables: ``default`` may call only ``env()``; values come, lowest to highest, from the
  default, ``PKR_VAR_name``, ``*.auto.pkrvars.hcl`` files, ``-var-file`` files in order, ``-var``;
  values are converted to the declared (or default-inferred) type and checked by ``validation``.
* locals and data sources are evaluated lazily, in dependency order, with cycle detection.
* data sources: ``null`` runs here; other known types go to ``datasource_resolver`` when given,
  else their outputs are unknown (Packer's ``validate`` without data source execution), and an
  unknown value ends up in a plugin config as Packer's placeholder ``"<unknown>"``.
* each source used by a build becomes its own :class:`BuildBlock` (one source each), because
  provisioners and post-processors are evaluated per source (``source.name`` differs); those
  skipped by ``only``/``except`` for that source are left out, as Packer leaves them out.
* build-time values (``build.ID``, ``build.SourceAMIName``...) in provisioners and
  post-processors evaluate to the legacy ``"{{ .ID }}"`` strings, rendered late by the builder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from amibake.errors import Pos, Problem, TemplateError
from amibake.template.hcl import ast as A
from amibake.template.hcl.diagnostics import HclError
from amibake.template.hcl.evaluator import Context, LazyObject, evaluate, parse_type, source_of
from amibake.template.hcl.values import (
    ANY,
    UNKNOWN,
    ConversionError,
    Type,
    convert,
    to_plain,
)
from amibake.template.interpolate import build_data_keys
from amibake.template.model import MISSING, BuildBlock, PluginBlock, Template, Variable

DatasourceResolver = Callable[[str, str, dict[str, Any]], dict[str, Any]]

#: plugins whose components amibake implements (``packer { required_plugins }``)
IMPLEMENTED_PLUGINS = frozenset({"amazon"})

#: data source types and their output attributes (unknown in validate mode)
DATASOURCE_OUTPUTS: dict[str, list[str]] = {
    # packer-plugin-amazon datasource/*/data.go DatasourceOutput
    "amazon-ami": ["id", "name", "creation_date", "owner", "owner_name", "tags"],
    "amazon-parameterstore": ["value", "version", "arn"],
    "amazon-secretsmanager": ["value", "secret_string", "secret_binary", "version_id"],
    # Packer's datasource/http: ``request_headers`` holds the response headers (Packer's naming)
    "http": ["url", "body", "request_headers"],
    "null": ["output"],
}

#: nested blocks the amazon plugin declares as a single block (decoded to a dict);
#: every other nested block is a list of blocks (decoded to a list of dicts)
SINGLE_BLOCKS = frozenset(
    {
        "source_ami_filter",
        "security_group_filter",
        "subnet_filter",
        "vpc_filter",
        "metadata_options",
        "assume_role",
        "aws_polling",
        "vault_aws_engine",
        "placement",
        "launch_template",
        "temporary_iam_instance_profile_policy_document",
        "filters",
        "ami_filters",
        "fast_launch",
        "capacity_reservation",
        "tenancy",
        "hcp_packer_registry",
    }
)

_TOP_BLOCKS = {
    "packer": 0,
    "variable": 1,
    "variables": 0,
    "locals": 0,
    "local": 1,
    "source": 2,
    "data": 2,
    "build": 0,
}
_PROVISIONER_META = (
    "name",
    "only",
    "except",
    "pause_before",
    "max_retries",
    "timeout",
    "override",
    "continue_on_error",
)
_POST_PROCESSOR_META = ("name", "only", "except", "keep_input_artifact")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass
class _File:
    name: str
    text: str
    body: A.Body


@dataclass
class _Decl:
    var: Variable
    type: Type
    typed: bool
    nullable: bool
    validations: list[tuple[A.Node, A.Node, _File, int]]
    file: _File
    value: Any = MISSING
    value_from: str = "default"
    value_pos: Pos | None = None


@dataclass
class _Local:
    name: str
    expr: A.Node
    file: _File
    line: int
    col: int
    sensitive: bool = False
    state: str = "todo"  # todo | busy | done
    value: Any = None


@dataclass
class _Data:
    type: str
    name: str
    block: A.Block
    file: _File
    state: str = "todo"
    value: Any = None


@dataclass
class _Source:
    type: str
    name: str
    block: A.Block
    file: _File


@dataclass
class _Usage:
    ref: tuple[str, str]
    local_name: str
    body: A.Body | None
    file: _File | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def name(self) -> str:
        return self.local_name or self.ref[1]

    def __str__(self) -> str:
        return f"{self.ref[0]}.{self.name()}"


@dataclass
class _Loader:
    path: Path
    var_files: Sequence[Path]
    cli_vars: Mapping[str, str]
    env: Mapping[str, str]
    resolver: DatasourceResolver | None
    plugins: Collection[str]
    packer_version: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[_File] = field(default_factory=list)
    sources_text: dict[str, str] = field(default_factory=dict)
    decls: dict[str, _Decl] = field(default_factory=dict)
    locals: dict[str, _Local] = field(default_factory=dict)
    data: dict[tuple[str, str], _Data] = field(default_factory=dict)
    sources: dict[tuple[str, str], _Source] = field(default_factory=dict)
    builds: list[tuple[A.Block, _File]] = field(default_factory=list)
    min_version: str | None = None
    #: ``inspect``: like Packer's, unset variables are unknown and undefined sources are still listed
    lenient: bool = False
    #: the run's clock (``timestamp()``, ``legacy_isotime``); None: read when the functions are made
    init_time: datetime | None = None
    functions: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)

    # --- problems ----------------------------------------------------------------------------

    def problem(
        self,
        message: str,
        file: _File | str | None,
        line: int | None = None,
        col: int | None = None,
        key: str | None = None,
    ) -> None:
        fname = file.name if isinstance(file, _File) else file
        self.problems.append(Problem(message, key, Pos(fname, line, col) if fname else None))

    def hcl_problem(self, e: HclError, key: str | None = None) -> None:
        self.problems.append(Problem(e.message, key or e.key, e.pos))

    def eval(
        self,
        node: A.Node,
        f: _File,
        variables: Mapping[str, Any],
        key: str | None = None,
        functions: Mapping[str, Any] | None = None,
        where: str = "",
    ) -> Any:
        """Evaluate; on failure record the problem and return UNKNOWN (so later steps go on)."""
        ctx = Context(variables, self.functions if functions is None else functions, f.name, f.text, where)
        try:
            return evaluate(node, ctx)
        except HclError as e:
            if self.lenient:  # inspect shows what it can, as Packer's does
                return UNKNOWN
            expr = source_of(ctx, node)
            msg = e.message + (f" (in `{expr}`)" if expr and len(expr) < 80 and "\n" not in expr else "")
            self.problems.append(Problem(msg, key, e.pos))
            return UNKNOWN

    # --- files -------------------------------------------------------------------------------

    def discover(self) -> tuple[list[Path], list[Path]]:
        p = self.path
        if p.is_dir():
            configs = sorted(
                x for x in p.iterdir() if x.is_file() and x.name.endswith((".pkr.hcl", ".pkr.json"))
            )
            autos = sorted(
                x
                for x in p.iterdir()
                if x.is_file() and x.name.endswith((".auto.pkrvars.hcl", ".auto.pkrvars.json"))
            )
            if not configs:
                self.problem(
                    f"Could not find any config file in {p}: expected *.pkr.hcl or *.pkr.json files", str(p)
                )
            return configs, autos
        if not p.exists():
            self.problem(f"no such file or directory: {p}", str(p))
            return [], []
        return [p], []

    def read(self, p: Path) -> _File | None:
        name = str(p)
        try:
            from amibake.template.jsonpos import read_source

            text = read_source(p)  # a regular file only: /dev/zero never ends
        except (OSError, UnicodeDecodeError) as e:
            self.problem(f"cannot read file: {e}", name)
            return None
        self.sources_text[name] = text
        try:
            if name.endswith(".json"):
                from amibake.template.hcl.jsonsyntax import parse_json_body

                body = parse_json_body(text, name, varfile=name.endswith(".pkrvars.json"))
            else:
                from amibake.template.hcl.parser import parse

                body = parse(text, name)
        except HclError as e:
            self.hcl_problem(e)
            return None
        return _File(name, text, body)

    # --- top level ---------------------------------------------------------------------------

    def collect(self) -> None:
        for f in self.files:
            for attr in f.body.attributes.values():
                self.problem(
                    f'Unsupported argument: an argument named "{attr.name}" is not expected at the top level',
                    f,
                    attr.line,
                    attr.col,
                )
            for b in f.body.blocks:
                if b.type not in _TOP_BLOCKS:
                    self.problem(
                        f'Unsupported block type: blocks of type "{b.type}" are not expected here; expected '
                        "packer, variable, variables, locals, local, source, data or build",
                        f,
                        b.line,
                        b.col,
                    )
                    continue
                want = _TOP_BLOCKS[b.type]
                if len(b.labels) != want:
                    self.problem(
                        f"{b.type} block needs {want} label(s), has {len(b.labels)}", f, b.line, b.col
                    )
                    continue
                getattr(self, "top_" + b.type)(b, f)

    def top_packer(self, b: A.Block, f: _File) -> None:
        ctx: dict[str, Any] = {}
        for name, attr in b.body.attributes.items():
            if name != "required_version":
                self.problem(
                    f'Unsupported argument: "{name}" is not expected in the packer block',
                    f,
                    attr.line,
                    attr.col,
                )
                continue
            v = self.eval(attr.expr, f, ctx, key="packer.required_version", functions={})
            if not isinstance(v, str):
                self.problem("required_version must be a string", f, attr.line, attr.col)
                continue
            self.min_version = v
            err = check_version_constraint(v, self.packer_version)
            if err:
                self.problem(
                    f"Unsupported Packer Core version: {err}",
                    f,
                    attr.line,
                    attr.col,
                    key="packer.required_version",
                )
        for blk in b.body.blocks:
            if blk.type != "required_plugins":
                self.problem(
                    f'Unsupported block type: "{blk.type}" is not expected in the packer block',
                    f,
                    blk.line,
                    blk.col,
                )
                continue
            for pname, attr in blk.body.attributes.items():
                spec = self.eval(attr.expr, f, ctx, key=f"packer.required_plugins.{pname}", functions={})
                source = spec.get("source", "") if isinstance(spec, dict) else ""
                if not isinstance(spec, dict) or not isinstance(source, str) or not source:
                    self.problem(
                        f'required_plugins.{pname} must be an object with a "source" '
                        '(e.g. { source = "github.com/hashicorp/amazon", version = ">= 1" })',
                        f,
                        attr.line,
                        attr.col,
                        key=f"packer.required_plugins.{pname}",
                    )
                    continue
                short = source.rstrip("/").rsplit("/", 1)[-1].removeprefix("packer-plugin-")
                if short not in self.plugins:
                    self.problem(
                        f'Missing plugin: plugin "{pname}" ({source}) is required by this template, but '
                        f"amibake does not implement it; amibake provides: {', '.join(sorted(self.plugins))}",
                        f,
                        attr.line,
                        attr.col,
                        key=f"packer.required_plugins.{pname}",
                    )

    def top_variable(self, b: A.Block, f: _File) -> None:
        self.declare(b.labels[0], b.body, f, b.line, b.col)

    def top_variables(self, b: A.Block, f: _File) -> None:
        for blk in b.body.blocks:
            self.problem(f'Unsupported block type "{blk.type}" in variables', f, blk.line, blk.col)
        for name, attr in b.body.attributes.items():
            body = A.Body({"default": A.Attribute("default", attr.expr, attr.line, attr.col)})
            self.declare(name, body, f, attr.line, attr.col)

    def declare(self, name: str, body: A.Body, f: _File, line: int, col: int) -> None:
        key = f"var.{name}"
        if name in self.decls:
            prev = self.decls[name].var.pos
            self.problem(f'Duplicate variable: "{name}" is already declared at {prev}', f, line, col, key)
            return
        if not _IDENT.match(name):
            self.problem(
                f'Invalid variable name "{name}": a name must start with a letter or underscore and '
                "may contain only letters, digits, underscores, and dashes",
                f,
                line,
                col,
                key,
            )
        allowed = {"default", "type", "sensitive", "description", "nullable"}
        for a in body.attributes.values():
            if a.name not in allowed:
                self.problem(
                    f'Unsupported argument: "{a.name}" is not expected in a variable block; expected '
                    f"one of {', '.join(sorted(allowed))}",
                    f,
                    a.line,
                    a.col,
                    key,
                )
        var = Variable(name=name, pos=Pos(f.name, line, col))
        typ, typed = ANY, False
        if "type" in body.attributes:
            t = body.attributes["type"]
            try:
                typ = parse_type(t.expr, Context({}, {}, f.name, f.text))
                typed = True
                var.type = f.text[t.expr.start : t.expr.end]
            except HclError as e:
                self.hcl_problem(e, key)
        nolocals: dict[str, Any] = {}
        if "description" in body.attributes:
            d = self.eval(body.attributes["description"].expr, f, nolocals, key, functions={})
            var.description = d if isinstance(d, str) else None
        flags = {}
        for flag in ("sensitive", "nullable"):
            if flag in body.attributes:
                v = self.eval(body.attributes[flag].expr, f, nolocals, key, functions={})
                if not isinstance(v, bool):
                    a = body.attributes[flag]
                    self.problem(f"{flag} must be true or false", f, a.line, a.col, key)
                flags[flag] = v is True
        var.sensitive = flags.get("sensitive", False)
        decl = _Decl(var, typ, typed, flags.get("nullable", True), [], f)
        if "default" in body.attributes:
            from amibake.template.hcl.functions import env_function

            a = body.attributes["default"]
            v = self.eval(
                a.expr, f, nolocals, key, functions=env_function(self.env), where="a variable default"
            )
            if typed:
                try:
                    v = convert(v, typ)
                except ConversionError as e:
                    self.problem(
                        f"Invalid default value for variable: this default value is not compatible "
                        f"with the variable's type constraint: {e}",
                        f,
                        a.expr.line,
                        a.expr.col,
                        key,
                    )
            else:
                typ = _infer_type(v)
            decl.type = typ
            var.default = v
            decl.value = v
            decl.value_pos = Pos(f.name, a.expr.line, a.expr.col)
        for blk in body.blocks:
            if blk.type != "validation":
                self.problem(
                    f'Unsupported block type: "{blk.type}" is not expected in a variable block',
                    f,
                    blk.line,
                    blk.col,
                    key,
                )
                continue
            cond = blk.body.attributes.get("condition")
            msg = blk.body.attributes.get("error_message")
            if cond is None or msg is None:
                self.problem(
                    "a validation block needs both condition and error_message", f, blk.line, blk.col, key
                )
                continue
            decl.validations.append((cond.expr, msg.expr, f, blk.line))
        self.decls[name] = decl

    def top_locals(self, b: A.Block, f: _File) -> None:
        for blk in b.body.blocks:
            self.problem(f'Unsupported block type "{blk.type}" in locals', f, blk.line, blk.col)
        for name, attr in b.body.attributes.items():
            self.add_local(_Local(name, attr.expr, f, attr.line, attr.col))

    def top_local(self, b: A.Block, f: _File) -> None:
        name = b.labels[0]
        attrs = b.body.attributes
        if "expression" not in attrs:
            self.problem(f'local "{name}" needs an "expression" argument', f, b.line, b.col, f"local.{name}")
            return
        for a in attrs.values():
            if a.name not in ("expression", "sensitive"):
                self.problem(
                    f'Unsupported argument "{a.name}" in local block', f, a.line, a.col, f"local.{name}"
                )
        sens = False
        if "sensitive" in attrs:
            sens = self.eval(attrs["sensitive"].expr, f, {}, f"local.{name}", functions={}) is True
        self.add_local(_Local(name, attrs["expression"].expr, f, b.line, b.col, sens))

    def add_local(self, loc: _Local) -> None:
        if loc.name in self.locals:
            prev = self.locals[loc.name]
            self.problem(
                f'Duplicate local: "{loc.name}" is already defined at {prev.file.name}:{prev.line}',
                loc.file,
                loc.line,
                loc.col,
                f"local.{loc.name}",
            )
            return
        self.locals[loc.name] = loc

    def top_source(self, b: A.Block, f: _File) -> None:
        ref = (b.labels[0], b.labels[1])
        if ref in self.sources:
            prev = self.sources[ref]
            self.problem(
                f'Duplicate source block: source "{ref[0]}" "{ref[1]}" is already defined at '
                f"{prev.file.name}:{prev.block.line}",
                f,
                b.line,
                b.col,
            )
            return
        self.sources[ref] = _Source(ref[0], ref[1], b, f)

    def top_data(self, b: A.Block, f: _File) -> None:
        ref = (b.labels[0], b.labels[1])
        if ref in self.data:
            self.problem(
                f'Duplicate data block: data "{ref[0]}" "{ref[1]}" is already defined', f, b.line, b.col
            )
            return
        if ref[0] not in DATASOURCE_OUTPUTS:
            self.problem(
                f'Unknown data source type "{ref[0]}": amibake knows {", ".join(sorted(DATASOURCE_OUTPUTS))}',
                f,
                b.line,
                b.col,
                f"data.{ref[0]}.{ref[1]}",
            )
        self.data[ref] = _Data(ref[0], ref[1], b, f)

    def top_build(self, b: A.Block, f: _File) -> None:
        self.builds.append((b, f))

    # --- variable values ---------------------------------------------------------------------

    def assign(self, name: str, value: Any, origin: str, pos: Pos | None, raw_string: bool) -> None:
        decl = self.decls.get(name)
        if decl is None:
            return
        if raw_string and isinstance(value, str):
            value = self.parse_raw(decl, value, origin, pos)
            if value is MISSING:
                return
        try:
            value = convert(value, decl.type)
        except ConversionError as e:
            # a sensitive value is never quoted: only what was expected is said
            detail = str(e).split(", but have")[0] if decl.var.sensitive else str(e)
            self.problems.append(
                Problem(f'Invalid value for variable "{name}" from {origin}: {detail}', f"var.{name}", pos)
            )
            return
        if value is None and not decl.nullable:
            self.problems.append(
                Problem(f'Invalid value for variable "{name}": it is not nullable', f"var.{name}", pos)
            )
            return
        decl.value, decl.value_from, decl.value_pos = value, origin, pos

    def parse_raw(self, decl: _Decl, raw: str, origin: str, pos: Pos | None) -> Any:
        """``-var``/``PKR_VAR_`` strings: primitives as they are, other types as HCL expressions."""
        if decl.type[0] in ("string", "number", "bool", "any"):
            return raw
        from amibake.template.hcl.parser import parse_expression

        fname = f"<value for var.{decl.var.name} from {origin}>"
        try:
            node = parse_expression(raw, fname)
            return evaluate(node, Context({}, {}, fname, raw))
        except HclError as e:
            self.problems.append(
                Problem(
                    f'Invalid value for variable "{decl.var.name}" from {origin}: {e.message}',
                    f"var.{decl.var.name}",
                    pos,
                )
            )
            return MISSING

    def var_file(self, p: Path, auto: bool) -> None:
        f = self.read(p)
        if f is None:
            return
        for blk in f.body.blocks:
            self.problem(
                f'Unsupported block type "{blk.type}": a variables file only sets variables',
                f,
                blk.line,
                blk.col,
            )
        for name, attr in f.body.attributes.items():
            pos = Pos(f.name, attr.line, attr.col)
            if name not in self.decls:
                self.warnings.append(
                    f'{pos}: Undefined variable: a "{name}" variable was set but was not declared '
                    "in the template; it is ignored"
                )
                continue
            v = self.eval(attr.expr, f, {}, f"var.{name}", functions={}, where="a variables file")
            if v is not UNKNOWN:
                self.assign(name, v, f"var file {p.name}", pos, raw_string=False)

    def collect_values(self, autos: list[Path]) -> None:
        for k, v in sorted(self.env.items()):
            if k.startswith("PKR_VAR_") and k[8:] in self.decls:
                self.assign(k[8:], v, f"env {k}", None, raw_string=True)
        for p in autos:
            self.var_file(p, True)
        for p in self.var_files:
            if not p.is_file():
                self.problem(f"-var-file: no such file: {p}", str(p))
                continue
            self.var_file(p, False)
        for k, v in self.cli_vars.items():
            if k not in self.decls:
                self.problem(
                    f'Undefined -var variable: a "{k}" variable was passed in, but it is not declared '
                    "in the template",
                    None,
                    key=f"var.{k}",
                )
                continue
            self.assign(k, v, "-var", None, raw_string=True)
        for name, d in self.decls.items():
            if d.value is MISSING and self.lenient:
                d.value = UNKNOWN
                continue
            if d.value is MISSING:
                self.problems.append(
                    Problem(
                        f'Unset variable "{name}": a used variable must be set or have a default value; '
                        f"set it with -var {name}=..., a var file or PKR_VAR_{name}",
                        f"var.{name}",
                        d.var.pos,
                    )
                )
                continue
            for cond, msg, f, line in d.validations:
                ok = self.eval(
                    cond, f, {"var": {name: d.value}}, f"var.{name}", where="a validation condition"
                )
                if ok is UNKNOWN:
                    continue
                if not isinstance(ok, bool):
                    self.problem(
                        "Invalid variable validation result: the condition must be true or false",
                        f,
                        cond.line,
                        cond.col,
                        f"var.{name}",
                    )
                    continue
                if not ok:
                    text = self.eval(msg, f, {}, f"var.{name}", functions={})
                    pos = d.value_pos or Pos(f.name, line)
                    self.problems.append(
                        Problem(
                            f"Invalid value for {d.value_from} variable: {text} "
                            f"(checked by the validation rule at {f.name}:{line})",
                            f"var.{name}",
                            pos,
                        )
                    )

    # --- evaluation context ------------------------------------------------------------------

    def base_vars(self) -> dict[str, Any]:
        cwd = os.getcwd().replace("\\", "/")
        root = str(self.path if self.path.is_dir() else self.path.parent).replace("\\", "/")
        return {
            "var": {n: (UNKNOWN if d.value is MISSING else d.value) for n, d in self.decls.items()},
            "local": LazyObject(list(self.locals), self.resolve_local, "local"),
            "data": self.data_object(),
            "path": {"cwd": cwd, "root": root},
            "packer": {"version": self.packer_version, "iterationID": UNKNOWN, "versionFingerprint": UNKNOWN},
            "source": {"type": UNKNOWN, "name": UNKNOWN},
            "build": UNKNOWN,
        }

    def data_object(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t, _name in self.data:
            names = [nm for (tt, nm) in self.data if tt == t]
            out[t] = LazyObject(names, self._data_resolver(t), f"data.{t}")
        return out

    def resolve_local(self, name: str) -> Any:
        loc = self.locals[name]
        if loc.state == "done":
            return loc.value
        if loc.state == "busy":
            raise HclError(
                f"Cyclic dependency: local.{name} depends on itself",
                loc.file.name,
                loc.line,
                loc.col,
                f"local.{name}",
            )
        loc.state = "busy"
        try:
            loc.value = self.eval(loc.expr, loc.file, self.vars, f"local.{name}")
        finally:
            loc.state = "done"
        return loc.value

    def _data_resolver(self, typ: str) -> Callable[[str], Any]:
        return lambda name: self.resolve_data(typ, name)

    def resolve_data(self, typ: str, name: str) -> Any:
        d = self.data[(typ, name)]
        key = f"data.{typ}.{name}"
        if d.state == "done":
            return d.value
        if d.state == "busy":
            raise HclError(
                f"Cyclic dependency: {key} depends on itself", d.file.name, d.block.line, d.block.col, key
            )
        d.state = "busy"
        try:
            n_before = len(self.problems)
            config, _ = self.decode_body(d.block.body, d.file, self.vars, key)
            failed = len(self.problems) > n_before
            outputs = DATASOURCE_OUTPUTS.get(typ, [])
            if typ == "null":
                d.value = {"output": config.get("input")}
            elif self.resolver is not None and not failed and typ in DATASOURCE_OUTPUTS:
                try:
                    got = self.resolver(typ, name, to_plain(config))
                except HclError as e:
                    self.hcl_problem(e, key)
                    got = {}
                except Exception as e:  # a resolver failure is the user's problem to read, not a traceback
                    self.problem(
                        f"Error executing data source {typ}.{name}: {e}",
                        d.file,
                        d.block.line,
                        d.block.col,
                        key,
                    )
                    got = {}
                d.value = {o: got.get(o, UNKNOWN) for o in outputs} | dict(got)
            else:
                d.value = {o: UNKNOWN for o in outputs}
        finally:
            d.state = "done"
        return d.value

    # --- bodies to config dicts --------------------------------------------------------------

    def decode_body(
        self, body: A.Body, f: _File, variables: Mapping[str, Any], key: str, skip: Collection[str] = ()
    ) -> tuple[dict[str, Any], dict[str, Pos]]:
        out: dict[str, Any] = {}
        pos: dict[str, Pos] = {}
        for item in body.order:
            if isinstance(item, A.Attribute):
                if item.name in skip:
                    continue
                out[item.name] = self.eval(item.expr, f, variables, f"{key}.{item.name}")
                pos[item.name] = Pos(f.name, item.line, item.col)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for blk, bvars in self.expand_blocks(body, f, variables, key):
            sub, _ = self.decode_body(blk.body, f, bvars, f"{key}.{blk.type}")
            grouped.setdefault(blk.type, []).append(sub)
            pos.setdefault(blk.type, Pos(f.name, blk.line, blk.col))
        for name, items in grouped.items():
            if name in out:
                self.problem(
                    f'"{name}" is set both as an argument and as a block',
                    pos[name].file,
                    pos[name].line,
                    pos[name].column,
                    f"{key}.{name}",
                )
            if name in SINGLE_BLOCKS:
                if len(items) > 1:
                    p = pos[name]
                    self.problem(
                        f'Duplicate {name} block: only one "{name}" block is allowed',
                        p.file,
                        p.line,
                        p.column,
                        f"{key}.{name}",
                    )
                out[name] = items[0]
            else:
                out[name] = items
        return out, pos

    def expand_blocks(
        self, body: A.Body, f: _File, variables: Mapping[str, Any], key: str
    ) -> list[tuple[A.Block, Mapping[str, Any]]]:
        out: list[tuple[A.Block, Mapping[str, Any]]] = []
        for blk in body.blocks:
            if blk.type != "dynamic":
                out.append((blk, variables))
                continue
            if len(blk.labels) != 1:
                self.problem(
                    "a dynamic block needs exactly one label: the type of block to generate",
                    f,
                    blk.line,
                    blk.col,
                    key,
                )
                continue
            btype = blk.labels[0]
            attrs = blk.body.attributes
            content = [b for b in blk.body.blocks if b.type == "content"]
            if "for_each" not in attrs or len(content) != 1:
                self.problem(
                    f'dynamic "{btype}" needs a for_each argument and one content block',
                    f,
                    blk.line,
                    blk.col,
                    f"{key}.{btype}",
                )
                continue
            it = btype
            if "iterator" in attrs:
                itn = attrs["iterator"].expr
                if isinstance(itn, A.Variable):
                    it = itn.name
                else:
                    self.problem("iterator must be a plain name", f, itn.line, itn.col, f"{key}.{btype}")
            coll = self.eval(attrs["for_each"].expr, f, variables, f"{key}.{btype}.for_each")
            if coll is UNKNOWN or coll is None:
                continue
            if isinstance(coll, dict):
                pairs = [(k, coll[k]) for k in sorted(coll)]
            elif isinstance(coll, list):
                pairs = [(v, v) if not isinstance(v, (dict, list)) else (i, v) for i, v in enumerate(coll)]
            else:
                e = attrs["for_each"].expr
                self.problem(
                    "Invalid dynamic for_each value: a list, set or map is required, "
                    f"not {type(coll).__name__}",
                    f,
                    e.line,
                    e.col,
                    f"{key}.{btype}",
                )
                continue
            for k, v in pairs:
                inner = dict(variables)
                inner[it] = {"key": k, "value": v}
                labels: list[str] = []
                if "labels" in attrs:
                    lv = self.eval(attrs["labels"].expr, f, inner, f"{key}.{btype}.labels")
                    if not isinstance(lv, list) or not all(isinstance(x, str) for x in lv):
                        e = attrs["labels"].expr
                        self.problem(
                            "dynamic block labels must be a list of strings",
                            f,
                            e.line,
                            e.col,
                            f"{key}.{btype}.labels",
                        )
                        break
                    labels = list(lv)
                gen = A.Block(btype, labels, content[0].body, blk.line, blk.col)
                # dynamic blocks may nest: expand with the iterator in scope
                out.append((gen, inner))
        return out

    # --- builds ------------------------------------------------------------------------------

    def load_builds(self) -> list[BuildBlock]:
        out: list[BuildBlock] = []
        for b, f in self.builds:
            out.extend(self.load_build(b, f))
        return out

    def load_build(self, b: A.Block, f: _File) -> list[BuildBlock]:
        attrs = b.body.attributes
        bname, desc = "", None
        for a in attrs.values():
            if a.name not in ("name", "description", "sources"):
                self.problem(
                    f'Unsupported argument: "{a.name}" is not expected in a build block',
                    f,
                    a.line,
                    a.col,
                    "build",
                )
        if "name" in attrs:
            v = self.eval(attrs["name"].expr, f, self.vars, "build.name")
            bname = v if isinstance(v, str) else ""
        if "description" in attrs:
            v = self.eval(attrs["description"].expr, f, self.vars, "build.description")
            desc = v if isinstance(v, str) else None
        key = f"build.{bname}" if bname else "build"
        usages: list[_Usage] = []
        if "sources" in attrs:
            a = attrs["sources"]
            refs = self.eval(a.expr, f, self.vars, f"{key}.sources")
            if refs is not UNKNOWN and (
                not isinstance(refs, list) or not all(isinstance(r, str) for r in refs)
            ):
                self.problem(
                    'sources must be a list of source references like "source.amazon-ebs.NAME"',
                    f,
                    a.line,
                    a.col,
                    f"{key}.sources",
                )
            elif isinstance(refs, list):
                for r in refs:
                    ref = source_ref(r)
                    if ref is None:
                        self.problem(
                            f'Invalid source reference "{r}": a valid source reference looks like '
                            "source.TYPE.NAME",
                            f,
                            a.line,
                            a.col,
                            f"{key}.sources",
                        )
                        continue
                    usages.append(_Usage(ref, "", None, None))
        provs: list[tuple[A.Block, Mapping[str, Any]]] = []
        cleanup: A.Block | None = None
        pp_lists: list[list[tuple[A.Block, Mapping[str, Any]]]] = []
        for blk, extra in self.expand_blocks(b.body, f, self.vars, key):
            if blk.type == "source":
                ref = source_ref(blk.labels[0]) if len(blk.labels) == 1 else None
                if ref is None:
                    self.problem(
                        'a source block inside build takes one label "TYPE.NAME"', f, blk.line, blk.col, key
                    )
                    continue
                local = ""
                if "name" in blk.body.attributes:
                    v = self.eval(blk.body.attributes["name"].expr, f, extra, f"{key}.source.name")
                    local = v if isinstance(v, str) else ""
                usages.append(
                    _Usage(ref, local, blk.body, f, {k: v for k, v in extra.items() if k not in self.vars})
                )
            elif blk.type == "provisioner" and len(blk.labels) == 1:
                provs.append((blk, extra))
            elif blk.type == "error-cleanup-provisioner" and len(blk.labels) == 1:
                if cleanup is not None:
                    self.problem("Only one error-cleanup-provisioner is allowed", f, blk.line, blk.col, key)
                cleanup = blk
            elif blk.type == "post-processor" and len(blk.labels) == 1:
                pp_lists.append([(blk, extra)])
            elif blk.type == "post-processors" and not blk.labels:
                seq = []
                for inner, iextra in self.expand_blocks(blk.body, f, extra, key):
                    if inner.type != "post-processor" or len(inner.labels) != 1:
                        self.problem(
                            f'Unsupported block type "{inner.type}" in post-processors: expected '
                            'post-processor "TYPE" blocks',
                            f,
                            inner.line,
                            inner.col,
                            key,
                        )
                        continue
                    seq.append((inner, iextra))
                for a in blk.body.attributes.values():
                    self.problem(f'Unsupported argument "{a.name}" in post-processors', f, a.line, a.col, key)
                pp_lists.append(seq)
            elif blk.type == "hcp_packer_registry" and not blk.labels:
                self.warnings.append(
                    f"{f.name}:{blk.line}: hcp_packer_registry is accepted but ignored: amibake "
                    "does not publish to HCP Packer"
                )
            else:
                self.problem(
                    f'Unsupported block type: "{blk.type}" with {len(blk.labels)} label(s) is not '
                    "expected in a build block",
                    f,
                    blk.line,
                    blk.col,
                    key,
                )
        if not usages:
            self.problem(
                "missing source reference: a build block must reference at least one source to be built",
                f,
                b.line,
                b.col,
                key,
            )
        out: list[BuildBlock] = []
        for u in usages:
            src = self.sources.get(u.ref)
            if src is None and self.lenient:
                src = _Source(u.ref[0], u.ref[1], A.Block(u.ref[0], list(u.ref), A.Body(), b.line, b.col), f)
            if src is None:
                known = ", ".join(f"{t}.{n}" for t, n in sorted(self.sources)) or "none"
                self.problem(
                    f"Unknown source {u.ref[0]}.{u.ref[1]}: known sources: {known}",
                    f,
                    b.line,
                    b.col,
                    f"{key}.sources",
                )
                continue
            out.append(self.load_usage(bname, desc, b, f, u, src, provs, cleanup, pp_lists))
        return out

    def load_usage(
        self,
        bname: str,
        desc: str | None,
        b: A.Block,
        f: _File,
        u: _Usage,
        src: _Source,
        provs: list[tuple[A.Block, Mapping[str, Any]]],
        cleanup: A.Block | None,
        pp_lists: list[list[tuple[A.Block, Mapping[str, Any]]]],
    ) -> BuildBlock:
        svars = dict(self.vars)
        svars.update(u.extra)
        svars["source"] = {"type": u.ref[0], "name": u.name()}
        key = f"source.{src.type}.{src.name}"
        config, kpos = self.decode_body(src.block.body, src.file, svars, key)
        if u.body is not None and u.file is not None:
            more, mpos = self.decode_body(u.body, u.file, svars, key, skip=("name",))
            for k, v in more.items():
                if k in config and not isinstance(v, list):
                    p = mpos[k]
                    self.problem(
                        f'Duplicate argument: "{k}" is already set in source "{src.type}" "{src.name}" '
                        f"at {kpos[k]}; a build's source block may only add arguments",
                        p.file,
                        p.line,
                        p.column,
                        f"{key}.{k}",
                    )
                    continue
                if k in config and isinstance(v, list) and isinstance(config[k], list):
                    config[k] = config[k] + v
                else:
                    config[k] = v
                    kpos[k] = mpos[k]
        full_name = f"{bname}.{u}" if bname else str(u)
        builder = PluginBlock(
            kind="builder",
            type=src.type,
            name=full_name,
            config=to_plain(config),
            pos=Pos(src.file.name, src.block.line, src.block.col),
            key_pos=kpos,
            key_path=key,
        )
        bvars = dict(svars)
        # Packer's BuilderDataCommonKeys and this builder's generated data; each becomes the legacy
        # {{ .Key }} the plugin renders with the build's data (a missing one: "<no value>")
        build_obj: dict[str, Any] = {k: "{{ ." + k + " }}" for k in build_data_keys(src.type)}
        build_obj["name"] = bname
        bvars["build"] = build_obj
        provisioners: list[PluginBlock] = []
        for blk, extra in provs:
            pvars = dict(bvars)
            pvars.update({k: v for k, v in extra.items() if k not in self.vars})
            pb = self.plugin(blk, f, pvars, "provisioner", u)
            if pb is not None:
                provisioners.append(pb)
        cleanup_block = self.plugin(cleanup, f, bvars, "provisioner", u) if cleanup else None
        pps: list[list[PluginBlock]] = []
        for seq in pp_lists:
            chain: list[PluginBlock] = []
            for blk, extra in seq:
                pvars = dict(bvars)
                pvars.update({k: v for k, v in extra.items() if k not in self.vars})
                pb = self.plugin(blk, f, pvars, "post-processor", u)
                if pb is not None:
                    chain.append(pb)
            if chain:
                pps.append(chain)
        return BuildBlock(
            name=bname,
            sources=[builder],
            provisioners=provisioners,
            post_processors=pps,
            error_cleanup_provisioner=cleanup_block,
            description=desc,
            pos=Pos(f.name, b.line, b.col),
        )

    def plugin(
        self,
        blk: A.Block,
        f: _File,
        variables: Mapping[str, Any],
        kind: Literal["provisioner", "post-processor"],
        u: _Usage,
    ) -> PluginBlock | None:
        ptype = blk.labels[0]
        key = f"{kind} {ptype!r}"
        attrs = blk.body.attributes
        meta_names = _PROVISIONER_META if kind == "provisioner" else _POST_PROCESSOR_META
        meta: dict[str, Any] = {}
        for m in meta_names:
            if m in attrs:
                meta[m] = self.eval(attrs[m].expr, f, variables, f"{key}.{m}")
        only = self.str_list(meta.get("only"), attrs.get("only"), f, f"{key}.only")
        except_ = self.str_list(meta.get("except"), attrs.get("except"), f, f"{key}.except")
        if only and except_:
            self.problem("only one of only or except may be set", f, blk.line, blk.col, key)
        target = str(u)
        if not self.lenient and ((only and target not in only) or (except_ and target in except_)):
            return None
        config, kpos = self.decode_body(blk.body, f, variables, key, skip=meta_names)
        pb = PluginBlock(
            kind=kind,
            type=ptype,
            name=str(meta["name"]) if isinstance(meta.get("name"), str) else "",
            config=to_plain(config),
            pos=Pos(f.name, blk.line, blk.col),
            key_pos=kpos,
            key_path=key,
            only=only,
            except_=except_,
        )
        for dname in ("pause_before", "timeout"):
            v = meta.get(dname)
            if v is None or v is UNKNOWN:
                continue
            if not isinstance(v, str) or not _valid_duration(v):
                a = attrs[dname]
                self.problem(
                    f'Failed to parse {dname} duration: "{v}" is not a duration like "30s" or "5m"',
                    f,
                    a.line,
                    a.col,
                    f"{key}.{dname}",
                )
                continue
            setattr(pb, dname, v)
        if "max_retries" in meta and meta["max_retries"] is not UNKNOWN:
            v = meta["max_retries"]
            if isinstance(v, str) and v.isdigit():
                v = int(v)
            if not isinstance(v, int) or isinstance(v, bool):
                a = attrs["max_retries"]
                self.problem("max_retries must be a whole number", f, a.line, a.col, f"{key}.max_retries")
            else:
                pb.max_retries = v
        if "override" in meta and meta["override"] not in (None, UNKNOWN):
            ov = meta["override"]
            if not isinstance(ov, dict) or not all(isinstance(x, dict) for x in ov.values()):
                a = attrs["override"]
                self.problem(
                    f"{kind}'s override must be an object of objects keyed by source name",
                    f,
                    a.line,
                    a.col,
                    f"{key}.override",
                )
            else:
                pb.override = to_plain(ov)
        if "keep_input_artifact" in meta and isinstance(meta["keep_input_artifact"], bool):
            pb.keep_input_artifact = meta["keep_input_artifact"]
        return pb

    def str_list(self, v: Any, attr: A.Attribute | None, f: _File, key: str) -> list[str]:
        if v is None or v is UNKNOWN or attr is None:
            return []
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return list(v)
        self.problem('expected a list of strings like ["amazon-ebs.NAME"]', f, attr.line, attr.col, key)
        return []

    def read_secret(self, name: str, args: list[Any]) -> Any:
        """``aws_secretsmanager(name, key)``: read when data sources are executed (``build``,
        ``validate -evaluate-datasources``), unknown otherwise, as data source outputs are; the value
        goes to the data source runner's secrets, which the run redacts. ``vault``/``consul_key``:
        unknown."""
        if name != "aws_secretsmanager" or not getattr(self.resolver, "execute", False):
            return UNKNOWN
        from amibake.template.aws_secrets import AwsSecretError, get_aws_secret
        from amibake.template.hcl.evaluator import FunctionError

        secret_name, key = [*args, None, None][:2]
        if not isinstance(secret_name, str) or not isinstance(key, str | None):
            raise FunctionError("aws_secretsmanager(name, key): name must be a string, key a string or null")
        try:
            value = get_aws_secret(secret_name, key or "")
        except AwsSecretError as e:
            raise FunctionError(str(e)) from None
        secrets = getattr(self.resolver, "secrets", None)
        if isinstance(secrets, list) and value and value not in secrets:
            secrets.append(value)
        return value

    # --- the whole load ----------------------------------------------------------------------

    def run(self) -> Template:
        from amibake.template.hcl.functions import make_functions
        from amibake.template.hcl.templatefile import render_template_file

        base = self.path if self.path.is_dir() else self.path.parent
        funcs: dict[str, Any] = {}
        funcs.update(
            make_functions(
                base,
                init_time=self.init_time,
                templatefile_render=lambda text, name, v: render_template_file(text, name, v, funcs),
                secret=self.read_secret,
            )
        )
        self.functions = funcs
        configs, autos = self.discover()
        for p in configs:
            f = self.read(p)
            if f is not None:
                self.files.append(f)
        if self.problems:
            raise TemplateError(self.problems)
        self.collect()
        self.collect_values(autos)
        self.vars = self.base_vars()
        for name in self.locals:
            try:
                self.resolve_local(name)
            except HclError as e:
                self.hcl_problem(e)
        for t, n in self.data:
            try:
                self.resolve_data(t, n)
            except HclError as e:
                self.hcl_problem(e)
        builds = self.load_builds()
        if not self.builds and not self.problems:
            self.warnings.append("no build block: a build block with one or more sources is needed to build")
        if self.problems:
            raise TemplateError(_dedupe(self.problems))
        tpl = Template(
            path=self.path,
            format="hcl2",
            template_dir=base,
            builds=builds,
            variables={n: self.template_var(d) for n, d in self.decls.items()},
            min_packer_version=self.min_version,
            sources=self.sources_text,
            warnings=self.warnings,
            locals={n: to_plain(loc.value) for n, loc in self.locals.items()},
            sensitive_locals={n for n, loc in self.locals.items() if loc.sensitive},
        )
        return tpl

    def template_var(self, d: _Decl) -> Variable:
        v = d.var
        # the model's ``default`` carries the resolved value (what builds use)
        v.default = to_plain(d.value) if d.value is not MISSING else MISSING
        return v


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        s = str(p)
        if s not in seen:
            seen.add(s)
            out.append(p)
    return out


def _infer_type(v: Any) -> Type:
    if isinstance(v, bool):
        return ("bool",)
    if isinstance(v, (int, float)):
        return ("number",)
    if isinstance(v, str):
        return ("string",)
    if isinstance(v, list) and v:
        return ("list", ANY)
    if isinstance(v, dict) and v:
        return ("map", ANY)
    return ANY


def source_ref(s: str) -> tuple[str, str] | None:
    parts = s.split(".")
    if len(parts) < 2:
        return None
    if len(parts) > 2:
        parts = parts[1:]
    t, n = parts[0], parts[1]
    if not _IDENT.match(t) or not _IDENT.match(n):
        return None
    return t, n


def _valid_duration(s: str) -> bool:
    return bool(re.fullmatch(r"[+-]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+|0", s.strip()))


# --- version constraints (hashicorp/go-version) ----------------------------------------------

_CONSTRAINT = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*v?([0-9]+(?:\.[0-9]+)*)(-[0-9A-Za-z.-]+)?\s*$")


def _vtuple(s: str, n: int = 3) -> tuple[int, ...]:
    parts = [int(x) for x in s.split(".")]
    return tuple(parts + [0] * (n - len(parts)))


def check_version_constraint(constraint: str, version: str) -> str | None:
    """None when ``version`` satisfies ``constraint`` (e.g. ``">= 1.7.0, < 2"``), else why not."""
    have = _vtuple(version.split("-")[0])
    for part in constraint.split(","):
        m = _CONSTRAINT.match(part)
        if not m:
            return f"malformed version constraint {part.strip()!r}"
        op, want_s = m.group(1) or "=", m.group(2)
        want = _vtuple(want_s)
        if op == "~>":
            segs = want_s.split(".")
            prefix = _vtuple(".".join(segs[:-1]), 0) if len(segs) > 1 else ()
            ok = have >= want and have[: len(prefix)] == prefix
        else:
            ok = {
                "=": have == want,
                "!=": have != want,
                ">": have > want,
                "<": have < want,
                ">=": have >= want,
                "<=": have <= want,
            }[op]
        if not ok:
            return (
                f"this configuration requires Packer {constraint!r}; amibake is compatible with Packer "
                f"{version}"
            )
    return None


def load(
    path: Path,
    var_files: Sequence[Path],
    vars: Mapping[str, str],
    env: Mapping[str, str] | None,
    datasource_resolver: DatasourceResolver | None,
    plugins: Collection[str] | None,
    packer_version: str,
    lenient: bool = False,
    init_time: datetime | None = None,
) -> Template:
    loader = _Loader(
        init_time=init_time,
        lenient=lenient,
        path=path,
        var_files=list(var_files),
        cli_vars=dict(vars),
        env=dict(os.environ if env is None else env),
        resolver=datasource_resolver,
        plugins=frozenset(IMPLEMENTED_PLUGINS if plugins is None else plugins),
        packer_version=packer_version,
    )
    try:
        return loader.run()
    except TemplateError as err:  # no problem shows a sensitive variable's or local's value
        from amibake.ui.redact import leaves, without_secrets

        hidden = {k for k, d in loader.decls.items() if d.var.sensitive}
        secret = [loader.decls[k].value for k in hidden if loader.decls[k].value is not MISSING]
        secret += [loader.cli_vars.get(k) for k in hidden] + [loader.env.get(f"PKR_VAR_{k}") for k in hidden]
        secret += [loc.value for loc in loader.locals.values() if loc.sensitive]
        raise without_secrets(err, leaves(secret)) from None
    except RecursionError:
        raise TemplateError(
            [Problem("the template nests too deeply to evaluate", None, Pos(str(path)))]
        ) from None
