"""The verbs beyond ``version``: ``validate``, ``inspect``, ``build``..."""

from __future__ import annotations

from pathlib import Path

import click

from amibake.cli.main import CONTEXT, cli
from amibake.cli.options import only_except_options, parse_vars, split_csv, var_options
from amibake.errors import TemplateError


@cli.command(context_settings=CONTEXT)
@click.option("-syntax-only", "syntax_only", is_flag=True, help="Only check syntax. Do not verify config of the template.")
@click.option("-machine-readable", "machine", is_flag=True, help="Produce machine-readable output.")
@click.option("-no-warn-undeclared-var", "no_warn", is_flag=True, hidden=True)
@var_options
@only_except_options
@click.argument("template", type=click.Path(path_type=Path))
def validate(
    template: Path,
    syntax_only: bool,
    machine: bool,
    no_warn: bool,
    vars_: tuple[str, ...],
    var_files: tuple[Path, ...],
    only: tuple[str, ...],
    except_: tuple[str, ...],
) -> None:
    """Check that a template is valid: syntax, variables, and every plugin's configuration.

    Exit status 0 when valid, 1 otherwise; every problem is reported at once, each with its file,
    line and key.
    """
    from amibake.core import load_template, prepare_builds

    if syntax_only:
        if template.is_dir() or template.name.endswith((".pkr.hcl", ".pkr.json")):
            from amibake.template.hcl import load_hcl

            load_hcl(template, var_files=var_files, vars=parse_vars(vars_))
        else:
            from amibake.template.json_loader import load_json

            load_json(template)
        click.echo("Syntax-only check passed. Everything looks okay.")
        return
    run = load_template(template, var_files, parse_vars(vars_))
    builds, warnings = prepare_builds(run, split_csv(only), split_csv(except_))
    for w in warnings:
        click.echo(f"Warning: {w}", err=True)
    if not builds and (only or except_):
        raise TemplateError(["no build matches -only/-except"])
    click.echo("The configuration is valid.")


@cli.command(context_settings=CONTEXT)
@click.option("-machine-readable", "machine", is_flag=True, help="Produce machine-readable output.")
@var_options
@click.argument("template", type=click.Path(path_type=Path))
def inspect(template: Path, machine: bool, vars_: tuple[str, ...], var_files: tuple[Path, ...]) -> None:
    """Show a template's variables, builds, provisioners and post-processors."""
    from amibake.cli.inspect import inspect_template

    inspect_template(template, machine=machine, var_files=var_files, cli_vars=parse_vars(vars_))
