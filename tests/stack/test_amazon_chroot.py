"""The amazon-chroot builder against the stack: moto for EC2 (through the recording proxy), a metadata
endpoint on loopback naming a moto instance as "this host", and a real loop device holding a small ext4
root filesystem. Mount, chroot, provisioning and unmount are real (root only).

"The kernel" is emulated by a watcher thread: when moto reports the build's volume attached, the
watcher makes ``device_path`` (a path under the test's directory) a link to the loop device, and
removes it once the volume is detached, as a device node appears and goes on a real instance.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amibake.errors import BuildError
from amibake.journal import load_run, run_files
from amibake.plugins.amazon import steps_chroot
from amibake.plugins.amazon.chroot import ChrootBuilder
from amibake.plugins.amazon.config_chroot import ChrootConfig
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.liveness import FINISHED_TAG
from tests.awsproxy import AwsProxy
from tests.stack.test_amazon_chroot_parts import make_rootfs, require_root
from tests.stack.test_ebs_builder import SOURCE_AMI, Hooks, RecUi, ec2, make_env, tags
from tests.stack.test_reliability import Build, assert_nothing_left, inventory, run_cleanup
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    # in-process builds lock a file of the test's own; a CLI build takes Packer's, removed if it made it
    lock_dir = Path(steps_chroot.LOCK_FILE).parent
    had_lock_dir = lock_dir.exists()
    monkeypatch.setattr(steps_chroot, "LOCK_FILE", str(tmp_path / "lock" / "lock"))
    CLIENTS.clear()
    yield
    if not had_lock_dir:
        shutil.rmtree(lock_dir, ignore_errors=True)


def mounts_under(path: Path) -> list[str]:
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(str(path))]


@dataclass
class Host:
    """This host as the build sees it: a moto instance named by a loopback metadata endpoint, a
    loop device that appears at ``device`` while the build's volume is attached."""

    instance_id: str
    zone: str
    metadata_url: str
    loop: str
    image: Path
    device: Path
    mnt: Path
    attachments: list[str]

    def read(self, path: str) -> str:
        """A file of the loop device's filesystem (read with debugfs: no mount needed)."""
        out = subprocess.run(["debugfs", "-R", f"cat {path}", str(self.image)], capture_output=True,
                             text=True, check=True)
        return out.stdout

    def exists(self, path: str) -> bool:
        out = subprocess.run(["debugfs", "-R", f"stat {path}", str(self.image)], capture_output=True,
                             text=True, check=False)
        return "Inode:" in out.stdout


@pytest.fixture
def host(stack: Stack, moto: MotoServer, tmp_path: Path) -> Iterator[Host]:
    require_root()
    c = ec2(stack)
    [inst] = c.run_instances(ImageId=SOURCE_AMI, MinCount=1, MaxCount=1, InstanceType="t2.micro")["Instances"]
    iid = inst["InstanceId"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, code: int, body: str) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def do_PUT(self) -> None:
            self._answer(200, "token")

        def do_GET(self) -> None:
            ok = self.path == "/latest/meta-data/instance-id" and \
                self.headers.get("X-aws-ec2-metadata-token") == "token"
            self._answer(200 if ok else 404, iid if ok else "")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    image = tmp_path / "root.img"
    root = make_rootfs(tmp_path / "rootfs")
    (root / "etc" / "os-release").write_text("ID=amibake-test\n")
    subprocess.run(["truncate", "-s", "24M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(image)], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True,
                          check=True).stdout.strip()
    (tmp_path / "dev").mkdir()
    device = tmp_path / "dev" / "xvdf"
    attachments: list[str] = []
    stop = threading.Event()
    own = {v["VolumeId"] for v in c.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]}  # its root volume

    def kernel() -> None:
        """The device is there while a volume is attached to this host."""
        while not stop.wait(0.1):
            try:
                vols = c.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
                attached = [v for v in vols["Volumes"] if v.get("Attachments") and v["VolumeId"] not in own]
            except Exception:
                continue
            if attached and not device.is_symlink():
                attachments.append(attached[0]["VolumeId"])
                device.symlink_to(loop)
            elif not attached and device.is_symlink():
                device.unlink()

    watcher = threading.Thread(target=kernel, daemon=True)
    watcher.start()
    try:
        yield Host(iid, inst["Placement"]["AvailabilityZone"], f"http://127.0.0.1:{server.server_address[1]}",
                   loop, image, device, tmp_path / "mnt", attachments)
    finally:
        stop.set()
        watcher.join(5)
        server.shutdown()
        server.server_close()
        for path in reversed(mounts_under(tmp_path)):
            subprocess.run(["umount", "-l", path], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)


