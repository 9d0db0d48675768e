"""The HCL loader's variables and locals: their declarations, their values and which ones are sensitive.

Values come, lowest to highest, from the default, ``PKR_VAR_name``, ``*.auto.pkrvars.hcl`` files,
``-var-file`` files in order, ``-var``; they are converted to the declared (or default-inferred) type
and checked by ``validation`` blocks. A ``default`` may call only ``env()``. Locals are only declared
here; the scope (``scope.py``) evaluates them, lazily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amibake.errors import Pos, Problem
from amibake.template.hcl import ast as A
from amibake.template.hcl.base import IDENT, File, Recorder
from amibake.template.hcl.diagnostics import HclError
from amibake.template.hcl.evaluator import Context, evaluate, parse_type
from amibake.template.hcl.values import ANY, UNKNOWN, ConversionError, Type, convert, to_plain
from amibake.template.model import MISSING, Variable

_VARIABLE_ARGS = {"default", "type", "sensitive", "description", "nullable"}


@dataclass
class Decl:
    """A declared variable, its type and where its value came from."""

    var: Variable
    type: Type
    typed: bool
    nullable: bool
    validations: list[tuple[A.Node, A.Node, File, int]]
    file: File
    value: Any = MISSING
    value_from: str = "default"
    value_pos: Pos | None = None


@dataclass
class Local:
    """A declared local; ``state``/``value`` are the scope's, which evaluates it once."""

    name: str
    expr: A.Node
    file: File
    line: int
    col: int
    sensitive: bool = False
    state: str = "todo"  # todo | busy | done
    value: Any = None


