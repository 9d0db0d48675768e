"""The amazon-ebs builder (``ebs.py``) in process against moto, with communicator ``none`` (no SSH):
the step plan, the journal it writes (start, access per region, finish), the finished mark, the
secrets it redacts, and what it says after an interruption. Written for a mutation run
(docs/mutation.md); tests/stack/test_ebs_builder.py builds over SSH."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from amibake.api import BuildEnv
from amibake.errors import BuildError
from amibake.journal import load_run, state_dir
from amibake.plugins.amazon import builder, ebs
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.steps.context import BuildCancelled, StepContext
from tests.fakes.ec2 import CountingEc2
from tests.unit.test_cleanup_mutants import Aws
from tests.unit.test_steps_fake import make_state

SOURCE_AMI = "ami-785db401"


@dataclass
class Ui:
    lines: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        self.lines.append(f"say: {message}")

    def message(self, message: str) -> None:
        self.lines.append(f"message: {message}")

    def error(self, message: str) -> None:
        self.lines.append(f"error: {message}")

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def ask(self, question: str) -> str:
        return ""


@dataclass
class Hooks:
    fail: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        self.data = dict(build_data)
        if self.fail:
            raise BuildError("provisioner failed")

    def cleanup_provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        pass

    def has_checks(self) -> bool:
        return False

    def run_checks(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        raise AssertionError


def config(**over: Any) -> EbsConfig:
    base: dict[str, Any] = {
        "region": "us-east-1",
        "source_ami": SOURCE_AMI,
        "instance_type": "t2.micro",
        "communicator": "none",
        "ami_name": f"ebs-{uuid.uuid4().hex[:8]}",
        "skip_region_validation": True,
        "aws_polling": {"delay_seconds": 1, "max_attempts": 30},
    }
    base.update(over)
    return EbsConfig.model_validate(base)


def env(ui: Ui, run_id: str = "", **kw: Any) -> BuildEnv:
    return BuildEnv(
        build_name="amazon-ebs.x",
        builder_type="amazon-ebs",
        template_dir=Path("."),
        ui=ui,
        run_id=run_id,
        **kw,
    )


def entries(run_id: str) -> list[dict[str, Any]]:
    path = state_dir() / "runs" / f"{run_id}.jsonl"
    return [
        {k: v for k, v in json.loads(line).items() if k not in ("at", "run")}
        for line in path.read_text().splitlines()
    ]


def test_the_step_plan() -> None:
    b = EbsBuilder(config(), env(Ui()))
    fake = CountingEc2()
    st, _ = make_state(fake)
    names = [s.name for s in b.steps(st)]
    assert names == [
        "StepPreValidate",
        "StepSourceAMIInfo",
        "StepNetworkInfo",
        "StepKeyPair",
        "StepSecurityGroup",
        "StepIamInstanceProfile",
        "StepCleanupVolumes",
        "StepRunSourceInstance",
        "StepGetPassword",
        "StepConnect",
        "StepProvision",
        "StepCleanupTempKeys",
        "StepStopEBSBackedInstance",
        "StepModifyEBSBackedInstance",
        "StepDeregisterAMI",
        "StepCreateAMI",
        "StepTestAMI",
        "StepAMIRegionCopy",
        "StepEnableDeprecation",
        "StepEnableDeregistrationProtection",
        "StepModifyAMIAttributes",
        "StepMarkFinished",
    ]
    steps = b.steps(st)
    assert steps[7].fn.__name__ == "run_source_instance" and steps[0].state is st
    assert steps[-1].fn is ebs.mark_finished
    spot = EbsBuilder(config(spot_price="auto"), env(Ui())).steps(st)
    assert spot[7].name == "StepRunSpotInstance" and spot[7].fn.__name__ == "run_spot_instance"
    assert b.connector is ebs.steps_ami.ssh_connector and b.leftovers == []
    mine = EbsBuilder(config(), env(Ui()), connector=print)  # type: ignore[arg-type]
    assert mine.connector is print


def test_public_url_drops_only_a_user_and_password() -> None:
    assert builder._public_url("") == ""
    assert builder._public_url("http://127.0.0.1:5000/path") == "http://127.0.0.1:5000/path"
    assert builder._public_url("http://127.0.0.1:5000/p?q=1#f") == "http://127.0.0.1:5000/p?q=1#f"
    assert builder._public_url("https://user:pw@ec2.example:8443/p?q=1") == "https://ec2.example:8443/p"
    assert builder._public_url("https://user@ec2.example/p") == "https://ec2.example/p"
    assert builder._public_url("https://:pw@ec2.example") == "https://ec2.example"


def test_mark_finished_tags_each_regions_ami_and_snapshots() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    st.amis.update({"us-west-2": "ami-2", "us-east-1": "ami-1"})
    st.snapshots.update({"us-east-1": ["snap-1", "snap-2"]})
    ebs.mark_finished(st, ctx)
    calls = [(c.args[0], list(c.args[1]), c.kwargs["region"]) for c in fake.calls]
    assert calls == [
        (["ami-1", "snap-1", "snap-2"], ["amibake:finished"], "us-east-1"),
        (["ami-2"], ["amibake:finished"], "us-west-2"),
    ]
    stamp = fake.calls[0].args[1]["amibake:finished"]
    from amibake.plugins.amazon.liveness import parse_time

    assert stamp.endswith("Z") and parse_time(stamp) is not None


def test_a_build_journals_its_start_access_resources_and_finish(aws: Aws) -> None:
    ui = Ui()
    run = f"run-{uuid.uuid4().hex[:8]}"
    # the AMI's name holds the secret: the build's messages say it only redacted
    name = f"ebs-s3cret-pw-{uuid.uuid4().hex[:6]}"
    c = config(ami_regions=["us-west-2"], ssh_password="s3cret-pw", ami_name=name)
    e = env(ui, run)
    hooks = Hooks()
    artifact = EbsBuilder(c, e).run(hooks)
    assert artifact is not None and set(artifact.amis) == {"us-east-1", "us-west-2"}
    assert artifact.builder_id == "mitchellh.amazonebs"  # Packer's, in the manifest
    assert str(uuid.UUID(hooks.data["PackerRunUUID"])) == hooks.data["PackerRunUUID"]
    assert "s3cret-pw" in e.secrets
    assert hooks.data["SourceAMI"] == SOURCE_AMI
    assert artifact.state_data["generated_data"]["SourceAMI"] == SOURCE_AMI
    recs = entries(run)
    assert recs[0] == {
        "ev": "build-started",
        "build": "amazon-ebs.x",
        "region": "us-east-1",
        "ami_name": c.ami_name,
        "ami_regions": ["us-west-2"],
    }
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    assert recs[1:3] == [
        {"ev": "access", "build": "amazon-ebs.x", "region": r, "endpoint": endpoint}
        for r in ("us-east-1", "us-west-2")
    ]
    assert recs[-1] == {"ev": "finished", "build": "amazon-ebs.x", "artifacts": artifact.amis}
    rec = load_run(state_dir() / "runs" / f"{run}.jsonl")
    assert {r.kind for r in rec.live} == {"image", "snapshot"} and rec.dangling == []
    ec2 = aws.ec2()
    (img,) = ec2.describe_images(ImageIds=[artifact.amis["us-east-1"]])["Images"]
    assert "amibake:finished" in {t["Key"] for t in img["Tags"]}
    assert not [line for line in ui.lines if line.startswith("error: ")]
    assert "say: Creating AMI ebs-<sensitive>-" in "\n".join(ui.lines)
    assert not [line for line in ui.lines if "s3cret-pw" in line]
    artifact.destroy()  # the artifact reaches AWS through the build's gateway
    for region in artifact.amis:
        assert aws.ec2(region).describe_images(Owners=["self"])["Images"] == []


def test_a_run_without_a_run_id_is_named_and_tagged_by_its_run_uuid(aws: Aws) -> None:
    run_uuid = str(uuid.uuid4())
    hooks = Hooks()
    artifact = EbsBuilder(config(), env(Ui(), run_uuid=run_uuid)).run(hooks)
    assert hooks.data["PackerRunUUID"] == run_uuid
    assert entries(run_uuid)[-1]["ev"] == "finished"
    (img,) = aws.ec2().describe_images(ImageIds=[artifact.amis["us-east-1"]])["Images"]
    assert {t["Key"]: t["Value"] for t in img["Tags"]}["amibake:run-id"] == run_uuid


@dataclass
class AskingUi(Ui):
    asked: list[str] = field(default_factory=list)

    def ask(self, question: str) -> str:
        self.asked.append(question)
        return ""


def test_debug_pauses_after_each_step_and_each_secret_is_kept_once(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ui = AskingUi()
    e = env(ui, debug=True, secrets=["s3cret-pw"])
    more = {"winrm_password": "w1nrm-pw", "mfa_code": "123456", "token": "t0ken"}
    monkeypatch.setenv("AMIBAKE_PAUSE_AT", "after-create-security-group")
    monkeypatch.setenv("AMIBAKE_PAUSE_SECONDS", "0")
    # no image matches the source filter: StepSourceAMIInfo fails, after the pre-validation
    nothing = {"owners": ["self"], "filters": {"name": "no-such-image-*"}}
    with pytest.raises(BuildError, match="No AMI was found matching filters"):
        c = config(ssh_password="s3cret-pw", **more, source_ami_filter=nothing, source_ami="")
        EbsBuilder(c, e).run(Hooks())
    assert ui.asked == ["Pausing after run of step 'StepPreValidate'. Press enter to continue."]
    assert e.secrets == ["s3cret-pw", "t0ken", "123456", "w1nrm-pw"]  # neither twice nor an empty one
    # no run id, no run uuid: the journal is named by a fresh uuid
    (path,) = (state_dir() / "runs").glob("*.jsonl")
    assert str(uuid.UUID(path.stem)) == path.stem
    assert "paused at" not in capsys.readouterr().err  # no security group was created


def test_on_error_abort_leaves_what_was_made_and_says_so(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ui = Ui()
    run = f"run-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AMIBAKE_PAUSE_AT", "after-create-security-group")
    monkeypatch.setenv("AMIBAKE_PAUSE_SECONDS", "0")
    b = EbsBuilder(config(), env(ui, run, on_error="abort"))
    with pytest.raises(BuildError, match="provisioner failed"):
        b.run(Hooks(fail=True))
    # the gateway pauses through the build's context (AMIBAKE_PAUSE_AT)
    assert "amibake: paused at after-create-security-group" in capsys.readouterr().err
    assert len(b.leftovers) == 3 and b.leftovers[0].startswith("instance i-")
    assert b.leftovers[2].startswith("security group sg-")
    assert "error: Skipping cleanup (-on-error=abort); these resources are left behind:" in ui.lines
    assert [line for line in ui.lines if line.startswith("error:   - ")] == [
        f"error:   - {left}" for left in b.leftovers
    ]
    (inst,) = [i for r in aws.ec2().describe_instances()["Reservations"] for i in r["Instances"]]
    assert inst["State"]["Name"] == "running"
    rec = load_run(state_dir() / "runs" / f"{run}.jsonl")
    assert {r.kind for r in rec.live} == {"instance", "security-group"}


def test_a_journal_access_names_profile_role_and_a_clean_endpoint(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = f"run-{uuid.uuid4().hex[:8]}"
    b = EbsBuilder(
        config(
            custom_endpoint_ec2="http://u:p@127.0.0.1:9/x",
            profile="prof",
            assume_role={"role_arn": "arn:aws:iam::1:role/r"},
        ),
        env(Ui(), run),
    )
    b._journal(run).journal.close()
    assert entries(run)[1] == {
        "ev": "access",
        "build": "amazon-ebs.x",
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:9/x",
        "profile": "prof",
        "role_arn": "arn:aws:iam::1:role/r",
    }
    run2 = f"run-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", "http://ec2.local:1")
    monkeypatch.setenv("AWS_PROFILE", "envprof")
    EbsBuilder(config(), env(Ui(), run2))._journal(run2).journal.close()
    assert entries(run2)[1] == {
        "ev": "access",
        "build": "amazon-ebs.x",
        "region": "us-east-1",
        "endpoint": "http://ec2.local:1",
        "profile": "envprof",
    }
    run3 = f"run-{uuid.uuid4().hex[:8]}"
    for var in ("AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var)
    EbsBuilder(config(), env(Ui(), run3))._journal(run3).journal.close()
    # botocore's own endpoint and credentials: nothing to record but the region
    assert entries(run3)[1] == {"ev": "access", "build": "amazon-ebs.x", "region": "us-east-1"}


def test_an_unwritable_state_dir_stops_the_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(blocker))
    with pytest.raises(BuildError) as err:
        EbsBuilder(config(), env(Ui()))._journal("run-x")
    assert str(err.value).startswith(
        "cannot write the run journal (set AMIBAKE_STATE_DIR to a writable directory): "
    )
    with pytest.raises(BuildError):
        EbsBuilder(config(), env(Ui()))._journal("not a valid id!")


def test_a_failed_build_leaves_nothing_and_returns_no_artifact(aws: Aws) -> None:
    ui = Ui()
    run = f"run-{uuid.uuid4().hex[:8]}"
    b = EbsBuilder(config(), env(ui, run))
    with pytest.raises(BuildError, match="provisioner failed"):
        b.run(Hooks(fail=True))
    assert b.leftovers == []
    rec = load_run(state_dir() / "runs" / f"{run}.jsonl")
    assert rec.live == [] and rec.finished == {}
    assert not any("interruption" in line for line in ui.lines)


def test_a_cancelled_build_reports_what_its_cleanup_did(aws: Aws) -> None:
    ui = Ui()
    run = f"run-{uuid.uuid4().hex[:8]}"
    e = env(ui, run)
    e.cancel.set()
    with pytest.raises(BuildCancelled):
        EbsBuilder(config(), e).run(Hooks())
    assert "say: Cleanup after the interruption: nothing had been created yet." in ui.lines


def test_report_interrupted_lists_removed_and_left() -> None:
    from amibake.journal import Journal

    class J:
        run_id = "run-r"
        removed_log = ["key-pair k (us-east-1)", "security-group sg-1 (us-east-1)"]

        def live(self) -> list[str]:
            return ["instance i-1 (us-east-1)", "volume vol-1 (us-east-1)"]

    ui = Ui()
    EbsBuilder(config(), env(ui))._report_interrupted(ui, J())  # type: ignore[arg-type]
    assert ui.lines == [
        "say: Cleanup after the interruption removed 2 resource(s): key-pair k (us-east-1), "
        "security-group sg-1 (us-east-1)",
        "error: Left behind: instance i-1 (us-east-1), volume vol-1 (us-east-1). Remove them with: amibake "
        "cleanup --run run-r",
    ]
    ui2 = Ui()
    J.removed_log = []
    J.live = lambda self: []  # type: ignore[method-assign]
    EbsBuilder(config(), env(ui2))._report_interrupted(ui2, J())  # type: ignore[arg-type]
    assert ui2.lines == ["say: Cleanup after the interruption: nothing had been created yet."]
    assert Journal  # the real journal's BuildJournal has the same two members
    assert StepContext


@dataclass
class CheckingHooks(Hooks):
    def has_checks(self) -> bool:
        return True


def test_checks_on_a_build_that_cannot_test_its_image_are_refused_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: no call may be made
    with pytest.raises(BuildError) as err:
        EbsBuilder(config(skip_create_ami=True), env(Ui())).run(CheckingHooks())
    assert str(err.value) == "-checks: skip_create_ami is set, so this build makes no AMI to test"
    spot = config(instance_type="", spot_instance_types=["t2.micro", "t3.micro"], spot_price="auto")
    with pytest.raises(BuildError) as err:
        EbsBuilder(spot, env(Ui())).run(CheckingHooks())
    assert str(err.value) == (
        "-checks: the test instance is launched on demand with instance_type; this build "
        "names only spot_instance_types"
    )


def test_credentials_that_cannot_be_checked_stop_the_build_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    run = f"run-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BuildError) as err:
        EbsBuilder(config(), env(Ui(), run)).run(Hooks())
    assert str(err.value).startswith("AWS credentials could not be validated: ")
    assert not (state_dir() / "runs" / f"{run}.jsonl").exists()


def test_the_heartbeat_beats_during_the_build_and_a_cancel_seen_late_is_reported(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AMIBAKE_HEARTBEAT_SECONDS", "0.05")
    ui = Ui()
    e = env(ui, f"run-{uuid.uuid4().hex[:8]}")
    ec2 = aws.ec2()

    class BeatThenCancel(Hooks):
        def provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
            # the instance gets amibake:heartbeat from the build's heartbeat (through its gateway)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                (res,) = ec2.describe_instances(InstanceIds=[build_data["ID"]])["Reservations"]
                if "amibake:heartbeat" in {t["Key"] for t in res["Instances"][0].get("Tags", [])}:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("no heartbeat on the instance")
            # cancelled while a step fails for another reason (a wait's BuildError): still reported
            e.cancel.set()
            raise BuildError("provisioner failed")

    with pytest.raises(BuildError, match="provisioner failed"):
        EbsBuilder(config(), e).run(BeatThenCancel())
    (said,) = [line for line in ui.lines if "interruption" in line]
    assert said.startswith("say: Cleanup after the interruption removed 2 resource(s): instance i-")


class Reached(Exception):
    pass


def test_the_connect_and_test_steps_connect_with_the_builders_connector() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, communicator="ssh", ssh_username="u", ssh_host="10.9.8.7")
    seen: list[str] = []

    def connector(state: Any, context: Any) -> Any:
        seen.append(state.host)
        raise Reached

    steps = EbsBuilder(st.config, st.env, connector=connector).steps(st)
    connect, test_ami = steps[9], steps[16]
    with pytest.raises(Reached):
        connect.run(ctx)
    st.hooks = CheckingHooks()  # type: ignore[assignment]
    st.amis[st.region] = fake.add_image("new").id
    with pytest.raises(Reached):
        test_ami.run(ctx)
    assert seen == ["10.9.8.7", "10.9.8.7"]
