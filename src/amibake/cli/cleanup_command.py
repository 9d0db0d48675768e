"""``amibake cleanup``: remove what interrupted or crashed builds left in AWS."""

from __future__ import annotations

import os
import sys
from typing import Any

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
    $XDG_STATE_HOME/amibake or ~/.local/state/amibake), each run reached through the endpoint and
    profile its journal records, and by the amibake:run-id tag. Never touched: the listed AMIs of
    finished builds and anything marked amibake:finished; a run in progress (its journal held by a
    live amibake, or its amibake:heartbeat fresher than 5 refresh periods); with no --older-than,
    resources under an hour old of runs with no journal here. Goes on past a run it cannot reach,
    prints a per-run summary and exits 1 if anything may be left. Safe to run twice.
    """
    from amibake import registry
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
    left = False
    for path in registry.cleaners():  # one per family of builders (every amazon builder shares one)
        cleaner = registry.load_attr(path)(region, state_dir(), lambda text: click.echo(text))
        left = _clean(cleaner, run_id=run_id, regions=regions, older_than=age, dry_run=dry_run) or left
    if left:
        sys.exit(1)


def _clean(cleaner: Any, *, run_id: str, regions: tuple[str, ...], older_than: float | None,
           dry_run: bool) -> bool:
    """Plan and remove with one plugin's cleaner, reporting as it goes; True if anything may be left."""
    plan = cleaner.plan(run_id=run_id, regions=regions, older_than=older_than, dry_run=dry_run)
    for run in plan.skipped_runs:
        click.echo(f"Run {run} is still in progress (its journal is held by a live amibake); left alone.")
    for note in plan.kept:
        click.echo(f"Kept {note}")
    if plan.leftovers:
        result = cleaner.remove(plan, dry_run=dry_run)
        verb = "would be removed" if dry_run else "removed"
        click.echo(f"Cleanup: {len(result.removed)} {verb}, {len(result.gone)} already gone, "
                   f"{len(result.failed)} could not be removed, {len(result.skipped)} left alone.")
    rows = {run: rep for run, rep in plan.reports.items()
            if rep.removed or rep.gone or rep.failed or rep.unreachable}
    if not plan.leftovers and not any(rep.left for rep in rows.values()):
        click.echo(f"Nothing to clean up (searched {', '.join(plan.regions) or 'no region'}).")
        return False
    if rows:
        click.echo(_table(rows, dry_run))
    problems = [f"{run or '(tag search)'}: {text}" for run, rep in rows.items()
                for text in rep.failed + [f"unreachable: {u}" for u in rep.unreachable]]
    if problems:
        click.echo("Resources may be left behind:", err=True)
        for text in problems:
            click.echo(f"  - {text}", err=True)
        return True
    return False


def _table(rows: dict[str, Any], dry_run: bool) -> str:
    head = ("Run", "Would remove" if dry_run else "Removed", "Already gone", "Failed", "Status")
    lines = [head]
    for run, rep in sorted(rows.items()):
        status = ("unreachable: " + "; ".join(rep.unreachable)) if rep.unreachable else (
            "not finished" if rep.failed else "done")
        lines.append((run or "(tag search)", str(len(rep.removed)), str(len(rep.gone)),
                      str(len(rep.failed)), status))
    widths = [max(len(row[i]) for row in lines) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row[:4]))
        + "  " + row[4]
        for row in lines
    )
