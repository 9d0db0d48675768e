"""amibake-local's image side, the pure parts and the bootstrap cache (with a stand-in mmdebstrap on
PATH that records its arguments): option checks, cache keys, the GPT and partition arithmetic, the
files the tree gets, the boot test's seed, QEMU command and console watch."""

from __future__ import annotations

import json
import os
import struct
import sys
import tarfile
import threading
import uuid
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.config.base import CheckContext, decode
from amibake.errors import BuildError
from amibake.plugins.amazon.local import boottest, disk, rootfs
from amibake.plugins.amazon.local.config_image import LocalImageOptions, image_problems
from tests.stack.local_image_fixtures import RecordingUi


def _ctx(tmp_path: Path) -> CheckContext:
    return CheckContext(template_dir=tmp_path, key_path="source.amibake-local.x")


def _problems(tmp_path: Path, raw: dict[str, object]) -> list[str]:
    _config, problems, _ = decode(LocalImageOptions, raw, _ctx(tmp_path))
    return [str(p) for p in problems]


# ---- options ------------------------------------------------------------------------------------


def test_defaults_are_valid(tmp_path: Path) -> None:
    assert _problems(tmp_path, {}) == []
    o = LocalImageOptions.model_validate({})
    assert (o.suite, o.variant, o.components, o.architecture, o.boot_mode) == (
        "bookworm", "minbase", ["main"], "amd64", "uefi")
    assert o.boot_test and o.bootstrap_cache and o.boot_test_timeout == 600.0


@pytest.mark.parametrize(("raw", "key", "text"), [
    ({"suite": "jammy"}, "suite", "not supported by amibake yet"),
    ({"mirror": "deb.debian.org"}, "mirror", "URL"),
    ({"variant": "tiny"}, "variant", "variant must be one of"),
    ({"components": ["main", "non free"]}, "components", "component names"),
    ({"packages": ["less", "Bad Name"]}, "packages", "'Bad Name'"),
    ({"architecture": "i386"}, "architecture", "must be one of"),
    ({"volume_size": -1}, "volume_size", "positive"),
    ({"kernel_command_line": ["quiet splash"]}, "kernel_command_line", "one argument"),
    ({"boot_test_timeout": "0s"}, "boot_test_timeout", "positive"),
    ({"boot_mode": "bios"}, "boot_mode", "invalid boot mode \"bios\", valid values are either 'uefi', "),
])
def test_bad_options_are_refused_by_name(tmp_path: Path, raw: dict[str, object], key: str, text: str) -> None:
    problems = _problems(tmp_path, raw)
    assert len(problems) == 1, problems
    assert f"source.amibake-local.x.{key}" in problems[0] and text in problems[0]


def test_rootfs_tarball_excludes_the_bootstrap_options(tmp_path: Path) -> None:
    tar = tmp_path / "root.tar"
    tar.write_bytes(b"")
    problems = _problems(tmp_path, {"rootfs_tarball": str(tar), "suite": "bookworm", "packages": ["less"],
                                    "mirror": "http://example.test/debian"})
    assert len(problems) == 2
    assert any(".packages: packages cannot be used with rootfs_tarball" in p for p in problems)
    assert any(".mirror: mirror cannot be used with rootfs_tarball" in p for p in problems)
    missing = _problems(tmp_path, {"rootfs_tarball": str(tmp_path / "nope.tar")})
    assert missing == [f"source.amibake-local.x.rootfs_tarball: stat {tmp_path / 'nope.tar'}: "
                       "no such file or directory"]
    assert LocalImageOptions.model_validate({"rootfs_tarball": str(tar)}).local_inputs() == [
        ("rootfs_tarball", str(tar))]


def test_arm64_needs_binfmt_and_is_not_done_yet(tmp_path: Path) -> None:
    o = LocalImageOptions.model_validate({"architecture": "arm64"})
    none = image_problems(o, _ctx(tmp_path), binfmt_dir=str(tmp_path))
    assert len(none) == 1 and "binfmt_misc" in str(none[0]) and "qemu-aarch64" in str(none[0])
    (tmp_path / "qemu-aarch64").write_text("enabled\n")
    present = image_problems(o, _ctx(tmp_path), binfmt_dir=str(tmp_path))
    assert len(present) == 1 and "not supported by amibake yet" in str(present[0])


