"""``amibake plugins installed`` lists every built-in type with what ``build`` can do with it."""

from __future__ import annotations

from click.testing import CliRunner

from amibake import registry
from amibake.cli.main import cli

#: (kind, type) -> runs? for the types whose status the issue names; the listing must hold them
EXPECTED = {
    ("builder", "amazon-ebs"): True,
    ("builder", "null"): True,
    ("builder", "amazon-chroot"): False,
    ("builder", "amazon-ebssurrogate"): False,
    ("builder", "amazon-ebsvolume"): False,
    ("builder", "amazon-instance"): False,
    ("provisioner", "shell"): True,
    ("provisioner", "file"): True,
    ("provisioner", "shell-local"): True,
    ("provisioner", "ansible"): False,
    ("provisioner", "powershell"): False,
    ("post-processor", "manifest"): True,
    ("post-processor", "amazon-import"): False,
    ("datasource", "amazon-ami"): True,
    ("datasource", "http"): True,
    ("datasource", "null"): True,
}


def cli_run(*args: str) -> tuple[int, str]:
    from amibake.cli import commands  # noqa: F401  (registers the verbs)

    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def sections(out: str) -> dict[str, dict[str, str]]:
    """The human listing as {heading: {type: status}}."""
    found: dict[str, dict[str, str]] = {}
    heading = ""
    for text in out.splitlines():
        if text.endswith(":") and not text.startswith(" "):
            heading = text[:-1]
            found[heading] = {}
        elif text.startswith("  ") and heading:
            name, status = text.split()
            found[heading][name] = status
        elif not text:
            heading = ""
    return found


def test_installed_follows_the_registry() -> None:
    """A spec without an implementation is validate-only; every registered type is listed."""
    listed = {(p.kind, p.type): p.runnable for p in registry.installed()}
    for (kind, type_name), runs in EXPECTED.items():
        assert listed[(kind, type_name)] is runs, (kind, type_name)
    for kind in ("builder", "provisioner", "post-processor"):
        for type_name in registry.known(kind):
            spec = registry.lookup(kind, type_name)
            assert spec is not None
            assert listed[(kind, type_name)] is bool(spec.impl)
    from amibake.datasources.runner import SPECS

    assert {t for k, t in listed if k == "datasource"} == set(SPECS) | {"null"}


def test_human_listing_by_kind() -> None:
    code, out = cli_run("plugins", "installed")
    assert code == 0, out
    got = sections(out)
    assert list(got) == ["builders", "provisioners", "post-processors", "data sources"]
    heading = {"builder": "builders", "provisioner": "provisioners", "post-processor": "post-processors",
               "datasource": "data sources"}
    for (kind, type_name), runs in EXPECTED.items():
        assert got[heading[kind]][type_name] == ("run" if runs else "validate-only"), (kind, type_name)
    # shell-local is both a provisioner and a post-processor, each listed under its kind
    assert got["provisioners"]["shell-local"] == got["post-processors"]["shell-local"] == "run"
    assert sum(len(v) for v in got.values()) == len(registry.installed())
    assert "validate-only: its configuration is checked, but amibake cannot build it yet" in out


def test_machine_readable_listing() -> None:
    code, out = cli_run("plugins", "installed", "-machine-readable")
    assert code == 0, out
    rows = [line.split(",") for line in out.splitlines()]
    assert all(len(r) == 6 and r[0].isdigit() and r[1] == "" and r[2] == "plugin" for r in rows), rows
    got = {(r[3], r[4]): r[5] for r in rows}
    for key, runs in EXPECTED.items():
        assert got[key] == ("run" if runs else "validate-only"), key
    assert len(rows) == len(registry.installed())
