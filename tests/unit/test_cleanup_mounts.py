"""``amibake cleanup`` knows a mount point the way the kernel lists it (``/proc/self/mountinfo``)."""

from __future__ import annotations

from pathlib import Path

from amibake.plugins.amazon.cleanup import Leftover, Plan, _mounted

MOUNTINFO = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "98 22 7:3 / /mnt/chroot/xvdf rw,relatime - ext4 /dev/loop3 rw\n"
    "99 98 0:5 / /mnt/chroot/xvdf/proc rw - proc proc rw\n"
    "100 22 7:4 / /mnt/with\\040space rw - ext4 /dev/loop4 rw\n"
)


def test_a_mount_point_is_found_with_the_kernels_escapes(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert _mounted("/mnt/chroot/xvdf", str(info)) and _mounted("/mnt/chroot/xvdf/proc", str(info))
    assert _mounted("/mnt/with space", str(info))
    assert not _mounted("/mnt/chroot", str(info)) and not _mounted("/mnt/chroot/xvdf/sys", str(info))
    assert not _mounted("/mnt/chroot/xvdf", str(tmp_path / "absent"))


def test_mounts_go_first_and_deepest_first() -> None:
    plan = Plan()
    for kind, rid in (("volume", "vol-1"), ("mount", "/mnt/x"), ("instance", "i-1"), ("mount", "/mnt/x/proc"),
                      ("mount", "/mnt/x/dev/pts"), ("mount", "/mnt/x/dev")):
        plan.add(Leftover(kind, "", rid, "run-1", "b", {"journal"}, "", ("", "", "")))
    assert [(r.kind, r.id) for r in plan.ordered()] == [
        ("mount", "/mnt/x/dev/pts"), ("mount", "/mnt/x/proc"), ("mount", "/mnt/x/dev"), ("mount", "/mnt/x"),
        ("instance", "i-1"), ("volume", "vol-1")]