def assert_in_order(lines: list[str], wanted: list[str]) -> None:
    """Each wanted line is a whole line of ``lines``, after the one wanted before it."""
    at = 0
    for want in wanted:
        assert want in lines[at:], f"{want!r} not after line {at}: {lines}"
        at = lines.index(want, at) + 1


def render(text: str, data: dict[str, Any]) -> str:
    return re.sub(r"{{\s*\.(\w+)\s*}}", lambda m: str(data[m.group(1)]), text)


def make_config(stack: Stack, host: Host, **over: Any) -> ChrootConfig:
    base: dict[str, Any] = dict(
        region="us-east-1", access_key="testing", secret_key="testing", custom_endpoint_ec2=stack.moto.url,
        source_ami=SOURCE_AMI, ami_name=f"chroot-{host.instance_id}", device_path=str(host.device),
        mount_partition="0", mount_path=str(host.mnt / "{{.Device}}"),
        aws_polling={"delay_seconds": 1, "max_attempts": 30},
    )
    base.update(over)
    return ChrootConfig.model_validate(base)


def run_build(config: ChrootConfig, host: Host, hooks: Hooks, ui: RecUi) -> Any:
    env = make_env(ui)
    env.builder_type = "amazon-chroot"
    env.render = render
    return ChrootBuilder(config, env, metadata_env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": host.metadata_url}
                         ).run(hooks)


@pytest.mark.effect("builder/amazon-chroot", "source_ami", "ami_name", "ami_description", "tags",
                    "snapshot_tags", "root_volume_tags", "command_wrapper", "post_mount_commands",
                    "mount_path", "mount_partition", "device_path", "boot_mode", "tpm_support", "uefi_data",
                    "ena_support", "sriov_support", "ami_virtualization_type", "custom_endpoint_ec2",
                    "region", "access_key", "secret_key", "force_deregister", "force_delete_snapshot",
                    "root_volume_encrypt_boot")
