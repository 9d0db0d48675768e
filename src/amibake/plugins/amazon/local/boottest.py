"""amibake-local's boot test: the disk booted under QEMU (software emulation) before anything is uploaded,
from UEFI through OVMF (``uefi``, ``uefi-preferred``: EC2 boots a uefi-preferred AMI with UEFI where the
instance type has it) or from a BIOS, QEMU's own SeaBIOS (``legacy-bios``).

The disk itself is never written: QEMU boots a throwaway qcow2 overlay backed by it. A NoCloud seed
(a FAT volume labelled ``cidata``, made with mtools) gives cloud-init a temporary SSH key (made in
memory, passed to amibake's SSH communicator, never written to disk) and a hostname; the test waits
for SSH on a forwarded loopback port, runs the checks, powers the machine off and waits for QEMU to
exit. QEMU runs under ``timeout`` so that it cannot outlive the test even when amibake is killed, and
is killed on any failure. The serial console is watched: a firmware that finds nothing to boot, a
kernel panic or an initramfs that cannot find the root fail the test at once, quoting the console
(SeaBIOS writes to its debug port, not the serial one: that port joins the console, so its "No bootable
device" is seen too).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from amibake import api, localexec
from amibake.communicator import ssh
from amibake.communicator.base import DisconnectedError
from amibake.communicator.settings import SSHSettings
from amibake.errors import AmibakeError, BuildError
from amibake.plugins.amazon.local.config_image import LocalImageOptions
from amibake.plugins.amazon.local.rootfs import DEFAULT_USER

log = logging.getLogger("amibake.local.boottest")

#: where distributions put OVMF: (code, vars template) pairs, the 4 MiB build first
OVMF_PAIRS: tuple[tuple[str, str], ...] = (
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
)
#: console lines that mean the disk will not boot
FATAL_CONSOLE = ("No bootable option or device was found", "Kernel panic", "ALERT!  UUID=",
                 "Give root password for maintenance", "You are in emergency mode",
                 "Failed to start systemd-boot", "Boot Failed",
                 # SeaBIOS found nothing to boot; GRUB found no root, no grub.cfg or no kernel
                 "No bootable device", "grub rescue>", "Minimal BASH-like line editing is supported",
                 "error: no such device", "error: you need to load the kernel first")
#: the firmware's line when the disk (the NVMe boot option) has nothing it can load
FIRMWARE_LOAD_FAILED = re.compile(r"BdsDxe: failed to load Boot\d+ \"[^\"]*NVMe")
#: terminal control sequences on the console (the firmware's screen handling)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;=?]*[A-Za-z]")
#: how long power-off may take before QEMU is killed
POWEROFF_SECONDS = 90.0
#: the boot test's hostname (given in the NoCloud seed)
HOSTNAME = "amibake-boot-test"
CONSOLE_TAIL = 25
#: a machine whose console has said nothing for this long, SSH not answering yet, has stalled: QEMU's
#: software emulation once left a guest kernel silent at 0.9 s ("clocksource: Switched to clocksource
#: hpet") for a whole 600 s boot_test_timeout, while the same disk booted in every other run. Such a
#: machine is booted once more, from a fresh overlay, within the same boot_test_timeout. A disk that
#: hangs by itself hangs again and fails; a normal boot's longest silence here is well under this.
STALL_SECONDS = 150.0


def fatal_console_line(line: str) -> bool:
    """Whether a console line says the disk will not boot."""
    return any(marker in line for marker in FATAL_CONSOLE) or bool(FIRMWARE_LOAD_FAILED.search(line))


@dataclass(frozen=True)
class Firmware:
    code: Path
    vars_template: Path


def find_firmware(pairs: Sequence[tuple[str, str]] = OVMF_PAIRS) -> Firmware:
    for code, vars_ in pairs:
        if os.path.isfile(code) and os.path.isfile(vars_):
            return Firmware(Path(code), Path(vars_))
    raise BuildError("the boot test needs OVMF (UEFI firmware for QEMU; package ovmf): none of "
                     + ", ".join(c for c, _ in pairs) + " exists")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_files(public_key: str, instance_id: str, hostname: str = HOSTNAME) -> dict[str, str]:
    """The NoCloud seed's ``meta-data`` and ``user-data``."""
    return {
        "meta-data": f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n",
        "user-data": f"#cloud-config\nssh_authorized_keys:\n  - {public_key.strip()}\n",
    }


