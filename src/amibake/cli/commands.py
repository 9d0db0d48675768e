"""The template verbs: ``validate``, ``inspect``, ``build``, ``plan`` (see :data:`amibake.cli.main.VERBS`)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from amibake.cli.main import CONTEXT, cli
from amibake.cli.options import checks_option, only_except_options, parse_vars, split_csv, var_options
from amibake.errors import TemplateError

if TYPE_CHECKING:
    from amibake.core import PreparedBuild, RunContext
    from amibake.reuse import SkipOptions

F = TypeVar("F", bound=Callable[..., Any])


def _prepare(
    run: RunContext, only: tuple[str, ...], except_: tuple[str, ...], checks_file: Path | None = None
) -> tuple[list[PreparedBuild], list[str]]:
    """Prepare the selected builds (with ``-checks FILE``'s checks); a problem never shows a
    sensitive value."""
    from amibake.core import prepare_builds
    from amibake.errors import UserInputError

    checks = None
    if checks_file is not None:
        from amibake.template.checks import load_checks

        checks = load_checks(checks_file)
    try:
        return prepare_builds(run, split_csv(only), split_csv(except_), checks)
    except UserInputError as err:
        from amibake.ui.redact import without_secrets

        raise without_secrets(err, run.secrets()) from None


@cli.command(context_settings=CONTEXT)
@click.option(
    "-syntax-only",
    "syntax_only",
    is_flag=True,
    help="Only check syntax. Do not verify config of the template.",
)
@click.option("-machine-readable", "machine", is_flag=True, help="Produce machine-readable output.")
@click.option("-no-warn-undeclared-var", "no_warn", is_flag=True, hidden=True)
@click.option(
    "-evaluate-datasources",
    "evaluate_datasources",
    is_flag=True,
    help="Evaluate data sources during validation (HCL2 only, may incur costs); defaults to false.",
)
@var_options
@only_except_options
@checks_option
@click.argument("template", type=click.Path(path_type=Path))
def validate(
    template: Path,
    syntax_only: bool,
    machine: bool,
    no_warn: bool,
    evaluate_datasources: bool,
    vars_: tuple[str, ...],
    var_files: tuple[Path, ...],
    only: tuple[str, ...],
    except_: tuple[str, ...],
    checks_file: Path | None,
) -> None:
    """Check that a template is valid: syntax, variables, and every plugin's configuration.

    Exit status 0 when valid, 1 otherwise; every problem is reported at once, each with its file,
    line and key.
    """
    started = datetime.now(UTC)  # the run's one clock: {{timestamp}}, {{isotime}}, timestamp()
    if syntax_only:
        from amibake.template.load import load

        load(template, var_files=var_files, vars=parse_vars(vars_), init_time=started)
        click.echo("Syntax-only check passed. Everything looks okay.")
        return
    from amibake.core import load_template

    run = load_template(
        template, var_files, parse_vars(vars_), execute_datasources=evaluate_datasources, started=started
    )
    builds, warnings = _prepare(run, only, except_, checks_file)
    if warnings:
        redact = run.redactor()
        for w in warnings:
            click.echo(redact(f"Warning: {w}"), err=True)
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


def skip_options(f: F) -> F:
    """-skip-unchanged and -max-age, shared by ``build`` and ``plan``."""
    f = click.option(
        "-skip-unchanged",
        "skip_unchanged",
        is_flag=True,
        default=None,
        help="Reuse an AMI of yours with the same content fingerprint instead of rebuilding: only the "
        "missing copies, tags and sharing are done (also AMIBAKE_SKIP_UNCHANGED=1).",
    )(f)
    f = click.option(
        "-max-age",
        "max_age",
        default="",
        metavar="duration",
        help="With -skip-unchanged: do not reuse an AMI older than this (e.g. 168h); default: any age.",
    )(f)
    return f


def _skip(skip_unchanged: bool | None, max_age: str, force: bool) -> SkipOptions:
    import os

    from amibake.config.durations import parse_duration
    from amibake.errors import UserInputError
    from amibake.reuse import SkipOptions

    enabled = skip_unchanged
    if enabled is None:
        flag = os.environ.get("AMIBAKE_SKIP_UNCHANGED", "").strip().lower()
        enabled = flag not in ("", "0", "false", "no")
    age: float | None = None
    if max_age:
        try:
            age = parse_duration(max_age)
        except ValueError as exc:
            raise UserInputError([f"-max-age: {exc}"]) from None
        if age < 0:
            raise UserInputError([f"-max-age: {max_age} is negative"])
    return SkipOptions(enabled=enabled, max_age=age, force=force)


def _fingerprints(
    template: Path, var_files: tuple[Path, ...], vars_: tuple[str, ...], only: tuple[str, ...],
    except_: tuple[str, ...], warn: Callable[[str], None], run: RunContext, builds: list[PreparedBuild],
) -> dict[str, Any]:
    """Every selected build's content fingerprint (the template rendered again with fixed time)."""
    from amibake.errors import AmibakeError
    from amibake.fingerprint import for_template

    try:
        return dict(for_template(template, var_files, parse_vars(vars_), split_csv(only), split_csv(except_),
                                 main=run, main_builds=builds))
    except (AmibakeError, OSError) as exc:
        warn(f"Warning: the content fingerprint could not be computed, AMIs are not fingerprinted: {exc}")
        return {}


@cli.command(context_settings=CONTEXT)
@click.option(
    "-force",
    "force",
    is_flag=True,
    help="Force a build to continue if artifacts exist, deletes existing artifacts.",
)
@click.option("-debug", "debug", is_flag=True, help="Debug mode enabled for builds (pause after each step).")
@click.option("-machine-readable", "machine", is_flag=True, help="Produce machine-readable output.")
@click.option(
    "-color", "color", type=bool, default=None, metavar="false", help="Disable color output (-color=false)."
)
@click.option(
    "-timestamp-ui",
    "timestamps",
    is_flag=True,
    help="Enable prefixing of each ui output with an RFC3339 timestamp.",
)
@click.option(
    "-on-error",
    "on_error",
    type=click.Choice(["cleanup", "abort", "ask", "run-cleanup-provisioner"]),
    default="cleanup",
    help="If the build fails do: clean up (default), abort, ask, or run-cleanup-provisioner.",
)
@click.option(
    "-parallel-builds",
    "parallel",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Number of builds to run in parallel. 0 means no limit (default: 0).",
)
@skip_options
@var_options
@only_except_options
@checks_option
@click.argument("template", type=click.Path(path_type=Path))
def build(
    template: Path,
    force: bool,
    debug: bool,
    machine: bool,
    color: bool | None,
    timestamps: bool,
    on_error: str,
    parallel: int,
    skip_unchanged: bool | None,
    max_age: str,
    vars_: tuple[str, ...],
    var_files: tuple[Path, ...],
    only: tuple[str, ...],
    except_: tuple[str, ...],
    checks_file: Path | None,
) -> None:
    """Build images from a template: every build in parallel, then its post-processors.

    Temporary resources (instance, key pair, security group, volumes) are removed whatever
    happens, unless -on-error=abort says to keep them for debugging. With -skip-unchanged, a build
    whose content fingerprint matches an AMI of yours converges that AMI instead (no instance).
    """
    import sys

    started = datetime.now(UTC)  # the run's one clock: {{timestamp}}, {{isotime}}, timestamp()
    from amibake.build import BuildOptions, BuildRunner
    from amibake.cli.process import install_signal_handlers
    from amibake.core import load_template, refuse_unbuildable
    from amibake.errors import Interrupted
    from amibake.ui.console import Console

    skip = _skip(skip_unchanged, max_age, force)
    if checks_file is not None and skip.enabled and not skip.force:
        from amibake.errors import UserInputError

        raise UserInputError(["-checks cannot be combined with -skip-unchanged: a reused image would not "
                              "be checked again"])
    run = load_template(template, var_files, parse_vars(vars_), started=started)
    run.force = force
    builds, warnings = _prepare(run, only, except_, checks_file)
    refuse_unbuildable(builds)  # before any builder, fingerprint or AWS call of the build itself
    redact = run.redactor()
    fingerprints = _fingerprints(template, var_files, vars_, only, except_,
                                 lambda w: click.echo(redact(w), err=True), run, builds)
    if any(getattr(b.builder.config, "communicator", "ssh") == "ssh" for b in builds):
        _prefetch_ssh()
    # Everything alive now (modules, config models, the template) lives until exit: take it out
    # of the collector's generations, so that no collection during the build walks it again.
    gc.freeze()
    console = Console(
        color=color, machine_readable=machine, timestamps=timestamps, redactor=run.redactor()
    )
    for w in warnings:
        console.error(f"Warning: {w}")
    if not builds:
        raise TemplateError(["no build matches -only/-except"])
    runner = BuildRunner(
        run,
        builds,
        console,
        BuildOptions(on_error=on_error, parallel_builds=parallel, debug=debug, force=force,  # type: ignore[arg-type]
                     fingerprints=fingerprints, skip=skip),
    )
    state = install_signal_handlers(runner)
    results = runner.run_all()
    if state["signum"]:
        raise Interrupted(state["signum"])
    if any(r.error for r in results):
        sys.exit(1)


def _prefetch_ssh() -> None:
    """Import the SSH stack (asyncssh, ~0.15-0.3 s of imports) in a daemon thread.

    The build thread needs it only after its first EC2 calls; imported here, it loads while that
    thread waits for EC2's answers instead of after them. Python's per-module import locks make
    the build thread wait for a module this thread is still importing.
    """
    import threading

    def load() -> None:
        try:
            import amibake.communicator.ssh  # noqa: F401
        except Exception:  # the build thread imports it again and reports any error itself
            pass

    threading.Thread(target=load, name="amibake-prefetch-ssh", daemon=True).start()


@cli.command(context_settings=CONTEXT)
@click.option("-force", "force", is_flag=True, help="As build's -force: every build would rebuild.")
@click.option("-machine-readable", "machine", is_flag=True, help="Produce machine-readable output.")
@click.option("-color", "color", type=bool, default=None, metavar="false", help="Disable color output.")
@click.option("-debug", "debug", is_flag=True, hidden=True)
@click.option("-timestamp-ui", "timestamps", is_flag=True, hidden=True)
@click.option("-on-error", "on_error", default="cleanup", hidden=True)
@click.option("-parallel-builds", "parallel", type=click.IntRange(min=0), default=0, hidden=True)
@skip_options
@var_options
@only_except_options
@click.argument("template", type=click.Path(path_type=Path))
def plan(
    template: Path,
    force: bool,
    machine: bool,
    color: bool | None,
    debug: bool,
    timestamps: bool,
    on_error: str,
    parallel: int,
    skip_unchanged: bool | None,
    max_age: str,
    vars_: tuple[str, ...],
    var_files: tuple[Path, ...],
    only: tuple[str, ...],
    except_: tuple[str, ...],
) -> None:
    """Show, per build, what `build` with the same flags would do and why: rebuild, reuse an AMI and
    converge it, or refused; and what it would create. Nothing is created (only Describe calls).

    Exit status 1 when a build is refused.
    """
    import sys
    import threading

    from amibake.api import BuildEnv
    from amibake.core import load_template
    from amibake.reuse import decide
    from amibake.ui.console import Console

    started = datetime.now(UTC)
    skip = _skip(skip_unchanged, max_age, force)
    run = load_template(template, var_files, parse_vars(vars_), started=started)
    builds, warnings = _prepare(run, only, except_)
    console = Console(color=color, machine_readable=machine, redactor=run.redactor())
    for w in warnings:
        console.error(f"Warning: {w}")
    if not builds:
        raise TemplateError(["no build matches -only/-except"])
    fingerprints = _fingerprints(template, var_files, vars_, only, except_, console.error, run, builds)
    refused = False
    for b in builds:
        ui = console.build_ui(b.name)
        env = BuildEnv(build_name=b.name, builder_type=b.type, template_dir=run.template.template_dir, ui=ui,
                       cancel=threading.Event(), run_id=run.run_id, run_uuid=run.run_id,
                       secrets=run.secrets(), fingerprint=fingerprints.get(b.name), skip_unchanged=True)
        d, _ = decide(b.type, b.builder.config, env, skip, explain=True)
        action = d.action
        reasons = list(d.reasons)
        if action == "reuse" and not skip.enabled:
            assert d.image is not None
            action = "rebuild"
            reasons = [f"-skip-unchanged not given (with it: reuse {d.image.id} and converge)"]
        refused = refused or action == "refused"
        headline = {"rebuild": "rebuild", "refused": "refused",
                    "reuse": f"reuse {d.image.id if d.image else ''} and converge"}[action]
        reused = d.image.id if d.image and action == "reuse" else ""
        console.machine_line(b.name, "plan-action", action, reused)
        if d.fingerprint:
            console.machine_line(b.name, "plan-fingerprint", d.fingerprint)
        for r in reasons:
            console.machine_line(b.name, "plan-reason", r)
        for res in d.resources if action != "refused" else []:
            console.machine_line(b.name, "plan-resource", res)
        if machine:
            continue
        ui.say(headline)
        for r in reasons:
            ui.message(f"why: {r}")
        if d.fingerprint:
            ui.message(f"fingerprint: {d.fingerprint}")
        if action != "refused" and d.resources:
            ui.message("would create or change: " + "; ".join(d.resources))
    if refused:
        sys.exit(1)
