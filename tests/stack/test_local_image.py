"""amibake-local's image side on this machine: a Debian root filesystem bootstrapped once per run with
mmdebstrap (then from the bootstrap cache), provisioned through the chroot session, made into a GPT disk
without loop devices, and booted under QEMU (software emulation) to SSH, where the checks see what the
options did. The disk is a uefi-preferred one booted by SeaBIOS, as an instance type without UEFI boots
it: GRUB's BIOS path (tests/stack/test_local_builder.py's end-to-end build boots a uefi disk with OVMF).
A disk that cannot boot fails the boot test at once, and a boot slower than ``boot_test_timeout`` fails
it on time."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon.local import boottest, chroot_session, disk
from amibake.plugins.amazon.local.config_image import LocalImageOptions
from tests.stack.local_image_fixtures import (  # noqa: F401 - the fixture
    LocalImageKit,
    RecordingUi,
    local_image,
    require_local_image_tools,
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mounted_under(path: Path) -> list[str]:
    text = Path("/proc/mounts").read_text()
    return [line for line in text.splitlines() if str(path) in line]


@pytest.mark.timeout(900)  # the run's one bootstrap (when this test is the first to need it) and two boots
@pytest.mark.effect("builder/amibake-local", "suite", "mirror", "components", "packages", "architecture",
                    "bootstrap_cache", "bootstrap_cache_dir", "kernel_command_line", "volume_size",
                    "boot_test_timeout", "boot_mode")
def test_bootstrap_provision_disk_and_boot(local_image: LocalImageKit, tmp_path: Path) -> None:  # noqa: F811
    """The image side end to end, the disk a uefi-preferred one booted under SeaBIOS (QEMU's default
    firmware): the BIOS path, boot.img, core.img, grub.cfg and the kernel links. The UEFI path (OVMF,
    systemd-boot) is test_local_builder.py's end-to-end build, so the suite pays for no third boot."""
    require_local_image_tools(("grub-mkimage",))
    kit = local_image
    mtime = kit.tarball.stat().st_mtime_ns
    ui = RecordingUi()
    tree = tmp_path / "tree"
    info = kit.tree(tree, ui)
    # the second bootstrap of the run is the cache's: mmdebstrap does not run, the tarball is untouched
    assert "Using the cached root filesystem" in ui.text()
    assert "mmdebstrap" not in ui.text()
    assert kit.tarball.stat().st_mtime_ns == mtime
    assert info.source_digest == kit.digest
    # the bootstrap options, seen in the tree
    assert info.suite == "bookworm" and info.architecture == "amd64" and info.mirror == kit.opts.mirror
    assert "VERSION_CODENAME=bookworm" in (tree / "etc/os-release").read_text()
    sources = "\n".join(p.read_text() for p in (tree / "etc/apt").rglob("*.list"))
    assert f"{kit.opts.mirror} bookworm main contrib" in sources
    for name in ("less", "linux-image-cloud-amd64", "cloud-init", "systemd-boot", "openssh-server"):
        assert name in info.packages
    assert "apt" in info.packages and "systemd" in info.packages
    dpkg_arch = subprocess.run(["chroot", str(tree), "dpkg", "--print-architecture"], capture_output=True,
                               text=True, check=True).stdout.strip()
    assert dpkg_arch == "amd64"

    # provisioning in the tree: /proc, /sys, /dev mounted, then all unmounted and the helpers gone
    notes: list[str] = []
    with chroot_session.open_tree(tree, ui=ui, on_mount=notes.append,
                                  on_unmount=lambda p: notes.append("-" + p)) as comm:
        out: list[str] = []
        status = comm.run("test -r /proc/self/status && test -c /dev/null && test -d /sys/class "
                          "&& echo provisioned > /etc/amibake-provisioned && echo ok", stdout=out.append)
        assert status == 0 and out == ["ok"]
    assert _mounted_under(tree) == []
    assert [n for n in notes if not n.startswith("-")] == [str(tree.resolve() / m) for m in
                                                            ("proc", "sys", "dev", "dev/pts",
                                                             "proc/sys/fs/binfmt_misc")]
    assert not (tree / "usr/sbin/policy-rc.d").exists()

    # the disk: one GiB more than the computed minimum (volume_size)
    too_small = LocalImageOptions.model_validate({**kit.template_options, "volume_size": 1})
    minimum = disk.minimum_gib(disk.tree_bytes(tree))
    assert minimum > 1
    with pytest.raises(BuildError, match="volume_size 1 GiB is too small"):
        disk.make_disk(tree, tmp_path / "small.raw", opts=too_small, ui=ui, cancel=None)
    opts = LocalImageOptions.model_validate({**kit.template_options, "volume_size": minimum + 1,
                                             "kernel_command_line": ["amibake.test=1"],
                                             "boot_mode": "uefi-preferred"})
    image = tmp_path / "disk.raw"
    d = disk.make_disk(tree, image, opts=opts, ui=ui, cancel=None)
    assert d.size_bytes == (minimum + 1) * disk.GIB == image.stat().st_size
    assert image.stat().st_blocks * 512 < d.size_bytes  # sparse
    assert (d.boot_mode, d.architecture, d.root_device_name, d.ena_support) == ("uefi-preferred", "x86_64",
                                                                               "/dev/xvda", True)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    assert [p["type"] for p in table["partitions"]] == [str(disk.ESP_TYPE).upper(),
                                                         str(disk.ROOT_TYPES["x86_64"]).upper(),
                                                         str(disk.BIOS_BOOT_TYPE).upper()]
    verify = subprocess.run(["sfdisk", "--verify", str(image)], capture_output=True, check=False)
    assert verify.returncode == 0
    assert f"UUID={d.root_uuid}\t/\text4" in (tree / "etc/fstab").read_text()
    before = _sha256(image)

    checks = [
        # first boot completes with no failed unit (cloud-init's stages included)
        "test \"$(sudo systemctl is-system-running --wait)\" = running "
        "|| { sudo systemctl --failed; exit 1; }",
        "test -f /etc/hostname",
        "test \"$(cat /etc/amibake-provisioned)\" = provisioned",
        "grep -q amibake.test=1 /proc/cmdline && grep -q nvme_core.io_timeout=4294967295 /proc/cmdline",
        f"test \"$(findmnt -n -o UUID /)\" = {d.root_uuid}",
        "findmnt -n /boot/efi",
        f"test \"$(hostname)\" = {boottest.HOSTNAME}",
        "command -v less",
        # the BIOS booted it: GRUB's entry, /vmlinuz (the link Debian's kernel packages keep at the newest)
        "test ! -d /sys/firmware/efi",
        "grep -q '^BOOT_IMAGE=/vmlinuz root=' /proc/cmdline",
        "test \"$(readlink -f /vmlinuz)\" = /boot/vmlinuz-$(uname -r)",
        "sudo grep -q 'linux /vmlinuz' /boot/grub/grub.cfg",
        # the ESP holds what kernel-install holds: installing the running kernel again rewrites the one entry
        "sudo test -f /boot/efi/loader/entries/debian-$(uname -r).conf",
        "systemctl is-enabled systemd-timesyncd && grep -rq 169.254.169.123 /etc/systemd/timesyncd.conf.d",
        "sudo kernel-install add $(uname -r) /boot/vmlinuz-$(uname -r) "
        "&& test \"$(sudo ls /boot/efi/loader/entries)\" = debian-$(uname -r).conf "
        "&& sudo test -s /boot/efi/debian/$(uname -r)/linux",
    ]
    boot_ui = RecordingUi()
    # an instance type without UEFI boots a uefi-preferred AMI from its BIOS
    bios = LocalImageOptions.model_validate({**kit.template_options, "boot_mode": "legacy-bios"})
    try:
        boottest.boot_test(image, opts=bios, commands=checks, ui=boot_ui, cancel=None)
    except BuildError as exc:
        pytest.fail(f"{exc}\n{boot_ui.text()}")
    text = boot_ui.text()
    assert "SSH is up" in text and "Boot test passed" in text, text
    assert "under QEMU (BIOS, software emulation)" in text
    assert all(f"check: {c}" in text for c in checks)
    assert _sha256(image) == before  # the boot test wrote to its overlay only
    assert subprocess.run(["pgrep", "-f", str(image)], capture_output=True, check=False).returncode == 1


    # boot_test_timeout: the same disk needs far longer than 10 s to reach SSH
    quick = LocalImageOptions.model_validate({**kit.template_options, "boot_test_timeout": "10s"})
    started = time.monotonic()
    with pytest.raises(BuildError, match=r"did not boot.*boot_test_timeout \(10s\)"):
        boottest.boot_test(image, opts=quick, commands=["true"], ui=RecordingUi(), cancel=None)
    assert 9 < time.monotonic() - started < 120  # well before a boot would have reached SSH
    assert subprocess.run(["pgrep", "-f", str(image)], capture_output=True, check=False).returncode == 1


