"""amibake-local's image fixtures: ONE minimal bootable Debian root filesystem per test run.

``local_image`` (session) bootstraps the tarball once into a cache under the run's base temp dir (the
one all xdist workers share), through amibake's own bootstrap cache: its lock makes a second worker
wait for the first and then use the cached tarball, so a CI run pays mmdebstrap at most once. A test
extracts its own tree from it (:meth:`LocalImageKit.tree`) or points a template's
``bootstrap_cache_dir`` at :attr:`LocalImageKit.cache_dir` (the options in
:attr:`LocalImageKit.template_options` hit the same cache entry).

Import the fixtures into a test module (``from tests.stack.local_image_fixtures import local_image``).
A missing tool (mmdebstrap, mtools, dosfstools, e2fsprogs, QEMU, OVMF) or not being root skips the test
with the reason, and fails it under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from amibake.plugins.amazon.local import boottest, rootfs
from amibake.plugins.amazon.local.config_image import LocalImageOptions

#: the tools amibake-local's image side runs
TOOLS = ("mmdebstrap", "tar", "dpkg-query", "mkfs.vfat", "mmd", "mcopy", "mkfs.ext4", "dd", "sfdisk",
         "qemu-system-x86_64", "qemu-img", "timeout")
#: the Debian mirror the tests bootstrap from (AMIBAKE_TEST_DEBIAN_MIRROR overrides it)
MIRROR = os.environ.get("AMIBAKE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: the session image's options: one package and one component besides the defaults, so that tests see
#: ``packages`` and ``components`` take effect
SESSION_OPTIONS: dict[str, Any] = {"suite": "bookworm", "mirror": MIRROR, "variant": "minbase",
                                   "components": ["main", "contrib"], "packages": ["less"]}


class RecordingUi:
    """A build UI that keeps its lines (``==> `` for say, 4 spaces for message)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, message: str) -> None:
        self.lines.append(f"==> {message}")

    def message(self, message: str) -> None:
        self.lines.append(f"    {message}")

    def error(self, message: str) -> None:
        self.lines.append(f"!!! {message}")

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def text(self) -> str:
        return "\n".join(self.lines)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_prerequisites(tools: tuple[str, ...] = TOOLS) -> list[str]:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in tools if shutil.which(t, path=path) is None]
    try:
        boottest.find_firmware()
    except Exception:
        missing.append("OVMF (package ovmf)")
    if os.geteuid() != 0:
        missing.append("root (mmdebstrap's root mode and the chroot mounts)")
    return missing


def require_local_image_tools(tools: tuple[str, ...] = TOOLS) -> None:
    """Skip (fail under CI=true) when this host cannot make and boot an amibake-local disk."""
    missing = missing_prerequisites(tools)
    if missing:
        reason = ("amibake-local's image tests need: " + ", ".join(missing)
                  + " (scripts/bootstrap installs them)")
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class LocalImageKit:
    cache_dir: Path
    opts: LocalImageOptions
    tarball: Path
    #: the tarball's sha256
    digest: str
    bootstrap_ui: RecordingUi = field(default_factory=RecordingUi)

    @property
    def template_options(self) -> dict[str, Any]:
        """The builder options that reach this cache entry."""
        return {**SESSION_OPTIONS, "bootstrap_cache_dir": str(self.cache_dir)}

    def tree(self, dest: Path, ui: RecordingUi | None = None) -> rootfs.RootfsInfo:
        """A fresh tree at ``dest`` from the cached tarball (no mmdebstrap run)."""
        return rootfs.bootstrap(self.opts, dest, cache_dir=self.cache_dir, ui=ui or RecordingUi(),
                                cancel=None)


def _shared_root(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def local_image(tmp_path_factory: pytest.TempPathFactory) -> LocalImageKit:
    require_local_image_tools()
    cache = _shared_root(tmp_path_factory) / "amibake-local-cache"
    cache.mkdir(parents=True, exist_ok=True)
    opts = LocalImageOptions.model_validate({**SESSION_OPTIONS, "bootstrap_cache_dir": str(cache)})
    ui = RecordingUi()
    tarball, digest, temporary = rootfs.cached_tarball(opts, cache_dir=cache, ui=ui, cancel=None)
    assert not temporary and tarball.is_file(), ui.text()
    return LocalImageKit(cache_dir=cache, opts=opts, tarball=tarball, digest=digest, bootstrap_ui=ui)
