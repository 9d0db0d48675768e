"""``amibake plugins installed``: every built-in plugin type, by kind, and whether ``build`` can run it.

Packer lists the plugin binaries it found; amibake's plugins are built in, so it lists their types
instead, each marked ``run`` (``build`` carries it out) or ``validate-only`` (its configuration is
checked by ``validate`` and ``build``, but ``build`` refuses it). The facts come from
:func:`amibake.registry.installed`.
"""

from __future__ import annotations

import click

from amibake.cli.main import CONTEXT, cli

#: the heading of each kind in the human output
HEADINGS = {
    "builder": "builders",
    "provisioner": "provisioners",
    "post-processor": "post-processors",
    "datasource": "data sources",
    "communicator": "communicators",
}
RUN = "run"
VALIDATE_ONLY = "validate-only"


@cli.group("plugins", context_settings=CONTEXT)
def plugins() -> None:
    """Show amibake's built-in plugins (Packer's `plugins` verbs)."""


@plugins.command("installed", context_settings=CONTEXT)
@click.option("-machine-readable", "machine", is_flag=True, help="Produce machine-readable output.")
def installed(machine: bool) -> None:
    """List every built-in plugin type by kind, and whether `build` can run it or only validates it.

    run: `amibake build` carries it out. validate-only: its configuration is checked, but amibake
    cannot build it yet; `build` refuses a template that uses it before it starts anything.
    """
    from amibake import registry
    from amibake.ui.machine import line

    types = registry.installed()
    if machine:
        for p in types:
            click.echo(line("", "plugin", p.kind, p.type, RUN if p.runnable else VALIDATE_ONLY))
        return
    width = max(len(p.type) for p in types)
    for kind in registry.KINDS:
        of_kind = [p for p in types if p.kind == kind]
        if not of_kind:
            continue
        click.echo(f"{HEADINGS[kind]}:")
        for p in of_kind:
            click.echo(f"  {p.type:<{width}}  {RUN if p.runnable else VALIDATE_ONLY}")
    click.echo()
    click.echo(f"{RUN}: `amibake build` carries it out.")
    click.echo(f"{VALIDATE_ONLY}: its configuration is checked, but amibake cannot build it yet "
               "(`amibake build` refuses it before starting).")