def _blank_disk(path: Path) -> None:
    """A 1 GiB disk with a valid GPT and empty partitions: nothing to boot."""
    lay = disk.layout(1)
    head, tail = disk.gpt_structures(lay, disk.Ids.new(), "x86_64")
    with path.open("wb") as f:
        f.truncate(lay.size_bytes)
        f.write(head)
        f.seek(lay.size_bytes - len(tail))
        f.write(tail)


def test_boot_test_fails_for_a_disk_that_does_not_boot(tmp_path: Path) -> None:
    require_local_image_tools(("mkfs.vfat", "mcopy", "qemu-system-x86_64", "qemu-img", "timeout"))
    image = tmp_path / "blank.raw"
    _blank_disk(image)
    opts = LocalImageOptions.model_validate({"boot_test_timeout": "5m"})
    ui = RecordingUi()
    started = time.monotonic()
    with pytest.raises(BuildError, match="did not boot") as err:
        boottest.boot_test(image, opts=opts, commands=["true"], ui=ui, cancel=None)
    # the firmware's own failure ends the test long before the 5 minutes
    assert time.monotonic() - started < 150
    assert "failed to load" in str(err.value) and "NVMe" in str(err.value)
    assert subprocess.run(["pgrep", "-f", str(image)], capture_output=True, check=False).returncode == 1