def qemu_argv(*, firmware: Firmware | None, vars_file: Path | None, overlay: Path, seed: Path, port: int,
              timeout: float) -> list[str]:
    """QEMU (q35, TCG, OVMF; SeaBIOS when ``firmware`` is None) booting ``overlay`` as an NVMe disk (as
    EC2's Nitro instances attach EBS), the seed as a second disk, user networking with SSH forwarded to
    ``127.0.0.1:port``; the serial console on stdout (with SeaBIOS, its debug port too); no reboot; under
    ``timeout`` so it never outlives the test."""
    # one vCPU and no HPET: with two, the guest kernel finds the emulated TSCs unsynchronised and falls
    # back to the emulated HPET, where a guest once stalled for good (see STALL_SECONDS). One vCPU is one
    # host thread of software emulation, not two (the other core stays free), and booted no slower: 109
    # and 138 s to SSH against 95-200 s for four boots with two, at load 3-6 (3 December, by hand).
    machine = ["qemu-system-x86_64", "-machine", "q35,hpet=off", "-accel", "tcg", "-cpu", "max", "-smp", "1",
               "-m", "1024", "-display", "none"]
    plain = ["-monitor", "none", "-no-reboot", "-nodefaults"]
    if firmware is not None:
        assert vars_file is not None
        boot = [*machine, "-serial", "stdio", *plain,
                "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={firmware.code}",
                "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
                "-drive", f"if=none,id=root,format=qcow2,file={overlay}",
                "-device", "nvme,drive=root,serial=amibakeroot"]
    else:  # the BIOS boots the NVMe disk, not the seed's FAT volume (which has a boot sector of its own)
        boot = [*machine, "-chardev", "stdio,id=console,mux=on", "-serial", "chardev:console", *plain,
                "-device", "isa-debugcon,iobase=0x402,chardev=console",
                "-drive", f"if=none,id=root,format=qcow2,file={overlay}",
                "-device", "nvme,drive=root,serial=amibakeroot,bootindex=0"]
    return [
        "timeout", "--kill-after=5", f"{int(timeout) + 30}", *boot,
        "-drive", f"if=virtio,format=raw,readonly=on,file={seed}",
        "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=net0,romfile=",
    ]


class _Qemu:
    """QEMU running in a thread through :mod:`amibake.localexec`; its console watched."""

    def __init__(self, argv: list[str], timeout: float) -> None:
        self.argv = argv
        self.timeout = timeout
        self.stop = threading.Event()
        self.exited = threading.Event()
        self.fatal = ""
        self.status: int | None = None
        self.error = ""
        self.console: collections.deque[str] = collections.deque(maxlen=CONSOLE_TAIL)
        self.lines = 0
        #: when the console last said anything (monotonic seconds)
        self.last_output = time.monotonic()
        #: set by the stall watch: the machine was stopped because its console went silent
        self.stalled = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="amibake-boottest-qemu")

    def _line(self, line: str) -> None:
        self.last_output = time.monotonic()
        line = ANSI_ESCAPE.sub("", line).rstrip("\r")
        log.debug("console: %s", line)
        if line.strip():
            self.console.append(line)
            self.lines += 1
        if not self.fatal and fatal_console_line(line):
            self.fatal = line.strip()
            self.stop.set()

    def _run(self) -> None:
        try:
            self.status = localexec.run(self.argv, stdout=self._line, stderr=self._line, cancel=self.stop,
                                        timeout=self.timeout)
        except localexec.LocalCommandCancelled:
            self.status = None
        except localexec.LocalCommandError as exc:
            self.error = str(exc)
        finally:
            self.exited.set()
            self.stop.set()

    def start(self) -> None:
        self.thread.start()

    def kill(self) -> None:
        self.stop.set()
        self.thread.join(15)

    def console_tail(self) -> str:
        return "\n".join(f"  {line}" for line in self.console)

    def watch_stall(self, seconds: float, done: threading.Event) -> None:
        """Until ``done`` is set or QEMU exits: stop the machine (``stalled``) once its console has been
        silent for ``seconds``."""
        def watch() -> None:
            while not done.wait(min(1.0, seconds / 4)) and not self.exited.is_set():
                if time.monotonic() - self.last_output >= seconds:
                    log.debug("the console has been silent for %.0fs: the machine has stalled", seconds)
                    self.stalled = True
                    self.stop.set()
                    return

        threading.Thread(target=watch, daemon=True, name="amibake-boottest-stall").start()


class _Stalled(Exception):
    """The machine stalled before SSH answered (see :data:`STALL_SECONDS`)."""


