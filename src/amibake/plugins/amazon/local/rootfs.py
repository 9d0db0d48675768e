"""amibake-local's root filesystem: bootstrapped with mmdebstrap (cached as a tarball keyed by every
input) or taken from a tarball, extracted into the build's tree, and made ready for EC2 (cloud-init's
datasources and default user).

Every bootable EC2 image gets :data:`DEFAULT_PACKAGES` besides the template's ``packages``: the cloud
kernel, systemd with systemd-boot (the UEFI boot loader, written to the ESP by :mod:`.disk`),
openssh-server, cloud-init (the SSH key and hostname from the instance metadata service on EC2, or from
the NoCloud seed of the boot test) with cloud-guest-utils' growpart (cloud-init grows the root partition
and file system on first boot), ifupdown and isc-dhcp-client (cloud-init renders DHCP on the first
interface, as Debian's bookworm cloud images do), sudo for the default user ``admin`` (the user of
Debian's AMIs), D-Bus with logind (``systemctl``, ``hostnamectl`` and sessions as on a full system) and
systemd-timesyncd set to the Amazon Time Sync Service (169.254.169.123).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from amibake import api, localexec
from amibake.errors import BuildError
from amibake.plugins.amazon.local.config_image import LocalImageOptions

#: the packages of every image (see the module's docstring)
DEFAULT_PACKAGES: tuple[str, ...] = (
    "linux-image-cloud-amd64", "systemd", "systemd-sysv", "systemd-boot", "udev", "openssh-server",
    "cloud-init", "cloud-guest-utils", "e2fsprogs", "ifupdown", "isc-dhcp-client", "netbase", "iproute2",
    "sudo", "ca-certificates", "dbus", "libpam-systemd", "systemd-timesyncd",
)
#: the default user of the image (Debian's AMIs log in as ``admin``)
DEFAULT_USER = "admin"
#: bumped when what a cached tarball holds changes for the same options
CACHE_FORMAT = 1

#: cloud-init's settings for EC2 and the boot test (a file in /etc/cloud/cloud.cfg.d of the tree)
CLOUD_CFG = f"""\
# written by amibake-local: the EC2 datasource, and NoCloud for a seed (amibake's boot test)
datasource_list: [ NoCloud, Ec2, None ]
# the instance's hostname resolves (sudo looks it up)
manage_etc_hosts: true
# glibc's built-in locale: cloud-init's default (en_US.UTF-8) needs the locales package and locale-gen,
# and its locale module fails the cloud-config stage without them
locale: C.UTF-8
system_info:
  default_user:
    name: {DEFAULT_USER}
    lock_passwd: true
    gecos: Debian
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
growpart:
  mode: auto
  devices: ["/"]
resize_rootfs: true
"""
CLOUD_CFG_PATH = "etc/cloud/cloud.cfg.d/01_amibake_local.cfg"
#: systemd-timesyncd's server on EC2: the Amazon Time Sync Service's link-local address
TIMESYNCD_CONF = "# written by amibake-local: the Amazon Time Sync Service\n[Time]\nNTP=169.254.169.123\n"
TIMESYNCD_CONF_PATH = "etc/systemd/timesyncd.conf.d/50-amibake-ec2.conf"


@dataclass(frozen=True)
class RootfsInfo:
    """What the root filesystem was made of (for the content fingerprint)."""

    #: package name -> installed version, as dpkg records it in the tree
    packages: dict[str, str]
    mirror: str
    suite: str
    #: the Debian architecture (``amd64``)
    architecture: str
    #: sha256 of the tarball the tree was extracted from
    source_digest: str


def all_packages(opts: LocalImageOptions) -> list[str]:
    """The default packages and the template's, in that order, each once."""
    out: list[str] = []
    for name in (*DEFAULT_PACKAGES, *opts.packages):
        if name not in out:
            out.append(name)
    return out