def test_bios_boot_test_fails_at_once_for_a_disk_that_does_not_boot(tmp_path: Path) -> None:
    """Under SeaBIOS: a disk without an MBR fails on the BIOS's "No bootable device"; one with GRUB
    placed as make_disk places it but no root file system fails on GRUB's own error (its search for the
    root's UUID), which shows that boot.img loaded core.img through the pointers. No kernel boots. (A
    protective MBR without boot code, as on a uefi disk, hangs the BIOS: boot_test_timeout ends that.)"""
    require_local_image_tools(("mkfs.vfat", "mcopy", "qemu-system-x86_64", "qemu-img", "timeout",
                               "grub-mkimage"))
    opts = LocalImageOptions.model_validate({"boot_mode": "legacy-bios", "boot_test_timeout": "2m"})
    blank = tmp_path / "blank.raw"
    with blank.open("wb") as f:
        f.truncate(64 * disk.MIB)
    grub = tmp_path / "grub.raw"
    lay = disk.layout(1, bios=True)
    head, tail = disk.gpt_structures(lay, disk.Ids.new(), "x86_64")
    missing = "0b5e2d0c-1c8e-4a53-9d7c-f8b1a4e0c3d2"
    core_img = disk.make_core_image(tmp_path / "core.img", missing, cancel=None)
    mbr, core = disk.bios_boot_sectors(head[:disk.SECTOR], disk.grub_pc_files().read_bytes(), core_img,
                                       lay.bios_start // disk.SECTOR, lay.bios_size // disk.SECTOR)
    with grub.open("wb") as f:
        f.truncate(lay.size_bytes)
        f.write(mbr + head[disk.SECTOR:])
        f.seek(lay.bios_start)
        f.write(core)
        f.seek(lay.size_bytes - len(tail))
        f.write(tail)
    for image, seen in ((blank, "No bootable device"), (grub, f"error: no such device: {missing}")):
        started = time.monotonic()
        with pytest.raises(BuildError, match="did not boot") as err:
            boottest.boot_test(image, opts=opts, commands=["true"], ui=RecordingUi(), cancel=None)
        assert time.monotonic() - started < 90  # the console's failure, long before the 2 minutes
        assert seen in str(err.value)
        assert subprocess.run(["pgrep", "-f", str(image)], capture_output=True, check=False).returncode == 1


def test_open_tree_unmounts_on_failure(tmp_path: Path) -> None:
    """The chroot session's mounts are undone deepest first when provisioning fails, and when a mount
    fails half way (no tree needed: amazon-chroot's mounts are made in an empty directory)."""
    require_local_image_tools(("mount", "umount", "chroot"))
    tree = tmp_path / "tree"
    tree.mkdir()
    ui = RecordingUi()
    notes: list[str] = []
    session = chroot_session.open_tree(tree, ui=ui, on_mount=notes.append,
                                       on_unmount=lambda p: notes.append("-" + p))
    with pytest.raises(RuntimeError, match="provisioner failed"), session:
        assert len(_mounted_under(tree)) == 5
        raise RuntimeError("provisioner failed")
    assert _mounted_under(tree) == []
    mounted = [n for n in notes if not n.startswith("-")]
    assert [n[1:] for n in notes if n.startswith("-")] == mounted[::-1]
    assert not (tree / "usr/sbin/policy-rc.d").exists()
    # /dev cannot be made: /proc and /sys, already mounted, are unmounted again
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dev").write_text("not a directory")
    broken_session = chroot_session.open_tree(broken, ui=ui)
    with pytest.raises(BuildError, match="Error creating mount directory"), broken_session:
        pass
    assert _mounted_under(broken) == []
