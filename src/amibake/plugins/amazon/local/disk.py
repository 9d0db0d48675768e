"""amibake-local's bootable disk, made without root-only loop devices.

The raw disk (a sparse file of whole GiB, as EBS snapshots are) holds a GPT written here (protective
MBR, primary and backup headers and entries), partition 1 an EFI system partition (FAT32, made with
``mkfs.vfat`` and filled with mtools: systemd-boot as the removable-media loader ``EFI/BOOT/BOOTX64.EFI``,
and the kernel, initrd and loader entry where systemd's kernel-install puts them, so that kernel updates
on the instance are installed beside them and become the default) and partition 2 the ext4 root, made
with ``mkfs.ext4 -d`` from the tree. Both file systems are made as files and copied in at their offsets with
``dd conv=notrunc,sparse``. The UUIDs are chosen first, so the tree's fstab names the file systems by
UUID and the kernel command line the root.

For ``legacy-bios`` and ``uefi-preferred`` the disk also boots from a BIOS: GRUB for i386-pc, taken from
the build host (``/usr/lib/grub/i386-pc``, package grub-pc-bin), not from the image. Partition 3, a 1 MiB
BIOS boot partition at 1 MiB (the ESP and the root follow it; they stay partitions 1 and 2), holds a
``core.img`` made with ``grub-mkimage`` (the modules to read GPT and ext4, find the root by its UUID and
boot Linux, built in; an embedded configuration that turns the serial console on and sets the prefix to
the root's ``/boot/grub``); the protective MBR's first 440 bytes get ``boot.img`` with the pointer to
core.img, and core.img's first sector the block list of its other sectors, as ``grub-bios-setup`` sets
them for a core.img embedded in a BIOS boot partition (without its optional Reed-Solomon codes, as
``grub-install --no-rs-codes``). Written into the image file here, so no loop device is needed
(``grub-bios-setup`` itself, given the image file and a device map, first resolves the device holding its
``-d`` directory, the build host's root disk, and fails where that cannot be opened, as in a container).
``/boot/grub/grub.cfg`` on the root boots ``/vmlinuz`` and ``/initrd.img`` with the UEFI entry's command
line: Debian's kernel packages point those links at the newest kernel (linux-update-symlinks), so a kernel
installed on the instance is the one booted next. A legacy-bios disk keeps its ESP (EC2 ignores it): the
image's systemd-boot and kernel-install keep the ESP they expect at /boot/efi, and the same snapshot
can be registered for UEFI too.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import struct
import tempfile
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from amibake import api, localexec
from amibake.errors import BuildError
from amibake.plugins.amazon.local.config_image import LocalImageOptions, ec2_architecture

SECTOR = 512
MIB = 1 << 20
GIB = 1 << 30
#: the ESP's size (FAT32 needs at least 65525 clusters; room for a few kernels and initrds)
ESP_BYTES = 256 * MIB
#: where the first partition starts (1 MiB, aligned)
FIRST_BYTE = MIB
#: GPT: 128 entries of 128 bytes (32 sectors) after the header
GPT_ENTRIES = 128
GPT_ENTRY_SIZE = 128
GPT_ENTRY_SECTORS = GPT_ENTRIES * GPT_ENTRY_SIZE // SECTOR
ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
#: the Discoverable Partitions Specification's root partition types
ROOT_TYPES = {"x86_64": uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"),
              "arm64": uuid.UUID("b921b045-1df0-41c3-af44-4c6f280d3fae")}
#: the root device name the AMI registers
ROOT_DEVICE_NAME = "/dev/xvda"
#: free space kept in the root file system besides the files: a fixed part and a share of the data
HEADROOM_BYTES = 512 * MIB
HEADROOM_SHARE = 0.25
#: the kernel command line for EC2 (after ``root=``): the serial console as Debian's cloud images
#: set it, NVMe I/O never timing out on EBS and eth0 naming for ENA, as AWS's documentation asks
EC2_KERNEL_ARGS = ("ro", "console=tty0", "console=ttyS0,115200", "earlyprintk=ttyS0,115200", "consoleblank=0",
                   "nvme_core.io_timeout=4294967295", "net.ifnames=0")
#: the EFI binary of systemd-boot in the tree, by EC2 architecture
SYSTEMD_BOOT = {"x86_64": ("usr/lib/systemd/boot/efi/systemd-bootx64.efi", "BOOTX64.EFI"),
                "arm64": ("usr/lib/systemd/boot/efi/systemd-bootaa64.efi", "BOOTAA64.EFI")}
#: the boot modes whose disk boots from a BIOS too (GRUB for i386-pc)
BIOS_MODES = ("legacy-bios", "uefi-preferred")
#: how the disk boots, by boot mode (for the messages)
FIRMWARE_LABELS = {"uefi": "UEFI", "uefi-preferred": "UEFI and BIOS", "legacy-bios": "BIOS"}
#: the GPT type of the BIOS boot partition, where core.img lives ("Hah!IdontNeedEFI")
BIOS_BOOT_TYPE = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
BIOS_BOOT_BYTES = MIB
#: the build host's GRUB for i386-pc (package grub-pc-bin)
GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")
#: core.img's modules: the BIOS disk, GPT, ext4, the search by file system UUID, the serial console, the
#: normal mode (grub.cfg, menuentry) and the Linux loader (their dependencies are added by grub-mkimage)
GRUB_MODULES = ("biosdisk", "part_gpt", "ext2", "search", "serial", "terminal", "normal", "linux")
#: where grub.cfg lives on the root file system (core.img's prefix)
GRUB_PREFIX = "/boot/grub"
#: boot.img's fields (GRUB's include/grub/i386/pc/boot.h): the BIOS parameter block, kept from the disk's
#: sector; the LBA of core.img's first sector (64 bits); the boot drive (0xFF: the one the BIOS passes);
#: the 2-byte jump over the hard disk check, replaced by two NOPs on a hard disk; the end of the boot code
BOOT_BPB = slice(0x03, 0x5A)
BOOT_KERNEL_SECTOR = 0x5C
BOOT_DRIVE = 0x64
BOOT_DRIVE_CHECK = 0x66
MBR_CODE_BYTES = 0x1B8
#: core.img: diskboot.img's block list (entries of start LBA u64, sectors u16, load segment u16) runs down
#: from the end of its first sector to an all-zero entry; the rest of core.img is loaded at segment 0x820
#: (0x8000 + one sector); its kernel's "no Reed-Solomon length" (grub/offsets.h: 0x14 into the second
#: sector; 0xFFFF marks an image of another version)
BLOCKLIST_ENTRY = 12
CORE_SEGMENT = 0x820
CORE_NO_RS_LENGTH = SECTOR + 0x14
#: the most sectors core.img may have (it is loaded from 0x9000 to below 0x78000)
CORE_MAX_SECTORS = (0x78000 - 0x9000) // SECTOR


@dataclass(frozen=True)
class Layout:
    """Where the partitions lie on the disk (bytes; every start and size a whole MiB)."""

    size_bytes: int
    esp_start: int
    esp_size: int
    root_start: int
    root_size: int
    #: the BIOS boot partition (none: size 0)
    bios_start: int = 0
    bios_size: int = 0

    @property
    def sectors(self) -> int:
        return self.size_bytes // SECTOR


@dataclass(frozen=True)
class DiskInfo:
    """What the disk is, for RegisterImage and the upload."""

    #: the disk's size (a whole number of GiB)
    size_bytes: int
    boot_mode: str
    #: EC2's name (``x86_64``)
    architecture: str
    root_uuid: str
    root_device_name: str
    ena_support: bool
    #: ``simple`` when the image has the Intel 82599 VF driver (SR-IOV), else ""
    sriov: str
    #: the bytes the disk's files take (what the tree held)
    data_bytes: int


@dataclass(frozen=True)
class Ids:
    """The identifiers chosen before the file systems are made."""

    disk: uuid.UUID
    esp_part: uuid.UUID
    root_part: uuid.UUID
    root_fs: uuid.UUID
    #: the FAT volume id (8 hex digits; shown as ``ABCD-1234``)
    esp_volume_id: str
    bios_part: uuid.UUID = field(default_factory=uuid.uuid4)

    @classmethod
    def new(cls) -> Ids:
        return cls(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), secrets.token_hex(4).upper())

    @property
    def esp_fs_uuid(self) -> str:
        return f"{self.esp_volume_id[:4]}-{self.esp_volume_id[4:]}"


def layout(size_gib: int, *, bios: bool = False) -> Layout:
    """The partitions of a ``size_gib`` GiB disk: the ESP at 1 MiB (after the BIOS boot partition there,
    with ``bios``), the root after it up to the last whole MiB before the backup GPT."""
    size = size_gib * GIB
    bios_size = BIOS_BOOT_BYTES if bios else 0
    esp_start = FIRST_BYTE + bios_size
    root_start = esp_start + ESP_BYTES
    backup = (1 + GPT_ENTRY_SECTORS) * SECTOR
    root_size = (size - backup - root_start) // MIB * MIB
    if root_size <= 0:
        raise BuildError(f"a {size_gib} GiB disk has no room for the root partition")
    return Layout(size, esp_start, ESP_BYTES, root_start, root_size, FIRST_BYTE if bios else 0, bios_size)


def tree_bytes(tree: Path) -> int:
    """The bytes the tree's files take in 4 KiB blocks, plus an inode (256 bytes) for each entry."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in (*dirnames, *filenames):
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_nlink > 1 and not os.path.isdir(os.path.join(dirpath, name)):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += 256 + (st.st_size + 4095) // 4096 * 4096
    return total


