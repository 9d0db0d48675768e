"""The amazon-ebs steps up to a running source instance (``steps_instance.py``), against
``CountingEc2``: the exact requests, messages, errors and undos. Written for the survivors of a
mutation run (docs/mutation.md); each test pins one behaviour Packer's steps have."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from amibake.errors import BuildError, UserInputError
from amibake.plugins.amazon import steps_instance as si
from amibake.plugins.amazon.ec2 import BlockDevice, Image, Instance
from amibake.steps.context import StepContext
from amibake.steps.runner import StepRunner
from tests.fakes.ec2 import CountingEc2, aws_error
from tests.unit.test_steps_fake import RUN_ID, make_state, run_steps


def lines(st: Any) -> list[str]:
    return list(st.ui.lines)


def says(st: Any) -> list[str]:
    return [line.split(": ", 1)[1] for line in st.ui.lines if line.startswith("say: ")]


def messages(st: Any) -> list[str]:
    return [line.split(": ", 1)[1] for line in st.ui.lines if line.startswith("message: ")]


# -- temp_name -----------------------------------------------------------------------------------


def test_temp_name_is_the_prefix_an_underscore_and_a_uuid() -> None:
    name = si.temp_name()
    prefix, _, rest = name.partition("_")
    assert prefix == "packer" and len(rest) == 36 and rest.count("-") == 4
    assert si.temp_name("x").startswith("x_")


# -- StepPreValidate -----------------------------------------------------------------------------


def test_pre_validate_refuses_a_region_the_sdk_does_not_know() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ami_regions=["us-west-2", "mars-north-1"], skip_region_validation=False)
    with pytest.raises(BuildError) as err:
        si.pre_validate(st, ctx)
    assert str(err.value) == (
        "Invalid region: mars-north-1 (set skip_region_validation for a region this AWS SDK does not know)"
    )
    assert fake.names() == ["known_regions"]


def test_pre_validate_checks_the_build_region_too_and_skips_with_skip_region_validation() -> None:
    fake = CountingEc2(region="us-east-1")
    st, ctx = make_state(fake, region="mars-north-1")
    with pytest.raises(BuildError, match="Invalid region: mars-north-1"):
        si.pre_validate(st, ctx)
    fake2 = CountingEc2()
    st2, ctx2 = make_state(fake2, region="mars-north-1", skip_region_validation=True)
    si.pre_validate(st2, ctx2)
    assert "known_regions" not in fake2.names()


def test_pre_validate_an_empty_region_list_accepts_any_region() -> None:
    fake = CountingEc2()
    fake.known_regions = lambda: frozenset()  # type: ignore[method-assign]
    st, ctx = make_state(fake, region="mars-north-1")
    si.pre_validate(st, ctx)
    assert says(st) == ["Prevalidating AMI Name: packer-example"]


def test_pre_validate_finds_a_clash_by_name() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    clash = fake.add_image("packer-example")
    with pytest.raises(BuildError) as err:
        si.pre_validate(st, ctx)
    assert str(err.value) == f"Error: AMI Name: 'packer-example' is used by an existing AMI: {clash.id}"
    assert fake.last("images_named").args == ("packer-example",)


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("force_deregister", "Force Deregister flag found, skipping prevalidating AMI Name"),
        ("skip_create_ami", "skip_create_ami was set; not prevalidating AMI name"),
        ("skip_save_build_region", "skip_build_region was set; not prevalidating AMI name"),
    ],
)
def test_pre_validate_skips_the_name_check(option: str, said: str) -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, **{option: True})
    fake.add_image("packer-example")
    si.pre_validate(st, ctx)
    assert says(st) == [said]
    assert "images_named" not in fake.names() and "vpcs" not in fake.names()


def test_pre_validate_a_non_default_vpc_without_a_subnet_is_refused() -> None:
    fake = CountingEc2()
    fake.vpcs_.append({"VpcId": "vpc-other", "IsDefault": False})
    st, ctx = make_state(fake, vpc_id="vpc-other")
    with pytest.raises(BuildError) as err:
        si.pre_validate(st, ctx)
    assert str(err.value) == (
        "Error: subnet_id or subnet_filter must be provided for non-default VPCs (vpc-other)"
    )
    assert says(st) == ["Prevalidating any provided VPC information"]
    assert fake.last("vpcs").kwargs["ids"] == ["vpc-other"]


def test_pre_validate_a_default_vpc_or_a_vpc_without_the_flag_passes() -> None:
    for vpc in ({"VpcId": "vpc-default", "IsDefault": True}, {"VpcId": "vpc-default"}):
        fake = CountingEc2()
        fake.vpcs_[:] = [vpc]
        st, ctx = make_state(fake, vpc_id="vpc-default")
        if "IsDefault" not in vpc:
            with pytest.raises(BuildError, match="non-default VPCs"):
                si.pre_validate(st, ctx)
            continue
        si.pre_validate(st, ctx)
        assert says(st)[-1] == "Prevalidating AMI Name: packer-example"


def test_pre_validate_a_vpc_with_a_subnet_or_a_subnet_filter_is_not_looked_up() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, vpc_id="vpc-x", subnet_id="subnet-1")
    si.pre_validate(st, ctx)
    st2, ctx2 = make_state(fake, vpc_id="vpc-x", subnet_filter={"filters": {"tag:a": "b"}})
    si.pre_validate(st2, ctx2)
    assert "vpcs" not in fake.names()
    fake.vpcs_[:] = []
    st3, ctx3 = make_state(fake, vpc_id="vpc-x")
    si.pre_validate(st3, ctx3)  # no such VPC: nothing to say about it here
    assert fake.count("vpcs") == 1


# -- StepSourceAMIInfo ---------------------------------------------------------------------------


def test_source_ami_by_id_asks_for_exactly_that_id() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    img = fake.add_image("src", creation_date="2020")
    st.config = st.config.model_copy(update={"source_ami": img.id})
    si.source_ami_info(st, ctx)
    assert fake.last("describe_images").kwargs == {
        "image_ids": [img.id],
        "owners": [],
        "filters": {},
        "region": None,
    }
    assert st.source_image == img
    assert messages(st) == [f"Found Image ID: {img.id}"]


def test_source_ami_filter_sends_filters_owners_and_include_deprecated() -> None:
    fake = CountingEc2()
    calls: list[dict[str, Any]] = []
    older = fake.add_image("ubuntu-1", creation_date="2020-01-01")
    newer = fake.add_image("ubuntu-2", creation_date="2021-01-01")

    def describe(**kw: Any) -> list[Image]:
        calls.append(kw)
        return [newer, older]

    fake.describe_images = describe  # type: ignore[method-assign]
    st, ctx = make_state(
        fake,
        source_ami="",
        source_ami_filter={
            "filters": {"name": "ubuntu-*"},
            "owners": ["099720109477"],
            "most_recent": True,
            "include_deprecated": True,
        },
    )
    si.source_ami_info(st, ctx)
    assert calls == [
        {"filters": {"name": ["ubuntu-*"]}, "owners": ["099720109477"], "include_deprecated": True}
    ]
    assert st.source_image == newer
    st.config = st.config.model_copy(
        update={
            "source_ami_filter": st.config.source_ami_filter.model_copy(update={"include_deprecated": False})
        }
    )
    fake.describe_images = describe  # type: ignore[method-assign]
    calls.clear()
    si.source_ami_info(st, ctx)
    assert "include_deprecated" not in calls[0]


def test_most_recent_picks_the_newest_creation_date() -> None:
    images = [
        Image("ami-b", "b", "available", creation_date="2021"),
        Image("ami-c", "c", "available", creation_date="2022"),
        Image("ami-a", "a", "available", creation_date="2020"),
    ]
    assert si._most_recent(images).id == "ami-c"


def test_source_ami_not_found_and_query_errors() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, source_ami="ami-missing")
    fake.images.clear()
    with pytest.raises(BuildError) as err:
        si.source_ami_info(st, ctx)
    assert str(err.value) == 'No AMI was found matching filters: {"image_ids": ["ami-missing"]}'
    fake.fail_next("describe_images", aws_error("AuthFailure", "no"))
    with pytest.raises(BuildError) as err2:
        si.source_ami_info(st, ctx)
    assert str(err2.value).startswith("Error querying AMI: ")
    assert "AuthFailure" in str(err2.value)


def test_more_than_one_source_ami_needs_most_recent() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, source_ami="", source_ami_filter={"owners": ["self"]})
    fake.add_image("two")
    with pytest.raises(BuildError) as err:
        si.source_ami_info(st, ctx)
    assert str(err.value) == (
        "Your query returned more than one result. Please try a more specific search, "
        "or set most_recent to true."
    )


def test_one_source_ami_from_a_filter_needs_no_most_recent() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, source_ami="", source_ami_filter={"owners": ["self"]})
    si.source_ami_info(st, ctx)
    assert st.source_image is not None and st.source_image.name == "ubuntu-source"


def test_enhanced_networking_needs_an_hvm_source() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ena_support=True)
    fake.images.clear()
    img = fake.add_image("pv", virtualization_type="paravirtual")
    st.config = st.config.model_copy(update={"source_ami": img.id})
    with pytest.raises(BuildError) as err:
        si.source_ami_info(st, ctx)
    assert str(err.value) == f"Cannot enable enhanced networking, source AMI '{img.id}' is not HVM"
    st.config = st.config.model_copy(update={"ena_support": None, "sriov_support": True})
    with pytest.raises(BuildError, match="is not HVM"):
        si.source_ami_info(st, ctx)
    st.config = st.config.model_copy(update={"ami_virtualization_type": "paravirtual"})
    with pytest.raises(BuildError) as err2:
        si.source_ami_info(st, ctx)
    assert str(err2.value) == "Cannot enable enhanced networking, AMIVirtType 'paravirtual' is not HVM"


def test_enhanced_networking_on_hvm_and_a_matching_virtualization_type_pass() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ena_support=True, sriov_support=True, ami_virtualization_type="hvm")
    fake.images.clear()
    img = fake.add_image("hvm", virtualization_type="hvm")
    st.config = st.config.model_copy(update={"source_ami": img.id})
    si.source_ami_info(st, ctx)
    assert st.source_image == img
    # no ENA asked: a paravirtual source is fine
    fake.images.clear()
    pv = fake.add_image("pv", virtualization_type="paravirtual")
    st.config = st.config.model_copy(
        update={
            "source_ami": pv.id,
            "ena_support": False,
            "sriov_support": False,
            "ami_virtualization_type": "",
        }
    )
    si.source_ami_info(st, ctx)
    assert st.source_image == pv


def test_a_virtualization_type_other_than_the_sources_is_refused() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ami_virtualization_type="hvm")
    fake.images.clear()
    img = fake.add_image("pv", virtualization_type="paravirtual")
    st.config = st.config.model_copy(update={"source_ami": img.id})
    st.source_image = None
    with pytest.raises(BuildError) as err:
        si.source_ami_info(st, ctx)
    assert str(err.value).startswith(
        f"ami_virtualization_type is 'hvm' but the source AMI {img.id} is 'paravirtual': "
    )
    assert st.source_image is None
    fake.images.clear()
    unknown = fake.add_image("u")
    st.config = st.config.model_copy(update={"source_ami": unknown.id})
    with pytest.raises(BuildError, match="is 'unknown'"):
        si.source_ami_info(st, ctx)


# -- StepNetworkInfo -----------------------------------------------------------------------------


def test_network_info_by_ids_makes_no_call() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, vpc_id="vpc-1", subnet_id="subnet-9", availability_zone="us-east-1c")
    si.network_info(st, ctx)
    assert (st.vpc_id, st.subnet_id, st.availability_zone) == ("vpc-1", "subnet-9", "us-east-1c")
    assert fake.calls == []


def test_vpc_filter_must_match_exactly_one() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, vpc_filter={"filters": {"tag:Name": "build"}})
    si.network_info(st, ctx)
    assert fake.last("vpcs").kwargs["filters"] == {"tag:Name": ["build"], "state": ["available"]}
    assert st.vpc_id == "vpc-default" and messages(st) == ["Found VPC ID: vpc-default"]
    fake.vpcs_.append({"VpcId": "vpc-2"})
    with pytest.raises(BuildError) as err:
        si.network_info(st, ctx)
    assert str(err.value) == (
        "Exactly one VPC should match the filter, but 2 VPC's was found matching filters: "
        '{"state": ["available"], "tag:Name": ["build"]}'
    )
    fake.vpcs_.clear()
    with pytest.raises(BuildError, match="but 0 VPC's"):
        si.network_info(st, ctx)


def test_subnet_filter_adds_vpc_and_zone_and_takes_the_subnets_vpc_and_zone() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, subnet_filter={"filters": {"tag:Name": "s"}})
    si.network_info(st, ctx)
    assert fake.last("subnets").kwargs["filters"] == {"tag:Name": ["s"], "state": ["available"]}
    assert (st.subnet_id, st.vpc_id, st.availability_zone) == ("subnet-1", "vpc-default", "us-east-1a")
    assert messages(st) == ["Found Subnet ID: subnet-1"]
    st2, ctx2 = make_state(
        fake, subnet_filter={"filters": {"tag:Name": "s"}}, vpc_id="vpc-9", availability_zone="us-east-1f"
    )
    si.network_info(st2, ctx2)
    assert fake.last("subnets").kwargs["filters"] == {
        "tag:Name": ["s"],
        "state": ["available"],
        "vpc-id": ["vpc-9"],
        "availabilityZone": ["us-east-1f"],
    }
    assert (st2.vpc_id, st2.availability_zone) == ("vpc-9", "us-east-1f")


def test_subnet_filter_errors() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, subnet_filter={"filters": {"tag:Name": "s"}})
    fake.subnets_.append({"SubnetId": "subnet-2", "VpcId": "vpc-default", "AvailableIpAddressCount": 5})
    with pytest.raises(BuildError) as err:
        si.network_info(st, ctx)
    assert str(err.value) == (
        "Your filter matched 2 Subnets. Please try a more specific search, "
        "or set random or most_free to true."
    )
    fake.subnets_.clear()
    with pytest.raises(BuildError) as err2:
        si.network_info(st, ctx)
    assert str(err2.value) == (
        'No Subnets was found matching filters: {"state": ["available"], "tag:Name": ["s"]}'
    )


def test_subnet_filter_most_free_and_random() -> None:
    fake = CountingEc2()
    fake.subnets_[:] = [
        {"SubnetId": "subnet-a", "VpcId": "vpc-a", "AvailableIpAddressCount": 5},
        {
            "SubnetId": "subnet-b",
            "VpcId": "vpc-b",
            "AvailableIpAddressCount": 300,
            "AvailabilityZone": "us-east-1b",
        },
        {"SubnetId": "subnet-c", "VpcId": "vpc-c"},
    ]
    st, ctx = make_state(fake, subnet_filter={"filters": {"a": "b"}, "most_free": True})
    si.network_info(st, ctx)
    assert (st.subnet_id, st.vpc_id, st.availability_zone) == ("subnet-b", "vpc-b", "us-east-1b")
    fake.subnets_[:] = [{"SubnetId": "subnet-x"}, {"SubnetId": "subnet-x"}]
    st2, ctx2 = make_state(fake, subnet_filter={"filters": {"a": "b"}, "random": True})
    si.network_info(st2, ctx2)
    assert (st2.subnet_id, st2.vpc_id, st2.availability_zone) == ("subnet-x", "", "")


def test_a_subnet_id_without_vpc_looks_up_its_vpc_for_the_temporary_group() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, subnet_id="subnet-1")
    si.network_info(st, ctx)
    assert fake.last("subnets").kwargs == {"ids": ["subnet-1"], "filters": {}}
    assert (st.vpc_id, st.availability_zone) == ("vpc-default", "us-east-1a")
    # a given zone is kept; given security groups need no VPC
    st2, ctx2 = make_state(fake, subnet_id="subnet-1", availability_zone="us-east-1z")
    si.network_info(st2, ctx2)
    assert (st2.vpc_id, st2.availability_zone) == ("vpc-default", "us-east-1z")
    n = fake.count("subnets")
    st3, ctx3 = make_state(fake, subnet_id="subnet-1", security_group_id="sg-1")
    si.network_info(st3, ctx3)
    assert fake.count("subnets") == n and st3.vpc_id == ""
    fake.subnets_.clear()
    st4, ctx4 = make_state(fake, subnet_id="subnet-1")
    si.network_info(st4, ctx4)
    assert st4.vpc_id == ""
    fake.subnets_.append({"SubnetId": "subnet-1"})
    si.network_info(st4, ctx4)
    assert (st4.vpc_id, st4.availability_zone) == ("", "")


# -- StepKeyPair ---------------------------------------------------------------------------------


def test_key_pair_none_communicator_makes_nothing() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, communicator="none")
    si.key_pair(st, ctx)
    assert fake.calls == [] and st.key_pair_name == "" and lines(st) == []


def test_key_pair_from_a_file(tmp_path: Path) -> None:
    fake = CountingEc2()
    key = tmp_path / "id"
    key.write_text("PEM")
    st, ctx = make_state(fake, ssh_private_key_file=str(key), ssh_keypair_name="mine")
    si.key_pair(st, ctx)
    assert (st.private_key_pem, st.key_pair_name) == ("PEM", "mine")
    assert says(st) == ["Using existing SSH private key"] and fake.calls == []
    st2, ctx2 = make_state(fake, ssh_private_key_file=str(tmp_path / "nope"), ssh_keypair_name="mine")
    with pytest.raises(UserInputError) as err:
        si.key_pair(st2, ctx2)
    assert str(tmp_path / "nope") in str(err.value) and "ssh_private_key_file: cannot read" in str(err.value)


def test_key_pair_with_the_agent() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ssh_agent_auth=True, ssh_keypair_name="k")
    si.key_pair(st, ctx)
    assert says(st) == ["Using SSH Agent for existing key pair k"] and st.key_pair_name == "k"
    st2, ctx2 = make_state(fake, ssh_agent_auth=True)
    si.key_pair(st2, ctx2)
    assert says(st2) == ["Using SSH Agent with key pair in Source AMI"] and st2.key_pair_name == ""
    assert fake.calls == []


def test_key_pair_with_a_password_and_no_temporary_name() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ssh_password="pw")
    si.key_pair(st, ctx)
    assert says(st) == ["Not using temporary keypair"] and fake.calls == []
    st2, ctx2 = make_state(fake, ssh_password="pw", temporary_key_pair_name="named")
    si.key_pair(st2, ctx2)
    assert fake.last("create_key_pair").args[0] == "named"


def test_temporary_key_pair_is_created_tagged_and_kept_secret() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, temporary_key_pair_type="ed25519", run_tags={"T": "1"})
    si.key_pair(st, ctx)
    call = fake.last("create_key_pair")
    name, key_type, tags = call.args
    assert name.startswith("packer_") and key_type == "ed25519"
    assert tags["T"] == "1" and tags["amibake:run-id"] == RUN_ID
    assert says(st) == [f"Creating temporary keypair: {name}"]
    assert st.key_pair_name == name and st.private_key_pem in st.env.secrets
    assert st.public_key.startswith("ssh-ed25519 ")
    assert ctx.undo_stack[-1].description == f"key pair {name} (region us-east-1)"


def test_temporary_rsa_key_of_a_given_size_is_imported() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake, temporary_key_pair_type="rsa", temporary_key_pair_bits=1024, temporary_key_pair_name="k"
    )
    si.key_pair(st, ctx)
    name, public, _tags = fake.last("import_key_pair").args
    assert name == "k" and public == st.public_key and public.startswith("ssh-rsa ")
    assert "create_key_pair" not in fake.names()
    assert "RSA PRIVATE KEY" in st.private_key_pem
    import asyncssh

    assert asyncssh.import_private_key(st.private_key_pem).pyca_key.key_size == 1024  # type: ignore[attr-defined]
    # without bits, rsa is made by EC2
    st2, ctx2 = make_state(fake, temporary_key_pair_type="rsa")
    si.key_pair(st2, ctx2)
    assert fake.last("create_key_pair").args[1] == "rsa"


def test_public_key_of_bad_material_is_empty() -> None:
    assert si._public_key("not a key") == ""


def test_deleting_the_key_pair_reports_a_failure() -> None:
    fake = CountingEc2()
    st, _ctx = make_state(fake)
    fake.fail_next("delete_key_pair", aws_error("Boom", "gone wrong"))
    with pytest.raises(BuildError) as err:
        si._delete_key_pair(st, "k1")
    assert "Boom" in str(err.value)
    assert lines(st) == [
        "say: Deleting temporary keypair...",
        "error: Error cleaning up keypair. Please delete the key manually: k1",
    ]
    si._delete_key_pair(st, "k2")
    assert fake.last("delete_key_pair").args == ("k2",)


# -- StepSecurityGroup ---------------------------------------------------------------------------


def test_given_security_groups_are_checked_and_used() -> None:
    fake = CountingEc2()
    fake.security_groups_["sg-a"] = {}
    st, ctx = make_state(fake, security_group_ids=["sg-a"])
    si.security_group(st, ctx)
    assert fake.last("security_groups").kwargs == {"ids": ["sg-a"], "filters": {}}
    assert st.security_group_ids == ["sg-a"]
    st2, ctx2 = make_state(fake, security_group_ids=["sg-zz"])
    with pytest.raises(BuildError) as err:
        si.security_group(st2, ctx2)
    assert str(err.value).startswith("Couldn't find specified security group: ")
    assert "create_security_group" not in fake.names()


def test_security_group_filter_in_the_vpc() -> None:
    fake = CountingEc2()
    fake.security_groups_.update({"sg-a": {}, "sg-b": {}})
    st, ctx = make_state(fake, security_group_filter={"filters": {"group-name": "web"}})
    st.vpc_id = "vpc-1"
    si.security_group(st, ctx)
    assert fake.last("security_groups").kwargs["filters"] == {"group-name": ["web"], "vpc-id": ["vpc-1"]}
    assert st.security_group_ids == ["sg-a", "sg-b"]
    assert messages(st) == ["Found Security Group(s): sg-a, sg-b"]
    fake.security_groups_.clear()
    st.vpc_id = ""
    with pytest.raises(BuildError) as err:
        si.security_group(st, ctx)
    assert str(err.value) == 'No security groups matching the filter: {"group-name": ["web"]}'


def test_temporary_security_group_is_created_in_the_vpc_and_opened_on_the_ssh_port() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake, ssh_port=2222, temporary_security_group_source_cidrs=["10.0.0.0/8", "::/0"], run_tags={"T": "v"}
    )
    st.vpc_id = "vpc-7"
    si.security_group(st, ctx)
    name, description, vpc, tags = fake.last("create_security_group").args
    gid = st.security_group_ids[0]
    assert name.startswith("packer_") and description == "Temporary group for Packer" and vpc == "vpc-7"
    assert tags["T"] == "v" and tags["amibake:build"] == "amazon-ebs.x"
    assert fake.ingress[gid] == [(2222, ("10.0.0.0/8", "::/0"))]
    assert says(st) == [
        f"Creating temporary security group for this instance: {name}",
        "Authorizing access to port 2222 from [10.0.0.0/8 ::/0] in the temporary security groups...",
    ]
    wait = fake.last("wait")
    assert wait.args[0] == f"security group {gid} to accept rules"
    assert wait.kwargs["retry_codes"] == ("InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound")
    assert ctx.undo_stack[-1].description == f"security group {gid} ({name}, region us-east-1)"


def test_temporary_security_group_for_no_communicator_has_no_rule() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, communicator="none")
    si.security_group(st, ctx)
    assert "authorize_ingress" not in fake.names() and len(st.security_group_ids) == 1


def test_deleting_the_group_retries_while_it_is_in_use_and_reports_a_failure() -> None:
    fake = CountingEc2()
    st, _ctx = make_state(fake)
    fake.fail_next("delete_security_group", aws_error("DependencyViolation"))
    si._delete_sg(st, "sg-1")
    assert fake.count("delete_security_group") == 2
    assert fake.last("wait").args[0] == "security group sg-1 to be deleted"
    assert fake.last("wait").kwargs["retry_codes"] == ("DependencyViolation",)
    assert says(st) == ["Deleting temporary security group..."]
    fake.fail_next("delete_security_group", aws_error("Other", "nope"))
    with pytest.raises(BuildError):
        si._delete_sg(st, "sg-2")
    assert st.ui.lines[-1].startswith(
        "error: Error cleaning up security group. Please delete the group manually: err: "
    )
    assert st.ui.lines[-1].endswith("; security group ID: sg-2")


# -- StepIamInstanceProfile ----------------------------------------------------------------------


def test_a_named_instance_profile_must_exist_unless_validation_is_skipped() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, iam_instance_profile="prof")
    with pytest.raises(BuildError) as err:
        si.iam_instance_profile(st, ctx)
    assert str(err.value) == "Couldn't find specified instance profile: prof does not exist"
    fake.iam_profiles["prof"] = []
    si.iam_instance_profile(st, ctx)
    assert st.instance_profile == "prof"
    fake.fail_next("instance_profile_exists", aws_error("AccessDenied", "no"))
    with pytest.raises(BuildError, match=r"^Couldn't find specified instance profile: .*AccessDenied"):
        si.iam_instance_profile(st, ctx)
    fake.iam_profiles.clear()
    st2, ctx2 = make_state(fake, iam_instance_profile="other", skip_profile_validation=True)
    n = fake.count("instance_profile_exists")
    si.iam_instance_profile(st2, ctx2)
    assert st2.instance_profile == "other" and fake.count("instance_profile_exists") == n


def test_no_profile_and_no_policy_document_makes_nothing() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    si.iam_instance_profile(st, ctx)
    assert fake.calls == [] and st.instance_profile == "" and ctx.undo_stack == []


def test_temporary_profile_role_and_policy() -> None:
    fake = CountingEc2()
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:Get*"], "Resource": ["*"]}],
    }
    st, ctx = make_state(fake, temporary_iam_instance_profile_policy_document=doc, run_tags={"T": "1"})
    si.iam_instance_profile(st, ctx)
    name = st.instance_profile
    assert name.startswith("packer-") and len(name) == len("packer-") + 36
    assert fake.last("create_instance_profile").args[0] == name
    assert fake.last("create_instance_profile").args[1]["T"] == "1"
    role, trust, tags = fake.last("create_role").args
    assert role == name and json.loads(trust) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    assert tags["amibake:run-id"] == RUN_ID
    r, pname, policy = fake.last("put_role_policy").args
    assert (r, pname) == (name, name)
    assert json.loads(policy) == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:Get*"], "Resource": ["*"]}],
    }
    assert fake.last("add_role_to_instance_profile").args == (name, name)
    assert says(st) == [
        f"Creating temporary instance profile for this instance: {name}",
        f"Creating temporary role for this instance: {name}",
        f"Attaching policy to the temporary role: {name}",
    ]
    assert [u.description for u in ctx.undo_stack] == [
        f"IAM instance profile {name}",
        f"IAM role {name}",
        f"IAM role policy {name}",
        f"IAM role {name} in instance profile {name}",
    ]
    st.ui.lines.clear()
    StepRunner(ctx).unwind(include_rollback=True)
    assert fake.names()[-4:] == [
        "remove_role_from_instance_profile",
        "delete_role_policy",
        "delete_role",
        "delete_instance_profile",
    ]
    assert fake.last("remove_role_from_instance_profile").args == (name, name)
    assert fake.last("delete_role_policy").args == (name, name)
    assert fake.last("delete_role").args == (name,)
    assert fake.last("delete_instance_profile").args == (name,)
    assert [m for m in says(st) if not m.startswith("Cleaning")] == [
        "Detaching temporary role from instance profile...",
        "Removing policy from temporary role...",
        "Deleting temporary role...",
        "Deleting temporary instance profile...",
    ]


def test_policy_document_capitalises_keys_at_every_level() -> None:
    assert si._policy_document(
        {"version": "1", "statement": [{"effect": "Allow", "action": ["a"]}, "x"]}
    ) == {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["a"]}, "x"]}
    assert si._policy_document(["not", "a", "dict"]) == {}
    assert si._policy_document({"": 1}) == {"": 1}


# -- StepCleanupVolumes --------------------------------------------------------------------------


def _with_devices(fake: CountingEc2, st: Any, *devices: BlockDevice) -> None:
    st.instance = Instance(id="i-1", state="terminated", block_devices=devices)


def test_cleanup_volumes_deletes_only_available_volumes_not_deleted_on_termination() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, launch_block_device_mappings=[{"device_name": "/dev/sdk", "volume_size": 1}])
    _with_devices(
        fake,
        st,
        BlockDevice("/dev/sda1", "vol-root", True),
        BlockDevice("/dev/sdb", "vol-b", False),
        BlockDevice("/dev/sdc", "vol-c", False),
        BlockDevice("/dev/sdk", "vol-k", False),
    )
    fake.volumes_.update({"vol-b": "available", "vol-c": "in-use", "vol-k": "available"})
    si.cleanup_volumes(st, ctx)
    assert ctx.undo_stack[-1].description == "volumes the source instance leaves behind"
    StepRunner(ctx).unwind(include_rollback=True)
    assert fake.last("volumes").args == (["vol-b", "vol-c"],)
    assert [c.args[0] for c in fake.calls if c.name == "delete_volume"] == ["vol-b"]
    assert "Cleaning up any extra volumes..." in says(st) and "Destroying volume (vol-b)..." in says(st)


def test_cleanup_volumes_skips_without_candidates() -> None:
    fake = CountingEc2()
    st, _ctx = make_state(fake)
    si._cleanup_volumes(st)
    assert says(st) == ["No volumes to clean up, skipping"]
    _with_devices(fake, st, BlockDevice("/dev/sda1", "vol-root", True))
    st.ui.lines.clear()
    si._cleanup_volumes(st)
    assert says(st) == ["Cleaning up any extra volumes...", "No volumes to clean up, skipping"]
    assert "volumes" not in fake.names()
    _with_devices(fake, st, BlockDevice("/dev/sdb", "vol-b", False))
    st.ui.lines.clear()
    si._cleanup_volumes(st)  # the volume is gone already
    assert says(st) == ["Cleaning up any extra volumes...", "No volumes to clean up, skipping"]
    assert "delete_volume" not in fake.names()


def test_cleanup_volumes_goes_on_after_a_failed_delete() -> None:
    fake = CountingEc2()
    st, _ctx = make_state(fake)
    _with_devices(fake, st, BlockDevice("/dev/sdb", "vol-b", False), BlockDevice("/dev/sdc", "vol-c", False))
    fake.volumes_.update({"vol-b": "available", "vol-c": "available"})
    fake.fail_next("delete_volume", aws_error("VolumeInUse", "busy"))
    si._cleanup_volumes(st)
    assert fake.count("delete_volume") == 2
    assert any(s.startswith("Error deleting volume: ") and "VolumeInUse" in s for s in says(st))


# -- user data and the launch parameters ---------------------------------------------------------


def test_user_data_is_base64_encoded_unless_it_is_already(tmp_path: Path) -> None:
    fake = CountingEc2()
    st, _ = make_state(fake, user_data="#!/bin/sh\necho hi")
    assert si._user_data(st) == base64.b64encode(b"#!/bin/sh\necho hi").decode()
    st2, _ = make_state(fake, user_data="aGVsbG8=")
    assert si._user_data(st2) == "aGVsbG8="
    f = tmp_path / "ud"
    f.write_text("from file")
    st3, _ = make_state(fake, user_data_file=str(f))
    assert si._user_data(st3) == base64.b64encode(b"from file").decode()
    st4, _ = make_state(fake)
    assert si._user_data(st4) == ""
    st5, _ = make_state(fake, user_data_file=str(tmp_path / "missing"))
    with pytest.raises(BuildError, match=r"^Problem reading user data file: "):
        si._user_data(st5)


def test_launch_common_defaults() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake)
    assert si._launch_common(st) == {
        "ImageId": st.source_image.id,  # type: ignore[union-attr]
        "InstanceType": "t3.micro",
        "MetadataOptions": {
            "HttpEndpoint": "enabled",
            "HttpTokens": "optional",
            "HttpPutResponseHopLimit": 1,
        },
        "CreditSpecification": {"CpuCredits": "standard"},
    }


def test_launch_common_every_option() -> None:
    fake = CountingEc2()
    st, _ = make_state(
        fake,
        instance_type="m5.large",
        user_data="x",
        no_ephemeral=True,
        launch_block_device_mappings=[{"device_name": "/dev/sdb", "volume_size": 8}],
        metadata_options={
            "http_tokens": "required",
            "http_put_response_hop_limit": 3,
            "instance_metadata_tags": "enabled",
        },
        enable_unlimited_credits=False,
    )
    st.instance_profile, st.key_pair_name = "prof", "key"
    params = si._launch_common(st)
    assert params["InstanceType"] == "m5.large" and params["UserData"] == "eA=="
    bdm = params["BlockDeviceMappings"]
    assert bdm[0]["DeviceName"] == "/dev/sdb" and len(bdm) == 27
    assert bdm[1] == {"DeviceName": "xvdca", "NoDevice": ""} and bdm[-1] == {
        "DeviceName": "xvdcz",
        "NoDevice": "",
    }
    assert params["IamInstanceProfile"] == {"Name": "prof"} and params["KeyName"] == "key"
    assert params["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 3,
        "InstanceMetadataTags": "enabled",
    }
    assert "CreditSpecification" not in params


def test_launch_common_imds_disabled_and_unlimited_credits() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake, metadata_options={"http_endpoint": "disabled"}, enable_unlimited_credits=True)
    params = si._launch_common(st)
    assert params["MetadataOptions"] == {"HttpEndpoint": "disabled"}
    assert params["CreditSpecification"] == {"CpuCredits": "unlimited"}


@pytest.mark.parametrize(
    ("itype", "burstable"),
    [
        ("t2.micro", True),
        ("t3.micro", True),
        ("t3a.nano", True),
        ("t4g.small", True),
        ("m5.large", False),
        ("t5.large", False),
        ("xt3.micro", False),
        ("t3", False),
    ],
)
def test_burstable_instance_types(itype: str, burstable: bool) -> None:
    assert bool(si.BURSTABLE.match(itype)) is burstable


def test_run_tags_default_name_and_the_added_tag_messages() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake, run_tags={"Team": "a"}, run_volume_tags={"V": "1"})
    specs = si._launch_tags(st)
    assert [s["ResourceType"] for s in specs] == ["instance", "network-interface", "volume"]
    inst = {t["Key"]: t["Value"] for t in specs[0]["Tags"]}
    assert inst["Name"] == "Packer Builder" and inst["Team"] == "a" and inst["amibake:run-id"] == RUN_ID
    vol = {t["Key"]: t["Value"] for t in specs[2]["Tags"]}
    assert vol["V"] == "1" and vol["amibake:run-id"] == RUN_ID and "Team" not in vol
    assert messages(st) == ['Adding tag: "Team": "a"', 'Adding tag: "Name": "Packer Builder"']
    st2, _ = make_state(fake, run_tags={"Name": "mine"})
    assert si._run_tags(st2) == {"Name": "mine"}


# -- StepRunSourceInstance -----------------------------------------------------------------------


def test_run_source_instance_parameters() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake,
        ebs_optimized=True,
        shutdown_behavior="terminate",
        enable_nitro_enclave=True,
        user_data="hello",
        placement={"tenancy": "dedicated"},
        license_specifications=[{"license_configuration_request": {"license_configuration_arn": "arn:lic"}}],
        capacity_reservation_preference="open",
    )
    st.subnet_id, st.security_group_ids, st.availability_zone = "subnet-1", ["sg-1"], "us-east-1b"
    si.run_source_instance(st, ctx)
    p = fake.last("run_instance").args[0]
    assert p["MinCount"] == 1 and p["MaxCount"] == 1 and p["EbsOptimized"] is True
    assert p["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert len(p["ClientToken"]) == 36
    assert p["EnclaveOptions"] == {"Enabled": True}
    assert p["UserData"] == b"hello"
    assert p["Placement"] == {"AvailabilityZone": "us-east-1b", "Tenancy": "dedicated"}
    assert p["LicenseSpecifications"] == [{"LicenseConfigurationArn": "arn:lic"}]
    assert p["CapacityReservationSpecification"] == {"CapacityReservationPreference": "open"}
    assert p["SubnetId"] == "subnet-1" and p["SecurityGroupIds"] == ["sg-1"]
    assert "NetworkInterfaces" not in p
    assert says(st)[0] == "Launching a source AWS instance..."
    iid = st.instance.id  # type: ignore[union-attr]
    assert ctx.undo_stack[-1].description == f"instance {iid} (region us-east-1)"
    assert f"Instance ID: {iid}" in messages(st)
    assert f"Waiting for instance ({iid}) to become ready..." in says(st)
    wait = fake.last("wait")
    assert wait.args[0] == f"instance {iid} to be running"
    assert wait.kwargs["failed_states"] == ("terminated", "shutting-down", "stopped")


def test_run_source_instance_minimal_parameters() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    si.run_source_instance(st, ctx)
    p = fake.last("run_instance").args[0]
    assert p["InstanceInitiatedShutdownBehavior"] == "stop" and p["EbsOptimized"] is False
    for key in (
        "EnclaveOptions",
        "Placement",
        "LicenseSpecifications",
        "CapacityReservationSpecification",
        "NetworkInterfaces",
        "SubnetId",
        "SecurityGroupIds",
        "UserData",
    ):
        assert key not in p, key
    assert [s["ResourceType"] for s in p["TagSpecifications"]] == ["instance", "network-interface", "volume"]


def test_run_source_instance_placement_and_capacity_reservation_targets() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake, placement={"host_id": "h-1", "tenancy": "host"}, capacity_reservation_id="cr-1"
    )
    si.run_source_instance(st, ctx)
    p = fake.last("run_instance").args[0]
    assert p["Placement"] == {"HostId": "h-1", "Tenancy": "host"}
    assert p["CapacityReservationSpecification"] == {
        "CapacityReservationTarget": {"CapacityReservationId": "cr-1"}
    }
    st2, ctx2 = make_state(
        fake,
        placement={"host_resource_group_arn": "arn:hrg", "tenancy": "host"},
        capacity_reservation_group_arn="arn:crg",
    )
    si.run_source_instance(st2, ctx2)
    p2 = fake.last("run_instance").args[0]
    assert p2["Placement"] == {"HostResourceGroupArn": "arn:hrg", "Tenancy": "host"}
    assert p2["CapacityReservationSpecification"] == {
        "CapacityReservationTarget": {"CapacityReservationResourceGroupArn": "arn:crg"}
    }


def test_run_source_instance_with_a_public_ip_setting_uses_a_network_interface() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, associate_public_ip_address=False)
    st.subnet_id, st.security_group_ids = "subnet-1", ["sg-1"]
    si.run_source_instance(st, ctx)
    p = fake.last("run_instance").args[0]
    assert p["NetworkInterfaces"] == [
        {
            "DeviceIndex": 0,
            "AssociatePublicIpAddress": False,
            "SubnetId": "subnet-1",
            "Groups": ["sg-1"],
            "DeleteOnTermination": True,
        }
    ]
    assert "SubnetId" not in p and "SecurityGroupIds" not in p
    assert "changing public IP address config to false for instance on subnet 'subnet-1'" in says(st)
    # without a subnet the setting is not applied through an interface
    st2, ctx2 = make_state(fake, associate_public_ip_address=True)
    st2.security_group_ids = ["sg-1"]
    si.run_source_instance(st2, ctx2)
    assert "NetworkInterfaces" not in fake.last("run_instance").args[0]


def test_run_source_instance_refuses_an_instance_store_source() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    st.source_image = Image("ami-s", "s", "available", root_device_type="instance-store")
    with pytest.raises(BuildError) as err:
        si.run_source_instance(st, ctx)
    assert str(err.value) == (
        "The provided source AMI has an invalid root device type.\nExpected 'ebs', got 'instance-store'."
    )
    assert "run_instance" not in fake.names()
    st.source_image = Image("ami-s", "s", "available", root_device_type="")
    si.run_source_instance(st, ctx)
    assert fake.count("run_instance") == 1


def test_run_source_instance_errors() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    fake.fail_next("run_instance", aws_error("VPCIdNotSpecified", "no default vpc"))
    with pytest.raises(BuildError) as err:
        si.run_source_instance(st, ctx)
    assert str(err.value) == "Error launching source instance: a valid Subnet Id was not specified"
    st.subnet_id = "subnet-1"
    fake.fail_next("run_instance", aws_error("VPCIdNotSpecified", "no default vpc"))
    with pytest.raises(BuildError, match=r"^Error launching source instance: .*VPCIdNotSpecified"):
        si.run_source_instance(st, ctx)
    assert ctx.undo_stack == []


def test_waiting_for_running_wraps_the_error_and_shows_addresses_in_debug() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    st.env.debug = True
    fake.instance_template = Instance(
        id="", state="pending", public_ip="1.2.3.4", private_ip="10.0.0.1", public_dns=""
    )
    si.run_source_instance(st, ctx)
    assert messages(st)[-2:] == ["Public IP: 1.2.3.4", "Private IP: 10.0.0.1"]
    fake.instance_states["i-x"] = ["terminated"]
    fake.instances["i-x"] = Instance("i-x", "pending")
    with pytest.raises(BuildError) as err:
        si._wait_running(st, ctx, "i-x")
    assert str(err.value).startswith("Error waiting for instance (i-x) to become ready: ")
    st2, ctx2 = make_state(fake)
    si.run_source_instance(st2, ctx2)
    assert not any(m.startswith("Public IP") for m in messages(st2))


def test_terminate_waits_unless_terminated_and_reports_a_failure() -> None:
    fake = CountingEc2()
    st, _ctx = make_state(fake)
    fake.instances["i-1"] = Instance("i-1", "running")
    si._terminate(st, "i-1")
    assert fake.names() == ["terminate_instance", "wait", "describe_instances"]
    assert fake.last("wait").args[0] == "instance i-1 to be terminated"
    assert says(st) == ["Terminating the source AWS instance..."]
    fake.calls.clear()
    fake.terminate_instance = lambda iid, region=None: "terminated"  # type: ignore[method-assign]
    si._terminate(st, "i-1")
    assert fake.calls == []
    fake2 = CountingEc2()
    st2, _ = make_state(fake2)
    fake2.fail_next("terminate_instance", aws_error("Nope", "denied"))
    with pytest.raises(BuildError):
        si._terminate(st2, "i-2")
    assert st2.ui.lines[-1].startswith("error: Error terminating instance, may still be around: ")


# -- StepRunSpotInstance -------------------------------------------------------------------------


def test_spot_launch_template_and_fleet() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake,
        spot_price="0.05",
        spot_instance_types=["t3.small", "t3.medium"],
        spot_tags={"S": "1"},
        fleet_tags={"F": "2"},
        spot_allocation_strategy="capacity-optimized",
    )
    st.subnet_id, st.security_group_ids, st.availability_zone = "subnet-1", ["sg-1"], "us-east-1b"
    si.run_spot_instance(st, ctx)
    name, data, tags = fake.last("create_launch_template").args
    assert name.startswith("packer_") and "InstanceType" not in data
    assert data["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
            "MaxPrice": "0.05",
        },
    }
    assert data["NetworkInterfaces"] == [
        {"DeviceIndex": 0, "SubnetId": "subnet-1", "Groups": ["sg-1"], "DeleteOnTermination": True}
    ]
    assert "SecurityGroupIds" not in data
    assert [s["ResourceType"] for s in data["TagSpecifications"]] == [
        "instance",
        "network-interface",
        "volume",
    ]
    assert tags["S"] == "1" and tags["amibake:run-id"] == RUN_ID
    lt = next(iter(fake.launch_templates))
    fleet = fake.last("create_fleet").args[0]
    assert fleet["Type"] == "instant" and fleet["ReplaceUnhealthyInstances"] is False
    assert fleet["TargetCapacitySpecification"] == {
        "DefaultTargetCapacityType": "spot",
        "TotalTargetCapacity": 1,
    }
    assert fleet["LaunchTemplateConfigs"] == [
        {
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "1"},
            "Overrides": [
                {"InstanceType": "t3.small", "SubnetId": "subnet-1", "AvailabilityZone": "us-east-1b"},
                {"InstanceType": "t3.medium", "SubnetId": "subnet-1", "AvailabilityZone": "us-east-1b"},
            ],
        }
    ]
    assert fleet["SpotOptions"] == {"AllocationStrategy": "capacity-optimized"}
    (spec,) = fleet["TagSpecifications"]
    assert spec["ResourceType"] == "fleet" and {"Key": "F", "Value": "2"} in spec["Tags"]
    iid = st.instance.id  # type: ignore[union-attr]
    assert [u.description for u in ctx.undo_stack] == [
        f"launch template {lt} ({name})",
        f"instance {iid} (region us-east-1)",
    ]
    assert says(st)[0] == "Launching a spot AWS instance..."
    StepRunner(ctx).unwind(include_rollback=True)
    assert fake.names()[-1] == "delete_launch_template" and fake.last("delete_launch_template").args == (lt,)
    assert fake.last("terminate_instance").args == (iid,)


def test_spot_auto_price_without_subnet() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, spot_price="auto", associate_public_ip_address=True)
    st.security_group_ids = ["sg-1"]
    si.run_spot_instance(st, ctx)
    data = fake.last("create_launch_template").args[1]
    assert "MaxPrice" not in data["InstanceMarketOptions"]["SpotOptions"]
    assert data["SecurityGroupIds"] == ["sg-1"] and "NetworkInterfaces" not in data
    fleet = fake.last("create_fleet").args[0]
    assert fleet["LaunchTemplateConfigs"][0]["Overrides"] == [{"InstanceType": "t3.micro"}]
    assert "SpotOptions" not in fleet
    st2, ctx2 = make_state(fake, spot_price="auto", associate_public_ip_address=True)
    st2.subnet_id = "subnet-1"
    si.run_spot_instance(st2, ctx2)
    nic = fake.last("create_launch_template").args[1]["NetworkInterfaces"][0]
    assert nic["AssociatePublicIpAddress"] is True and nic["Groups"] == []


def test_spot_fleet_failure() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, spot_price="auto")
    fake.fail_next("create_fleet", aws_error("InsufficientCapacity", "none"))
    with pytest.raises(BuildError, match=r"^Error waiting for fleet request: .*InsufficientCapacity"):
        si.run_spot_instance(st, ctx)
    assert len(ctx.undo_stack) == 1


def test_spot_without_tags_sends_no_tag_specifications() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, spot_price="auto")
    st.run_uuid = ""
    st.env.run_id = ""
    st.env.build_name = ""
    st.created_at = ""
    original = si._launch_tags
    si_launch: Any = si
    si_launch._launch_tags = lambda st: []
    try:
        si.run_spot_instance(st, ctx)
    finally:
        si_launch._launch_tags = original
    assert "TagSpecifications" not in fake.last("create_launch_template").args[1]


# -- SSHHost -------------------------------------------------------------------------------------


def test_ssh_host_choice() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake, ssh_host="given")
    assert si.ssh_host(st) == "given"
    inst = Instance(
        "i-1",
        "running",
        public_ip="1.1.1.1",
        private_ip="10.0.0.1",
        public_dns="pub.dns",
        private_dns="priv.dns",
        ipv6="::1",
        vpc_id="vpc-1",
    )
    for iface, want in (
        ("public_ip", "1.1.1.1"),
        ("private_ip", "10.0.0.1"),
        ("public_dns", "pub.dns"),
        ("private_dns", "priv.dns"),
        ("ipv6", "::1"),
    ):
        st2, _ = make_state(fake, ssh_interface=iface)
        st2.instance = inst
        assert si.ssh_host(st2) == want, iface
    st3, _ = make_state(fake)
    st3.instance = inst
    assert si.ssh_host(st3) == "1.1.1.1"
    st3.instance = Instance("i-1", "running", private_ip="10.0.0.1", public_dns="pub.dns", vpc_id="vpc-1")
    assert si.ssh_host(st3) == "10.0.0.1"
    st3.instance = Instance(
        "i-1", "running", public_ip="1.1.1.1", private_ip="10.0.0.1", public_dns="pub.dns"
    )
    assert si.ssh_host(st3) == "pub.dns"
    st3.instance = Instance("i-1", "running", public_ip="1.1.1.1", private_ip="10.0.0.1")
    assert si.ssh_host(st3) == "1.1.1.1"
    st3.instance = Instance("i-1", "running", private_ip="10.0.0.1")
    assert si.ssh_host(st3) == "10.0.0.1"
    st3.instance = Instance("i-1", "running")
    with pytest.raises(BuildError) as err:
        si.ssh_host(st3)
    assert str(err.value) == "couldn't determine address for instance"


def test_the_undo_of_a_step_runs_through_the_runner() -> None:
    fake = CountingEc2()
    st, _ctx = make_state(fake)
    ctx2 = StepContext(ui=st.ui, cancel=threading.Event())
    run_steps(st, ctx2, si.key_pair)
    assert fake.key_pairs == {}


# -- run 2's survivors -----------------------------------------------------------------------------


def test_no_ami_found_names_the_query_with_sorted_keys() -> None:
    fake = CountingEc2()
    st, ctx = make_state(
        fake, source_ami="ami-x", source_ami_filter={"owners": ["self"], "filters": {"n": "v"}}
    )
    fake.images.clear()
    with pytest.raises(BuildError) as err:
        si.source_ami_info(st, ctx)
    assert str(err.value) == (
        "No AMI was found matching filters: "
        '{"filters": {"n": ["v"]}, "image_ids": ["ami-x"], "owners": ["self"]}'
    )


def test_enhanced_networking_takes_the_sources_type_when_none_is_given() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ena_support=True)
    fake.images.clear()
    img = fake.add_image("hvm", virtualization_type="hvm")
    st.config = st.config.model_copy(update={"source_ami": img.id})
    si.source_ami_info(st, ctx)
    assert st.source_image == img


def test_the_virtualization_type_message_in_full() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ami_virtualization_type="hvm")
    fake.images.clear()
    img = fake.add_image("pv", virtualization_type="paravirtual")
    st.config = st.config.model_copy(update={"source_ami": img.id})
    with pytest.raises(BuildError) as err:
        si.source_ami_info(st, ctx)
    assert str(err.value) == (
        f"ami_virtualization_type is 'hvm' but the source AMI {img.id} is 'paravirtual': an amazon-ebs image "
        "has its source AMI's virtualization type (CreateImage cannot change it); choose a source AMI of "
        "that type or remove ami_virtualization_type"
    )


def test_most_free_counts_a_subnet_without_a_count_as_empty() -> None:
    fake = CountingEc2()
    fake.subnets_[:] = [
        {"SubnetId": "subnet-zero", "AvailableIpAddressCount": 0},
        {"SubnetId": "subnet-none"},
    ]
    st, ctx = make_state(fake, subnet_filter={"filters": {"a": "b"}, "most_free": True})
    si.network_info(st, ctx)
    assert st.subnet_id == "subnet-zero"


def test_no_security_group_found_names_the_filter_with_sorted_keys() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, security_group_filter={"filters": {"z": "1"}})
    st.vpc_id = "vpc-1"
    with pytest.raises(BuildError) as err:
        si.security_group(st, ctx)
    assert str(err.value) == 'No security groups matching the filter: {"vpc-id": ["vpc-1"], "z": ["1"]}'


def test_the_waits_of_the_instance_steps_listen_to_the_cancel() -> None:
    from amibake.steps.context import BuildCancelled

    fake = CountingEc2()
    st, ctx = make_state(fake)
    ctx.cancel.set()
    with pytest.raises(BuildCancelled):
        si.security_group(st, ctx)
    fake2 = CountingEc2()
    st2, ctx2 = make_state(fake2)
    ctx2.cancel.set()
    with pytest.raises(BuildError, match=r"to become ready: Build was cancelled\.$"):
        si.run_source_instance(st2, ctx2)


def test_debug_shows_the_public_dns() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    st.env.debug = True
    fake.instance_template = Instance(
        id="", state="pending", public_dns="ec2.example", public_ip="", private_ip=""
    )
    si.run_source_instance(st, ctx)
    assert messages(st)[-1] == "Public DNS: ec2.example"


def test_an_interface_without_an_address_has_no_host() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake)
    st.config = st.config.model_copy(update={"ssh_interface": "session_manager"})
    st.instance = Instance("i-1", "running", public_ip="1.1.1.1")
    with pytest.raises(BuildError, match="couldn't determine address for instance"):
        si.ssh_host(st)
