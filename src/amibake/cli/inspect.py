"""``amibake inspect``: Packer's layout, in human or machine-readable form."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from amibake.template.model import BuildBlock, Template
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
    from amibake.template.load import load

    return load(path, var_files=var_files, vars=cli_vars, lenient=True)


def inspect_template(
    path: Path, *, machine: bool, var_files: tuple[Path, ...] = (), cli_vars: Mapping[str, str] | None = None
) -> None:
    template = _load(path, var_files, cli_vars or {})
    out = _Out(machine)
    if template.format == "hcl2":
        _inspect_hcl2(template, out)
        return
    out.say("Packer Inspect: JSON mode")
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
    # no post-processors section: Packer's legacy JSON inspect has none (packer/core.go Inspect,
    # 1.6.6 through 1.9.4)

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


def printable(value: object) -> str:
    """A value as Packer's HCL2 inspect shows it: strings as they are, the rest as HCL would write it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return _hcl(value, 0)


def _hcl(value: object, indent: int) -> str:
    pad = "  " * (indent + 1)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) and not value.is_integer() else str(int(value))
    if isinstance(value, str):
        import json

        return json.dumps(value, ensure_ascii=False).replace("${", "$${")
    if isinstance(value, (list, tuple, set)):
        if not value:
            return "[]"
        items = "".join(f"{pad}{_hcl(v, indent + 1)},\n" for v in value)
        return "[\n" + items + "  " * indent + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = "".join(f"{pad}{_hcl(str(k), 0)} = {_hcl(value[k], indent + 1)}\n" for k in sorted(value))
        return "{\n" + items + "  " * indent + "}"
    return str(value)


def _go_quote(text: str) -> str:
    """Go's %q of a string (what Packer's inspect prints)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def _inspect_hcl2(template: Template, out: _Out) -> None:
    out.say("Packer Inspect: HCL2 mode\n")
    out.say("> input-variables:\n")
    for name in sorted(template.variables):
        v = template.variables[name]
        shown = SENSITIVE if v.sensitive else ("<unknown>" if v.required else printable(v.default))
        out.data("template-variable", name, shown, "1" if v.required else "0")
        out.say(f"var.{name}: {_go_quote(shown)}")
    out.say("\n> local-variables:\n")
    for name in sorted(template.locals):
        if template.locals[name] == "<unknown>":
            continue  # Packer leaves out a local it could not evaluate
        shown = SENSITIVE if name in template.sensitive_locals else printable(template.locals[name])
        out.say(f"local.{name}: {_go_quote(shown)}")
    out.say("\n> builds:\n")
    # the loader gives one BuildBlock per source; a build block is known by its position
    groups: dict[object, list[BuildBlock]] = {}
    for b in template.builds:
        groups.setdefault(b.pos or id(b), []).append(b)
    for n, blocks in enumerate(groups.values()):
        first = blocks[0]
        out.say(f"  > {first.name or f'<unnamed build {n}>'}:\n")
        if first.description:
            out.say(f"  > Description: {first.description}\n")
        out.say("    sources:\n")
        for b in blocks:
            for s in b.sources:
                out.data("template-builder", s.name, s.type)
                # the source the build refers to (an inline source block may rename the build)
                ref = s.key_path.removeprefix("source.") if s.key_path.startswith("source.") else s.name
                out.say(f"      {ref}\n")
        out.say("    provisioners:\n")
        if not first.provisioners:
            out.say("      <no provisioner>\n")
        else:
            for p in first.provisioners:
                out.data("template-provisioner", p.type)
                out.say(f"      {p.type}.{p.name}" if p.name else f"      {p.type}")
            out.say("")
        out.say("    post-processors:\n")
        if not first.post_processors:
            out.say("      <no post-processor>\n")
        else:
            for i, seq in enumerate(first.post_processors):
                out.data("template-post-processor", *(pp.type for pp in seq))
                out.say(f"      {i}:")
                for pp in seq:
                    named = pp.name and pp.name != pp.type
                    out.say(f"        {pp.type}.{pp.name}" if named else f"        {pp.type}")
                out.say("")
