"""amibake-local's provisioning session in the root filesystem tree: amazon-chroot's mounts (its
default ``chroot_mounts``: /proc, /sys, /dev, /dev/pts, binfmt_misc), made and undone by amazon-chroot's
own steps (:func:`steps_chroot.mount_extra`, :func:`steps_chroot.unmount_extra`), and its chroot
communicator.

While the session is open, the tree has a ``/usr/sbin/policy-rc.d`` that forbids starting services (so
that a package installed by a provisioner does not start its daemon on the build host) and, when its
own ``/etc/resolv.conf`` is no usable file, the host's (as amazon-chroot's default ``copy_files``); both
are removed on exit. The mounts are undone deepest first on exit, even on error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from amibake import api, localexec
from amibake.communicator.base import Communicator
from amibake.communicator.chroot import ChrootCommunicator
from amibake.errors import BuildError
from amibake.plugins.amazon import steps_chroot

#: forbids starting services from maintainer scripts (Debian Policy's invoke-rc.d interface)
POLICY_RC_D = "#!/bin/sh\n# written by amibake-local for the provisioning session\nexit 101\n"


class _Config:
    """What amazon-chroot's mount steps read of its config: the default mounts."""

    chroot_mounts: Sequence[Sequence[str]] = ()


class _Journal:
    """amazon-chroot's gateway as its mount steps use it: mounts noted (journaled by the caller)."""

    def __init__(self, on_mount: Callable[[str], None] | None, on_unmount: Callable[[str], None] | None):
        self.note_mount = on_mount or (lambda _path: None)
        self.note_unmounted = on_unmount or (lambda _path: None)


class _Session:
    """amazon-chroot's build state as its mount steps use it, for a tree on this host."""

    def __init__(self, tree: Path, ui: api.Ui, gw: _Journal) -> None:
        self.mount_path = str(tree)
        self.extra_mounts: list[str] = []
        self.ui = ui
        self.gw = gw
        self.cc = _Config()

    def local(self, command: str, *, stdout: Callable[[str], None] | None = None,
              stderr: Callable[[str], None] | None = None) -> int:
        try:
            return localexec.run(["/bin/sh", "-c", command], stdout=stdout, stderr=stderr)
        except localexec.LocalCommandError as exc:
            raise BuildError(str(exc)) from exc


class _Steps:
    """The step context the mount steps take: undo is this session's own exit."""

    def defer(self, _label: str, _fn: Callable[[], Any]) -> None:
        pass

    def pause(self, _point: str) -> None:
        pass


@contextlib.contextmanager
def _tree_files(tree: Path) -> Iterator[None]:
    policy = tree / "usr/sbin/policy-rc.d"
    resolv = tree / "etc/resolv.conf"
    made: list[Path] = []
    saved_link: str | None = None
    try:
        if not policy.exists():
            policy.parent.mkdir(parents=True, exist_ok=True)
            policy.write_text(POLICY_RC_D)
            policy.chmod(0o755)
            made.append(policy)
        if not resolv.is_file() and os.path.isfile("/etc/resolv.conf"):
            if resolv.is_symlink():
                saved_link = os.readlink(resolv)
                resolv.unlink()
            resolv.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile("/etc/resolv.conf", resolv)
            made.append(resolv)
        yield
    finally:
        for path in made:
            path.unlink(missing_ok=True)
        if saved_link is not None:
            os.symlink(saved_link, resolv)


@contextlib.contextmanager
def open_tree(tree: Path, *, ui: api.Ui, on_mount: Callable[[str], None] | None = None,
              on_unmount: Callable[[str], None] | None = None) -> Iterator[Communicator]:
    """Mount amazon-chroot's default ``chroot_mounts`` in ``tree`` and yield a chroot communicator into it;
    ``on_mount``/``on_unmount`` get each mount point as it is mounted/unmounted (the build journals them
    so that ``amibake cleanup`` unmounts what a killed build left)."""
    root = str(tree.resolve())
    if any(ch.isspace() for ch in root):
        raise BuildError(f"the root filesystem directory {root!r} has white space in its path: "
                         "amazon-chroot's mount commands cannot take it")
    session = _Session(Path(root), ui, _Journal(on_mount, on_unmount))
    state = cast(steps_chroot.ChrootState, session)
    try:
        with _tree_files(Path(root)):
            steps_chroot.mount_extra(state, cast(Any, _Steps()))
            yield ChrootCommunicator(root)
    finally:
        steps_chroot.unmount_extra(state)
