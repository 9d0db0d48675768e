"""The gateway's records of the API's answers (``records.py``) and the build state's data and tags
(``state.py``): every field read from an answer, every default, and the fingerprint tag. Written for
a mutation run's survivors (docs/mutation.md)."""

from __future__ import annotations

from typing import Any

from amibake import fingerprint
from amibake.plugins.amazon.records import BlockDevice, Image, Instance, tag_dict, tag_list, tag_specs
from tests.fakes.ec2 import CountingEc2
from tests.unit.test_steps_fake import RUN_ID, make_state

INSTANCE: dict[str, Any] = {
    "InstanceId": "i-1",
    "State": {"Name": "running"},
    "PublicIpAddress": "1.2.3.4",
    "PrivateIpAddress": "10.0.0.1",
    "PublicDnsName": "pub.example",
    "PrivateDnsName": "priv.example",
    "VpcId": "vpc-1",
    "StateReason": {"Message": "Client.UserInitiatedShutdown"},
    "BlockDeviceMappings": [
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeId": "vol-1", "DeleteOnTermination": True}},
        {"DeviceName": "/dev/sdb", "Ebs": {"VolumeId": "vol-2"}},
        {"DeviceName": "/dev/sdc"},
    ],
    "NetworkInterfaces": [
        {"Ipv6Addresses": []},
        {"Ipv6Addresses": [{"Ipv6Address": "2001:db8::1"}, {"Ipv6Address": "2001:db8::2"}]},
    ],
}


def test_instance_from_a_full_answer() -> None:
    inst = Instance.from_api(INSTANCE)
    assert inst == Instance(
        id="i-1",
        state="running",
        public_ip="1.2.3.4",
        private_ip="10.0.0.1",
        public_dns="pub.example",
        private_dns="priv.example",
        ipv6="2001:db8::1",
        vpc_id="vpc-1",
        block_devices=(BlockDevice("/dev/sda1", "vol-1", True), BlockDevice("/dev/sdb", "vol-2", False)),
        state_reason="Client.UserInitiatedShutdown",
    )


def test_instance_from_an_empty_or_null_answer() -> None:
    assert Instance.from_api({}) == Instance(id="", state="")
    nulls = {
        "InstanceId": "i-2",
        "State": None,
        "PublicIpAddress": None,
        "PrivateIpAddress": None,
        "PublicDnsName": None,
        "PrivateDnsName": None,
        "VpcId": None,
        "StateReason": None,
        "BlockDeviceMappings": [{"Ebs": {"Iops": 3}}, {"Ebs": {}}],
        "NetworkInterfaces": [{}],
    }
    inst = Instance.from_api(nulls)
    assert inst == Instance(id="i-2", state="", block_devices=(BlockDevice("", "", False),))
    assert (inst.public_ip, inst.private_ip, inst.public_dns, inst.private_dns, inst.vpc_id) == ("",) * 5
    assert Instance.from_api({"NetworkInterfaces": [{"Ipv6Addresses": [{}]}]}).ipv6 == ""


def test_image_from_a_full_and_an_empty_answer() -> None:
    img = Image.from_api(
        {
            "ImageId": "ami-1",
            "Name": "n",
            "State": "available",
            "OwnerId": "123",
            "ImageOwnerAlias": "amazon",
            "CreationDate": "2024-01-01T00:00:00.000Z",
            "RootDeviceType": "ebs",
            "VirtualizationType": "hvm",
            "Description": "d",
            "Tags": [{"Key": "k", "Value": "v"}],
            "StateReason": {"Message": "why"},
            "BlockDeviceMappings": [
                {"Ebs": {"SnapshotId": "snap-1"}},
                {"Ebs": {}},
                {"VirtualName": "ephemeral0"},
                {"Ebs": {"SnapshotId": "snap-2"}},
            ],
        }
    )
    assert img == Image(
        id="ami-1",
        name="n",
        state="available",
        owner_id="123",
        owner_alias="amazon",
        creation_date="2024-01-01T00:00:00.000Z",
        root_device_type="ebs",
        virtualization_type="hvm",
        description="d",
        tags={"k": "v"},
        snapshot_ids=("snap-1", "snap-2"),
        state_reason="why",
    )
    assert Image.from_api({}) == Image(id="", name="", state="")
    assert Image.from_api({"Description": None, "StateReason": None}).description == ""


