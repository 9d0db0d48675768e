"""Loads HCL2 Packer templates (``*.pkr.hcl``) into :class:`amibake.template.model.Template`.

Semantics follow Packer's ``hcl2template`` package:

* variables: ``default`` may call only ``env()``; values come, lowest to highest, from the
  default, ``PKR_VAR_name``, ``*.auto.pkrvars.hcl`` files, ``-var-file`` files in order, ``-var``;
  values are converted to the declared (or default-inferred) type and checked by ``validation``.
* locals and data sources are evaluated lazily, in dependency order, with cycle detection.
* data sources: the local ones (the plugin facts') run here; others go to ``datasource_resolver``,
  else their outputs are unknown (Packer's ``validate`` without data source execution), and an
  unknown value ends up in a plugin config as Packer's placeholder ``"<unknown>"``.
* each source used by a build becomes its own :class:`BuildBlock` (one source each), because
  provisioners and post-processors are evaluated per source (``source.name`` differs); those
  skipped by ``only``/``except`` for that source are left out, as Packer leaves them out.
* build-time values (``build.ID``, ``build.SourceAMIName``...) in provisioners and
  post-processors evaluate to the legacy ``"{{ .ID }}"`` strings, rendered late by the builder.

This module finds and reads the files, checks the ``packer`` block and hands every other top-level
block to its part: ``variables.py`` (variables and locals, and the values given to variables),
``scope.py`` (the evaluation scope: locals' and data sources' values, bodies decoded to configs) and
``builds.py`` (sources and builds). ``base.py`` holds what they share: the files and the problems.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from amibake.errors import Pos, Problem, TemplateError
from amibake.template.facts import PluginFacts, registered
from amibake.template.hcl import ast as A
from amibake.template.hcl.base import File, Recorder
from amibake.template.hcl.builds import Builds, source_ref
from amibake.template.hcl.scope import DatasourceResolver, Scope
from amibake.template.hcl.values import to_plain
from amibake.template.hcl.variables import Variables
from amibake.template.model import Template

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


class _Loader:
    """One load: finds and reads the files, hands each top-level block to its part, makes the template."""

    def __init__(
        self,
        *,
        path: Path,
        var_files: Sequence[Path],
        cli_vars: Mapping[str, str],
        env: Mapping[str, str],
        resolver: DatasourceResolver | None,
        plugins: Collection[str],
        packer_version: str,
        lenient: bool = False,
        init_time: datetime | None = None,
        facts: PluginFacts | None = None,
    ) -> None:
        self.path = path
        self.plugins = plugins
        self.packer_version = packer_version
        #: the run's clock (``timestamp()``, ``legacy_isotime``); None: read when the functions are made
        self.init_time = init_time
        self.min_version: str | None = None
        self.files: list[File] = []
        #: ``inspect`` (lenient): like Packer's, unset variables are unknown and undefined sources are listed
        self.rec = Recorder(lenient=lenient)
        self.variables = Variables(self.rec, var_files, cli_vars, env)
        self.scope = Scope(self.rec, self.variables, path, packer_version, resolver, facts or PluginFacts())
        self.builds = Builds(self.rec, self.scope)
        self.top: dict[str, Callable[[A.Block, File], None]] = {
            "packer": self.top_packer,
            "variable": self.variables.top_variable,
            "variables": self.variables.top_variables,
            "locals": self.variables.top_locals,
            "local": self.variables.top_local,
            "source": self.builds.top_source,
            "data": self.scope.top_data,
            "build": self.builds.top_build,
        }

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
                self.rec.problem(
                    f"Could not find any config file in {p}: expected *.pkr.hcl or *.pkr.json files", str(p)
                )
            return configs, autos
        if not p.exists():
            self.rec.problem(f"no such file or directory: {p}", str(p))
            return [], []
        return [p], []

    # --- top level ---------------------------------------------------------------------------

    def collect(self) -> None:
        for f in self.files:
            for attr in f.body.attributes.values():
                self.rec.problem(
                    f'Unsupported argument: an argument named "{attr.name}" is not expected at the top level',
                    f,
                    attr.line,
                    attr.col,
                )
            for b in f.body.blocks:
                if b.type not in _TOP_BLOCKS:
                    self.rec.problem(
                        f'Unsupported block type: blocks of type "{b.type}" are not expected here; expected '
                        "packer, variable, variables, locals, local, source, data or build",
                        f,
                        b.line,
                        b.col,
                    )
                    continue
                want = _TOP_BLOCKS[b.type]
                if len(b.labels) != want:
                    self.rec.problem(
                        f"{b.type} block needs {want} label(s), has {len(b.labels)}", f, b.line, b.col
                    )
                    continue
                self.top[b.type](b, f)

    def top_packer(self, b: A.Block, f: File) -> None:
        for name, attr in b.body.attributes.items():
            if name != "required_version":
                self.rec.problem(
                    f'Unsupported argument: "{name}" is not expected in the packer block',
                    f,
                    attr.line,
                    attr.col,
                )
                continue
            self.required_version(attr, f)
        for blk in b.body.blocks:
            if blk.type != "required_plugins":
                self.rec.problem(
                    f'Unsupported block type: "{blk.type}" is not expected in the packer block',
                    f,
                    blk.line,
                    blk.col,
                )
                continue
            for pname, attr in blk.body.attributes.items():
                self.required_plugin(pname, attr, f)

    def required_version(self, attr: A.Attribute, f: File) -> None:
        v = self.rec.eval(attr.expr, f, {}, key="packer.required_version", functions={})
        if not isinstance(v, str):
            self.rec.problem("required_version must be a string", f, attr.line, attr.col)
            return
        self.min_version = v
        err = check_version_constraint(v, self.packer_version)
        if err:
            self.rec.problem(
                f"Unsupported Packer Core version: {err}",
                f,
                attr.line,
                attr.col,
                key="packer.required_version",
            )

    def required_plugin(self, pname: str, attr: A.Attribute, f: File) -> None:
        key = f"packer.required_plugins.{pname}"
        spec = self.rec.eval(attr.expr, f, {}, key=key, functions={})
        source = spec.get("source", "") if isinstance(spec, dict) else ""
        if not isinstance(spec, dict) or not isinstance(source, str) or not source:
            self.rec.problem(
                f'required_plugins.{pname} must be an object with a "source" '
                '(e.g. { source = "github.com/hashicorp/amazon", version = ">= 1" })',
                f,
                attr.line,
                attr.col,
                key=key,
            )
            return
        short = source.rstrip("/").rsplit("/", 1)[-1].removeprefix("packer-plugin-")
        if short not in self.plugins:
            self.rec.problem(
                f'Missing plugin: plugin "{pname}" ({source}) is required by this template, but '
                f"amibake does not implement it; amibake provides: {', '.join(sorted(self.plugins))}",
                f,
                attr.line,
                attr.col,
                key=key,
            )

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
                secret=self.scope.read_secret,
            )
        )
        self.rec.functions = funcs
        configs, autos = self.discover()
        for p in configs:
            f = self.rec.read(p)
            if f is not None:
                self.files.append(f)
        if self.rec.problems:
            raise TemplateError(self.rec.problems)
        self.collect()
        self.variables.collect_values(autos)
        self.scope.start()
        builds = self.builds.load_builds()
        if not self.builds.builds and not self.rec.problems:
            self.rec.warnings.append(
                "no build block: a build block with one or more sources is needed to build"
            )
        if self.rec.problems:
            raise TemplateError(_dedupe(self.rec.problems))
        locals_ = self.variables.locals
        return Template(
            path=self.path,
            format="hcl2",
            template_dir=base,
            builds=builds,
            variables=self.variables.template_variables(),
            min_packer_version=self.min_version,
            sources=self.rec.sources_text,
            warnings=self.rec.warnings,
            locals={n: to_plain(loc.value) for n, loc in locals_.items()},
            sensitive_locals={n for n, loc in locals_.items() if loc.sensitive},
        )


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        s = str(p)
        if s not in seen:
            seen.add(s)
            out.append(p)
    return out


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
    facts: PluginFacts | None = None,
) -> Template:
    """Load a template; ``facts``: the plugins' (default: the registry's, :func:`registered`);
    ``plugins``: the ``required_plugins`` amibake provides (default: the facts')."""
    facts = facts or registered()
    loader = _Loader(
        facts=facts,
        init_time=init_time,
        lenient=lenient,
        path=path,
        var_files=list(var_files),
        cli_vars=dict(vars),
        env=dict(os.environ if env is None else env),
        resolver=datasource_resolver,
        plugins=frozenset(facts.plugins if plugins is None else plugins),
        packer_version=packer_version,
    )
    try:
        return loader.run()
    except TemplateError as err:  # no problem shows a sensitive variable's or local's value
        from amibake.ui.redact import leaves, without_secrets

        raise without_secrets(err, leaves(loader.variables.secret_values())) from None
    except RecursionError:
        raise TemplateError(
            [Problem("the template nests too deeply to evaluate", None, Pos(str(path)))]
        ) from None


__all__ = [
    "DatasourceResolver",
    "check_version_constraint",
    "load",
    "source_ref",
]
