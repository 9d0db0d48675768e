"""Cold start (issue #11): each verb imports only what it uses.

Each case runs ``amibake`` in a fresh interpreter (in-process, no server) and reads the modules it
imported. ``bench/FINDINGS.md`` ("Start-up imports") has the timings these keep.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "examples" / "quickstart.json")
HCL = str(ROOT / "tests" / "corpus" / "templates" / "049-hashicorp-packer-plugin-amazon-plugin-ds-ami"
          / "template.pkr.hcl")

#: what no verb but ``build`` (and the executing data sources) may import
HEAVY = ("botocore", "boto3", "asyncssh", "cryptography")

_PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: json.dump(sorted(sys.modules), open(out, "w")))
from amibake.cli.main import main
main(sys.argv[1:])
"""


def imported(tmp_path: Path, *argv: str) -> set[str]:
    """The modules an in-process ``amibake *argv`` imported."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYDANTIC_")}
    env["AMIBAKE_NO_SERVER"] = "1"
    subprocess.run([sys.executable, "-c", _PROBE, str(out), *argv], cwd=tmp_path, env=env,
                   capture_output=True, timeout=60)
    # amibake.cli.main's stand-in for pydantic's plugin loader is no pydantic import
    return set(json.loads(out.read_text())) - {"pydantic.plugin._loader"}


def under(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_version_imports_no_verb_module(tmp_path: Path) -> None:
    mods = imported(tmp_path, "version")
    assert under(mods, "amibake.cli.commands", "amibake.cli.server_command", "amibake.ui", "pydantic",
                 *HEAVY) == []


def test_validate_json_imports_no_hcl_no_aws_no_plugin_discovery(tmp_path: Path) -> None:
    mods = imported(tmp_path, "validate", QUICKSTART)
    assert "amibake.config.base" in mods  # it does validate the configs
    assert under(mods, *HEAVY, "amibake.template.hcl", "amibake.cli.server_command",
                 "amibake.cli.hcl_commands", "amibake.ui.redact", "importlib.metadata") == []
    # only the configs of the plugins the template names (amazon-ebs, shell)
    assert under(mods, "amibake.plugins.amazon.config_chroot", "amibake.plugins.amazon.config_surrogate",
                 "amibake.plugins.amazon.config_ebsvolume", "amibake.builders.null") == []


@pytest.mark.parametrize(
    "argv",
    [("inspect", QUICKSTART), ("fmt", "-check", HCL),
     ("hcl2_upgrade", "-output-file", "out.pkr.hcl", QUICKSTART)],
    ids=["inspect", "fmt", "hcl2_upgrade"],
)
def test_template_verbs_import_no_pydantic_no_aws(tmp_path: Path, argv: tuple[str, ...]) -> None:
    mods = imported(tmp_path, *argv)
    assert under(mods, "pydantic", *HEAVY, "amibake.cli.server_command") == []


def test_help_lists_every_verb_in_order() -> None:
    from click.testing import CliRunner

    from amibake.cli.main import VERBS, cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n", 1)[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.strip()]
    assert listed[: len(VERBS) + 1] == ["version", *VERBS]


def test_every_verb_resolves() -> None:
    import click

    from amibake.cli.main import VERBS, cli

    ctx = click.Context(cli)
    for name in VERBS:
        assert cli.get_command(ctx, name) is not None, name


def test_pydantic_takes_only_get_plugins_from_its_loader() -> None:
    """``amibake.cli.main`` stands in for ``pydantic.plugin._loader`` with a module that has only
    ``get_plugins``: pydantic must take nothing else from it."""
    import pydantic.plugin

    plugin_dir = Path(pydantic.plugin.__file__).parent
    names: set[str] = set()
    for path in plugin_dir.parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("_loader") and (
                path.parent == plugin_dir or (node.module or "").startswith("pydantic.plugin")
            ):
                names |= {a.name for a in node.names}
    assert names == {"get_plugins"}