def bootstrap_inputs(opts: LocalImageOptions) -> dict[str, object]:
    """Everything that shapes a bootstrapped tarball."""
    return {
        "format": CACHE_FORMAT,
        "suite": opts.suite,
        "mirror": opts.mirror,
        "variant": opts.variant,
        "components": list(opts.components),
        "packages": all_packages(opts),
        "architecture": opts.architecture,
    }


def cache_key(opts: LocalImageOptions) -> str:
    """A hash of :func:`bootstrap_inputs` (the cached tarball's name)."""
    text = json.dumps(bootstrap_inputs(opts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def mmdebstrap_argv(opts: LocalImageOptions, target: Path) -> list[str]:
    """The mmdebstrap command that writes the tarball ``target``."""
    return [
        "mmdebstrap", f"--variant={opts.variant}", f"--architectures={opts.architecture}",
        f"--components={','.join(opts.components)}", f"--include={','.join(all_packages(opts))}",
        "--format=tar", opts.suite, str(target), opts.mirror,
    ]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (two builds, or two test workers, bootstrap one key once)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _stream(ui: api.Ui) -> Callable[[str], None]:
    def out(line: str) -> None:
        if line.strip():
            ui.message(line.rstrip())
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(cache: Path, key: str) -> list[Path]:
    """Delete the half-written tarballs of ``key`` whose build process is gone (a killed bootstrap);
    the caller holds the key's lock. Returns what was deleted."""
    gone = []
    for path in cache.glob(f"rootfs-{key}.*.partial.tar"):
        pid = path.name.removeprefix(f"rootfs-{key}.").removesuffix(".partial.tar")
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def cached_tarball(opts: LocalImageOptions, *, cache_dir: Path, ui: api.Ui,
                   cancel: threading.Event | None) -> tuple[Path, str, bool]:
    """The bootstrapped tarball for ``opts``: (path, sha256, whether it is a temporary file the caller
    removes). A cached one is used when ``bootstrap_cache`` is on; otherwise mmdebstrap runs."""
    cache = Path(opts.bootstrap_cache_dir) if opts.bootstrap_cache_dir else cache_dir
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create the bootstrap cache directory {cache}: "
                         f"{exc.strerror or exc}") from exc
    key = cache_key(opts)
    tarball = cache / f"rootfs-{key}.tar"
    digest_file = cache / f"rootfs-{key}.sha256"
    with _locked(cache / f"rootfs-{key}.lock"):
        remove_stale_partials(cache, key)
        if opts.bootstrap_cache and tarball.is_file() and digest_file.is_file():
            ui.say(f"Using the cached root filesystem {tarball.name} (bootstrap_cache)")
            return tarball, digest_file.read_text().strip(), False
        target = cache / f"rootfs-{key}.{os.getpid()}.partial.tar"
        argv = mmdebstrap_argv(opts, target)
        ui.say(f"Bootstrapping {opts.suite} ({opts.architecture}, {opts.variant}) from {opts.mirror} "
               "with mmdebstrap...")
        try:
            localexec.run(argv, stdout=_stream(ui), stderr=_stream(ui), cancel=cancel, check=True)
        except localexec.LocalCommandError as exc:
            target.unlink(missing_ok=True)
            raise BuildError(f"mmdebstrap failed: {exc}") from exc
        digest = sha256_file(target)
        if not opts.bootstrap_cache:
            return target, digest, True
        digest_file.write_text(digest + "\n")
        os.replace(target, tarball)
        ui.message(f"cached as {tarball}")
        return tarball, digest, False


def running_as_root() -> bool:
    return os.geteuid() == 0


def extract(tarball: Path, tree: Path, *, ui: api.Ui, cancel: threading.Event | None) -> None:
    """Unpack ``tarball`` into ``tree`` (owners, modes and extended attributes kept)."""
    if not running_as_root():
        raise BuildError("amibake-local makes the root filesystem as root (its files' owners, the chroot "
                         "mounts); run the build as root")
    if tree.exists() and any(tree.iterdir()):
        raise BuildError(f"the root filesystem directory {tree} is not empty")
    tree.mkdir(parents=True, exist_ok=True)
    ui.say(f"Extracting the root filesystem into {tree}...")
    try:
        localexec.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tarball),
                       "-C", str(tree)], stderr=_stream(ui), cancel=cancel, check=True)
    except localexec.LocalCommandError as exc:
        raise BuildError(f"cannot extract {tarball}: {exc}") from exc