def test_build_provisions_the_volume_in_a_chroot_and_registers_it(stack: Stack, moto: MotoServer,
                                                                  host: Host, tmp_path: Path) -> None:
    ui = RecUi()
    hooks = Hooks("echo built-in-chroot > /etc/built; cat /etc/resolv.conf > /etc/resolv-seen; "
                  "ls /proc/self > /dev/null && echo proc-ok; cat /etc/os-release")
    log = tmp_path / "wrapped.log"
    name = f"chroot-{host.instance_id}"
    old = ec2(stack).register_image(Name=name)["ImageId"]  # force_deregister's target
    old_snaps = [m["Ebs"]["SnapshotId"] for m in ec2(stack).describe_images(ImageIds=[old])["Images"][0][
        "BlockDeviceMappings"] if "Ebs" in m]
    before = inventory(moto)
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, host, custom_endpoint_ec2=proxy.url,
            command_wrapper=f"echo {{{{.Command}}}} >> {log}; {{{{.Command}}}}",
            post_mount_commands=["echo {{.Device}} {{.MountPath}} > {{.MountPath}}/etc/post-mount"],
            root_volume_tags={"Vol": "chroot-{{ .BuildRegion }}"},
            tags={"Built": "yes"}, snapshot_tags={"Snap": "yes"}, ami_description="from chroot",
            boot_mode="uefi", tpm_support="v2.0", uefi_data="QU1aTlVFRkk=", ena_support=True,
            sriov_support=True, ami_virtualization_type="hvm", force_deregister=True,
            force_delete_snapshot=True, root_volume_encrypt_boot=True)
        artifact = run_build(config, host, hooks, ui)
        assert artifact is not None and artifact.builder_id == "mitchellh.amazon.chroot"
        [ami] = artifact.amis.values()
        c = ec2(stack)
        src = c.describe_images(ImageIds=[SOURCE_AMI])["Images"][0]
        src_root = next(m for m in src["BlockDeviceMappings"] if m["DeviceName"] == src["RootDeviceName"])
        [create] = proxy.sent("CreateVolume")
        assert create.params["AvailabilityZone"] == host.zone
        assert create.params["SnapshotId"] == src_root["Ebs"]["SnapshotId"]
        assert create.tags("volume")["Vol"] == "chroot-us-east-1"
        assert create.params["Encrypted"] == "true"
        assert [r.params["ImageId"] for r in proxy.sent("DeregisterImage")] == [old]
        assert {r.params["SnapshotId"] for r in proxy.sent("DeleteSnapshot")} == set(old_snaps)
        vid = create.params.get("VolumeId") or host.attachments[0]
        [attach] = proxy.sent("AttachVolume")
        attached_as = str(host.device.parent / "sdf")  # Packer's /xvd -> /sd for the API call
        assert attach.params == {**attach.params, "InstanceId": host.instance_id, "Device": attached_as,
                                 "VolumeId": vid}
        assert [r.params["VolumeId"] for r in proxy.sent("DetachVolume")] == [vid]
        [snap_req] = proxy.sent("CreateSnapshot")
        assert snap_req.params["VolumeId"] == vid
        [reg] = proxy.sent("RegisterImage")
        p = reg.params
        snap = artifact.amis and p["BlockDeviceMapping.1.Ebs.SnapshotId"]
        assert p["Name"] == config.ami_name and p["Description"] == "from chroot"
        assert p["RootDeviceName"] == src["RootDeviceName"]
        assert p["BlockDeviceMapping.1.DeviceName"] == src["RootDeviceName"]
        assert p["Architecture"] == src["Architecture"] and p["VirtualizationType"] == "hvm"
        assert (p["BootMode"], p["TpmSupport"], p["UefiData"]) == ("uefi", "v2.0", "QU1aTlVFRkk=")
        assert (p["EnaSupport"], p["SriovNetSupport"]) == ("true", "simple")
        assert proxy.sent("DeleteVolume")[0].params["VolumeId"] == vid

    # the provisioner ran inside the chroot, on the volume's filesystem, with /proc mounted
    assert hooks.results == [0] and "proc-ok" in hooks.output and "ID=amibake-test" in hooks.output
    assert host.read("/etc/built") == "built-in-chroot\n"
    with open("/etc/resolv.conf") as f:
        assert host.read("/etc/resolv-seen") == f.read()  # copy_files' default, removed again:
    assert not host.exists("/etc/resolv.conf")
    mount_path = str(host.mnt / "xvdf")
    assert host.read("/etc/post-mount") == f"{host.device} {mount_path}\n"
    assert hooks.data["Device"] == str(host.device) and hooks.data["MountPath"] == mount_path
    # every local command went through command_wrapper; the mounts are Packer's defaults, undone
    wrapped = log.read_text().splitlines()
    assert f"mount {host.device} {mount_path}" in [w.strip() for w in wrapped]
    assert any(w.startswith(f"mount -t binfmt_misc binfmt_misc {mount_path}/proc/sys/fs/binfmt_misc")
               for w in wrapped)
    assert any(w.startswith(f"chroot {mount_path} /bin/sh -c") for w in wrapped)
    assert wrapped[-1] == f"umount {mount_path}"
    assert mounts_under(tmp_path) == [] and not host.device.exists()
    # end state: the volume is gone; the AMI and its snapshot are kept, tagged, finished
    c = ec2(stack)
    image = c.describe_images(ImageIds=[ami])["Images"][0]
    assert image["Name"] == config.ami_name and tags(image)["Built"] == "yes"
    assert FINISHED_TAG in tags(image)
    s = c.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert tags(s)["Snap"] == "yes" and FINISHED_TAG in tags(s)
    # moto's RegisterImage keeps no block devices and makes a root snapshot of its own for the image
    moto_snaps = {f"us-east-1:{m['Ebs']['SnapshotId']}" for m in image["BlockDeviceMappings"]} - {
        f"us-east-1:{snap}"}
    assert inventory(moto) - before == {f"us-east-1:{ami}", f"us-east-1:{snap}", *moto_snaps}
    assert "==> Running the provision hook" in ui.lines
    # Packer's own lines for these steps, in its order (as in a Packer 1.6.x amazon-chroot transcript;
    # its provisioner lines and ids aside), each a whole line
    packer = ["==> Gathering information about this EC2 instance...", f"    Found Image ID: {SOURCE_AMI}",
              "==> Checking the root device on source AMI...", "==> Creating the root volume...",
              f"==> Attaching the root volume to {attached_as}", "==> Mounting the root device...",
              "==> Mounting additional paths within the chroot...", "    Mounting: /proc",
              "    Mounting: /sys", "    Mounting: /dev", "    Mounting: /dev/pts",
              "    Mounting: /proc/sys/fs/binfmt_misc", "==> Copying files from host to chroot...",
              "    /etc/resolv.conf", "==> Unmounting the root device...", "==> Detaching EBS volume...",
              "==> Creating snapshot...", f"    Snapshot ID: {snap}", "==> Registering the AMI...",
              f"==> AMI: {ami}", "==> Waiting for AMI to become ready...",
              "==> Deleting the created EBS volume..."]
    assert_in_order(ui.lines, packer)
    # the run journal: every create's record settles its intent (by the volume's token and the image's
    # name), and what is left live is what the build delivers, recorded as finished
    [run] = run_files()
    rec = load_run(run)
    assert rec.dangling == []
    assert sorted((r.kind, r.id) for r in rec.live) == sorted([("image", ami), ("snapshot", snap)])
    assert [r.detail.get("name") for r in rec.live if r.kind == "image"] == [config.ami_name]
    assert list(rec.finished.values()) == [{"us-east-1": ami}]