# ---- the bootstrap ------------------------------------------------------------------------------


def test_cache_key_covers_every_input() -> None:
    base = LocalImageOptions.model_validate({})
    keys = {rootfs.cache_key(base)}
    for change in ({"suite": "trixie"}, {"mirror": "http://example.test/debian"}, {"variant": "apt"},
                   {"components": ["main", "contrib"]}, {"packages": ["less"]}, {"architecture": "arm64"}):
        keys.add(rootfs.cache_key(LocalImageOptions.model_validate(change)))
    assert len(keys) == 7
    # not part of the key: where the cache is, whether it is used, the disk and the boot test
    same = LocalImageOptions.model_validate({"bootstrap_cache_dir": "/x", "volume_size": 9,
                                             "boot_test": False, "packages": ["systemd"]})
    assert rootfs.cache_key(same) == rootfs.cache_key(base)
    assert rootfs.all_packages(same) == list(rootfs.DEFAULT_PACKAGES)


def test_mmdebstrap_command() -> None:
    o = LocalImageOptions.model_validate({"variant": "apt", "components": ["main", "contrib"],
                                          "packages": ["less"], "mirror": "http://m.test/debian"})
    argv = rootfs.mmdebstrap_argv(o, Path("/c/x.tar"))
    assert argv == ["mmdebstrap", "--variant=apt", "--architectures=amd64", "--components=main,contrib",
                    "--include=" + ",".join((*rootfs.DEFAULT_PACKAGES, "less")), "--format=tar", "bookworm",
                    "/c/x.tar", "http://m.test/debian"]


def test_dpkg_query_parsing() -> None:
    lines = ["ii \tbash\t5.2.15-2+b7", "rc \told\t1.0", "ii \tlibc6:amd64\t2.36-9", "garbage"]
    assert rootfs.parse_dpkg_query(lines) == {"bash": "5.2.15-2+b7", "libc6": "2.36-9"}


FAKE_MMDEBSTRAP = """\
import json, os, sys, tarfile, io, time
with open(os.environ["FAKE_MMDEBSTRAP_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
time.sleep(float(os.environ.get("FAKE_MMDEBSTRAP_SLEEP", "0")))
if os.environ.get("FAKE_MMDEBSTRAP_FAIL"):
    print("E: cannot reach the mirror", file=sys.stderr)
    sys.exit(1)
target = sys.argv[-2]
status = ("Package: hello\\nStatus: install ok installed\\nVersion: 2.10-3\\nArchitecture: amd64\\n"
          "Maintainer: x\\nDescription: y\\n")
with tarfile.open(target, "w") as tar:
    for name, text in (("./var/lib/dpkg/status", status),
                       ("./etc/os-release", "VERSION_CODENAME=bookworm\\n")):
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
print("I: success")
"""


@pytest.fixture
def fake_mmdebstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "mmdebstrap"
    tool.write_text(f"#!{sys.executable}\n" + FAKE_MMDEBSTRAP)
    tool.chmod(0o755)
    log = tmp_path / "mmdebstrap.log"
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MMDEBSTRAP_LOG", str(log))
    # the stand-in tarball has no owners to keep: unit tests extract it as any user
    monkeypatch.setattr(rootfs, "running_as_root", lambda: True)
    return log