def prepare_for_ec2(tree: Path) -> None:
    """The EC2 settings of the tree that do not depend on the disk: cloud-init's datasources and default
    user, a neutral hostname (cloud-init sets the instance's), /etc/hosts, /boot/efi (the ESP's mount
    point) and the time server."""
    cfg = tree / CLOUD_CFG_PATH
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(CLOUD_CFG)
    (tree / "etc/hostname").write_text("localhost\n")
    hosts = tree / "etc/hosts"
    if not hosts.exists():
        hosts.write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    (tree / "boot/efi").mkdir(parents=True, exist_ok=True)
    timesyncd = tree / TIMESYNCD_CONF_PATH
    timesyncd.parent.mkdir(parents=True, exist_ok=True)
    timesyncd.write_text(TIMESYNCD_CONF)


def installed_packages(tree: Path) -> dict[str, str]:
    """``name -> version`` of every package dpkg lists as installed in ``tree``."""
    lines: list[str] = []
    try:
        localexec.run(["dpkg-query", f"--admindir={tree / 'var/lib/dpkg'}", "-W",
                       "-f=${db:Status-Abbrev}\t${binary:Package}\t${Version}\n"],
                      stdout=lines.append, check=True)
    except localexec.LocalCommandError as exc:
        raise BuildError(f"cannot list the packages of the root filesystem: {exc}") from exc
    return parse_dpkg_query(lines)


def parse_dpkg_query(lines: list[str]) -> dict[str, str]:
    """The installed (``ii``) packages of ``dpkg-query -f '${db:Status-Abbrev}\\t${binary:Package}\\t
    ${Version}'`` output, the ``:arch`` suffix dropped."""
    out: dict[str, str] = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0].startswith("ii"):
            continue
        out[parts[1].split(":", 1)[0]] = parts[2]
    return dict(sorted(out.items()))


def bootstrap(opts: LocalImageOptions, tree: Path, *, cache_dir: Path, ui: api.Ui,
              cancel: threading.Event | None) -> RootfsInfo:
    """Make the root filesystem in ``tree`` (which must be empty or absent) and return what it holds."""
    if opts.rootfs_tarball:
        source = Path(opts.rootfs_tarball).expanduser()
        if not source.is_file():
            raise BuildError(f"rootfs_tarball {opts.rootfs_tarball}: no such file")
        ui.say(f"Using the root filesystem tarball {opts.rootfs_tarball}")
        digest, temporary = sha256_file(source), False
    else:
        source, digest, temporary = cached_tarball(opts, cache_dir=cache_dir, ui=ui, cancel=cancel)
    try:
        extract(source, tree, ui=ui, cancel=cancel)
    finally:
        if temporary:
            source.unlink(missing_ok=True)
    prepare_for_ec2(tree)
    packages = installed_packages(tree)
    if not packages:
        raise BuildError(f"the root filesystem from {source.name} has no installed packages "
                         "(no dpkg database)")
    ui.message(f"{len(packages)} packages installed")
    return RootfsInfo(packages=packages, mirror="" if opts.rootfs_tarball else opts.mirror,
                      suite="" if opts.rootfs_tarball else opts.suite, architecture=opts.architecture,
                      source_digest=digest)


def remove_tree(tree: Path) -> None:
    """Delete a tree made by :func:`bootstrap` (nothing may be mounted in it)."""
    shutil.rmtree(tree, ignore_errors=True)