def test_tag_helpers() -> None:
    assert tag_dict([{"Key": "a", "Value": "1"}, {"Key": "b"}, {"Value": "x"}]) == {
        "a": "1",
        "b": "",
        "": "x",
    }
    assert tag_dict(None) == {} and tag_dict([]) == {}
    assert tag_list({"a": "1", "b": "2"}) == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    assert tag_specs({}, "instance") == []
    assert tag_specs({"a": "1"}, "instance", "volume") == [
        {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "1"}]},
        {"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "1"}]},
    ]


# -- BuildState -----------------------------------------------------------------------------------


def test_build_info_and_build_data() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake)
    st.source_image = Image(
        id="ami-s",
        name="src",
        state="available",
        owner_id="123",
        owner_alias="amazon",
        creation_date="2024",
        tags={"k": "v"},
    )
    assert st.build_info() == {
        "BuildRegion": "us-east-1",
        "SourceAMI": "ami-s",
        "SourceAMICreationDate": "2024",
        "SourceAMIName": "src",
        "SourceAMIOwner": "123",
        "SourceAMIOwnerName": "amazon",
        "SourceAMITags": {"k": "v"},
    }
    st.source_image = None
    assert st.build_info() == {"BuildRegion": "us-east-1"}
    st.instance = Instance("i-9", "running")
    st.host, st.public_key, st.private_key_pem = "h", "pub", "priv"
    data = st.build_data()
    assert (data["ID"], data["Host"], data["SSHPublicKey"], data["SSHPrivateKey"], data["PackerRunUUID"]) == (
        "i-9",
        "h",
        "pub",
        "priv",
        "uuid-1",
    )
    # the communicator's part (the SDK's ConnType, Port, User): from the template's ssh_* options
    ssh = make_state(fake, ssh_username="builder", ssh_port=2222)[0].build_data()
    assert (ssh["ConnType"], ssh["Port"], ssh["User"]) == ("ssh", 2222, "builder")
    # a Windows password fetched by StepGetPassword is the build data's Password and WinRMPassword
    st.password = "fetched-pw"
    assert (st.build_data()["Password"], st.build_data()["WinRMPassword"]) == ("fetched-pw", "fetched-pw")
    st.password = ""
    st.instance = None
    assert st.build_data()["ID"] == ""


def test_render_and_tags() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake)
    calls: list[tuple[str, Any]] = []

    def render(text: str, data: Any) -> str:
        calls.append((text, data))
        return text.replace("{{ .BuildRegion }}", data["BuildRegion"])

    st.env.render = render
    assert st.render("plain") == "plain" and calls == []
    assert st.render_tags({"{{ .BuildRegion }}": "r-{{ .BuildRegion }}"}) == {"us-east-1": "r-us-east-1"}
    own = st.own_tags()
    assert own == {
        "amibake:run-id": RUN_ID,
        "amibake:build": "amazon-ebs.x",
        "amibake:created": st.created_at,
    }
    assert st.created_at.endswith("Z") and len(st.created_at) == 20
    st.env.run_id = ""
    assert st.own_tags()["amibake:run-id"] == "uuid-1"
    assert st.tags_for({"amibake:build": "mine", "T": "1"}) == {
        **st.own_tags(),
        "amibake:build": "mine",
        "T": "1",
    }
    assert st.region == "us-east-1" and st.ui is st.env.ui
    st.ui_ = "other"
    assert st.ui == "other"


def test_fingerprint_tags() -> None:
    fake = CountingEc2()
    st, _ = make_state(fake)
    assert st.fingerprint_tags() == {}
    partial = fingerprint.Fingerprint({"options": "a" * 64})
    st.env.fingerprint = partial
    st.source_image = None
    assert st.fingerprint_tags() == {}
    st.source_image = Image("ami-s", "s", "available")
    fp = partial.resolved({fingerprint.SOURCE_IMAGE: "ami-s"})
    assert st.fingerprint_tags() == {fingerprint.TAG: fp.digest}
    found = st.env.image_fingerprint
    assert found == {
        "fingerprint": fp.digest,
        "breakdown": fp.breakdown(),
        "reused": False,
        "remembered": fp.digest,
    }
    assert fingerprint.recall(fp.digest) == fp.breakdown()
    found["reused"] = True  # remembered once: not reset by the next call
    assert st.fingerprint_tags() == {fingerprint.TAG: fp.digest}
    assert found["reused"] is True
