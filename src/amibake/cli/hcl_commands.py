"""The HCL2 file verbs: ``fmt`` and ``hcl2_upgrade``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from amibake.cli.main import CONTEXT, cli
from amibake.errors import UserInputError

#: ``packer fmt -check`` exits with this when a file is not canonical (terraform's code)
FMT_CHECK_FAILED = 3


@cli.command("fmt", context_settings=CONTEXT)
@click.option("-check", "check", is_flag=True, help="Check if the input is formatted; exit 3 if not.")
@click.option("-diff", "diff", is_flag=True, help="Display diffs of formatting changes.")
@click.option(
    "-write",
    "write",
    type=click.BOOL,
    default=True,
    show_default=True,
    help="Write to source files (-write=false: don't; always off with -check).",
)
@click.option("-recursive", "recursive", is_flag=True, help="Also process files in subdirectories.")
@click.argument("targets", nargs=-1, required=True)
def fmt(targets: tuple[str, ...], check: bool, diff: bool, write: bool, recursive: bool) -> None:
    """Rewrite HCL2 files (*.pkr.hcl, *.pkrvars.hcl) to the canonical format.

    TARGET is a file, a directory ("." for the current one) or "-" for standard input. The names
    of the files that were not canonical are printed.
    """
    from amibake.template.hclfmt import format_paths

    result = format_paths(
        list(targets),
        write=write and not check,
        diff=diff,
        recursive=recursive,
        echo=lambda s: click.echo(s, nl=False),
        stdin=lambda: sys.stdin.read(),
    )
    if result.problems:
        raise UserInputError(result.problems)
    if check and result.changed:
        raise click.exceptions.Exit(FMT_CHECK_FAILED)


@cli.command("hcl2_upgrade", context_settings=CONTEXT)
@click.option(
    "-output-file",
    "output_file",
    type=click.Path(path_type=Path),
    default=None,
    help='Output file name (default: TEMPLATE with ".pkr.hcl" appended).',
)
@click.option(
    "-with-annotations",
    "annotations",
    is_flag=True,
    help="Add comments that explain the HCL2 blocks to new users.",
)
@click.argument("template", type=click.Path(path_type=Path))
def hcl2_upgrade(template: Path, output_file: Path | None, annotations: bool) -> None:
    """Transform a JSON template into an HCL2 configuration."""
    from amibake.template.hcl2_upgrade import upgrade_file

    out = output_file if output_file is not None else Path(f"{template}.pkr.hcl")
    report = upgrade_file(template, out, annotations=annotations)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Successfully created {out}. Exit {1 if report.warnings else 0}")
    if report.warnings:
        raise click.exceptions.Exit(1)
