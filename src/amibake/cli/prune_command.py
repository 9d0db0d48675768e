"""``amibake prune``: deregister old AMIs of a selection and delete their snapshots, keeping what is
in use, protected, shared or recent. A dry run unless ``--yes``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from amibake.cli.main import CONTEXT, cli
from amibake.errors import UserInputError


@cli.command(context_settings=CONTEXT)
@click.option("--name", "-name", "names", multiple=True, metavar="PATTERN",
              help="AMIs whose name matches (* and ? wildcards; repeatable: any of them).")
@click.option("--tag", "-tag", "tags", multiple=True, metavar="K=V",
              help="AMIs with this tag (repeatable: all of them).")
@click.option("--template", "-template", "template", default=None, type=click.Path(path_type=Path),
              metavar="FILE", help="AMIs of this template's builds (their amibake:build tag).")
@click.option("--region", "-region", "regions", multiple=True, metavar="R",
              help="Search this region (repeatable). Default: every region where matching AMIs exist.")
@click.option("--keep", "-keep", "keep", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep the newest N AMIs of each build in each region (0: the newest may go too).")
@click.option("--older-than", "-older-than", "older_than", default="", metavar="DURATION",
              help="Only remove AMIs at least this old (Go duration: 720h, 90m).")
@click.option("--include-shared", "-include-shared", "include_shared", is_flag=True,
              help="Also remove AMIs and snapshots shared with other accounts or public.")
@click.option("--ssm-path", "-ssm-path", "ssm_paths", multiple=True, metavar="PATH",
              help="Keep the AMIs held by SSM parameters under this path (recursive; repeatable).")
@click.option("--yes", "-yes", "yes", is_flag=True,
              help="Remove; without it, only show what would be removed.")
@click.option("-machine-readable", "--machine-readable", "machine", is_flag=True,
              help="Produce machine-readable output.")
@click.option("-color", "color", type=bool, default=None, metavar="false", help="Disable color output.")
def prune(names: tuple[str, ...], tags: tuple[str, ...], template: Path | None, regions: tuple[str, ...],
          keep: int | None, older_than: str, include_shared: bool, ssm_paths: tuple[str, ...], yes: bool,
          machine: bool, color: bool | None) -> None:
    """Deregister the selected AMIs the rules let go, and delete their snapshots that no other image
    uses. Select with --name, --tag and/or --template (each one given must match); choose with
    --keep and/or --older-than. The newest AMI of a build is removed only with --keep 0. Never
    removed: AMIs used by a non-terminated instance, any launch template version or a launch
    configuration, held by an SSM parameter under --ssm-path, shared or public (unless
    --include-shared), with deregistration protection, or not available. Each kept AMI is listed
    with its reason. A dry run unless --yes. Journaled: a prune that was interrupted is completed
    by the next one. Exit status 1 if anything failed or a region could not be read.
    """
    from amibake.config.durations import parse_duration

    problems = []
    if not (names or tags or template):
        problems.append("choose the AMIs with --name, --tag or --template")
    if keep is None and not older_than:
        problems.append("give --keep N, --older-than DURATION, or both")
    pairs = []
    for t in tags:
        key, sep, value = t.partition("=")
        if not sep or not key:
            problems.append(f"--tag: expected KEY=VALUE, got {t!r}")
        pairs.append((key, value))
    age: float | None = None
    if older_than:
        try:
            age = parse_duration(older_than)
        except (ValueError, TypeError) as exc:
            problems.append(
                f"--older-than: expected a duration such as 720h or 90m, got {older_than!r} ({exc})")
    if problems:
        raise UserInputError(problems)
    builds = _template_builds(template) if template is not None else None

    from amibake import registry
    from amibake.ui.console import Console

    console = Console(color=color, machine_readable=machine)
    status = 0
    for path in registry.pruners():  # one per family of builders (every amazon builder shares one)
        status = max(status, registry.load_attr(path)(
            console, names=names, tags=tuple(pairs), builds=builds, regions=regions, keep=keep,
            older_than=age, include_shared=include_shared, ssm_paths=ssm_paths, yes=yes))
    sys.exit(status)


def _template_builds(template: Path) -> tuple[str, ...]:
    from amibake.core import load_template, prepare_builds

    run = load_template(template, execute_datasources=False)
    builds, _ = prepare_builds(run)
    return tuple(b.name for b in builds)
