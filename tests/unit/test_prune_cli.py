"""``amibake prune``'s command line and the journals of earlier prunes (no AWS needed)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from amibake.cli.main import cli
from amibake.plugins.amazon.prune import Pruner, Request
from tests.unit.test_cold_start import HEAVY, imported, under


def test_refused_arguments_are_named_and_nothing_heavy_is_imported(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["prune", "--tag", "novalue", "--older-than", "3d"])
    assert r.exit_code == 1
    assert "--tag: expected KEY=VALUE, got 'novalue'" in r.output
    assert "--older-than: expected a duration such as 720h or 90m, got '3d'" in r.output
    assert "give --keep N, --older-than DURATION, or both" not in r.output
    r = CliRunner().invoke(cli, ["prune"])
    assert "choose the AMIs with --name, --tag or --template" in r.output
    assert "give --keep N, --older-than DURATION, or both" in r.output
    assert under(imported(tmp_path, "prune", "--name", "x"), *HEAVY) == []


class _NoGateway:
    region = "us-east-1"


def test_pending_snapshots_of_unfinished_prunes(tmp_path: Path) -> None:
    runs = tmp_path / "prune" / "runs"
    runs.mkdir(parents=True)

    def write(name: str, *entries: dict[str, object]) -> None:
        (runs / f"{name}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries) + '{"torn')

    write("prune-a",
          {"ev": "intent", "kind": "image", "region": "r1", "id": "ami-gone",
           "snapshots": ["snap-1", "snap-2"]},
          {"ev": "removed", "kind": "image", "region": "r1", "id": "ami-gone"},
          {"ev": "intent", "kind": "snapshot", "region": "r1", "id": "snap-1"},
          {"ev": "removed", "kind": "snapshot", "region": "r1", "id": "snap-1"},
          {"ev": "intent", "kind": "image", "region": "r2", "id": "ami-still", "snapshots": ["snap-3"]})
    write("prune-b",
          {"ev": "intent", "kind": "image", "region": "r1", "id": "ami-x", "snapshots": ["snap-9"]},
          {"ev": "finished"})
    pruner = Pruner(_NoGateway(), Request(), lambda _: None, tmp_path)  # type: ignore[arg-type]
    journals = pruner.unfinished()
    assert [p.name for p in journals] == ["prune-a.jsonl"]
    # snap-2 is left; ami-still is still there (planned again from what is there now)
    assert pruner.pending(journals, {"ami-still"}) == {"r1": {"snap-2": "ami-gone"}}
    assert pruner.pending(journals, set()) == {"r1": {"snap-2": "ami-gone"}, "r2": {"snap-3": "ami-still"}}
    pruner.settle(journals)
    assert pruner.unfinished() == []