def _make_seed(path: Path, files: dict[str, str], work: Path, cancel: threading.Event | None) -> None:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    try:
        localexec.run(["mkfs.vfat", "-n", "CIDATA", "-C", str(path), "2048"], cancel=cancel, check=True)
        for name, text in files.items():
            src = work / name
            src.write_text(text)
            localexec.run(["mcopy", "-i", str(path), str(src), f"::/{name}"], cancel=cancel, check=True,
                          env=env)
    except localexec.LocalCommandError as exc:
        raise BuildError(f"cannot make the boot test's NoCloud seed: {exc}") from exc


def _did_not_boot(qemu: _Qemu, reason: str) -> BuildError:
    text = f"the disk did not boot under QEMU: {reason}"
    tail = qemu.console_tail()
    if tail:
        text += "\nserial console (last lines):\n" + tail
    return BuildError(text)


#: the boot test's first session: wait until first boot has finished starting (cloud-init's stages
#: included: they may restart sshd, which cut a check's session at load ~9), whatever state it ends in
#: (a failed unit is the checks' business); a machine without systemd goes on at once
SETTLE = "command -v systemctl >/dev/null 2>&1 && systemctl is-system-running --wait >/dev/null 2>&1; true"


def _login(qemu: _Qemu, *, port: int, private_pem: str, deadline: float, timeout: float,
           cancel: threading.Event | None, progress: Callable[[str], None],
           answered: threading.Event | None = None) -> ssh.SSHCommunicator:
    """Log in to the booting machine and open a first session (:data:`SETTLE`, which returns once
    first boot has finished starting); a session cut before it ended (first-boot configuration
    restarting sshd after the login) means logging in again, until ``deadline``. Sets ``answered`` at
    the first login. Raises :class:`_Stalled` when the stall watch stopped the machine, else the boot
    test's :class:`BuildError` when it cannot."""
    while True:
        settings = SSHSettings(host="127.0.0.1", port=port, username=DEFAULT_USER,
                               private_key_pem=private_pem, timeout=max(1.0, deadline - time.monotonic()),
                               handshake_attempts=100000, keepalive_interval=5.0, retry_interval=1.0)
        try:
            comm = ssh.connect(settings, cancel=qemu.stop, log=progress)
        except AmibakeError as exc:
            if cancel is not None and cancel.is_set():
                raise BuildError("the boot test was cancelled") from exc
            if qemu.stalled:
                raise _Stalled() from exc
            if qemu.fatal:
                raise _did_not_boot(qemu, qemu.fatal) from exc
            if qemu.exited.is_set():
                why = qemu.error or f"QEMU exited (status {qemu.status}) before SSH answered"
                raise _did_not_boot(qemu, why) from exc
            raise _did_not_boot(qemu, f"no SSH login within boot_test_timeout ({timeout:g}s): {exc}") from exc
        if answered is not None:
            answered.set()
        try:
            comm.run(SETTLE, timeout=max(1.0, deadline - time.monotonic()))
            return comm
        except DisconnectedError as exc:
            log.debug("the boot test's first SSH session was cut (%s): logging in again", exc)
            comm.close()
            if time.monotonic() >= deadline or qemu.exited.is_set():
                raise _did_not_boot(qemu, f"no SSH session within boot_test_timeout ({timeout:g}s): "
                                          f"{exc}") from exc
        except AmibakeError as exc:
            comm.close()
            raise _did_not_boot(qemu, f"no SSH session within boot_test_timeout ({timeout:g}s): "
                                      f"{exc}") from exc


def _fresh_disks(image: Path, work: Path, firmware: Firmware | None,
                 cancel: threading.Event | None) -> Path | None:
    """A new qcow2 overlay of ``image`` at ``work/overlay.qcow2`` (the disk itself is never written) and,
    with OVMF, a new copy of its variable store (returned)."""
    overlay = work / "overlay.qcow2"
    overlay.unlink(missing_ok=True)
    try:
        localexec.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.resolve()),
                       str(overlay)], cancel=cancel, check=True)
    except localexec.LocalCommandError as exc:
        raise BuildError(f"cannot make the boot test's overlay of {image}: {exc}") from exc
    if firmware is None:
        return None
    vars_file = work / "OVMF_VARS.fd"
    shutil.copyfile(firmware.vars_template, vars_file)
    return vars_file


