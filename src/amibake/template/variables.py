"""User variables of JSON templates: defaults < -var-file (in order) < -var, then rendered.

Packer renders every variable's value as a template in which ``{{env}}`` is allowed and
``{{user}}`` may name another variable; required variables (``null`` default) that stay unset are
all reported at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amibake.errors import InterpolationError, Pos, Problem, TemplateError
from amibake.template.jsonpos import loads, read_source
from amibake.template.model import MISSING, Template


def parse_var_flag(text: str) -> tuple[str, str]:
    """``-var 'name=value'``: the first ``=`` splits."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise TemplateError([Problem(f"invalid -var {text!r}: expected name=value")])
    return name, value


def read_json_var_file(path: Path) -> dict[str, str]:
    from amibake.template.json_loader import weak_string

    try:
        text = read_source(path)
    except OSError as e:
        raise TemplateError(
            [Problem(f"cannot read var file: {e.strerror or e}", pos=Pos(str(path)))]
        ) from None
    except UnicodeDecodeError as e:
        raise TemplateError(
            [Problem(f"cannot read var file: not UTF-8 text (byte {e.start})", pos=Pos(str(path)))]
        ) from None
    value, problems = loads(str(path), text)
    if problems:
        raise TemplateError(problems)
    if not isinstance(value, dict):
        raise TemplateError(
            [Problem("a var file must be a JSON object of name: value", pos=Pos(str(path), 1, 1))]
        )
    out: dict[str, str] = {}
    bad: list[Problem] = []
    for k, v in value.items():
        # Packer decodes a var file into a map of strings: JSON null leaves the empty string
        s = "" if v is None else weak_string(v)
        if s is None:
            bad.append(
                Problem(
                    f"expected a string, number or boolean, got {json.dumps(v)[:40]}",
                    key=k,
                    pos=value.key_pos.get(k) if hasattr(value, "key_pos") else None,
                )
            )
        else:
            out[k] = s
    if bad:
        raise TemplateError(bad)
    return out


def resolve_json_variables(
    template: Template,
    var_files: Sequence[Path] = (),
    cli_vars: Mapping[str, str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    init_time: datetime | None = None,
    secrets: list[str] | None = None,
) -> dict[str, str]:
    """The final value of every user variable of a JSON template. ``init_time``: the run's clock
    (``{{timestamp}}``, ``{{isotime}}`` in defaults); by default, read now. ``secrets`` receives
    every value read from a secret store (``aws_secretsmanager``), for the run's redactor."""
    from amibake.template.interpolate import InterpContext, render

    values: dict[str, str] = {}
    for name, var in template.variables.items():
        if var.default is not MISSING:
            values[name] = var.default
    for f in var_files:
        values.update(read_json_var_file(f))
    values.update(cli_vars or {})

    problems = [
        Problem(f"required variable not set: {name}", key=f"variables.{name}", pos=var.pos)
        for name, var in template.variables.items()
        if var.required and name not in values
    ]
    if problems:
        raise TemplateError(problems)

    # Render until a fixed point: variables may refer to each other through {{user}}.
    started = init_time or datetime.now(UTC)
    rendered: dict[str, str] = {}
    pending = dict(values)
    for _ in range(len(pending) + 1):
        progressed = False
        for name, raw in list(pending.items()):
            if "{{" not in raw:
                rendered[name] = raw
                del pending[name]
                progressed = True
                continue
            try:
                ctx = InterpContext(
                    user_vars=dict(rendered),
                    allow_env=True,
                    env=env,
                    template_dir=str(template.template_dir),
                    init_time=started,
                    secrets_out=secrets,
                )
                out = render(raw, _Strict(ctx, set(pending) - {name}))
            except _NotYet:
                continue
            except InterpolationError as e:
                problems.append(
                    Problem(
                        f"error rendering variable {name}: {e.message}",
                        key=f"variables.{name}",
                        pos=_pos(template, name),
                    )
                )
                del pending[name]
                continue
            rendered[name] = out
            del pending[name]
            progressed = True
        if not pending or not progressed:
            break
    for name in pending:
        problems.append(
            Problem(
                f"variable {name} refers to itself through other variables (a cycle)",
                key=f"variables.{name}",
                pos=_pos(template, name),
            )
        )
    if problems:
        raise TemplateError(problems)
    return rendered


def _pos(template: Template, name: str) -> Pos | None:
    var = template.variables.get(name)
    return var.pos if var else None


class _NotYet(Exception):
    pass


class _PendingVars(dict[str, str]):
    """User variables where a name not rendered yet raises :class:`_NotYet` on any lookup."""

    def __init__(self, values: Mapping[str, str], unresolved: set[str]) -> None:
        super().__init__(values)
        self.unresolved = unresolved

    def _check(self, key: object) -> None:
        if key in self.unresolved:
            raise _NotYet(key)

    def __getitem__(self, key: str) -> str:
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._check(key)
        return super().__contains__(key)


def _Strict(ctx: Any, unresolved: set[str]) -> Any:
    import dataclasses

    return dataclasses.replace(ctx, user_vars=_PendingVars(ctx.user_vars, unresolved))
