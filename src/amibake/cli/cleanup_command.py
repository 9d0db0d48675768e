"""``amibake cleanup``: remove what interrupted or crashed builds left in AWS."""

from __future__ import annotations

import os
import sys

import click

from amibake.cli.main import CONTEXT, cli
from amibake.errors import UserInputError


@cli.command(context_settings=CONTEXT)
@click.option("--run", "-run", "run_id", default="", metavar="ID",
              help="Only this run (its id is in the build's output).")
@click.option("--older-than", "-older-than", "older_than", default="", metavar="2h",
              help="Only resources created at least this long ago (Go duration: 90m, 2h, 1h30m).")
@click.option("--region", "-region", "regions", multiple=True, metavar="R",
              help="Search this region (repeatable). Default: the journals' regions and the default one.")
@click.option("--dry-run", "-dry-run", "dry_run", is_flag=True, help="Only list what would be removed.")
def cleanup(run_id: str, older_than: str, regions: tuple[str, ...], dry_run: bool) -> None:
    """Find and remove leftovers of builds that did not finish: instances, spot fleets, launch
    templates, key pairs, security groups, volumes, IAM roles and instance profiles, AMIs, snapshots
    and region copies. Found through the run journals ($AMIBAKE_STATE_DIR, else
    $XDG_STATE_HOME/amibake or ~/.local/state/amibake) and by the amibake:run-id tag. A finished
    build's AMIs are never touched; a run still in progress is left alone. Safe to run twice.
    """
    from amibake.cleanup import Cleaner, make_gateway
    from amibake.config.durations import parse_duration
    from amibake.journal import state_dir, valid_run_id

    if run_id and not valid_run_id(run_id):
        raise UserInputError([f"--run: not a run id: {run_id!r}"])
    age: float | None = None
    if older_than:
        try:
            age = parse_duration(older_than)
        except (ValueError, TypeError) as exc:
            raise UserInputError(
                [f"--older-than: expected a duration such as 2h or 90m, got {older_than!r} ({exc})"]
            ) from None
    region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or (regions[0] if regions else "us-east-1"))
    cleaner = Cleaner(make_gateway(region), state_dir(), lambda text: click.echo(text))
    plan = cleaner.plan(run_id=run_id, regions=regions, older_than=age)
    for run in plan.skipped_runs:
        click.echo(f"Run {run} is still in progress (its journal is held by a live amibake); left alone.")
    for note in plan.kept:
        click.echo(f"Kept {note}")
    if not plan.leftovers:
        click.echo(f"Nothing to clean up (searched {', '.join(plan.regions) or 'no region'}).")
        return
    result = cleaner.remove(plan, dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    click.echo(f"{verb} {len(result.removed)} resource(s); {len(result.failed)} could not be removed.")
    if result.failed:
        for f in result.failed:
            click.echo(f"  - {f}", err=True)
        sys.exit(1)
