"""Flags shared by several verbs, spelled as Packer spells them (single dash)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _csv(values: tuple[str, ...]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def var_options(f: F) -> F:
    f = click.option(
        "-var",
        "vars_",
        multiple=True,
        metavar="'key=value'",
        help="Variable for templates, can be used multiple times.",
    )(f)
    f = click.option(
        "-var-file",
        "var_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="path",
        help="JSON or HCL2 file containing user variables, can be used multiple times.",
    )(f)
    return f


def only_except_options(f: F) -> F:
    f = click.option(
        "-only",
        "only",
        multiple=True,
        metavar="foo,bar,baz",
        help="Run only the builds with the given comma-separated names (globs allowed).",
    )(f)
    f = click.option(
        "-except",
        "except_",
        multiple=True,
        metavar="foo,bar,baz",
        help="Run all builds and post-processors other than these (globs allowed).",
    )(f)
    return f


def checks_option(f: F) -> F:
    """``-checks FILE``: amibake's test-before-distribute (see :mod:`amibake.template.checks`)."""
    return click.option(
        "-checks",
        "checks_file",
        default=None,
        metavar="FILE",
        type=click.Path(path_type=Path),
        help="Run the checks of this JSON file on a fresh instance of each new AMI before it is copied, "
        "shared or published; a failed check deletes the AMI and fails the build (amibake only).",
    )(f)


def parse_vars(vars_: tuple[str, ...]) -> dict[str, str]:
    from amibake.template.variables import parse_var_flag

    return dict(parse_var_flag(v) for v in vars_)


split_csv = _csv
