"""The amazon-ebs steps from a connected instance to the finished AMIs (``steps_ami.py``), against
``CountingEc2``: the exact requests, messages, errors and undos (written for a mutation run's
survivors, docs/mutation.md)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon import steps_ami as sa
from amibake.plugins.amazon.ec2 import Image, Instance
from amibake.steps.context import BuildCancelled, StepContext
from amibake.steps.runner import StepRunner
from tests.fakes.ec2 import CountingEc2, aws_error
from tests.unit.test_steps_fake import RUN_ID, make_state


def says(st: Any) -> list[str]:
    return [line.split(": ", 1)[1] for line in st.ui.lines if line.startswith("say: ")]


def messages(st: Any) -> list[str]:
    return [line.split(": ", 1)[1] for line in st.ui.lines if line.startswith("message: ")]


def with_instance(fake: CountingEc2, st: Any, state: str = "running") -> str:
    inst = Instance("i-0001", state, public_ip="1.2.3.4")
    fake.instances[inst.id] = inst
    st.instance = inst
    return inst.id


def unwind(ctx: StepContext, rollback: bool = True) -> None:
    StepRunner(ctx).unwind(include_rollback=rollback)


# -- StepConnect ---------------------------------------------------------------------------------


class Comm:
    def __init__(self) -> None:
        self.closed = 0
        self.commands: list[str] = []
        self.codes: list[int | Exception] = []

    def close(self) -> None:
        self.closed += 1

    def run(self, command: str) -> int:
        self.commands.append(command)
        code = self.codes.pop(0) if self.codes else 0
        if isinstance(code, Exception):
            raise code
        return code


def test_connect_uses_the_connector_and_registers_closing() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    with_instance(fake, st)
    comm = Comm()
    seen: list[Any] = []
    step = sa.make_connect_step(lambda s, c: seen.append((s, c)) or comm)
    step(st, ctx)
    assert seen == [(st, ctx)] and st.comm is comm and st.host == "1.2.3.4"
    assert says(st) == [
        "Using SSH communicator to connect: 1.2.3.4",
        "Waiting for SSH to become available...",
        "Connected to SSH!",
    ]
    assert ctx.undo_stack[-1].description == "SSH connection to 1.2.3.4"
    unwind(ctx)
    assert comm.closed == 1


def test_connect_without_close_registers_nothing_and_none_communicator_connects_nothing() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    with_instance(fake, st)
    sa.make_connect_step(lambda s, c: object())(st, ctx)
    assert ctx.undo_stack == []
    st2, ctx2 = make_state(fake, communicator="none")
    called: list[int] = []
    sa.make_connect_step(lambda s, c: called.append(1))(st2, ctx2)
    from amibake.communicator.none import NoneCommunicator

    assert isinstance(st2.comm, NoneCommunicator) and called == [] and says(st2) == [] and st2.host == ""


def test_connect_pauses_before_connecting_and_a_cancel_stops_it() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, pause_before_connecting="90s")
    with_instance(fake, st)
    waited: list[float] = []

    class Ev(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout or 0)
            return False

    ctx.cancel = Ev()
    sa.make_connect_step(lambda s, c: Comm())(st, ctx)
    assert waited == [90.0]
    assert says(st)[0] == "Waiting 1m30s before establishing the SSH connection..."
    ctx.cancel = threading.Event()
    ctx.cancel.set()
    with pytest.raises(BuildCancelled, match="cancelled while pausing before connecting"):
        sa.make_connect_step(lambda s, c: Comm())(st, ctx)


def test_go_duration() -> None:
    assert sa._go_duration(90) == "1m30s" and sa._go_duration(5) == "5s"


# -- StepStopEBSBackedInstance -------------------------------------------------------------------


def test_stop_instance_stops_and_waits_for_stopped() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    iid = with_instance(fake, st)
    sa.stop_instance(st, ctx)
    assert fake.names()[:2] == ["stop_instance", "wait"]
    assert fake.last("stop_instance").args == (iid,)
    wait = fake.last("wait")
    assert wait.args[0] == f"instance {iid} to be stopped" and wait.kwargs["failed_states"] == ("terminated",)
    assert says(st) == ["Stopping the source instance...", "Waiting for the instance to stop..."]
    assert messages(st) == ["Stopping instance"]


def test_stop_instance_already_stopped_needs_no_wait() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    with_instance(fake, st)
    fake.stop_instance = lambda iid: "stopped"  # type: ignore[method-assign]
    sa.stop_instance(st, ctx)
    assert "wait" not in fake.names()


def test_stop_instance_errors_and_disabled_stop() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    iid = with_instance(fake, st)
    fake.fail_next("stop_instance", aws_error("IncorrectInstanceState", "no"))
    with pytest.raises(BuildError, match=r"^Error stopping instance: .*IncorrectInstanceState"):
        sa.stop_instance(st, ctx)
    fake.instance_states[iid] = ["terminated"]
    with pytest.raises(BuildError, match=r"^Error waiting for instance to stop: "):
        sa.stop_instance(st, ctx)
    st2, ctx2 = make_state(fake, disable_stop_instance=True)
    st2.instance = Instance("i-9", "stopped")
    fake.instances["i-9"] = st2.instance
    n = fake.count("stop_instance")
    sa.stop_instance(st2, ctx2)
    assert fake.count("stop_instance") == n
    assert says(st2) == [
        "Automatic instance stop disabled. Please stop instance manually.",
        "Waiting for the instance to stop...",
    ]
    assert fake.last("wait").args[0] == "instance i-9 to be stopped"


def test_a_spot_instance_is_not_stopped() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, spot_price="auto")
    with_instance(fake, st)
    sa.stop_instance(st, ctx)
    assert fake.calls == [] and says(st) == []


# -- StepDeregisterAMI ---------------------------------------------------------------------------


def test_regions_build_region_first_without_duplicates() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake, ami_regions=["us-west-2", "us-east-1", "us-west-2", "eu-west-1"])
    assert sa._regions(st) == ["us-east-1", "us-west-2", "eu-west-1"]


def test_deregister_ami_only_with_force_deregister() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    fake.add_image("packer-example", snapshots=["snap-1"])
    sa.deregister_ami(st, ctx)
    assert fake.calls == []


def test_force_deregister_in_every_region_and_snapshots_with_force_delete_snapshot() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, force_deregister=True, force_delete_snapshot=True, ami_regions=["us-west-2"])
    old = fake.add_image("packer-example", snapshots=["snap-1", "snap-2"])
    sa.deregister_ami(st, ctx)
    assert [(c.name, c.args, c.kwargs.get("region")) for c in fake.calls] == [
        ("images_named", ("packer-example",), "us-east-1"),
        ("deregister_image", (old.id,), "us-east-1"),
        ("delete_snapshot", ("snap-1",), "us-east-1"),
        ("delete_snapshot", ("snap-2",), "us-east-1"),
        ("images_named", ("packer-example",), "us-west-2"),
    ]
    assert says(st) == [
        f"Deregistered AMI packer-example, id: {old.id}",
        "Deleted snapshot: snap-1",
        "Deleted snapshot: snap-2",
    ]
    fake2 = CountingEc2()
    st2, ctx2 = make_state(fake2, force_deregister=True)
    fake2.add_image("packer-example", snapshots=["snap-1"])
    sa.deregister_ami(st2, ctx2)
    assert "delete_snapshot" not in fake2.names()


# -- StepCreateAMI -------------------------------------------------------------------------------


def test_create_ami_request_tags_and_snapshot_tags() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake,
        ami_description="built {{ .BuildRegion }}",
        run_tags={"R": "run", "X": "run"},
        tags={"X": "ami"},
        snapshot_tags={"S": "snap", "X": "snap"},
        ami_block_device_mappings=[{"device_name": "/dev/sdb", "volume_size": 5}],
    )
    st.env.render = lambda text, data: text.replace("{{ .BuildRegion }}", data["BuildRegion"])
    iid = with_instance(fake, st, "stopped")
    sa.create_ami(st, ctx)
    call = fake.last("create_image")
    image_id = st.amis["us-east-1"]
    assert call.args == (iid, "packer-example")
    assert call.kwargs["description"] == "built us-east-1"
    assert call.kwargs["block_devices"][0]["DeviceName"] == "/dev/sdb"
    tags = call.kwargs["tags"]
    assert tags["R"] == "run" and tags["X"] == "ami" and tags["amibake:run-id"] == RUN_ID
    assert "S" not in tags
    snap_tags = call.kwargs["snapshot_tags"]
    assert snap_tags == {**tags, "S": "snap", "X": "snap"}
    snaps = list(fake.images[image_id].snapshot_ids)
    assert st.snapshots == {"us-east-1": snaps}
    assert fake.last("note_snapshots").args == (image_id, snaps)
    assert fake.last("note_snapshots").kwargs == {"region": "us-east-1"}
    assert fake.last("create_tags").args == (snaps, snap_tags)
    assert fake.last("create_tags").kwargs == {"region": "us-east-1"}
    assert says(st) == [
        f"Creating AMI packer-example from instance {iid}",
        "Waiting for AMI to become ready...",
        f"Adding tags to AMI ({image_id})...",
        f"Tagging snapshot: {snaps[0]}",
    ]
    assert messages(st) == [f"AMI: {image_id}"]
    (undo,) = ctx.undo_stack
    assert (
        undo.kind == "rollback" and undo.description == f"AMI {image_id} and its snapshots (region us-east-1)"
    )
    assert st.intermediary_ami == ""


def test_create_ami_skip_ami_run_tags_and_skip_create_ami() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, run_tags={"R": "run"}, skip_ami_run_tags=True)
    with_instance(fake, st)
    sa.create_ami(st, ctx)
    assert "R" not in fake.last("create_image").kwargs["tags"]
    assert "Skipping attaching run tags to AMI..." in says(st)
    st2, ctx2 = make_state(fake, skip_create_ami=True)
    with_instance(fake, st2)
    n = len(fake.calls)
    sa.create_ami(st2, ctx2)
    assert len(fake.calls) == n and says(st2) == ["Skipping AMI creation..."]


def test_create_ami_failures() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    with_instance(fake, st)
    fake.fail_next("create_image", aws_error("InvalidAMIName.Duplicate", "taken"))
    with pytest.raises(BuildError, match=r"^Error creating AMI: .*InvalidAMIName\.Duplicate"):
        sa.create_ami(st, ctx)
    assert st.amis == {} and ctx.undo_stack == []


def test_an_encrypted_build_goes_through_an_intermediary_ami() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, encrypt_boot=True, snapshot_tags={"S": "1"})
    with_instance(fake, st)
    sa.create_ami(st, ctx)
    call = fake.last("create_image")
    name = call.args[1]
    assert len(name) == 7 and name.isalnum() and name != "packer-example"
    assert call.kwargs["snapshot_tags"] == call.kwargs["tags"]
    assert st.intermediary_ami and st.amis == {}
    assert "create_tags" not in fake.names()
    (undo,) = ctx.undo_stack
    assert undo.kind == "teardown"
    assert undo.description == f"intermediary AMI {st.intermediary_ami} and its snapshots (region us-east-1)"
    st.ui.lines.clear()
    unwind(ctx, rollback=False)
    assert fake.last("destroy_image").args == (st.intermediary_ami,)
    assert fake.last("destroy_image").kwargs == {"region": "us-east-1"}
    assert says(st)[0] == "Deregistering the AMI and deleting unencrypted temporary AMIs and snapshots"


def test_skip_save_build_region_with_copies_uses_an_intermediary_and_without_copies_not() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, skip_save_build_region=True, ami_regions=["us-west-2"])
    with_instance(fake, st)
    sa.create_ami(st, ctx)
    assert st.intermediary_ami and len(fake.last("create_image").args[1]) == 7
    st2, ctx2 = make_state(fake, skip_save_build_region=True)
    with_instance(fake, st2)
    sa.create_ami(st2, ctx2)
    assert fake.last("create_image").args[1] == "packer-example" and not st2.intermediary_ami


def test_waiting_for_the_ami_wraps_the_error() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    with_instance(fake, st)
    original = fake.create_image

    def create(*a: Any, **k: Any) -> str:
        image_id = original(*a, **k)
        fake.image_states[image_id] = ["failed"]
        return image_id

    fake.create_image = create  # type: ignore[method-assign]
    with pytest.raises(BuildError, match=r"^Error waiting for AMI: AMI ami-\S+ failed$"):
        sa.create_ami(st, ctx)
    assert st.snapshots == {}


def test_an_image_without_snapshots_is_not_tagged_again() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake)
    sa._tag_snapshots(st, "us-east-1", Image("ami-1", "n", "available"), {"a": "b"})
    assert fake.calls == []


def test_rollback_removes_the_ami_and_every_snapshot_and_reports_each_failure() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake)
    img = fake.add_image("x", snapshots=["snap-1", "snap-2"])
    fake.fail_next("deregister_image", aws_error("AuthFailure", "no"))
    fake.fail_next("delete_snapshot", aws_error("InvalidSnapshot.InUse", "busy"))
    with pytest.raises(BuildError) as err:
        sa._rollback_image(st, "us-west-2", img.id)
    assert [(c.name, c.args, c.kwargs.get("region")) for c in fake.calls] == [
        ("describe_images", (), "us-west-2"),
        ("deregister_image", (img.id,), "us-west-2"),
        ("delete_snapshot", ("snap-1",), "us-west-2"),
        ("delete_snapshot", ("snap-2",), "us-west-2"),
    ]
    assert fake.calls[0].kwargs["image_ids"] == [img.id]
    text = str(err.value)
    assert text.startswith(f"could not remove AMI {img.id}: ")
    assert "; snapshot snap-1: " in text and "AuthFailure" in text and "InvalidSnapshot.InUse" in text
    assert says(st) == [
        "Deregistering the AMI and deleting associated snapshots because of cancellation, or error...",
        "Deleted snapshot: snap-2",
    ]
    fake.calls.clear()
    img2 = fake.add_image("y", snapshots=["snap-3"])
    st.ui.lines.clear()
    sa._rollback_image(st, "us-east-1", img2.id)
    assert says(st)[1:] == [f"Deregistered AMI id: {img2.id}", "Deleted snapshot: snap-3"]


# -- StepAMIRegionCopy ---------------------------------------------------------------------------


def test_region_copy_copies_tags_and_waits_in_each_region() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake,
        ami_regions=["us-west-2", "us-east-1", "eu-west-1"],
        tags={"T": "1"},
        snapshot_tags={"S": "2"},
        ami_description="d",
        snapshot_copy_duration_minutes=30,
    )
    st.amis["us-east-1"] = "ami-src"
    sa.region_copy(st, ctx)
    copies = sorted((c for c in fake.calls if c.name == "copy_image"), key=lambda c: c.args[0])
    assert [c.args[0] for c in copies] == ["eu-west-1", "us-west-2"]
    for c in copies:
        assert c.kwargs["source_region"] == "us-east-1" and c.kwargs["source_image_id"] == "ami-src"
        assert c.kwargs["name"] == "packer-example"
        assert c.kwargs["tags"]["T"] == "1" and c.kwargs["tags"]["amibake:run-id"] == RUN_ID
        assert c.kwargs["snapshot_tags"] == {**c.kwargs["tags"], "S": "2"}
    assert set(st.amis) == {"us-east-1", "us-west-2", "eu-west-1"}
    for region in ("us-west-2", "eu-west-1"):
        ami = st.amis[region]
        assert st.snapshots[region] == list(fake.images[ami].snapshot_ids)
        tag_calls = [c for c in fake.calls if c.name == "create_tags" and c.kwargs["region"] == region]
        assert tag_calls[0].args[0] == [ami] and tag_calls[0].args[1]["T"] == "1"
        assert tag_calls[1].args[0] == st.snapshots[region] and tag_calls[1].args[1]["S"] == "2"
        notes = [c for c in fake.calls if c.name == "note_snapshots" and c.kwargs["region"] == region]
        assert notes[0].args == (ami, st.snapshots[region])
        assert f"Adding tags to AMI ({ami})..." in says(st)
    assert says(st)[0] == "Copying/Encrypting AMI (ami-src) to other regions..."
    assert messages(st)[:3] == [
        "Copying to: us-west-2",
        "Copying to: eu-west-1",
        "Waiting for all copies to complete...",
    ]
    assert {u.description for u in ctx.undo_stack} == {
        f"AMI {st.amis['us-west-2']} and its snapshots (region us-west-2)",
        f"AMI {st.amis['eu-west-1']} and its snapshots (region eu-west-1)",
    }
    assert all(u.kind == "rollback" for u in ctx.undo_stack)


def test_region_copy_parameters_reach_the_gateway() -> None:
    fake = CountingEc2()
    seen: list[dict[str, Any]] = []
    original = fake.copy_image

    def copy(region: str, **kw: Any) -> str:
        seen.append({"region": region, **kw})
        return original(region, **kw)

    fake.copy_image = copy  # type: ignore[method-assign]
    st, ctx = make_state(
        fake,
        ami_regions=["us-west-2", "eu-west-1"],
        encrypt_boot=True,
        kms_key_id="k-build",
        region_kms_key_ids={"us-west-2": "k-west", "eu-west-1": "k-eu"},
        ami_description="d",
        snapshot_copy_duration_minutes=30,
    )
    st.intermediary_ami = "ami-tmp"
    sa.region_copy(st, ctx)
    by_region = {s["region"]: s for s in seen}
    assert set(by_region) == {"us-east-1", "us-west-2", "eu-west-1"}
    assert by_region["us-west-2"]["kms_key_id"] == "k-west"
    assert by_region["us-east-1"]["kms_key_id"] == "k-build"
    assert all(s["source_image_id"] == "ami-tmp" and s["encrypted"] is True for s in seen)
    assert all(s["description"] == "d" and s["copy_duration_minutes"] == 30 for s in seen)
    # not encrypted: no key, whatever region_kms_key_ids says
    seen.clear()
    st2, ctx2 = make_state(fake, ami_regions=["us-west-2"])
    st2.amis["us-east-1"] = "ami-src"
    sa.region_copy(st2, ctx2)
    assert seen[0]["kms_key_id"] == "" and seen[0]["copy_duration_minutes"] == 0
    assert seen[0]["encrypted"] is None


def test_region_copy_with_skip_save_build_region_leaves_out_the_build_region() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ami_regions=["us-west-2"], skip_save_build_region=True)
    st.intermediary_ami = "ami-tmp"
    sa.region_copy(st, ctx)
    assert [c.args[0] for c in fake.calls if c.name == "copy_image"] == ["us-west-2"]


def test_region_copy_nothing_to_do() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ami_regions=["us-east-1"])
    st.amis["us-east-1"] = "ami-src"
    sa.region_copy(st, ctx)
    assert fake.calls == [] and says(st) == []
    st2, ctx2 = make_state(fake, skip_create_ami=True, ami_regions=["us-west-2"])
    sa.region_copy(st2, ctx2)
    assert fake.calls == [] and says(st2) == ["Skipping AMI region copy..."]


def test_region_copy_failures_are_all_reported() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ami_regions=["us-west-2", "eu-west-1"])
    st.amis["us-east-1"] = "ami-src"
    fake.fail_next("copy_image", aws_error("Quota", "a"), aws_error("Quota", "b"))
    with pytest.raises(BuildError) as err:
        sa.region_copy(st, ctx)
    lines = str(err.value).split("\n")
    assert len(lines) == 2
    assert lines[0].startswith("Error Copying AMI (ami-src) to region (us-west-2): ")
    assert lines[1].startswith("Error Copying AMI (ami-src) to region (eu-west-1): ")


# -- StepEnableDeprecation, StepEnableDeregistrationProtection -----------------------------------


def test_enable_deprecation_in_every_region() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, deprecate_at="2030-01-02T03:04:05Z")
    st.amis.update({"us-east-1": "ami-1", "us-west-2": "ami-2"})
    sa.enable_deprecation(st, ctx)
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert [(c.args, c.kwargs) for c in fake.calls] == [
        (("ami-1", when), {"region": "us-east-1"}),
        (("ami-2", when), {"region": "us-west-2"}),
    ]
    assert says(st) == [
        'Enabling deprecation on AMI (ami-1) in region "us-east-1" ...',
        'Enabling deprecation on AMI (ami-2) in region "us-west-2" ...',
    ]
    fake.fail_next("enable_image_deprecation", aws_error("Denied", "x"))
    with pytest.raises(BuildError, match=r"^Error enable AMI deprecation: .*Denied"):
        sa.enable_deprecation(st, ctx)
    fake.calls.clear()
    st2, ctx2 = make_state(fake)
    st2.amis["us-east-1"] = "ami-1"
    sa.enable_deprecation(st2, ctx2)
    st3, ctx3 = make_state(fake, deprecate_at="2030-01-02T03:04:05Z", skip_create_ami=True)
    st3.amis["us-east-1"] = "ami-1"
    sa.enable_deprecation(st3, ctx3)
    assert fake.calls == []


def test_deregistration_protection() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, deregistration_protection={"enabled": True})
    st.amis.update({"us-east-1": "ami-1"})
    sa.enable_deregistration_protection(st, ctx)
    assert fake.last("enable_image_deregistration_protection").args == ("ami-1", False)
    assert fake.last("enable_image_deregistration_protection").kwargs == {"region": "us-east-1"}
    assert says(st) == ['Enabling deregistration protection on AMI (ami-1) in region "us-east-1" ...']
    st2, ctx2 = make_state(fake, deregistration_protection={"with_cooldown": True})
    st2.amis.update({"us-west-2": "ami-2"})
    sa.enable_deregistration_protection(st2, ctx2)
    assert fake.last("enable_image_deregistration_protection").args == ("ami-2", True)
    fake.fail_next("enable_image_deregistration_protection", aws_error("Denied", "x"))
    with pytest.raises(BuildError, match=r"^Error enabling AMI deregistration protection: .*Denied"):
        sa.enable_deregistration_protection(st2, ctx2)
    fake.calls.clear()
    for opts in ({}, {"skip_create_ami": True, "deregistration_protection": {"enabled": True}}):
        st3, ctx3 = make_state(fake, **opts)
        st3.amis["us-east-1"] = "ami-1"
        sa.enable_deregistration_protection(st3, ctx3)
    assert fake.calls == []


# -- StepModifyAMIAttributes ---------------------------------------------------------------------


def test_modify_attributes_every_kind() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake,
        ami_users=["111"],
        ami_groups=["all"],
        ami_org_arns=["arn:org"],
        ami_ou_arns=["arn:ou"],
        ami_product_codes=["pc"],
        imds_support="v2.0",
        snapshot_users=["222"],
        snapshot_groups=["all"],
    )
    st.amis.update({"us-east-1": "ami-1", "us-west-2": "ami-2"})
    st.snapshots.update({"us-east-1": ["snap-1"], "us-west-2": ["snap-2"], "eu-west-1": ["snap-x"]})
    sa.modify_attributes(st, ctx)
    image_calls = [(c.args, c.kwargs) for c in fake.calls if c.name == "modify_image_attribute"]
    perms = {
        "LaunchPermission": {
            "Add": [
                {"UserId": "111"},
                {"Group": "all"},
                {"OrganizationArn": "arn:org"},
                {"OrganizationalUnitArn": "arn:ou"},
            ]
        }
    }
    assert image_calls == [
        (("ami-1",), {"region": "us-east-1", **perms}),
        (("ami-1",), {"region": "us-east-1", "ProductCodes": ["pc"]}),
        (("ami-1",), {"region": "us-east-1", "ImdsSupport": {"Value": "v2.0"}}),
        (("ami-2",), {"region": "us-west-2", **perms}),
        (("ami-2",), {"region": "us-west-2", "ProductCodes": ["pc"]}),
        (("ami-2",), {"region": "us-west-2", "ImdsSupport": {"Value": "v2.0"}}),
    ]
    snap_calls = [(c.args, c.kwargs) for c in fake.calls if c.name == "modify_snapshot_attribute"]
    want = {
        "Attribute": "createVolumePermission",
        "OperationType": "add",
        "CreateVolumePermission": {"Add": [{"UserId": "222"}, {"Group": "all"}]},
    }
    assert snap_calls == [
        (("snap-1",), {"region": "us-east-1", **want}),
        (("snap-2",), {"region": "us-west-2", **want}),
    ]
    assert says(st)[0] == "Modifying attributes on AMI (ami-1)..."
    assert "Modifying attributes on snapshot (snap-2)..." in says(st)
    assert messages(st)[:3] == [
        "Modifying: launch permissions",
        "Modifying: product codes",
        "Modifying: imds_support",
    ]


def test_modify_attributes_nothing_to_do_and_errors() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    st.amis["us-east-1"] = "ami-1"
    st.snapshots["us-east-1"] = ["snap-1"]
    sa.modify_attributes(st, ctx)
    assert fake.calls == [] and says(st) == []
    st2, ctx2 = make_state(fake, ami_users=["1"], skip_create_ami=True)
    st2.amis["us-east-1"] = "ami-1"
    sa.modify_attributes(st2, ctx2)
    assert fake.calls == []
    st3, ctx3 = make_state(fake, snapshot_users=["1"])
    st3.amis["us-east-1"] = "ami-1"
    st3.snapshots["us-east-1"] = ["snap-1"]
    fake.fail_next("modify_snapshot_attribute", aws_error("Denied", "x"))
    with pytest.raises(BuildError, match=r"^Error modify AMI attributes: .*Denied"):
        sa.modify_attributes(st3, ctx3)
    assert says(st3) == ["Modifying attributes on snapshot (snap-1)..."]


# -- StepCleanupTempKeys, StepModifyEBSBackedInstance --------------------------------------------


def test_cleanup_temp_keys_removes_the_key_line_from_both_files() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ssh_clear_authorized_keys=True)
    st.public_key = "ssh-ed25519 AAAA/B+c/d comment"
    st.comm = Comm()
    sa.cleanup_temp_keys(st, ctx)
    assert st.comm.commands == [
        "sed -i.bak '/AAAA\\/B+c\\/d/d' ~/.ssh/authorized_keys; rm -f ~/.ssh/authorized_keys.bak",
        "sudo sed -i.bak '/AAAA\\/B+c\\/d/d' /root/.ssh/authorized_keys; "
        "sudo rm -f /root/.ssh/authorized_keys.bak",
    ]
    assert says(st) == ["Trying to remove ephemeral keys from authorized_keys files"]


def test_cleanup_temp_keys_reports_failures_and_goes_on() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ssh_clear_authorized_keys=True)
    st.public_key = "BODY"
    st.comm = Comm()
    st.comm.codes = [1, 1]
    sa.cleanup_temp_keys(st, ctx)
    assert st.comm.commands[0].startswith("sed -i.bak '/BODY/d'")
    assert says(st)[1:] == [
        "Error cleaning up ~/.ssh/authorized_keys; please clean up keys manually (exit 1)"
    ]
    st.comm = Comm()
    st.comm.codes = [OSError("lost"), 0]
    st.ui.lines.clear()
    sa.cleanup_temp_keys(st, ctx)
    assert says(st)[1:] == ["Error cleaning up temporary keys: lost"] and len(st.comm.commands) == 2


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"ssh_clear_authorized_keys": True, "communicator": "none"},
        {"ssh_clear_authorized_keys": True, "public_key": ""},
    ],
)
def test_cleanup_temp_keys_not_wanted(opts: dict[str, Any]) -> None:
    fake = CountingEc2()
    opts = dict(opts)
    public = opts.pop("public_key", "ssh-ed25519 AAAA")
    st, ctx = make_state(fake, **opts)
    st.public_key = public
    st.comm = Comm()
    sa.cleanup_temp_keys(st, ctx)
    assert st.comm.commands == [] and says(st) == []


def test_modify_instance_enables_sriov_and_ena() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, sriov_support=True, ena_support=True)
    iid = with_instance(fake, st, "stopped")
    sa.modify_instance(st, ctx)
    assert [(c.args, c.kwargs) for c in fake.calls] == [
        ((iid,), {"SriovNetSupport": {"Value": "simple"}}),
        ((iid,), {"EnaSupport": {"Value": True}}),
    ]
    assert says(st) == ["Enabling Enhanced Networking (SR-IOV)...", "Enabling Enhanced Networking (ENA)..."]
    fake.calls.clear()
    st2, ctx2 = make_state(fake, ena_support=False)
    with_instance(fake, st2, "stopped")
    sa.modify_instance(st2, ctx2)
    assert [(c.args, c.kwargs) for c in fake.calls] == [((iid,), {"EnaSupport": {"Value": False}})]
    assert says(st2) == ["Disabling Enhanced Networking (ENA)..."]
    fake.calls.clear()
    st3, ctx3 = make_state(fake)
    with_instance(fake, st3, "stopped")
    sa.modify_instance(st3, ctx3)
    assert fake.calls == []


def test_modify_instance_errors() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, sriov_support=True)
    iid = with_instance(fake, st, "stopped")
    fake.fail_next("modify_instance_attribute", aws_error("Denied", "x"))
    with pytest.raises(
        BuildError, match=rf"^Error enabling Enhanced Networking \(SR-IOV\) on {iid}: .*Denied"
    ):
        sa.modify_instance(st, ctx)
    st2, ctx2 = make_state(fake, ena_support=False)
    with_instance(fake, st2, "stopped")
    fake.fail_next("modify_instance_attribute", aws_error("Denied", "x"))
    with pytest.raises(BuildError, match=rf"^Error disabling Enhanced Networking \(ENA\) on {iid}: .*Denied"):
        sa.modify_instance(st2, ctx2)


# -- run 2's survivors -----------------------------------------------------------------------------


def test_a_pause_under_a_second_still_pauses_and_the_cancel_message_is_exact() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, pause_before_connecting="500ms")
    with_instance(fake, st)
    waited: list[float] = []

    class Ev(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout or 0)
            return True

    ctx.cancel = Ev()
    with pytest.raises(BuildCancelled) as err:
        sa.make_connect_step(lambda s, c: Comm())(st, ctx)
    assert waited == [0.5] and str(err.value) == "cancelled while pausing before connecting"


def cancelled(ctx: StepContext) -> StepContext:
    ctx.cancel.set()
    return ctx


def test_the_waits_of_the_ami_steps_listen_to_the_cancel() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    with_instance(fake, st)
    # a wait's BuildCancelled is a BuildError: the step's message wraps it
    with pytest.raises(BuildError, match=r"^Error waiting for instance to stop: Build was cancelled\.$"):
        sa.stop_instance(st, cancelled(ctx))
    fake2 = CountingEc2()
    st2, ctx2 = make_state(fake2)
    with_instance(fake2, st2)
    with pytest.raises(BuildError, match=r"^Error waiting for AMI: Build was cancelled\.$"):
        sa.create_ami(st2, cancelled(ctx2))
    fake3 = CountingEc2()
    st3, ctx3 = make_state(fake3, ami_regions=["us-west-2"])
    st3.amis["us-east-1"] = "ami-src"
    with pytest.raises(BuildError, match=r"^Error Copying AMI \(ami-src\) to region \(us-west-2\): "):
        sa.region_copy(st3, cancelled(ctx3))


def test_ami_waits_report_progress() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ami_regions=["us-west-2"])
    with_instance(fake, st)
    original = fake.create_image
    original_copy = fake.copy_image

    def create(*a: Any, **k: Any) -> str:
        image_id = original(*a, **k)
        fake.image_states[image_id] = ["pending", "available"]
        return image_id

    def copy(*a: Any, **k: Any) -> str:
        image_id = original_copy(*a, **k)
        fake.image_states[image_id] = ["pending", "available"]
        return image_id

    fake.create_image = create  # type: ignore[method-assign]
    fake.copy_image = copy  # type: ignore[method-assign]
    sa.create_ami(st, ctx)
    sa.region_copy(st, ctx)
    progress = [line for line in st.ui.lines if line.startswith("progress: ")]
    assert progress == [
        f"progress: AMI {st.amis['us-east-1']}: snapshot progress",
        f"progress: AMI {st.amis['us-west-2']} (us-west-2): snapshot progress",
    ]


def test_a_build_region_only_in_ami_regions_needs_no_intermediary() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, skip_save_build_region=True, ami_regions=["us-east-1"])
    with_instance(fake, st)
    sa.create_ami(st, ctx)
    assert fake.last("create_image").args[1] == "packer-example" and not st.intermediary_ami


def test_rollbacks_and_the_intermediary_are_removed_in_their_region() -> None:
    fake = CountingEc2(region="us-east-1")
    st, ctx = make_state(fake, ami_regions=["us-west-2"])
    with_instance(fake, st)
    sa.create_ami(st, ctx)
    sa.region_copy(st, ctx)
    fake.calls.clear()
    unwind(ctx)
    regions = {
        (c.name, c.args[0] if c.args else c.kwargs.get("image_ids", [""])[0], c.kwargs.get("region"))
        for c in fake.calls
    }
    assert ("deregister_image", st.amis["us-west-2"], "us-west-2") in regions
    assert ("deregister_image", st.amis["us-east-1"], "us-east-1") in regions
    assert ("describe_images", st.amis["us-west-2"], "us-west-2") in regions
    fake2 = CountingEc2()
    st2, ctx2 = make_state(fake2, encrypt_boot=True)
    with_instance(fake2, st2)
    sa.create_ami(st2, ctx2)
    fake2.add_image("unrelated")
    fake2.calls.clear()
    unwind(ctx2, rollback=False)
    assert [
        (c.kwargs["image_ids"], c.kwargs["region"]) for c in fake2.calls if c.name == "describe_images"
    ] == [([st2.intermediary_ami], "us-east-1")]
    assert [c.args[0] for c in fake2.calls if c.name == "destroy_image"] == [st2.intermediary_ami]


def test_region_copy_keys_only_when_encrypted_and_none_for_a_region_without_one() -> None:
    fake = CountingEc2()
    seen: list[dict[str, Any]] = []
    original = fake.copy_image

    def copy(region: str, **kw: Any) -> str:
        seen.append({"region": region, **kw})
        return original(region, **kw)

    fake.copy_image = copy  # type: ignore[method-assign]
    st, ctx = make_state(fake, ami_regions=["us-west-2"], region_kms_key_ids={"us-west-2": "k-west"})
    st.amis["us-east-1"] = "ami-src"
    sa.region_copy(st, ctx)
    assert seen[-1]["kms_key_id"] == ""
    st2, ctx2 = make_state(fake, ami_regions=["us-west-2"], encrypt_boot=True)
    st2.intermediary_ami = "ami-tmp"
    sa.region_copy(st2, ctx2)
    assert {s["region"]: s["kms_key_id"] for s in seen[1:]} == {"us-east-1": "", "us-west-2": ""}
    st3, ctx3 = make_state(fake, ami_regions=["us-west-2"])
    sa.region_copy(st3, ctx3)  # no AMI in the build region: nothing to copy from
    assert seen[-1]["source_image_id"] == ""


def test_snapshot_permissions_go_on_after_a_region_without_an_ami() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, snapshot_users=["1"])
    st.amis["us-east-1"] = "ami-1"
    st.snapshots.update({"eu-west-1": ["snap-x"], "us-east-1": ["snap-1"]})
    sa.modify_attributes(st, ctx)
    assert [c.args[0] for c in fake.calls if c.name == "modify_snapshot_attribute"] == ["snap-1"]


def test_cleanup_temp_keys_a_key_without_comment_and_roots_failure_is_quiet() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ssh_clear_authorized_keys=True)
    st.public_key = "ssh-ed25519 BODY"
    st.comm = Comm()
    st.comm.codes = [0, 1]
    sa.cleanup_temp_keys(st, ctx)
    assert st.comm.commands[0].startswith("sed -i.bak '/BODY/d' ")
    assert says(st) == ["Trying to remove ephemeral keys from authorized_keys files"]