def minimum_gib(data_bytes: int, *, bios: bool = False) -> int:
    """The smallest whole-GiB disk for ``data_bytes`` of files: the ESP (and the BIOS boot partition, with
    ``bios``), the GPT, the ext4 journal and metadata (about 1/16), and :data:`HEADROOM_BYTES` plus
    :data:`HEADROOM_SHARE` of the data free."""
    need = (FIRST_BYTE + (BIOS_BOOT_BYTES if bios else 0) + ESP_BYTES + MIB
            + data_bytes * (1 + HEADROOM_SHARE + 1 / 16) + HEADROOM_BYTES)
    return max(1, -(-int(need) // GIB))


# ---- GPT ----------------------------------------------------------------------------------------


def _gpt_entry(type_guid: uuid.UUID, part_guid: uuid.UUID, first: int, last: int, name: str) -> bytes:
    encoded = name.encode("utf-16-le")[:72]
    return struct.pack("<16s16sQQQ72s", type_guid.bytes_le, part_guid.bytes_le, first, last, 0, encoded)


def _gpt_header(*, current: int, backup: int, first_usable: int, last_usable: int, disk: uuid.UUID,
                entries_lba: int, entries_crc: int) -> bytes:
    def pack(crc: int) -> bytes:
        return struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, crc, 0, current, backup,
                           first_usable, last_usable, disk.bytes_le, entries_lba, GPT_ENTRIES,
                           GPT_ENTRY_SIZE, entries_crc)

    header = pack(0)
    return pack(zlib.crc32(header)).ljust(SECTOR, b"\0")


def protective_mbr(sectors: int) -> bytes:
    """LBA 0: one partition of type 0xEE covering the disk (UEFI 2.x, 5.2.3)."""
    entry = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                        min(sectors - 1, 0xFFFFFFFF))
    return bytes(446) + entry + bytes(48) + b"\x55\xaa"


