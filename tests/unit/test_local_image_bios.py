"""amibake-local's BIOS boot (boot_mode legacy-bios and uefi-preferred): the BIOS boot partition in the GPT,
GRUB's boot.img in the protective MBR and core.img in that partition with the pointers grub-bios-setup
sets, grub.cfg and the kernel links on the root; checked on small files. With the build host's GRUB
(grub-pc-bin) a whole 1 GiB disk is made from a tiny stand-in tree and read back with GRUB's own
drivers (grub-fstest); the boot itself under SeaBIOS is tests/stack/test_local_image.py's."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import threading
import time
import uuid
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from amibake.config.base import CheckContext, decode
from amibake.errors import BuildError
from amibake.plugins.amazon.local import boottest, disk
from amibake.plugins.amazon.local.builder import register_params
from amibake.plugins.amazon.local.config_image import LocalImageOptions
from tests.stack.local_image_fixtures import RecordingUi

SECTOR = disk.SECTOR
VERSION = "6.1.0-10-cloud-amd64"


def _require(*tools: str) -> None:
    """Skip without the tool (fail under CI=true: scripts/bootstrap installs it)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in tools if shutil.which(t, path=path) is None]
    if not (disk.GRUB_PC_DIR / "boot.img").is_file():
        missing.append(f"{disk.GRUB_PC_DIR}/boot.img (grub-pc-bin)")
    if missing:
        reason = "needs " + ", ".join(missing) + " (scripts/bootstrap installs them)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)


# ---- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["uefi", "legacy-bios", "uefi-preferred"])
def test_boot_modes_are_accepted(tmp_path: Path, mode: str) -> None:
    ctx = CheckContext(template_dir=tmp_path, key_path="source.amibake-local.x")
    _config, problems, _ = decode(LocalImageOptions, {"boot_mode": mode}, ctx)
    assert problems == []


def test_unknown_boot_mode_is_refused_with_packers_values(tmp_path: Path) -> None:
    ctx = CheckContext(template_dir=tmp_path, key_path="source.amibake-local.x")
    _config, problems, _ = decode(LocalImageOptions, {"boot_mode": "bios"}, ctx)
    assert [str(p) for p in problems] == [
        "source.amibake-local.x.boot_mode: invalid boot mode \"bios\", valid values are either 'uefi', "
        "'legacy-bios' or 'uefi-preferred'"]


def test_register_image_gets_the_disks_boot_mode() -> None:
    d = disk.DiskInfo(size_bytes=disk.GIB, boot_mode="uefi-preferred", architecture="x86_64", root_uuid="u",
                      root_device_name="/dev/xvda", ena_support=True, sriov="", data_bytes=0)
    lc = SimpleNamespace(ami_description="", ena_support=None, sriov_support=False, model_fields_set=set(),
                         imds_support="", tpm_support="")
    st = SimpleNamespace(lc=lc, disk=d, uploaded=SimpleNamespace(volume_size=1), snapshot_id="snap-1",
                         render=lambda s: s)
    assert register_params(st, "ami")["BootMode"] == "uefi-preferred"  # type: ignore[arg-type]


# ---- the layout and the GPT ----------------------------------------------------------------------


@pytest.mark.parametrize("size_gib", [1, 2, 7, 16384])
def test_bios_layout(size_gib: int) -> None:
    uefi = disk.layout(size_gib)
    lay = disk.layout(size_gib, bios=True)
    assert (uefi.bios_start, uefi.bios_size) == (0, 0)
    assert (lay.bios_start, lay.bios_size) == (disk.MIB, disk.BIOS_BOOT_BYTES)
    assert lay.esp_start == lay.bios_start + lay.bios_size and lay.esp_size == disk.ESP_BYTES
    assert lay.root_start == lay.esp_start + lay.esp_size
    assert lay.root_start + lay.root_size == uefi.root_start + uefi.root_size  # the same end
    assert lay.root_size == uefi.root_size - disk.BIOS_BOOT_BYTES
    assert disk.minimum_gib(0, bios=True) >= disk.minimum_gib(0)