def _runs(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.effect("builder/amibake-local", "variant", "bootstrap_cache", "bootstrap_cache_dir")
def test_bootstrap_cache(tmp_path: Path, fake_mmdebstrap: Path) -> None:
    cache = tmp_path / "cache"
    o = LocalImageOptions.model_validate({"variant": "required", "bootstrap_cache_dir": str(cache)})
    ui = RecordingUi()
    info = rootfs.bootstrap(o, tmp_path / "t1", cache_dir=tmp_path / "builder-cache", ui=ui, cancel=None)
    runs = _runs(fake_mmdebstrap)
    assert len(runs) == 1 and "--variant=required" in runs[0]
    assert info.packages == {"hello": "2.10-3"} and info.suite == "bookworm"
    tarball = cache / f"rootfs-{rootfs.cache_key(o)}.tar"
    assert tarball.is_file() and not (tmp_path / "builder-cache").exists()
    assert info.source_digest == rootfs.sha256_file(tarball)
    assert "Bootstrapping bookworm (amd64, required)" in ui.text()
    # the EC2 settings of the tree
    assert (tmp_path / "t1" / rootfs.CLOUD_CFG_PATH).read_text() == rootfs.CLOUD_CFG
    assert (tmp_path / "t1/boot/efi").is_dir()
    # a second build: the cache, no mmdebstrap run, the tarball untouched
    mtime = tarball.stat().st_mtime_ns
    ui2 = RecordingUi()
    again = rootfs.bootstrap(o, tmp_path / "t2", cache_dir=tmp_path / "builder-cache", ui=ui2, cancel=None)
    assert len(_runs(fake_mmdebstrap)) == 1
    assert "Using the cached root filesystem" in ui2.text()
    assert again.source_digest == info.source_digest and tarball.stat().st_mtime_ns == mtime
    # bootstrap_cache = false: mmdebstrap runs every time and nothing is kept
    off = LocalImageOptions.model_validate({"variant": "required", "bootstrap_cache": False})
    rootfs.bootstrap(off, tmp_path / "t3", cache_dir=tmp_path / "c2", ui=RecordingUi(), cancel=None)
    rootfs.bootstrap(off, tmp_path / "t4", cache_dir=tmp_path / "c2", ui=RecordingUi(), cancel=None)
    assert len(_runs(fake_mmdebstrap)) == 3
    assert [p.name for p in (tmp_path / "c2").iterdir() if p.suffix == ".tar"] == []


@pytest.mark.effect("builder/amibake-local", "rootfs_tarball")
def test_rootfs_tarball_is_the_source(tmp_path: Path, fake_mmdebstrap: Path) -> None:
    made = LocalImageOptions.model_validate({"bootstrap_cache_dir": str(tmp_path / "made")})
    tarball, digest, _ = rootfs.cached_tarball(made, cache_dir=tmp_path, ui=RecordingUi(), cancel=None)
    assert len(_runs(fake_mmdebstrap)) == 1
    opts = LocalImageOptions.model_validate({"rootfs_tarball": str(tarball)})
    ui = RecordingUi()
    info = rootfs.bootstrap(opts, tmp_path / "tree", cache_dir=tmp_path / "unused-cache", ui=ui, cancel=None)
    assert len(_runs(fake_mmdebstrap)) == 1  # the tarball, not mmdebstrap
    assert f"Using the root filesystem tarball {tarball}" in ui.text()
    assert info.source_digest == digest == rootfs.sha256_file(tarball)
    assert info.packages == {"hello": "2.10-3"} and info.mirror == "" and info.suite == ""
    assert not (tmp_path / "unused-cache").exists()
    assert (tmp_path / "tree" / rootfs.CLOUD_CFG_PATH).read_text() == rootfs.CLOUD_CFG
    with pytest.raises(BuildError, match=r"rootfs_tarball .*: no such file"):
        rootfs.bootstrap(LocalImageOptions.model_validate({"rootfs_tarball": str(tmp_path / "gone.tar")}),
                         tmp_path / "t2", cache_dir=tmp_path, ui=ui, cancel=None)


def test_concurrent_builds_bootstrap_once(tmp_path: Path, fake_mmdebstrap: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two builds (or two test workers) with the same options: one runs mmdebstrap, the other waits on
    the cache entry's lock and uses the tarball."""
    monkeypatch.setenv("FAKE_MMDEBSTRAP_SLEEP", "1")
    o = LocalImageOptions.model_validate({})
    results: list[tuple[Path, str, bool]] = []
    uis = [RecordingUi(), RecordingUi()]

    def build(ui: RecordingUi) -> None:
        results.append(rootfs.cached_tarball(o, cache_dir=tmp_path / "c", ui=ui, cancel=None))

    threads = [threading.Thread(target=build, args=(ui,)) for ui in uis]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(_runs(fake_mmdebstrap)) == 1
    assert len(results) == 2 and results[0] == results[1]
    assert sorted("Using the cached root filesystem" in ui.text() for ui in uis) == [False, True]


def test_stale_partial_tarballs_are_removed(tmp_path: Path, fake_mmdebstrap: Path) -> None:
    o = LocalImageOptions.model_validate({})
    key = rootfs.cache_key(o)
    cache = tmp_path / "c"
    cache.mkdir()
    stale = cache / f"rootfs-{key}.999999999.partial.tar"  # above any pid_max: no such process
    live = cache / f"rootfs-{key}.{os.getppid()}.partial.tar"  # another build, still running
    other = cache / "rootfs-otherkey.999999999.partial.tar"
    for p in (stale, live, other):
        p.write_bytes(b"half")
    rootfs.cached_tarball(o, cache_dir=cache, ui=RecordingUi(), cancel=None)
    assert not stale.exists() and live.exists() and other.exists()


def test_bootstrap_failure(tmp_path: Path, fake_mmdebstrap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MMDEBSTRAP_FAIL", "1")
    with pytest.raises(BuildError, match=r"(?s)mmdebstrap failed.*cannot reach the mirror"):
        rootfs.bootstrap(LocalImageOptions.model_validate({}), tmp_path / "t", cache_dir=tmp_path / "c",
                         ui=RecordingUi(), cancel=None)
    assert [p.name for p in (tmp_path / "c").iterdir() if p.name.endswith(".tar")] == []


def test_extract_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rootfs, "running_as_root", lambda: False)
    with pytest.raises(BuildError, match="as root"):
        rootfs.extract(tmp_path / "r.tar", tmp_path / "t", ui=RecordingUi(), cancel=None)


def test_tree_must_be_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rootfs, "running_as_root", lambda: True)
    (tmp_path / "t").mkdir()
    (tmp_path / "t/x").write_text("")
    with tarfile.open(tmp_path / "r.tar", "w"):
        pass
    with pytest.raises(BuildError, match="is not empty"):
        rootfs.extract(tmp_path / "r.tar", tmp_path / "t", ui=RecordingUi(), cancel=None)


# ---- the disk -----------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=16384))
def test_layout(size_gib: int) -> None:
    lay = disk.layout(size_gib)
    assert lay.size_bytes == size_gib * disk.GIB
    assert lay.esp_start == disk.MIB and lay.esp_size == disk.ESP_BYTES
    assert lay.root_start == lay.esp_start + lay.esp_size
    for value in (lay.esp_start, lay.esp_size, lay.root_start, lay.root_size):
        assert value % disk.MIB == 0
    last_usable = lay.sectors - 2 - disk.GPT_ENTRY_SECTORS
    assert (lay.root_start + lay.root_size) // disk.SECTOR - 1 <= last_usable
    assert lay.size_bytes - (lay.root_start + lay.root_size) < disk.MIB + 33 * disk.SECTOR


@given(st.integers(min_value=0, max_value=64 * disk.GIB))
def test_minimum_size(data: int) -> None:
    gib = disk.minimum_gib(data)
    assert gib * disk.GIB >= data * (1 + disk.HEADROOM_SHARE) + disk.HEADROOM_BYTES + disk.ESP_BYTES
    fixed = disk.HEADROOM_BYTES + disk.ESP_BYTES + 3 * disk.MIB
    assert (gib - 1) * disk.GIB < data * (1 + disk.HEADROOM_SHARE + 1 / 16) + fixed
    assert disk.minimum_gib(data + disk.GIB) >= gib


def test_gpt_structures() -> None:
    lay = disk.layout(3)
    ids = disk.Ids.new()
    head, tail = disk.gpt_structures(lay, ids, "x86_64")
    sectors = lay.sectors
    assert len(head) == (2 + disk.GPT_ENTRY_SECTORS) * disk.SECTOR
    assert len(tail) == (1 + disk.GPT_ENTRY_SECTORS) * disk.SECTOR
    # protective MBR
    assert head[510:512] == b"\x55\xaa" and head[446 + 4] == 0xEE
    assert struct.unpack_from("<II", head, 446 + 8) == (1, sectors - 1)

    def header(raw: bytes) -> tuple:
        fields = struct.unpack_from("<8sIIIIQQQQ16sQIII", raw)
        copy = bytearray(raw[:92])
        copy[16:20] = bytes(4)
        assert zlib.crc32(bytes(copy)) == fields[3]
        return fields

    primary = header(head[512:1024])
    backup = header(tail[-512:])
    entries = head[1024:]
    assert primary[0] == b"EFI PART" and primary[5:7] == (1, sectors - 1) and backup[5:7] == (sectors - 1, 1)
    assert primary[10] == 2 and backup[10] == sectors - 1 - disk.GPT_ENTRY_SECTORS
    assert zlib.crc32(entries) == primary[13] == backup[13] and tail[:-512] == entries
    assert uuid.UUID(bytes_le=primary[9]) == ids.disk
    esp = struct.unpack_from("<16s16sQQ", entries, 0)
    root = struct.unpack_from("<16s16sQQ", entries, disk.GPT_ENTRY_SIZE)
    assert uuid.UUID(bytes_le=esp[0]) == disk.ESP_TYPE and uuid.UUID(bytes_le=esp[1]) == ids.esp_part
    assert uuid.UUID(bytes_le=root[0]) == disk.ROOT_TYPES["x86_64"]
    assert (esp[2], esp[3]) == (2048, 2048 + disk.ESP_BYTES // 512 - 1)
    assert root[2] == esp[3] + 1 and root[3] <= primary[8]
    assert entries[2 * disk.GPT_ENTRY_SIZE:] == bytes(len(entries) - 2 * disk.GPT_ENTRY_SIZE)


def test_files_for_the_tree(tmp_path: Path) -> None:
    ids = disk.Ids(uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3), uuid.UUID(int=4), "AB12CD34")
    assert disk.fstab(ids).splitlines()[1:] == [
        "UUID=00000000-0000-0000-0000-000000000004\t/\text4\trw,discard,errors=remount-ro\t0\t1",
        "UUID=AB12-CD34\t/boot/efi\tvfat\tumask=0077\t0\t2",
    ]
    line = disk.kernel_command_line("u-1", ["quiet"])
    assert line == ("root=UUID=u-1 ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 "
                    "consoleblank=0 nvme_core.io_timeout=4294967295 net.ifnames=0 quiet")
    assert disk.loader_entry("Debian 12", "debian", "6.1.0-9-cloud-amd64", "root=x") == (
        "title      Debian 12\nversion    6.1.0-9-cloud-amd64\nsort-key   debian\noptions    root=x\n"
        "linux      /debian/6.1.0-9-cloud-amd64/linux\n"
        "initrd     /debian/6.1.0-9-cloud-amd64/initrd.img-6.1.0-9-cloud-amd64\n")
    assert disk.esp_paths("debian", "6.1")[2] == "/loader/entries/debian-6.1.conf"
    assert disk.loader_conf("debian").splitlines()[:2] == ["default debian-*", "timeout 0"]
    tree = tmp_path / "tree"
    (tree / "etc/ssh").mkdir(parents=True)
    assert disk.entry_token(tree) == "linux"
    (tree / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')
    assert disk.entry_token(tree) == "debian" and disk.os_title(tree) == "Debian GNU/Linux 12 (bookworm)"
    (tree / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (tree / "etc/ssh/sshd_config").write_text("")
    disk.prepare_tree(tree, ids, line)
    assert sorted(p.name for p in (tree / "etc/ssh").iterdir()) == ["sshd_config"]
    assert (tree / "etc/kernel/cmdline").read_text() == line + "\n"
    assert (tree / "etc/kernel/entry-token").read_text() == "debian\n"
    assert (tree / "etc/machine-id").read_text() == "uninitialized\n"
    assert (tree / "etc/fstab").read_text() == disk.fstab(ids)


def test_find_kernel(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    with pytest.raises(BuildError, match="no kernel"):
        disk.find_kernel(tmp_path)
    for v in ("6.1.0-9-cloud-amd64", "6.1.0-10-cloud-amd64"):
        (boot / f"vmlinuz-{v}").write_text("k")
    with pytest.raises(BuildError, match=r"no initrd for vmlinuz-6\.1\.0-10-cloud-amd64"):
        disk.find_kernel(tmp_path)
    (boot / "initrd.img-6.1.0-10-cloud-amd64").write_text("i")
    assert [p.name for p in disk.find_kernel(tmp_path)] == ["vmlinuz-6.1.0-10-cloud-amd64",
                                                            "initrd.img-6.1.0-10-cloud-amd64"]


def test_tree_bytes_counts_hard_links_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 5000)
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "d").mkdir()
    dir_size = -(-os.lstat(tmp_path / "d").st_size // 4096) * 4096
    assert disk.tree_bytes(tmp_path) == (256 + 2 * 4096) + (256 + dir_size)
    assert not disk.ena_support(tmp_path) and disk.sriov_support(tmp_path) == ""


def test_make_disk_refuses_a_small_volume_and_a_tree_without_boot_loader(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "big").write_bytes(b"")
    with (tree / "big").open("wb") as f:
        f.truncate(2 * disk.GIB)
    small = LocalImageOptions.model_validate({"volume_size": 2})
    with pytest.raises(BuildError, match="volume_size 2 GiB is too small"):
        disk.make_disk(tree, tmp_path / "d.raw", opts=small, ui=RecordingUi(), cancel=None)
    (tree / "big").unlink()
    with pytest.raises(BuildError, match="no systemd-boot EFI binary"):
        disk.make_disk(tree, tmp_path / "d.raw", opts=LocalImageOptions.model_validate({}), ui=RecordingUi(),
                       cancel=None)
    assert not (tmp_path / "d.raw").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]


# ---- the boot test ------------------------------------------------------------------------------


def test_seed_and_qemu_command(tmp_path: Path) -> None:
    files = boottest.seed_files("ssh-ed25519 AAAA test\n", "i-1")
    assert files["meta-data"] == f"instance-id: i-1\nlocal-hostname: {boottest.HOSTNAME}\n"
    assert files["user-data"] == "#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA test\n"
    fw = boottest.Firmware(Path("/fw/CODE.fd"), Path("/fw/VARS.fd"))
    argv = boottest.qemu_argv(firmware=fw, vars_file=tmp_path / "v.fd", overlay=tmp_path / "o.qcow2",
                              seed=tmp_path / "s.img", port=2222, timeout=100)
    assert argv[:3] == ["timeout", "--kill-after=5", "130"] and argv[3] == "qemu-system-x86_64"
    joined = " ".join(argv)
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd" in joined
    assert f"file={tmp_path / 'o.qcow2'}" in joined and "format=qcow2" in joined
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined and "-no-reboot" in argv and "tcg" in argv


def test_console_watch() -> None:
    assert boottest.fatal_console_line('BdsDxe: failed to load Boot0001 "UEFI QEMU NVMe Ctrl x 1" from P')
    assert not boottest.fatal_console_line('BdsDxe: failed to load Boot0002 "UEFI Non-Block Boot Device"')
    assert boottest.fatal_console_line("[    2.1] Kernel panic - not syncing: VFS: Unable to mount root")
    assert boottest.fatal_console_line("ALERT!  UUID=1234 does not exist.  Dropping to a shell!")
    assert not boottest.fatal_console_line("[  OK  ] Started ssh.service - OpenBSD Secure Shell server.")
    assert boottest.ANSI_ESCAPE.sub("", "\x1b[2J\x1b[01;01H\x1b[=3hBdsDxe") == "BdsDxe"


def test_missing_firmware(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="needs OVMF"):
        boottest.find_firmware(((str(tmp_path / "c.fd"), str(tmp_path / "v.fd")),))
    (tmp_path / "c.fd").write_text("")
    (tmp_path / "v.fd").write_text("")
    fw = boottest.find_firmware(((str(tmp_path / "c.fd"), str(tmp_path / "v.fd")),))
    assert fw.code == tmp_path / "c.fd"
