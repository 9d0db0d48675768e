"""What every part of the HCL loader shares: the files read and the problems found.

A :class:`Recorder` collects problems and warnings instead of raising at the first one, so one load
reports every problem; its :meth:`Recorder.eval` records a failed evaluation and goes on with
``UNKNOWN``. The variables, the scope and the builds (``variables.py``, ``scope.py``, ``builds.py``)
each record into the one recorder the loader (``loader.py``) owns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amibake.errors import Pos, Problem
from amibake.template.hcl import ast as A
from amibake.template.hcl.diagnostics import HclError
from amibake.template.hcl.evaluator import Context, evaluate, source_of
from amibake.template.hcl.values import UNKNOWN

#: a variable's, a source's or a source type's name
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass
class File:
    """One parsed template or variables file."""

    name: str
    text: str
    body: A.Body


@dataclass
class Recorder:
    """The problems and warnings of one load, the files it read and the functions it evaluates with."""

    #: ``inspect``: like Packer's, a failed evaluation is unknown rather than a problem
    lenient: bool = False
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: every file read, by name: its text (for the template's ``sources``)
    sources_text: dict[str, str] = field(default_factory=dict)
    #: Packer's functions; set once the loader knows the template's directory
    functions: dict[str, Any] = field(default_factory=dict)

    def problem(
        self,
        message: str,
        file: File | str | None,
        line: int | None = None,
        col: int | None = None,
        key: str | None = None,
    ) -> None:
        fname = file.name if isinstance(file, File) else file
        self.problems.append(Problem(message, key, Pos(fname, line, col) if fname else None))

    def hcl_problem(self, e: HclError, key: str | None = None) -> None:
        self.problems.append(Problem(e.message, key or e.key, e.pos))

    def eval(
        self,
        node: A.Node,
        f: File,
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

    def read(self, p: Path) -> File | None:
        """Read and parse a template or variables file; None (the problem recorded) if it can't be."""
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
        return File(name, text, body)