def test_gpt_with_a_bios_boot_partition() -> None:
    lay = disk.layout(2, bios=True)
    ids = disk.Ids.new()
    head, tail = disk.gpt_structures(lay, ids, "x86_64")
    entries = head[2 * SECTOR:]
    assert zlib.crc32(entries) == struct.unpack_from("<I", head, SECTOR + 88)[0]
    assert tail[:-SECTOR] == entries
    parts = [struct.unpack_from("<16s16sQQQ72s", entries, i * disk.GPT_ENTRY_SIZE) for i in range(4)]
    # the ESP and the root keep their numbers (1, 2); the BIOS boot partition is 3, first on the disk
    assert [uuid.UUID(bytes_le=p[0]) for p in parts[:3]] == [disk.ESP_TYPE, disk.ROOT_TYPES["x86_64"],
                                                              disk.BIOS_BOOT_TYPE]
    assert str(disk.BIOS_BOOT_TYPE).upper() == "21686148-6449-6E6F-744E-656564454649"
    assert uuid.UUID(bytes_le=parts[2][1]) == ids.bios_part
    assert (parts[2][2], parts[2][3]) == (2048, 4095)
    assert parts[2][5].decode("utf-16-le").rstrip("\0") == "BIOS boot partition"
    assert (parts[0][2], parts[1][2]) == (4096, 4096 + disk.ESP_BYTES // SECTOR)
    assert parts[3] == struct.unpack_from("<16s16sQQQ72s", bytes(disk.GPT_ENTRY_SIZE))


# ---- boot.img and core.img -----------------------------------------------------------------------


def _fake_boot_img() -> bytes:
    img = bytearray(range(256)) * 2
    img[0:3] = b"\xeb\x63\x90"
    img[disk.BOOT_DRIVE_CHECK:disk.BOOT_DRIVE_CHECK + 2] = b"\xeb\x05"
    img[510:512] = b"\x55\xaa"
    return bytes(img)


def _fake_core_img(sectors: float) -> bytes:
    """grub-mkimage's layout: diskboot.img's default block list (sector 2, the rest) at its end."""
    size = int(sectors * SECTOR)
    core = bytearray(os.urandom(size))
    core[SECTOR - 2 * disk.BLOCKLIST_ENTRY:SECTOR] = bytes(2 * disk.BLOCKLIST_ENTRY)
    struct.pack_into("<QHH", core, SECTOR - disk.BLOCKLIST_ENTRY, 2, -(-size // SECTOR) - 1, 0x820)
    struct.pack_into("<H", core, disk.CORE_NO_RS_LENGTH, 0x75B)
    return bytes(core)


def test_boot_img_and_core_img_placement() -> None:
    lay = disk.layout(1, bios=True)
    head, _ = disk.gpt_structures(lay, disk.Ids.new(), "x86_64")
    pmbr = head[:SECTOR]
    boot_img, core_img = _fake_boot_img(), _fake_core_img(282.7)
    lba = lay.bios_start // SECTOR
    mbr, core = disk.bios_boot_sectors(pmbr, boot_img, core_img, lba, lay.bios_size // SECTOR)
    assert len(mbr) == SECTOR
    # boot code in the first 440 bytes: boot.img's, with the BPB area kept from the disk and 3 fields set
    assert mbr[:3] == boot_img[:3] and mbr[disk.BOOT_BPB] == pmbr[disk.BOOT_BPB] == bytes(0x57)
    assert struct.unpack_from("<Q", mbr, 0x5C)[0] == lba == 2048
    assert mbr[0x64] == 0xFF and mbr[0x66:0x68] == b"\x90\x90"
    assert mbr[0x5A:0x5C] == boot_img[0x5A:0x5C] and mbr[0x68:440] == boot_img[0x68:440]
    # the disk signature, the protective partition entry and the signature are intact
    assert mbr[440:] == pmbr[440:] and mbr[446 + 4] == 0xEE and mbr[510:] == b"\x55\xaa"
    # core.img: whole sectors, its first sector's block list loads sectors lba+1.. at 0x820, then ends
    assert len(core) == 283 * SECTOR and core[:len(core_img)][SECTOR:] == core_img[SECTOR:]
    assert core[len(core_img):] == bytes(len(core) - len(core_img))
    first = SECTOR - disk.BLOCKLIST_ENTRY
    assert struct.unpack_from("<QHH", core, first) == (lba + 1, 282, 0x820)
    assert core[first - disk.BLOCKLIST_ENTRY:first] == bytes(disk.BLOCKLIST_ENTRY)
    assert core[:first - disk.BLOCKLIST_ENTRY] == core_img[:first - disk.BLOCKLIST_ENTRY]


def test_placement_refuses_what_cannot_boot() -> None:
    pmbr = disk.protective_mbr(2 * disk.GIB // SECTOR)
    boot_img = _fake_boot_img()
    with pytest.raises(BuildError, match=r"core.img \(11 sectors\) does not fit in the BIOS boot partition "
                                         r"\(10 sectors\)"):
        disk.bios_boot_sectors(pmbr, boot_img, _fake_core_img(11), 2048, 10)
    with pytest.raises(BuildError, match=r"\(888 sectors\)"):
        disk.bios_boot_sectors(pmbr, boot_img, _fake_core_img(889), 2048, 2048)
    mismatch = bytearray(_fake_core_img(3))
    struct.pack_into("<H", mismatch, disk.CORE_NO_RS_LENGTH, 0xFFFF)
    with pytest.raises(BuildError, match="version mismatch"):
        disk.bios_boot_sectors(pmbr, boot_img, bytes(mismatch), 2048, 2048)
    with pytest.raises(BuildError, match="not an MBR"):
        disk.bios_boot_sectors(bytes(SECTOR), boot_img, _fake_core_img(3), 2048, 2048)
    with pytest.raises(BuildError, match=r"boot\.img is not"):
        disk.bios_boot_sectors(pmbr, boot_img[:-1], _fake_core_img(3), 2048, 2048)


# ---- the tree ------------------------------------------------------------------------------------


def test_grub_configuration() -> None:
    cfg = disk.grub_cfg("Debian's 12", "u-1", "root=UUID=u-1 ro console=ttyS0,115200")
    lines = [line for line in cfg.splitlines() if not line.startswith("#")]
    assert lines == ["set default=0", "set timeout=0", "menuentry 'Debian'\\''s 12' {",
                     "\tsearch --no-floppy --fs-uuid --set=root u-1",
                     "\tlinux /vmlinuz root=UUID=u-1 ro console=ttyS0,115200", "\tinitrd /initrd.img", "}"]
    early = disk.grub_early_config("u-1").splitlines()
    assert early[0] == "serial --unit=0 --speed=115200"
    assert early[-2:] == ["search --no-floppy --fs-uuid --set=root u-1", "set prefix=($root)/boot/grub"]


def _kernel_tree(tree: Path) -> None:
    (tree / "boot").mkdir(parents=True)
    for v in ("6.1.0-9-cloud-amd64", VERSION):
        (tree / f"boot/vmlinuz-{v}").write_text("kernel " + v)
        (tree / f"boot/initrd.img-{v}").write_text("initrd " + v)


def test_kernel_links(tmp_path: Path) -> None:
    _kernel_tree(tmp_path)
    # none: made as linux-update-symlinks makes them, to the newest kernel
    assert disk.kernel_links(tmp_path) == (f"boot/vmlinuz-{VERSION}", f"boot/initrd.img-{VERSION}")
    assert (tmp_path / "vmlinuz").read_text() == "kernel " + VERSION
    # valid ones are the distribution's: kept (an absolute target is the tree's)
    (tmp_path / "vmlinuz").unlink()
    (tmp_path / "vmlinuz").symlink_to("/boot/vmlinuz-6.1.0-9-cloud-amd64")
    assert disk.kernel_links(tmp_path)[0] == "/boot/vmlinuz-6.1.0-9-cloud-amd64"
    # a broken one is replaced
    (tmp_path / "initrd.img").unlink()
    (tmp_path / "initrd.img").symlink_to("boot/initrd.img-5.10")
    assert disk.kernel_links(tmp_path)[1] == f"boot/initrd.img-{VERSION}"


def test_missing_grub_is_named(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"needs GRUB for i386-pc on the build host .*package grub-pc-bin"):
        disk.grub_pc_files(tmp_path)


# ---- the boot test's BIOS ------------------------------------------------------------------------


def test_qemu_command_for_a_bios(tmp_path: Path) -> None:
    argv = boottest.qemu_argv(firmware=None, vars_file=None, overlay=tmp_path / "o.qcow2",
                              seed=tmp_path / "s", port=2222, timeout=100)
    joined = " ".join(argv)
    assert "pflash" not in joined and "-bios" not in argv  # QEMU's own SeaBIOS
    assert "nvme,drive=root,serial=amibakeroot,bootindex=0" in argv  # not the seed's FAT boot sector
    assert "isa-debugcon,iobase=0x402,chardev=console" in argv and "chardev:console" in argv
    assert "stdio,id=console,mux=on" in argv and "-no-reboot" in argv
    fw = boottest.Firmware(Path("/fw/CODE.fd"), Path("/fw/VARS.fd"))
    uefi = boottest.qemu_argv(firmware=fw, vars_file=tmp_path / "v.fd", overlay=tmp_path / "o.qcow2",
                              seed=tmp_path / "s", port=2222, timeout=100)
    assert "nvme,drive=root,serial=amibakeroot" in uefi and "isa-debugcon" not in " ".join(uefi)
    assert uefi[uefi.index("-serial") + 1] == "stdio"


@pytest.mark.parametrize("line", [
    "No bootable device.  Retrying in 60 seconds.",
    "error: no such device: 0b5e2d0c-1c8e-4a53-9d7c-f8b1a4e0c3d2.",
    "grub rescue> ",
    "   Minimal BASH-like line editing is supported. For the first word, TAB",
    "error: you need to load the kernel first.",
])
def test_console_watch_sees_a_bios_that_cannot_boot(line: str) -> None:
    assert boottest.fatal_console_line(line)


def test_console_watch_passes_a_bios_boot() -> None:
    for line in ("Booting from Hard Disk...", "Booting from 0000:7c00", "  Booting `Debian GNU/Linux 12'",
                 "Boot failed: not a bootable disk"):
        assert not boottest.fatal_console_line(line)


# ---- a whole disk, with the build host's GRUB ----------------------------------------------------


def _stand_in_tree(tree: Path) -> None:
    _kernel_tree(tree)
    efi = tree / disk.SYSTEMD_BOOT["x86_64"][0]
    efi.parent.mkdir(parents=True)
    efi.write_bytes(b"MZ stand-in systemd-boot")
    (tree / "etc/ssh").mkdir(parents=True)
    (tree / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')
    (tree / "var/lib/dbus").mkdir(parents=True)
    (tree / "vmlinuz").symlink_to(f"boot/vmlinuz-{VERSION}")
    (tree / "initrd.img").symlink_to(f"boot/initrd.img-{VERSION}")


def _grub_fstest(image: Path, *args: str) -> str:
    return subprocess.run(["grub-fstest", str(image), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_make_disk_with_the_hosts_grub(tmp_path: Path) -> None:
    """A uefi-preferred disk (a legacy-bios one is the same disk, registered with the other mode)."""
    mode = "uefi-preferred"
    _require("grub-mkimage", "grub-fstest", "mkfs.vfat", "mcopy", "mkfs.ext4", "sfdisk")
    tree = tmp_path / "tree"
    _stand_in_tree(tree)
    image = tmp_path / "disk.raw"
    ui = RecordingUi()
    opts = LocalImageOptions.model_validate({"boot_mode": mode, "volume_size": 1,
                                             "kernel_command_line": ["amibake.test=1"]})
    d = disk.make_disk(tree, image, opts=opts, ui=ui, cancel=None)
    assert d.boot_mode == mode and d.size_bytes == disk.GIB == image.stat().st_size
    assert "Making a 1 GiB GPT disk (UEFI and BIOS)" in ui.text() and "GRUB's core.img" in ui.text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw", "tree"]  # the work files are gone
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    parts = table["partitions"]
    assert [p["type"] for p in parts] == [str(t).upper() for t in (disk.ESP_TYPE, disk.ROOT_TYPES["x86_64"],
                                                                    disk.BIOS_BOOT_TYPE)]
    assert (parts[2]["start"], parts[2]["size"]) == (2048, 2048) and parts[0]["start"] == 4096
    verify = subprocess.run(["sfdisk", "--verify", str(image)], capture_output=True, check=False)
    assert verify.returncode == 0, verify
    raw = image.read_bytes()[:parts[0]["start"] * SECTOR]
    boot_img = (disk.GRUB_PC_DIR / "boot.img").read_bytes()
    mbr = raw[:SECTOR]
    assert mbr[0x68:440] == boot_img[0x68:440] and mbr[:3] == boot_img[:3]
    assert mbr[440:] == disk.protective_mbr(d.size_bytes // SECTOR)[440:]
    # boot.img points at core.img's first sector, whose block list covers the rest of core.img, which
    # is grub-mkimage's image byte for byte outside the block list (made again with the same UUID)
    core_lba = struct.unpack_from("<Q", mbr, 0x5C)[0]
    assert core_lba == 2048
    start, count, segment = struct.unpack_from("<QHH", raw, core_lba * SECTOR + SECTOR - 12)
    assert (start, segment) == (core_lba + 1, 0x820)
    again = disk.make_core_image(tmp_path / "core.img", d.root_uuid, cancel=None)
    assert count == -(-len(again) // SECTOR) - 1
    placed = raw[core_lba * SECTOR:(start + count) * SECTOR]
    assert placed[SECTOR:len(again)] == again[SECTOR:] and placed[:SECTOR - 24] == again[:SECTOR - 24]
    assert raw[(start + count) * SECTOR:(core_lba + 2048) * SECTOR].count(0) == (2047 - count) * SECTOR
    # GRUB's own drivers read the root: grub.cfg, and /vmlinuz through its link
    cfg = _grub_fstest(image, "cat", "(loop0,gpt2)/boot/grub/grub.cfg")
    assert cfg == disk.grub_cfg("Debian GNU/Linux 12 (bookworm)", d.root_uuid,
                                disk.kernel_command_line(d.root_uuid, ["amibake.test=1"]))
    assert _grub_fstest(image, "cat", "(loop0,gpt2)/vmlinuz") == "kernel " + VERSION
    assert {"vmlinuz", "initrd.img", "boot/"} <= set(_grub_fstest(image, "ls", "(loop0,gpt2)/").split())
    # the ESP is there for both modes (systemd-boot's, for UEFI and kernel-install)
    assert "loader" in _grub_fstest(image, "ls", "(loop0,gpt1)/")


def test_a_legacy_bios_disk_is_said_and_cleaned_up_on_failure(tmp_path: Path) -> None:
    _require("grub-mkimage")
    tree = tmp_path / "tree"
    _kernel_tree(tree)
    (tree / "etc").mkdir()
    ui = RecordingUi()
    opts = LocalImageOptions.model_validate({"boot_mode": "legacy-bios", "volume_size": 1})
    with pytest.raises(BuildError, match="no systemd-boot EFI binary"):  # the ESP is kept for legacy-bios
        disk.make_disk(tree, tmp_path / "d.raw", opts=opts, ui=ui, cancel=None)
    assert "Making a 1 GiB GPT disk (BIOS)" in ui.text()
    assert "linux /vmlinuz root=UUID=" in (tree / "boot/grub/grub.cfg").read_text()
    assert os.readlink(tree / "vmlinuz") == f"boot/vmlinuz-{VERSION}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]


# ---- the boot test's first login -----------------------------------------------------------------


class _FakeComm:
    def __init__(self, cut: bool) -> None:
        self.cut = cut
        self.closed = False

    def run(self, command: str, timeout: float) -> int:
        assert command == boottest.SETTLE
        if self.cut:
            raise boottest.DisconnectedError("SSH connection lost: SSH connection closed")
        return 0

    def close(self) -> None:
        self.closed = True


def _fake_qemu() -> SimpleNamespace:
    return SimpleNamespace(stop=threading.Event(), exited=threading.Event(), fatal="", error="", status=None,
                           stalled=False, console_tail=lambda: "  login:")


def _login(monkeypatch: pytest.MonkeyPatch, comms: list[_FakeComm], qemu: SimpleNamespace,
           seconds: float = 30) -> object:
    made: list[_FakeComm] = []

    def connect(settings: object, **_kw: object) -> _FakeComm:
        if not comms:
            raise boottest.AmibakeError("timeout waiting for SSH")
        made.append(comms.pop(0))
        return made[-1]

    monkeypatch.setattr(boottest.ssh, "connect", connect)
    return boottest._login(qemu, port=1, private_pem="", deadline=time.monotonic() + seconds,  # type: ignore[arg-type]
                           timeout=seconds, cancel=None, progress=lambda _m: None)


def test_a_first_session_cut_by_an_sshd_restart_logs_in_again(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _FakeComm(cut=True), _FakeComm(cut=False)
    assert _login(monkeypatch, [first, second], _fake_qemu()) is second
    assert first.closed and not second.closed


def test_sessions_cut_until_the_deadline_fail_the_boot_test(monkeypatch: pytest.MonkeyPatch) -> None:
    cut = [_FakeComm(cut=True) for _ in range(3)]
    with pytest.raises(BuildError, match=r"did not boot under QEMU: no SSH session within boot_test_timeout"):
        _login(monkeypatch, list(cut), _fake_qemu(), seconds=0)
    assert [c.closed for c in cut] == [True, False, False]  # one login: the deadline had passed
    qemu = _fake_qemu()
    qemu.fatal = "No bootable device."
    with pytest.raises(BuildError, match=r"did not boot under QEMU: No bootable device\.\nserial console"):
        _login(monkeypatch, [], qemu)
