"""``amibake inspect``: Packer's layout, in human or machine-readable form."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from amibake.template.model import Template
from amibake.ui.machine import line

SENSITIVE = "<sensitive>"


class _Out:
    def __init__(self, machine: bool) -> None:
        self.machine = machine

    def say(self, text: str) -> None:
        if self.machine:
            click.echo(line("", "ui", "say", text))
        else:
            click.echo(text)

    def data(self, type_: str, *fields: str) -> None:
        if self.machine:
            click.echo(line("", type_, *fields))


def _load(path: Path, var_files: tuple[Path, ...], cli_vars: Mapping[str, str]) -> Template:
    if path.is_dir() or path.name.endswith((".pkr.hcl", ".pkr.json")):
        from amibake.template.hcl import load_hcl

        return load_hcl(path, var_files=var_files, vars=dict(cli_vars))
    from amibake.template.json_loader import load_json

    return load_json(path)


def inspect_template(
    path: Path, *, machine: bool, var_files: tuple[Path, ...] = (), cli_vars: Mapping[str, str] | None = None
) -> None:
    template = _load(path, var_files, cli_vars or {})
    out = _Out(machine)
    mode = "JSON" if template.format == "json" else "HCL2"
    out.say(f"Packer Inspect: {mode} mode")
    if template.description:
        out.say("Description:\n")
        out.say(template.description + "\n")

    variables = template.variables
    if not variables:
        out.say("Variables:\n")
        out.say("  <No variables>")
    else:
        required = [v for v in variables.values() if v.required]
        if required:
            out.say("Required variables:\n")
            for v in required:
                out.data("template-variable", v.name, "", "1")
                out.say("  " + v.name)
            out.say("")
        out.say("Optional variables and their defaults:\n")
        width = max(len(n) for n in variables)
        for name in sorted(variables):
            v = variables[name]
            if v.required:
                continue
            shown = SENSITIVE if v.sensitive else _show(v.default)
            out.data("template-variable", name, shown, "0")
            out.say(f"  {name.ljust(width)} = {shown}")
    out.say("")

    out.say("Builders:\n")
    sources = template.all_sources()
    if not sources:
        out.say("  <No builders>")
    else:
        width = max(len(s.name) for _, s in sources)
        for _, s in sorted(sources, key=lambda bs: bs[1].name):
            text = "  " + s.name.ljust(width)
            if s.name != s.type:
                text += f" ({s.type})"
            out.data("template-builder", s.name, s.type)
            out.say(text)
    out.say("")

    out.say("Provisioners:\n")
    provs = [p for b in template.builds for p in b.provisioners]
    if not provs:
        out.say("  <No provisioners>")
    for p in provs:
        out.data("template-provisioner", p.type)
        out.say(f"  {p.type}")
    pps = [seq for b in template.builds for seq in b.post_processors]
    if pps:
        out.say("")
        out.say("Post-processors:\n")
        for seq in pps:
            out.data("template-post-processor", *(pp.type for pp in seq))
            out.say("  " + " -> ".join(pp.type for pp in seq))

    out.say(
        "\nNote: If your build names contain user variables or template\n"
        "functions such as 'timestamp', these are processed at build time,\n"
        "and therefore only show in their raw form here."
    )


def _show(value: object) -> str:
    if isinstance(value, str):
        return value
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