@dataclass
class Variables:
    """``variable``/``variables``/``local``/``locals`` blocks and the values given to the variables."""

    rec: Recorder
    var_files: Sequence[Path]
    cli_vars: Mapping[str, str]
    env: Mapping[str, str]
    decls: dict[str, Decl] = field(default_factory=dict)
    locals: dict[str, Local] = field(default_factory=dict)

    # --- declarations ------------------------------------------------------------------------

    def top_variable(self, b: A.Block, f: File) -> None:
        self.declare(b.labels[0], b.body, f, b.line, b.col)

    def top_variables(self, b: A.Block, f: File) -> None:
        for blk in b.body.blocks:
            self.rec.problem(f'Unsupported block type "{blk.type}" in variables', f, blk.line, blk.col)
        for name, attr in b.body.attributes.items():
            body = A.Body({"default": A.Attribute("default", attr.expr, attr.line, attr.col)})
            self.declare(name, body, f, attr.line, attr.col)

    def declare(self, name: str, body: A.Body, f: File, line: int, col: int) -> None:
        key = f"var.{name}"
        if name in self.decls:
            prev = self.decls[name].var.pos
            self.rec.problem(f'Duplicate variable: "{name}" is already declared at {prev}', f, line, col, key)
            return
        self._check_declaration(name, body, f, line, col, key)
        var = Variable(name=name, pos=Pos(f.name, line, col))
        typ, typed = self._declared_type(var, body, f, key)
        flags = self._description_and_flags(var, body, f, key)
        var.sensitive = flags.get("sensitive", False)
        decl = Decl(var, typ, typed, flags.get("nullable", True), [], f)
        if "default" in body.attributes:
            self._default(decl, body.attributes["default"], f, key)
        self._validations(decl, body, f, key)
        self.decls[name] = decl

    def _check_declaration(self, name: str, body: A.Body, f: File, line: int, col: int, key: str) -> None:
        if not IDENT.match(name):
            self.rec.problem(
                f'Invalid variable name "{name}": a name must start with a letter or underscore and '
                "may contain only letters, digits, underscores, and dashes",
                f,
                line,
                col,
                key,
            )
        for a in body.attributes.values():
            if a.name not in _VARIABLE_ARGS:
                self.rec.problem(
                    f'Unsupported argument: "{a.name}" is not expected in a variable block; expected '
                    f"one of {', '.join(sorted(_VARIABLE_ARGS))}",
                    f,
                    a.line,
                    a.col,
                    key,
                )

    def _declared_type(self, var: Variable, body: A.Body, f: File, key: str) -> tuple[Type, bool]:
        """The ``type`` argument's type (and its text in ``var.type``), or ANY; and whether it was given."""
        if "type" not in body.attributes:
            return ANY, False
        t = body.attributes["type"]
        try:
            typ = parse_type(t.expr, Context({}, {}, f.name, f.text))
        except HclError as e:
            self.rec.hcl_problem(e, key)
            return ANY, False
        var.type = f.text[t.expr.start : t.expr.end]
        return typ, True

    def _description_and_flags(self, var: Variable, body: A.Body, f: File, key: str) -> dict[str, bool]:
        """Sets ``var.description``; returns the ``sensitive``/``nullable`` flags given."""
        nolocals: dict[str, Any] = {}
        if "description" in body.attributes:
            d = self.rec.eval(body.attributes["description"].expr, f, nolocals, key, functions={})
            var.description = d if isinstance(d, str) else None
        flags: dict[str, bool] = {}
        for flag in ("sensitive", "nullable"):
            if flag in body.attributes:
                v = self.rec.eval(body.attributes[flag].expr, f, nolocals, key, functions={})
                if not isinstance(v, bool):
                    a = body.attributes[flag]
                    self.rec.problem(f"{flag} must be true or false", f, a.line, a.col, key)
                flags[flag] = v is True
        return flags

    def _default(self, decl: Decl, a: A.Attribute, f: File, key: str) -> None:
        """The ``default`` (which may call only ``env()``): converted to the type, or giving it."""
        from amibake.template.hcl.functions import env_function

        v = self.rec.eval(a.expr, f, {}, key, functions=env_function(self.env), where="a variable default")
        if decl.typed:
            try:
                v = convert(v, decl.type)
            except ConversionError as e:
                self.rec.problem(
                    f"Invalid default value for variable: this default value is not compatible "
                    f"with the variable's type constraint: {e}",
                    f,
                    a.expr.line,
                    a.expr.col,
                    key,
                )
        else:
            decl.type = _infer_type(v)
        decl.var.default = v
        decl.value = v
        decl.value_pos = Pos(f.name, a.expr.line, a.expr.col)

    def _validations(self, decl: Decl, body: A.Body, f: File, key: str) -> None:
        for blk in body.blocks:
            if blk.type != "validation":
                self.rec.problem(
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
                self.rec.problem(
                    "a validation block needs both condition and error_message", f, blk.line, blk.col, key
                )
                continue
            decl.validations.append((cond.expr, msg.expr, f, blk.line))

    def top_locals(self, b: A.Block, f: File) -> None:
        for blk in b.body.blocks:
            self.rec.problem(f'Unsupported block type "{blk.type}" in locals', f, blk.line, blk.col)
        for name, attr in b.body.attributes.items():
            self.add_local(Local(name, attr.expr, f, attr.line, attr.col))

    def top_local(self, b: A.Block, f: File) -> None:
        name = b.labels[0]
        attrs = b.body.attributes
        if "expression" not in attrs:
            self.rec.problem(
                f'local "{name}" needs an "expression" argument', f, b.line, b.col, f"local.{name}"
            )
            return
        for a in attrs.values():
            if a.name not in ("expression", "sensitive"):
                self.rec.problem(
                    f'Unsupported argument "{a.name}" in local block', f, a.line, a.col, f"local.{name}"
                )
        sens = False
        if "sensitive" in attrs:
            sens = self.rec.eval(attrs["sensitive"].expr, f, {}, f"local.{name}", functions={}) is True
        self.add_local(Local(name, attrs["expression"].expr, f, b.line, b.col, sens))

    def add_local(self, loc: Local) -> None:
        if loc.name in self.locals:
            prev = self.locals[loc.name]
            self.rec.problem(
                f'Duplicate local: "{loc.name}" is already defined at {prev.file.name}:{prev.line}',
                loc.file,
                loc.line,
                loc.col,
                f"local.{loc.name}",
            )
            return
        self.locals[loc.name] = loc

    # --- values ------------------------------------------------------------------------------

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
            self.rec.problems.append(
                Problem(f'Invalid value for variable "{name}" from {origin}: {detail}', f"var.{name}", pos)
            )
            return
        if value is None and not decl.nullable:
            self.rec.problems.append(
                Problem(f'Invalid value for variable "{name}": it is not nullable', f"var.{name}", pos)
            )
            return
        decl.value, decl.value_from, decl.value_pos = value, origin, pos

    def parse_raw(self, decl: Decl, raw: str, origin: str, pos: Pos | None) -> Any:
        """``-var``/``PKR_VAR_`` strings: primitives as they are, other types as HCL expressions."""
        if decl.type[0] in ("string", "number", "bool", "any"):
            return raw
        from amibake.template.hcl.parser import parse_expression

        fname = f"<value for var.{decl.var.name} from {origin}>"
        try:
            node = parse_expression(raw, fname)
            return evaluate(node, Context({}, {}, fname, raw))
        except HclError as e:
            self.rec.problems.append(
                Problem(
                    f'Invalid value for variable "{decl.var.name}" from {origin}: {e.message}',
                    f"var.{decl.var.name}",
                    pos,
                )
            )
            return MISSING

    def var_file(self, p: Path, auto: bool) -> None:
        f = self.rec.read(p)
        if f is None:
            return
        for blk in f.body.blocks:
            self.rec.problem(
                f'Unsupported block type "{blk.type}": a variables file only sets variables',
                f,
                blk.line,
                blk.col,
            )
        for name, attr in f.body.attributes.items():
            pos = Pos(f.name, attr.line, attr.col)
            if name not in self.decls:
                self.rec.warnings.append(
                    f'{pos}: Undefined variable: a "{name}" variable was set but was not declared '
                    "in the template; it is ignored"
                )
                continue
            v = self.rec.eval(attr.expr, f, {}, f"var.{name}", functions={}, where="a variables file")
            if v is not UNKNOWN:
                self.assign(name, v, f"var file {p.name}", pos, raw_string=False)

    def collect_values(self, autos: list[Path]) -> None:
        """Give the variables their values, lowest to highest precedence, then check every one."""
        for k, v in sorted(self.env.items()):
            if k.startswith("PKR_VAR_") and k[8:] in self.decls:
                self.assign(k[8:], v, f"env {k}", None, raw_string=True)
        for p in autos:
            self.var_file(p, True)
        for p in self.var_files:
            if not p.is_file():
                self.rec.problem(f"-var-file: no such file: {p}", str(p))
                continue
            self.var_file(p, False)
        for k, v in self.cli_vars.items():
            if k not in self.decls:
                self.rec.problem(
                    f'Undefined -var variable: a "{k}" variable was passed in, but it is not declared '
                    "in the template",
                    None,
                    key=f"var.{k}",
                )
                continue
            self.assign(k, v, "-var", None, raw_string=True)
        for name, d in self.decls.items():
            if d.value is MISSING and self.rec.lenient:
                d.value = UNKNOWN
                continue
            if d.value is MISSING:
                self.rec.problems.append(
                    Problem(
                        f'Unset variable "{name}": a used variable must be set or have a default value; '
                        f"set it with -var {name}=..., a var file or PKR_VAR_{name}",
                        f"var.{name}",
                        d.var.pos,
                    )
                )
                continue
            self._validate(name, d)

    def _validate(self, name: str, d: Decl) -> None:
        """Check a set variable's value with its ``validation`` blocks."""
        for cond, msg, f, line in d.validations:
            ok = self.rec.eval(
                cond, f, {"var": {name: d.value}}, f"var.{name}", where="a validation condition"
            )
            if ok is UNKNOWN:
                continue
            if not isinstance(ok, bool):
                self.rec.problem(
                    "Invalid variable validation result: the condition must be true or false",
                    f,
                    cond.line,
                    cond.col,
                    f"var.{name}",
                )
                continue
            if not ok:
                text = self.rec.eval(msg, f, {}, f"var.{name}", functions={})
                pos = d.value_pos or Pos(f.name, line)
                self.rec.problems.append(
                    Problem(
                        f"Invalid value for {d.value_from} variable: {text} "
                        f"(checked by the validation rule at {f.name}:{line})",
                        f"var.{name}",
                        pos,
                    )
                )

    # --- results -----------------------------------------------------------------------------

    def template_variables(self) -> dict[str, Variable]:
        """The model's variables; a variable's ``default`` carries its resolved value (what builds use)."""
        out: dict[str, Variable] = {}
        for n, d in self.decls.items():
            v = d.var
            v.default = to_plain(d.value) if d.value is not MISSING else MISSING
            out[n] = v
        return out

    def secret_values(self) -> list[Any]:
        """Every value of a sensitive variable (whatever gave it) or local, to keep out of messages."""
        hidden = {k for k, d in self.decls.items() if d.var.sensitive}
        secret = [self.decls[k].value for k in hidden if self.decls[k].value is not MISSING]
        secret += [self.cli_vars.get(k) for k in hidden] + [self.env.get(f"PKR_VAR_{k}") for k in hidden]
        secret += [loc.value for loc in self.locals.values() if loc.sensitive]
        return secret


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
