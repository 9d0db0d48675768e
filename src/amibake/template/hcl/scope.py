"""The HCL loader's evaluation scope: what ``var.``, ``local.``, ``data.``, ``path.``, ``packer.`` name.

Locals and data sources are evaluated lazily, in dependency order, with cycle detection. Data
sources: the local ones of the plugin facts run here; other known types go to the
``datasource_resolver`` when there is one, else their outputs are unknown (Packer's ``validate``
without data source execution). Bodies (of data sources, sources, provisioners, post-processors)
are decoded to config dicts in a scope, ``dynamic`` blocks expanded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amibake.errors import Pos
from amibake.template.facts import PluginFacts
from amibake.template.hcl import ast as A
from amibake.template.hcl.base import File, Recorder
from amibake.template.hcl.diagnostics import HclError
from amibake.template.hcl.evaluator import LazyObject
from amibake.template.hcl.values import UNKNOWN, to_plain
from amibake.template.hcl.variables import Variables
from amibake.template.model import MISSING

DatasourceResolver = Callable[[str, str, dict[str, Any]], dict[str, Any]]

@dataclass
class Data:
    """A ``data`` block; evaluated once, when first referenced (or at the end of the load)."""

    type: str
    name: str
    block: A.Block
    file: File
    state: str = "todo"
    value: Any = None


@dataclass
class Scope:
    """The variables every expression of the template sees, and decoding of bodies in a scope."""

    rec: Recorder
    variables: Variables
    path: Path
    packer_version: str
    resolver: DatasourceResolver | None
    #: the plugins' facts: data source types and outputs, single blocks, build data
    facts: PluginFacts = field(default_factory=PluginFacts)
    data: dict[tuple[str, str], Data] = field(default_factory=dict)
    #: the scope of top-level expressions; set by :meth:`start` once every value is known
    vars: dict[str, Any] = field(default_factory=dict)

    def top_data(self, b: A.Block, f: File) -> None:
        ref = (b.labels[0], b.labels[1])
        if ref in self.data:
            self.rec.problem(
                f'Duplicate data block: data "{ref[0]}" "{ref[1]}" is already defined', f, b.line, b.col
            )
            return
        outputs = self.facts.datasource_outputs
        if ref[0] not in outputs:
            self.rec.problem(
                f'Unknown data source type "{ref[0]}": amibake knows {", ".join(sorted(outputs))}',
                f,
                b.line,
                b.col,
                f"data.{ref[0]}.{ref[1]}",
            )
        self.data[ref] = Data(ref[0], ref[1], b, f)

    # --- the scope ---------------------------------------------------------------------------

    def start(self) -> None:
        """Make the top-level scope, then evaluate every local and data source (recording failures)."""
        self.vars = self.base_vars()
        for name in self.variables.locals:
            try:
                self.resolve_local(name)
            except HclError as e:
                self.rec.hcl_problem(e)
        for t, n in self.data:
            try:
                self.resolve_data(t, n)
            except HclError as e:
                self.rec.hcl_problem(e)

    def base_vars(self) -> dict[str, Any]:
        cwd = os.getcwd().replace("\\", "/")
        root = str(self.path if self.path.is_dir() else self.path.parent).replace("\\", "/")
        decls = self.variables.decls
        return {
            "var": {n: (UNKNOWN if d.value is MISSING else d.value) for n, d in decls.items()},
            "local": LazyObject(list(self.variables.locals), self.resolve_local, "local"),
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
        loc = self.variables.locals[name]
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
            loc.value = self.rec.eval(loc.expr, loc.file, self.vars, f"local.{name}")
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
            n_before = len(self.rec.problems)
            config, _ = self.decode_body(d.block.body, d.file, self.vars, key)
            failed = len(self.rec.problems) > n_before
            outputs = self.facts.datasource_outputs.get(typ, ())
            local = self.facts.local_datasources.get(typ)
            if local is not None:
                d.value = local(config)
            elif self.resolver is not None and not failed and typ in self.facts.datasource_outputs:
                got = self._execute(d, config, key)
                d.value = {o: got.get(o, UNKNOWN) for o in outputs} | dict(got)
            else:
                d.value = {o: UNKNOWN for o in outputs}
        finally:
            d.state = "done"
        return d.value

    def _execute(self, d: Data, config: dict[str, Any], key: str) -> dict[str, Any]:
        """Run a data source through the resolver: its outputs, or {} (recorded) when it fails."""
        assert self.resolver is not None
        try:
            return self.resolver(d.type, d.name, to_plain(config))
        except HclError as e:
            self.rec.hcl_problem(e, key)
        except Exception as e:  # a resolver failure is the user's problem to read, not a traceback
            self.rec.problem(
                f"Error executing data source {d.type}.{d.name}: {e}",
                d.file,
                d.block.line,
                d.block.col,
                key,
            )
        return {}

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

    # --- bodies to config dicts --------------------------------------------------------------

    def decode_body(
        self, body: A.Body, f: File, variables: Mapping[str, Any], key: str, skip: Collection[str] = ()
    ) -> tuple[dict[str, Any], dict[str, Pos]]:
        """A body's arguments and nested blocks (a dict for a single block, else a list of dicts), and
        where each key was set."""
        out: dict[str, Any] = {}
        pos: dict[str, Pos] = {}
        for item in body.order:
            if isinstance(item, A.Attribute):
                if item.name in skip:
                    continue
                out[item.name] = self.rec.eval(item.expr, f, variables, f"{key}.{item.name}")
                pos[item.name] = Pos(f.name, item.line, item.col)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for blk, bvars in self.expand_blocks(body, f, variables, key):
            sub, _ = self.decode_body(blk.body, f, bvars, f"{key}.{blk.type}")
            grouped.setdefault(blk.type, []).append(sub)
            pos.setdefault(blk.type, Pos(f.name, blk.line, blk.col))
        for name, items in grouped.items():
            p = pos[name]
            if name in out:
                self.rec.problem(
                    f'"{name}" is set both as an argument and as a block',
                    p.file,
                    p.line,
                    p.column,
                    f"{key}.{name}",
                )
            if name in self.facts.single_blocks:
                if len(items) > 1:
                    self.rec.problem(
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
        self, body: A.Body, f: File, variables: Mapping[str, Any], key: str
    ) -> list[tuple[A.Block, Mapping[str, Any]]]:
        """A body's nested blocks with ``dynamic`` ones expanded, each with the scope it is decoded in."""
        out: list[tuple[A.Block, Mapping[str, Any]]] = []
        for blk in body.blocks:
            if blk.type != "dynamic":
                out.append((blk, variables))
            else:
                out.extend(self._expand_dynamic(blk, f, variables, key))
        return out

    def _expand_dynamic(
        self, blk: A.Block, f: File, variables: Mapping[str, Any], key: str
    ) -> list[tuple[A.Block, Mapping[str, Any]]]:
        if len(blk.labels) != 1:
            self.rec.problem(
                "a dynamic block needs exactly one label: the type of block to generate",
                f,
                blk.line,
                blk.col,
                key,
            )
            return []
        btype = blk.labels[0]
        attrs = blk.body.attributes
        content = [b for b in blk.body.blocks if b.type == "content"]
        if "for_each" not in attrs or len(content) != 1:
            self.rec.problem(
                f'dynamic "{btype}" needs a for_each argument and one content block',
                f,
                blk.line,
                blk.col,
                f"{key}.{btype}",
            )
            return []
        it = btype
        if "iterator" in attrs:
            itn = attrs["iterator"].expr
            if isinstance(itn, A.Variable):
                it = itn.name
            else:
                self.rec.problem("iterator must be a plain name", f, itn.line, itn.col, f"{key}.{btype}")
        pairs = self._for_each_pairs(attrs["for_each"].expr, f, variables, f"{key}.{btype}")
        out: list[tuple[A.Block, Mapping[str, Any]]] = []
        for k, v in pairs:
            inner = dict(variables)
            inner[it] = {"key": k, "value": v}
            labels: list[str] = []
            if "labels" in attrs:
                lv = self.rec.eval(attrs["labels"].expr, f, inner, f"{key}.{btype}.labels")
                if not isinstance(lv, list) or not all(isinstance(x, str) for x in lv):
                    e = attrs["labels"].expr
                    self.rec.problem(
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

    def _for_each_pairs(
        self, e: A.Node, f: File, variables: Mapping[str, Any], key: str
    ) -> list[tuple[Any, Any]]:
        """A dynamic block's ``for_each`` as (key, value) pairs; none when unknown, null or invalid."""
        coll = self.rec.eval(e, f, variables, f"{key}.for_each")
        if coll is UNKNOWN or coll is None:
            return []
        if isinstance(coll, dict):
            return [(k, coll[k]) for k in sorted(coll)]
        if isinstance(coll, list):
            return [(v, v) if not isinstance(v, (dict, list)) else (i, v) for i, v in enumerate(coll)]
        self.rec.problem(
            f"Invalid dynamic for_each value: a list, set or map is required, not {type(coll).__name__}",
            f,
            e.line,
            e.col,
            key,
        )
        return []