def test_failing_provisioner_leaves_nothing(stack: Stack, moto: MotoServer, host: Host,
                                            tmp_path: Path) -> None:
    before = inventory(moto)
    ui = RecUi()
    config = make_config(stack, host, chroot_mounts=[["proc", "proc", "/proc"], ["bind", "/dev", "/dev"]])
    with pytest.raises(BuildError, match="non-zero exit status"):
        run_build(config, host, Hooks("echo partial > /etc/partial; exit 3"), ui)
    assert host.attachments  # it got as far as attaching and mounting
    assert host.read("/etc/partial") == "partial\n"
    assert mounts_under(tmp_path) == []
    assert_nothing_left(moto, before)
    deadline = time.monotonic() + 5
    while host.device.is_symlink() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not host.device.exists()
    # every undo ran without an error (the copied files removed before the unmount), in Packer's order
    assert not [line for line in ui.lines if "Error during cleanup" in line]
    assert_in_order(ui.lines, ["==> Unmounting the root device...", "==> Detaching EBS volume...",
                               "==> Deleting the created EBS volume..."])


@pytest.mark.effect("builder/amazon-chroot", "source_ami_filter")
def test_a_device_that_exists_before_the_attachment_is_refused(stack: Stack, moto: MotoServer,
                                                               host: Host) -> None:
    before = inventory(moto)
    owner = ec2(stack).describe_images(ImageIds=[SOURCE_AMI])["Images"][0]["OwnerId"]
    ui = RecUi()
    with AwsProxy(moto.url) as proxy:
        config = make_config(stack, host, custom_endpoint_ec2=proxy.url, device_path=host.loop, source_ami="",
                             source_ami_filter={"filters": {"image-id": SOURCE_AMI}, "owners": [owner],
                                                "most_recent": True})
        with pytest.raises(BuildError, match=f"Device is in use: {host.loop}"):
            run_build(config, host, Hooks("true"), ui)
        [described] = [r for r in proxy.sent("DescribeImages") if r.params.get("Filter.1.Name") == "image-id"]
        assert described.params["Filter.1.Value.1"] == SOURCE_AMI
        assert described.params["Owner.1"] == owner
    assert f"    Found Image ID: {SOURCE_AMI}" in ui.lines
    assert_nothing_left(moto, before)
    assert shutil.which("debugfs")
    assert os.path.exists(host.loop)


@pytest.mark.effect("builder/amazon-chroot", "from_scratch", "pre_mount_commands", "root_device_name",
                    "ami_block_device_mappings", "root_volume_size", "root_volume_type", "ami_architecture",
                    "mount_options", "nvme_device_path", "chroot_mounts", "copy_files", "tag", "snapshot_tag",
                    "root_volume_tag", "ami_regions", "ami_users", "ami_groups", "snapshot_users",
                    "snapshot_groups", "imds_support", "aws_polling")
