"""amibake-local's boot test when the emulated machine stalls: a console silent for STALL_SECONDS before
SSH answers means one more boot from a fresh overlay, within the same boot_test_timeout, and never a
third. QEMU is replaced by a small script that behaves as the stalled or the talking machine (the
seed, overlay and timeout wrapper are the real ones); the real boots are test_local_image.py's."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon.local import boottest
from amibake.plugins.amazon.local.config_image import LocalImageOptions
from tests.stack.local_image_fixtures import RecordingUi, require_local_image_tools

pytestmark = pytest.mark.stack

#: the fake machine: records each start, writes to the overlay it was given ($1, as a guest writes to its
#: disk), then talks or stays silent
FAKE = """#!/bin/sh
echo start >> "{starts}"
echo "written by the guest" >> "$1"
n=$(wc -l < "{starts}")
echo "SeaBIOS (fake machine, start $n)"
case "{behaviour}:$n" in
  silent:*|silent-once:1) exec sleep 600 ;;
esac
while :; do echo "still booting"; sleep 0.3; done
"""


def _boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          behaviour: str) -> tuple[BuildError, list[str], str]:
    require_local_image_tools(("mkfs.vfat", "mcopy", "qemu-img", "timeout"))
    starts = tmp_path / "starts"
    script = tmp_path / "fake-qemu"
    script.write_text(FAKE.format(starts=starts, behaviour=behaviour))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    overlays: list[bytes] = []

    def fake_argv(*, overlay: Path, timeout: float, **_: object) -> list[str]:
        overlays.append(overlay.read_bytes())
        return ["timeout", "--kill-after=5", f"{int(timeout) + 30}", str(script), str(overlay)]

    monkeypatch.setattr(boottest, "qemu_argv", fake_argv)
    monkeypatch.setattr(boottest, "STALL_SECONDS", 2.0)
    image = tmp_path / "disk.raw"
    with image.open("wb") as f:
        f.truncate(1 << 20)
    opts = LocalImageOptions.model_validate({"boot_mode": "legacy-bios", "boot_test_timeout": "10s"})
    ui = RecordingUi()
    started = time.monotonic()
    with pytest.raises(BuildError) as err:
        boottest.boot_test(image, opts=opts, commands=["true"], ui=ui, cancel=None)
    # the one boot_test_timeout holds over both boots (and the machine is gone after)
    assert time.monotonic() - started < 30
    assert subprocess.run(["pgrep", "-f", str(script)], capture_output=True, check=False).returncode == 1
    assert len(overlays) == len(starts.read_text().splitlines())
    # every boot gets a fresh overlay: nothing the stalled machine wrote
    assert all(o == overlays[0] and b"written by the guest" not in o for o in overlays)
    assert image.read_bytes() == bytes(1 << 20)  # the disk itself untouched
    return err.value, starts.read_text().splitlines(), ui.text()


def test_a_stalled_machine_is_booted_once_more_from_a_fresh_overlay(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    err, starts, text = _boot(tmp_path, monkeypatch, "silent-once")
    assert len(starts) == 2
    assert "the emulated machine has stalled; booting it once more" in text
    assert text.count("waiting for SSH on 127.0.0.1:") == 2
    # the second machine talks but never answers SSH: the test fails on the one timeout, quoting it
    assert "did not boot" in str(err) and "boot_test_timeout (10s)" in str(err)
    assert "still booting" in str(err)  # the console quoted is the second machine's (the first was silent)


def test_a_machine_that_hangs_again_fails_after_two_boots(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    err, starts, text = _boot(tmp_path, monkeypatch, "silent")
    assert len(starts) == 2  # never a third
    assert text.count("booting it once more") == 1
    assert "did not boot" in str(err) and "boot_test_timeout (10s)" in str(err)


def test_a_talking_machine_is_not_booted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err, starts, text = _boot(tmp_path, monkeypatch, "talking")
    assert len(starts) == 1
    assert "booting it once more" not in text
    assert "did not boot" in str(err) and "boot_test_timeout (10s)" in str(err)


def test_a_seed_that_takes_the_whole_timeout_fails_by_name(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    require_local_image_tools(("mkfs.vfat", "mcopy", "qemu-img", "timeout"))
    monkeypatch.setattr(boottest, "_make_seed", lambda *_a, **_k: time.sleep(1.5))
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(1 << 20))
    opts = LocalImageOptions.model_validate({"boot_mode": "legacy-bios", "boot_test_timeout": "1s"})
    with pytest.raises(BuildError, match=r"ran out of boot_test_timeout \(1s\) before QEMU started"):
        boottest.boot_test(image, opts=opts, commands=["true"], ui=RecordingUi(), cancel=None)