def boot_test(image: Path, *, opts: LocalImageOptions, commands: list[str], ui: api.Ui,
              cancel: threading.Event | None) -> None:
    """Boot ``image`` (left byte-identical) under QEMU, log in over SSH, run ``commands`` (each must exit
    0) and power off; raises :class:`BuildError` ("...did not boot...") when it does not come up within
    ``boot_test_timeout``, and when a command fails. The firmware follows ``opts.boot_mode``: SeaBIOS for
    ``legacy-bios`` (also how an instance type without UEFI boots a uefi-preferred disk), else OVMF."""
    import asyncssh

    timeout = float(opts.boot_test_timeout)
    deadline = time.monotonic() + timeout
    bios = opts.boot_mode == "legacy-bios"
    firmware = None if bios else find_firmware()
    if shutil.which("qemu-system-x86_64") is None:
        raise BuildError("the boot test needs qemu-system-x86_64 (package qemu-system-x86)")
    work = Path(tempfile.mkdtemp(prefix="amibake-boottest-"))
    qemu: _Qemu | None = None
    comm = None
    watcher_stop = threading.Event()
    try:
        ui.say(f"Boot test: booting {image.name} under QEMU ({'BIOS' if bios else 'UEFI'}, software "
               "emulation)...")
        key = asyncssh.generate_private_key("ssh-ed25519")
        private_pem = key.export_private_key().decode()
        public = key.export_public_key().decode()
        seed = work / "seed.img"
        _make_seed(seed, seed_files(public, f"amibake-{os.urandom(6).hex()}"), work, cancel)
        current: list[_Qemu] = []
        if cancel is not None:
            def watch() -> None:
                while not watcher_stop.wait(0.2):
                    if cancel.is_set():
                        for q in current:
                            q.stop.set()
                        return

            threading.Thread(target=watch, daemon=True, name="amibake-boottest-cancel").start()
        started = time.monotonic()
        last_note = [started]
        for attempt in (1, 2):
            left = deadline - time.monotonic()
            if left <= 0:
                if qemu is None:  # the seed took the whole timeout
                    raise BuildError(f"the boot test ran out of boot_test_timeout ({timeout:g}s) before "
                                     "QEMU started")
                raise _did_not_boot(qemu, f"no SSH login within boot_test_timeout ({timeout:g}s)")
            port = free_port()
            qemu = _Qemu(qemu_argv(firmware=firmware, vars_file=_fresh_disks(image, work, firmware, cancel),
                                   overlay=work / "overlay.qcow2", seed=seed, port=port, timeout=left), left)
            current.append(qemu)
            qemu.start()
            if cancel is not None and cancel.is_set():
                qemu.stop.set()
            answered = threading.Event()
            if attempt == 1:
                qemu.watch_stall(STALL_SECONDS, answered)
            ui.message(f"waiting for SSH on 127.0.0.1:{port} (user {DEFAULT_USER}, timeout {timeout:g}s)")
            last_note[0] = time.monotonic()

            def progress(_msg: str, q: _Qemu = qemu) -> None:
                now = time.monotonic()
                if now - last_note[0] >= 15:
                    last_note[0] = now
                    ui.message(f"still waiting for SSH after {now - started:.0f}s ({q.lines} console lines)")

            try:
                comm = _login(qemu, port=port, private_pem=private_pem, deadline=deadline, timeout=timeout,
                              cancel=cancel, progress=progress, answered=answered)
                break
            except _Stalled:
                answered.set()
                qemu.kill()
                ui.message(f"the machine's console has been silent for {STALL_SECONDS:g}s and SSH has not "
                           "answered: the emulated machine has stalled; booting it once more (software "
                           "emulation can stall a guest early in its boot)")
                log.debug("the stalled boot's console:\n%s", qemu.console_tail())
        assert comm is not None and qemu is not None
        ui.message(f"SSH is up and first boot has finished after {time.monotonic() - started:.0f}s")
        for command in commands:
            ui.message(f"check: {command}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BuildError(f"the boot test ran out of boot_test_timeout ({timeout:g}s) "
                                 f"before {command!r}")
            try:
                status = comm.run(command, stdout=ui.message, stderr=ui.message, timeout=left)
            except AmibakeError as exc:
                raise BuildError(f"the boot test's check {command!r} could not run: {exc}") from exc
            if status != 0:
                raise BuildError(f"the boot test's check {command!r} exited with status {status}")
        ui.message("powering off")
        try:
            comm.run("sudo systemctl poweroff", timeout=30)
        except AmibakeError:
            pass  # the connection drops as the machine goes down
        comm.close()
        comm = None
        if not qemu.exited.wait(POWEROFF_SECONDS):
            ui.message(f"the machine did not power off within {POWEROFF_SECONDS:g}s: QEMU killed")
        ui.say("Boot test passed")
    finally:
        watcher_stop.set()
        if comm is not None:
            try:
                comm.close()
            except Exception:  # the test's outcome is already decided
                log.debug("closing the boot test's SSH connection failed", exc_info=True)
        if qemu is not None:
            qemu.kill()
        shutil.rmtree(work, ignore_errors=True)