def gpt_structures(lay: Layout, ids: Ids, architecture: str) -> tuple[bytes, bytes]:
    """(the bytes at the start of the disk: MBR, header, entries; the bytes at its end: entries, backup
    header)."""
    sectors = lay.sectors
    entries = bytearray(GPT_ENTRIES * GPT_ENTRY_SIZE)
    parts = [
        _gpt_entry(ESP_TYPE, ids.esp_part, lay.esp_start // SECTOR,
                   (lay.esp_start + lay.esp_size) // SECTOR - 1, "EFI System Partition"),
        _gpt_entry(ROOT_TYPES[architecture], ids.root_part, lay.root_start // SECTOR,
                   (lay.root_start + lay.root_size) // SECTOR - 1, "root"),
    ]
    if lay.bios_size:
        parts.append(_gpt_entry(BIOS_BOOT_TYPE, ids.bios_part, lay.bios_start // SECTOR,
                                (lay.bios_start + lay.bios_size) // SECTOR - 1, "BIOS boot partition"))
    for i, part in enumerate(parts):
        entries[i * GPT_ENTRY_SIZE:(i + 1) * GPT_ENTRY_SIZE] = part
    crc = zlib.crc32(bytes(entries))
    first_usable = 2 + GPT_ENTRY_SECTORS
    last_usable = sectors - 2 - GPT_ENTRY_SECTORS
    primary = _gpt_header(current=1, backup=sectors - 1, first_usable=first_usable, last_usable=last_usable,
                          disk=ids.disk, entries_lba=2, entries_crc=crc)
    backup = _gpt_header(current=sectors - 1, backup=1, first_usable=first_usable, last_usable=last_usable,
                         disk=ids.disk, entries_lba=sectors - 1 - GPT_ENTRY_SECTORS, entries_crc=crc)
    return protective_mbr(sectors) + primary + bytes(entries), bytes(entries) + backup


# ---- GRUB for a BIOS ------------------------------------------------------------------------------


def grub_early_config(root_uuid: str) -> str:
    """core.img's embedded configuration: GRUB's console on the serial port too (EC2's console output),
    the root found by its file system UUID, and the prefix (where the normal mode reads grub.cfg) on it."""
    return ("serial --unit=0 --speed=115200\n"
            "terminal_input serial console\n"
            "terminal_output serial console\n"
            f"search --no-floppy --fs-uuid --set=root {root_uuid}\n"
            f"set prefix=($root){GRUB_PREFIX}\n")


def grub_cfg(title: str, root_uuid: str, cmdline: str) -> str:
    """The root's ``/boot/grub/grub.cfg``: no menu; ``/vmlinuz`` and ``/initrd.img`` (Debian's links to the
    newest kernel) with the kernel command line of the UEFI entry."""
    quoted = title.replace("'", "'\\''")
    return ("# written by amibake-local: the BIOS boot of this image (GRUB's core.img is in the BIOS\n"
            "# boot partition). /vmlinuz and /initrd.img are the links Debian's kernel packages point at\n"
            "# the newest kernel, so a kernel installed later boots without this file changing.\n"
            "set default=0\n"
            "set timeout=0\n"
            f"menuentry '{quoted}' {{\n"
            f"\tsearch --no-floppy --fs-uuid --set=root {root_uuid}\n"
            f"\tlinux /vmlinuz {cmdline}\n"
            "\tinitrd /initrd.img\n"
            "}\n")


def _link_target(tree: Path, link: Path) -> Path | None:
    """Where the tree's symlink ``link`` points inside the tree (absolute targets are the tree's)."""
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    return tree / target.lstrip("/") if target.startswith("/") else link.parent / target


def kernel_links(tree: Path) -> tuple[str, str]:
    """``/vmlinuz`` and ``/initrd.img`` in the tree, as Debian's linux-update-symlinks makes them (relative,
    to the newest kernel in /boot) when the tree has no valid ones; returns their targets."""
    kernel, initrd = find_kernel(tree)
    out = []
    for name, newest in (("vmlinuz", kernel), ("initrd.img", initrd)):
        link = tree / name
        target = _link_target(tree, link)
        if target is None or not target.is_file():
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(f"boot/{newest.name}")
        out.append(os.readlink(link))
    return out[0], out[1]


def grub_pc_files(directory: Path = GRUB_PC_DIR) -> Path:
    """``boot.img`` of the build host's GRUB for i386-pc; :class:`BuildError` when GRUB is missing."""
    boot_img = directory / "boot.img"
    if shutil.which("grub-mkimage") is None or not boot_img.is_file():
        raise BuildError(f"a BIOS boot loader needs GRUB for i386-pc on the build host (grub-mkimage and "
                         f"{boot_img}; package grub-pc-bin)")
    return boot_img


def make_core_image(path: Path, root_uuid: str, *, cancel: threading.Event | None,
                    directory: Path = GRUB_PC_DIR) -> bytes:
    """GRUB's core.img for i386-pc (``grub-mkimage``) at ``path``: :data:`GRUB_MODULES` built in and the
    :func:`grub_early_config` embedded; returns its bytes."""
    early = path.with_name("grub-early.cfg")
    early.write_text(grub_early_config(root_uuid))
    _run(["grub-mkimage", "-O", "i386-pc", "-d", str(directory), "-o", str(path), "-c", str(early),
          "-p", GRUB_PREFIX, *GRUB_MODULES], "grub-mkimage (GRUB's core.img)", cancel=cancel)
    return path.read_bytes()


def bios_boot_sectors(first_sector: bytes, boot_img: bytes, core_img: bytes, core_lba: int,
                      room_sectors: int) -> tuple[bytes, bytes]:
    """(the disk's first sector, core.img padded to whole sectors) as ``grub-bios-setup`` writes them for
    a core.img embedded at ``core_lba`` in a BIOS boot partition of ``room_sectors`` sectors: boot.img's
    code in the first 440 bytes of ``first_sector`` (its BIOS parameter block area, disk signature,
    partition table and 0x55AA kept), pointing at ``core_lba``, reading the boot drive from the BIOS and
    with the hard disk check on; core.img's block list loading its other sectors, which follow its first."""
    if len(first_sector) != SECTOR or first_sector[510:] != b"\x55\xaa":
        raise BuildError("the disk's first sector is not an MBR (no 0x55AA signature)")
    if len(boot_img) != SECTOR or boot_img[510:] != b"\x55\xaa":
        raise BuildError(f"GRUB's boot.img is not a {SECTOR}-byte boot sector")
    sectors = -(-len(core_img) // SECTOR)
    if sectors < 2 or len(core_img) < CORE_NO_RS_LENGTH + 2:
        raise BuildError("GRUB's core.img is too small to be one")
    if struct.unpack_from("<H", core_img, CORE_NO_RS_LENGTH)[0] == 0xFFFF:
        raise BuildError("GRUB's core.img does not match its boot.img's version (core.img version mismatch)")
    if sectors > min(room_sectors, CORE_MAX_SECTORS):
        raise BuildError(f"GRUB's core.img ({sectors} sectors) does not fit in the BIOS boot partition "
                         f"({min(room_sectors, CORE_MAX_SECTORS)} sectors)")
    boot = bytearray(boot_img[:MBR_CODE_BYTES])
    boot[BOOT_BPB] = first_sector[BOOT_BPB]
    struct.pack_into("<Q", boot, BOOT_KERNEL_SECTOR, core_lba)
    boot[BOOT_DRIVE] = 0xFF
    boot[BOOT_DRIVE_CHECK:BOOT_DRIVE_CHECK + 2] = b"\x90\x90"
    mbr = bytes(boot) + first_sector[MBR_CODE_BYTES:]
    core = bytearray(core_img.ljust(sectors * SECTOR, b"\0"))
    entry = SECTOR - BLOCKLIST_ENTRY
    while entry > 0 and struct.unpack_from("<H", core, entry + 8)[0]:  # grub-mkimage's default list
        core[entry:entry + BLOCKLIST_ENTRY] = bytes(BLOCKLIST_ENTRY)
        entry -= BLOCKLIST_ENTRY
    first = SECTOR - BLOCKLIST_ENTRY
    struct.pack_into("<QHH", core, first, core_lba + 1, sectors - 1, CORE_SEGMENT)
    core[first - BLOCKLIST_ENTRY:first] = bytes(BLOCKLIST_ENTRY)
    return mbr, bytes(core)


# ---- what the tree gets -------------------------------------------------------------------------


def kernel_command_line(root_uuid: str, extras: list[str] | tuple[str, ...] = ()) -> str:
    return " ".join((f"root=UUID={root_uuid}", *EC2_KERNEL_ARGS, *extras))


def fstab(ids: Ids) -> str:
    return (
        "# written by amibake-local: the file systems by UUID\n"
        f"UUID={ids.root_fs}\t/\text4\trw,discard,errors=remount-ro\t0\t1\n"
        f"UUID={ids.esp_fs_uuid}\t/boot/efi\tvfat\tumask=0077\t0\t2\n"
    )


def loader_conf(token: str) -> str:
    """systemd-boot's loader.conf: no menu; the default is the newest entry of this image's token (entries
    sort newest version first), so a kernel installed later on the instance boots."""
    return f"default {token}-*\ntimeout 0\nconsole-mode keep\neditor no\n"


def entry_token(tree: Path) -> str:
    """kernel-install's entry token for the image: the os-release ``IMAGE_ID`` or ``ID`` (``debian``)."""
    try:
        text = (tree / "etc/os-release").read_text()
    except OSError:
        text = ""
    for key in ("IMAGE_ID", "ID"):
        m = re.search(rf'^{key}="?([A-Za-z0-9._-]+)"?$', text, re.M)
        if m:
            return m.group(1)
    return "linux"


def esp_paths(token: str, version: str) -> tuple[str, str, str]:
    """(kernel, initrd, loader entry) on the ESP, where kernel-install (the Boot Loader Specification
    layout) puts them: ``/<token>/<version>/linux``, ``.../initrd.img-<version>``,
    ``/loader/entries/<token>-<version>.conf``."""
    return (f"/{token}/{version}/linux", f"/{token}/{version}/initrd.img-{version}",
            f"/loader/entries/{token}-{version}.conf")


def loader_entry(title: str, token: str, version: str, options: str) -> str:
    """The Type #1 entry as systemd's kernel-install writes it (so a later ``kernel-install add`` of the same
    kernel on the instance writes the same file, and ``remove`` finds it)."""
    kernel, initrd, _ = esp_paths(token, version)
    return (f"title      {title}\nversion    {version}\nsort-key   {token}\noptions    {options}\n"
            f"linux      {kernel}\ninitrd     {initrd}\n")


def _version_key(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def find_kernel(tree: Path) -> tuple[Path, Path]:
    """The newest ``/boot/vmlinuz-*`` of the tree and its initrd."""
    kernels = sorted((tree / "boot").glob("vmlinuz-*"), key=lambda p: _version_key(p.name))
    if not kernels:
        raise BuildError("the root filesystem has no kernel (/boot/vmlinuz-*): it cannot boot")
    kernel = kernels[-1]
    initrd = tree / "boot" / ("initrd.img-" + kernel.name.removeprefix("vmlinuz-"))
    if not initrd.is_file():
        raise BuildError(f"the root filesystem has no initrd for {kernel.name} (/boot/{initrd.name})")
    return kernel, initrd


def os_title(tree: Path) -> str:
    try:
        text = (tree / "etc/os-release").read_text()
    except OSError:
        return "Linux"
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return m.group(1) if m else "Linux"


def prepare_tree(tree: Path, ids: Ids, cmdline: str) -> None:
    """The disk-dependent files of the tree: fstab, /etc/kernel/cmdline and entry-token (kernel-install
    on the instance writes entries like the build's), an uninitialized machine-id and no SSH host keys
    (each instance makes its own)."""
    (tree / "etc/fstab").write_text(fstab(ids))
    (tree / "etc/kernel").mkdir(parents=True, exist_ok=True)
    (tree / "etc/kernel/cmdline").write_text(cmdline + "\n")
    (tree / "etc/kernel/entry-token").write_text(entry_token(tree) + "\n")
    (tree / "etc/machine-id").write_text("uninitialized\n")
    (tree / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()


def sriov_support(tree: Path) -> str:
    """``simple`` when the tree's kernel has the Intel 82599 VF driver (ixgbevf), else ""."""
    if any((tree / "lib/modules").glob("*/kernel/drivers/net/ethernet/intel/ixgbevf")):
        return "simple"
    return ""


def ena_support(tree: Path) -> bool:
    return any((tree / "lib/modules").glob("*/kernel/drivers/net/ethernet/amazon/ena"))


# ---- making it ----------------------------------------------------------------------------------


def _run(argv: list[str], what: str, *, cancel: threading.Event | None,
         env: dict[str, str] | None = None) -> None:
    try:
        localexec.run(argv, cancel=cancel, check=True, env=env)
    except localexec.LocalCommandError as exc:
        raise BuildError(f"{what} failed: {exc}") from exc


def make_esp(path: Path, ids: Ids, tree: Path, architecture: str, options: str, *,
             cancel: threading.Event | None) -> None:
    """The FAT32 ESP as the file ``path``: systemd-boot, its loader entry, the kernel and initrd."""
    efi, fallback = SYSTEMD_BOOT[architecture]
    loader = tree / efi
    if not loader.is_file():
        raise BuildError(f"the root filesystem has no systemd-boot EFI binary (/{efi}; package systemd-boot)")
    kernel, initrd = find_kernel(tree)
    version = kernel.name.removeprefix("vmlinuz-")
    token = entry_token(tree)
    esp_kernel, esp_initrd, esp_entry = esp_paths(token, version)
    _run(["mkfs.vfat", "-F", "32", "-n", "ESP", "-i", ids.esp_volume_id, "-C", str(path),
          str(ESP_BYTES // 1024)], "mkfs.vfat", cancel=cancel)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    _run(["mmd", "-i", str(path), "::/EFI", "::/EFI/BOOT", "::/EFI/systemd", "::/loader", "::/loader/entries",
          f"::/{token}", f"::/{token}/{version}"], "mmd (the ESP's directories)", cancel=cancel, env=env)
    with tempfile.TemporaryDirectory(prefix="amibake-esp-") as tmp:
        conf = Path(tmp) / "loader.conf"
        conf.write_text(loader_conf(token))
        entry = Path(tmp) / "entry.conf"
        entry.write_text(loader_entry(os_title(tree), token, version, options))
        for src, dst in ((loader, f"/EFI/BOOT/{fallback}"), (loader, f"/EFI/systemd/{loader.name}"),
                         (conf, "/loader/loader.conf"), (entry, esp_entry), (kernel, esp_kernel),
                         (initrd, esp_initrd)):
            _run(["mcopy", "-i", str(path), str(src), f"::{dst}"], f"mcopy {dst}", cancel=cancel, env=env)


def make_disk(tree: Path, image: Path, *, opts: LocalImageOptions, ui: api.Ui,
              cancel: threading.Event | None) -> DiskInfo:
    """Write the bootable raw disk ``image`` (sparse; replaced if it exists) from ``tree`` (nothing may
    be mounted in it). The tree gets its fstab and kernel command line first (and, for a BIOS boot mode,
    its GRUB configuration and kernel links)."""
    arch = ec2_architecture(opts)
    if opts.boot_mode not in FIRMWARE_LABELS:
        raise BuildError(f"boot_mode {opts.boot_mode!r} is not supported by amibake-local: only "
                         + ", ".join(FIRMWARE_LABELS))
    bios = opts.boot_mode in BIOS_MODES
    boot_img = grub_pc_files() if bios else None
    data = tree_bytes(tree)
    minimum = minimum_gib(data, bios=bios)
    size_gib = opts.volume_size or minimum
    if opts.volume_size and opts.volume_size < minimum:
        raise BuildError(f"volume_size {opts.volume_size} GiB is too small: the root filesystem's "
                         f"{data / MIB:.0f} MiB of files need a disk of at least {minimum} GiB")
    lay = layout(size_gib, bios=bios)
    ids = Ids.new()
    cmdline = kernel_command_line(str(ids.root_fs), opts.kernel_command_line)
    ui.say(f"Making a {size_gib} GiB GPT disk ({FIRMWARE_LABELS[opts.boot_mode]}) from {data / MIB:.0f} MiB "
           f"of files: {image.name}")
    prepare_tree(tree, ids, cmdline)
    if bios:
        kernel, initrd = kernel_links(tree)
        (tree / GRUB_PREFIX.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (tree / GRUB_PREFIX.lstrip("/") / "grub.cfg").write_text(grub_cfg(os_title(tree), str(ids.root_fs),
                                                                          cmdline))
    image.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="amibake-disk-", dir=image.parent))
    try:
        esp = work / "esp.img"
        ui.message("EFI system partition: systemd-boot, the kernel and initrd")
        make_esp(esp, ids, tree, arch, cmdline, cancel=cancel)
        core_img = b""
        if bios:
            core_img = make_core_image(work / "core.img", str(ids.root_fs), cancel=cancel)
            ui.message(f"BIOS boot partition: GRUB's core.img ({len(core_img) // 1024} KiB), boot.img in the "
                       f"MBR; {GRUB_PREFIX}/grub.cfg boots /vmlinuz ({kernel}) and /initrd.img ({initrd})")
        root = work / "root.img"
        with root.open("wb") as f:
            f.truncate(lay.root_size)
        ui.message(f"root file system: ext4 UUID {ids.root_fs} ({lay.root_size // MIB} MiB), mkfs.ext4 -d")
        _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", str(ids.root_fs), "-d", str(tree), str(root)],
             "mkfs.ext4", cancel=cancel)
        image.unlink(missing_ok=True)
        head, tail = gpt_structures(lay, ids, arch)
        if boot_img is not None:
            mbr, core = bios_boot_sectors(head[:SECTOR], boot_img.read_bytes(), core_img,
                                          lay.bios_start // SECTOR, lay.bios_size // SECTOR)
            head = mbr + head[SECTOR:]
        with image.open("wb") as f:
            f.truncate(lay.size_bytes)
            f.write(head)
            if boot_img is not None:
                f.seek(lay.bios_start)
                f.write(core)
            f.seek(lay.size_bytes - len(tail))
            f.write(tail)
        for part, start in ((esp, lay.esp_start), (root, lay.root_start)):
            _run(["dd", f"if={part}", f"of={image}", "bs=1M", f"seek={start // MIB}", "conv=notrunc,sparse",
                  "status=none"], f"dd {part.name}", cancel=cancel)
    except BaseException:
        image.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return DiskInfo(size_bytes=lay.size_bytes, boot_mode=opts.boot_mode, architecture=arch,
                    root_uuid=str(ids.root_fs),
                    root_device_name=ROOT_DEVICE_NAME, ena_support=ena_support(tree),
                    sriov=sriov_support(tree), data_bytes=data)