def test_from_scratch_with_an_nvme_device_copied_and_shared(stack: Stack, moto: MotoServer, host: Host,
                                                            tmp_path: Path) -> None:
    """The volume is made empty and filled by pre_mount_commands; the attach call names device_path,
    the mount uses nvme_device_path (which is where the watcher makes the device appear)."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc" / "scratch").write_text("made by pre_mount_commands\n")
    seen = tmp_path / "premount-device"
    before = inventory(moto)
    ui = RecUi()
    hooks = Hooks("cat /etc/scratch; cat /etc/hosts > /tmp/hosts-seen; cat /proc/mounts; ls -a /dev")
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, host, custom_endpoint_ec2=proxy.url, source_ami="", from_scratch=True,
            device_path=str(host.device.parent / "xvdg"), nvme_device_path=str(host.device),
            pre_mount_commands=[f"echo {{{{.Device}}}} > {seen}",
                                f"mkfs.ext4 -q -F -d {rootfs} {host.device}"],
            root_device_name="/dev/xvda", root_volume_size=3, root_volume_type="gp3",
            ami_virtualization_type="hvm", ami_architecture="arm64",
            ami_block_device_mappings=[{"device_name": "/dev/xvda", "volume_type": "gp3",
                                        "delete_on_termination": True},
                                       {"device_name": "/dev/sdb", "virtual_name": "ephemeral0"}],
            mount_options=["noatime", "nodiratime"], chroot_mounts=[["proc", "proc", "/proc"]],
            copy_files=["/etc/hosts"], tag=[{"key": "T", "value": "t"}],
            snapshot_tag=[{"key": "S", "value": "s"}], root_volume_tag=[{"key": "R", "value": "r"}],
            ami_regions=["us-west-2"], ami_users=["123456789012"], ami_groups=["all"],
            snapshot_users=["210987654321"], snapshot_groups=["all"], imds_support="v2.0",
            aws_polling={"delay_seconds": 1, "max_attempts": 40})
        artifact = run_build(config, host, hooks, ui)
        [create] = proxy.sent("CreateVolume")
        assert "SnapshotId" not in create.params
        assert (create.params["Size"], create.params["VolumeType"]) == ("3", "gp3")
        assert create.tags("volume")["R"] == "r"
        assert proxy.sent("AttachVolume")[0].params["Device"] == str(host.device.parent / "sdg")
        [reg] = proxy.sent("RegisterImage")
        p = reg.params
        assert (p["Architecture"], p["RootDeviceName"], p["VirtualizationType"]) == (
            "arm64", "/dev/xvda", "hvm")
        assert p["BlockDeviceMapping.1.DeviceName"] == "/dev/xvda"
        assert p["BlockDeviceMapping.1.Ebs.VolumeSize"] == "3"
        assert p["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3"
        snap = p["BlockDeviceMapping.1.Ebs.SnapshotId"]
        assert (p["BlockDeviceMapping.2.DeviceName"], p["BlockDeviceMapping.2.VirtualName"]) == (
            "/dev/sdb", "ephemeral0")
        assert p["ImdsSupport"] == "v2.0" and "KernelId" not in p
        [copy] = proxy.sent("CopyImage")
        assert copy.params["SourceImageId"] == artifact.amis["us-east-1"]
        perms = proxy.sent("ModifyImageAttribute")
        added = sorted(v for r in perms for k, v in r.params.items() if ".Add." in k)
        assert added == ["123456789012", "123456789012", "all", "all"]  # both regions
        snap_perms = proxy.sent("ModifySnapshotAttribute")
        assert sorted(v for r in snap_perms for k, v in r.params.items() if ".Add." in k) == [
            "210987654321", "210987654321", "all", "all"]  # the copy's snapshot too
    assert seen.read_text() == f"{host.device.parent / 'xvdg'}\n"  # {{.Device}} is device_path
    out = hooks.output
    assert out[0] == "made by pre_mount_commands"
    with open("/etc/hosts") as f:
        assert host.read("/tmp/hosts-seen") == f.read()
    mount_path = str(host.mnt / "xvdf")  # {{.Device}} of mount_path: the nvme device's name
    [root_line] = [line for line in out if line.split()[1:2] == ["/"]] or [
        line for line in out if f" {mount_path} " in line]
    assert "noatime" in root_line and "nodiratime" in root_line
    assert out[-2:] == [".", ".."]  # /dev is not bind-mounted: chroot_mounts named only /proc
    assert not host.exists("/etc/hosts") and not host.exists("/etc/resolv.conf")  # removed; no default
    assert mounts_under(tmp_path) == []
    c = ec2(stack)
    assert tags(c.describe_images(ImageIds=[artifact.amis["us-east-1"]])["Images"][0])["T"] == "t"
    s = c.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert tags(s)["S"] == "s" and tags(s)["T"] == "t"
    west = ec2(stack, "us-west-2").describe_images(ImageIds=[artifact.amis["us-west-2"]])["Images"][0]
    assert west["Name"] == config.ami_name and FINISHED_TAG in tags(west)
    left = inventory(moto) - before
    assert f"us-east-1:{artifact.amis['us-east-1']}" in left and f"us-east-1:{snap}" in left
    assert not any(v.startswith("us-east-1:vol-") for v in left)


@pytest.mark.parametrize("point", ["after-attach-volume", "after-mount-extra", "after-create-snapshot"])
def test_sigkill_then_cleanup_leaves_nothing(stack: Stack, moto: MotoServer, host: Host,
                                             tmp_path: Path, point: str) -> None:
    """Through the CLI, with a shell provisioner: killed with the volume attached to the build host
    (before any mount), with the root and the chroot_mounts mounted, or once the snapshot exists (the
    volume detached, every mount undone): ``amibake cleanup`` (on the same host) unmounts what is
    mounted, deepest first, detaches the volume if need be and removes it and the snapshot."""
    before = inventory(moto)
    template = tmp_path / "chroot.json"
    template.write_text(json.dumps({"builders": [{
        "type": "amazon-chroot", "region": "us-east-1", "source_ami": SOURCE_AMI,
        "ami_name": f"chroot-kill-{host.instance_id}", "device_path": str(host.device),
        "mount_partition": "0",
        "mount_path": str(host.mnt / "{{.Device}}"), "chroot_mounts": [["proc", "proc", "/proc"]],
        "copy_files": [], "aws_polling": {"delay_seconds": 1, "max_attempts": 30},
    }], "provisioners": [{"type": "shell",
                          "inline": ["echo from-shell-$PACKER_BUILDER_TYPE > /etc/from-shell"]}]}))
    state = tmp_path / "state-cli"
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(state),
           "AMIBAKE_PAUSE_AT": point,
           "AWS_EC2_METADATA_SERVICE_ENDPOINT": host.metadata_url,
           "AWS_EC2_METADATA_DISABLED": "false"}  # the stack turns boto3's off; this build needs it
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([amibake_exe(), "build", str(template)], stdout=o, stderr=e,
                                stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
    build = Build(proc, state, out, err, "")
    build.wait_marker(point, timeout=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    c = ec2(stack)
    if point == "after-mount-extra":
        mounted = mounts_under(tmp_path)
        assert len(mounted) == 2 and any(m.endswith("/proc") for m in mounted), mounted
        res = run_cleanup(stack, build, "--run", build.run_id())
        assert res.returncode == 0, res.stdout + res.stderr
        assert mounts_under(tmp_path) == []
        assert_nothing_left(moto, before)
        return
    assert mounts_under(tmp_path) == []  # not mounted yet, or unmounted before the snapshot
    if point == "after-create-snapshot":
        assert host.read("/etc/from-shell") == "from-shell-amazon-chroot\n"
        [snap] = [s["SnapshotId"] for s in c.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                  if f"us-east-1:{s['SnapshotId']}" not in before]
        assert (inventory(moto) - before) == {f"us-east-1:{snap}", f"us-east-1:{host.attachments[0]}"}
    else:
        [vol] = [v for v in c.describe_volumes()["Volumes"] if f"us-east-1:{v['VolumeId']}" not in before]
        assert vol["State"] == "in-use"  # attached to the build host: DeleteVolume alone would fail
        assert vol["Attachments"][0]["InstanceId"] == host.instance_id
    res = run_cleanup(stack, build, "--run", build.run_id())
    assert res.returncode == 0, res.stdout + res.stderr
    assert_nothing_left(moto, before)
