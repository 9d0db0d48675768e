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


class _Gateway:
    """Stands in for the session layer: answers every call, refusing to deregister ami-busy."""

    region = "r1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []

    def call(self, op: str, region: str, service: str = "ec2", **params: object) -> dict[str, object]:
        from amibake.aws.errors import AwsError

        self.calls.append((op, params))
        if params.get("ImageId") == "ami-busy":
            raise AwsError(op, "InvalidParameterValue", "the image is in use")
        if params.get("SnapshotId") == "snap-gone":
            raise AwsError(op, "InvalidSnapshot.NotFound", "no such snapshot")
        return {}


def test_a_failed_deregistration_keeps_its_snapshots_and_leaves_the_journal_unfinished(
        tmp_path: Path) -> None:
    from datetime import datetime

    from amibake.plugins.amazon.prune_plan import Image, Rules, Usage, plan

    images = [Image(f"ami-{n}", "r1", f"n{n}", datetime(2026, 1, 1 + i), {"amibake:build": "b"},
                    (f"snap-{n}",)) for i, n in enumerate(["busy", "ok", "gone", "new"])]
    result = plan(images, [i.id for i in images], Usage(), Rules(keep=1, now=datetime(2026, 6, 1)))
    gw = _Gateway()
    lines: list[tuple[str, ...]] = []
    pruner = Pruner(gw, Request(), lambda _: None, tmp_path)  # type: ignore[arg-type]
    out = pruner.act(result, lambda *a: lines.append(a))
    assert sorted(out.removed_images) == ["ami-gone", "ami-ok"]
    assert out.deleted_snapshots == ["snap-ok"] and out.gone == ["snap-gone"]
    assert out.failed == ["AMI ami-busy (r1): InvalidParameterValue: the image is in use"]
    assert ("delete_snapshot", {"SnapshotId": "snap-busy"}) not in gw.calls
    assert ("image", "r1", "ami-busy", "failed", "InvalidParameterValue: the image is in use") in lines
    journal = next((tmp_path / "prune" / "runs").glob("*.jsonl"))
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [e["ev"] for e in events if e.get("id") == "ami-busy"] == ["intent"]
    assert [e["ev"] for e in events if e.get("id") == "snap-ok"] == ["intent", "removed"]
    intent = next(e for e in events if e["ev"] == "intent" and e.get("id") == "ami-ok")
    assert intent["snapshots"] == ["snap-ok"]
    assert "finished" not in [e["ev"] for e in events]
    assert pruner.unfinished() == [journal]


class _Account(_Gateway):
    """Two regions: r-bad cannot be read; r-good holds two AMIs of build b."""

    def __init__(self, access: object = None) -> None:
        super().__init__()

    def call(self, op: str, region: str, service: str = "ec2", **params: object) -> dict[str, object]:
        from amibake.aws.errors import AwsError

        if region == "r-bad":
            raise AwsError(op, "UnauthorizedOperation", "not allowed here")
        if op == "describe_images":
            return {"Images": [
                {"ImageId": f"ami-{n}", "Name": f"b-{n}", "CreationDate": f"2026-01-0{n}T00:00:00.000Z",
                 "State": "available", "Tags": [{"Key": "amibake:build", "Value": "b"}],
                 "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": f"snap-{n}"}}]}
                for n in (1, 2)]}
        return super().call(op, region, service, **params)

    def pages(self, op: str, region: str, service: str = "ec2", **params: object) -> list[dict[str, object]]:
        return [self.call(op, region, service, **params)]


def test_a_region_that_cannot_be_read_is_left_alone_and_the_exit_status_is_1(
        tmp_path: Path, monkeypatch: object, capsys: object) -> None:
    import amibake.plugins.amazon.prune as prune_module
    from amibake.ui.console import Console

    made: list[_Account] = []

    def gateway(access: object) -> _Account:
        made.append(_Account())
        return made[-1]

    monkeypatch.setattr(prune_module, "PruneGateway", gateway)  # type: ignore[attr-defined]
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path))  # type: ignore[attr-defined]
    status = prune_module.prune(Console(color=False), names=("b-*",), regions=("r-bad", "r-good"), keep=1,
                                yes=True)
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert status == 1
    assert "r-bad: not pruned, cannot read it: UnauthorizedOperation: not allowed here" in out
    calls = made[0].calls
    assert ("deregister_image", {"ImageId": "ami-1"}) in calls
    assert ("delete_snapshot", {"SnapshotId": "snap-1"}) in calls
    assert not any(p.get("ImageId") == "ami-2" for op, p in calls if op == "deregister_image")
    assert "Removed 1 AMI(s) and 1 snapshot(s); 0 already gone, 0 failed." in out
