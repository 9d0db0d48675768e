"""The WinRM communicator against the WS-Management emulation (tests/winrm_emulation.py): commands with
streamed output and exit codes, winrmcp-style uploads, downloads, the connect wait, TLS and proxies;
and the Windows password's decryption (steps_password)."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from amibake.communicator.base import DisconnectedError
from amibake.communicator.winrm import (
    COMMAND_LIMIT,
    OPERATIONS_PER_SHELL,
    WinRMCommunicator,
    connect,
    powershell,
)
from amibake.communicator.winrm_settings import WinRMSettings, winrm_settings
from amibake.errors import CommunicatorError
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.steps_password import decrypt_password
from tests.stackkit import free_port
from tests.winrm_emulation import WinRMEmulator, decode_script

PASSWORD = "Emu-Pa55word"


@pytest.fixture
def emu() -> Iterator[WinRMEmulator]:
    with WinRMEmulator("Administrator", PASSWORD) as e:
        yield e


def settings(emu: WinRMEmulator, **over: Any) -> WinRMSettings:
    base: dict[str, Any] = dict(host="127.0.0.1", port=emu.port, username="Administrator", password=PASSWORD,
                                timeout=20.0)
    base.update(over)
    return WinRMSettings(**base)


@pytest.fixture
def comm(emu: WinRMEmulator) -> Iterator[WinRMCommunicator]:
    c = connect(settings(emu))
    yield c
    c.close()


def ebs_config(**over: Any) -> EbsConfig:
    base: dict[str, Any] = dict(region="us-east-1", source_ami="ami-1", instance_type="t2.micro",
                                ami_name="winrm-unit", communicator="winrm", winrm_username="Administrator",
                                winrm_password=PASSWORD)
    base.update(over)
    return EbsConfig.model_validate(base)


def test_connect_checks_like_packer_and_shows_the_check_output(emu: WinRMEmulator) -> None:
    shown: list[str] = []
    c = connect(settings(emu), log=shown.append)
    c.close()
    # winrm.New's test shell (Create, Delete), then the echo check in a shell of its own
    assert emu.actions[:2] == ["Create", "Delete"]
    assert emu.scripts() == ["if (Test-Path variable:global:ProgressPreference){$ProgressPreference="
                             "'SilentlyContinue'}; echo \"WinRM connected.\""]
    assert emu.command_lines()[0].startswith("powershell.exe -EncodedCommand ")
    assert shown == ["WinRM connected."]


def test_run_streams_lines_and_returns_the_exit_code(emu: WinRMEmulator, comm: WinRMCommunicator) -> None:
    emu.respond(r"^dir C:\\$", stdout="one\r\ntwo\r\nno newline", stderr="warn 1\r\n", exit_code=7)
    out: list[str] = []
    err: list[str] = []
    before = len(emu.actions)
    assert comm.run("dir C:\\", stdout=out.append, stderr=err.append) == 7
    assert out == ["one", "two", "no newline"] and err == ["warn 1"]
    # one shell per command; one Receive per line the emulator streams, then Done
    receives = ["Receive"] * 5
    assert emu.actions[before:] == ["Create", "Command", *receives, "Signal", "Delete"]
    assert emu.commands[-1].command == "dir C:\\"


def test_powershell_encodes_utf16le() -> None:
    line = powershell("Write-Output 'héllo'")
    assert line.startswith("powershell.exe -EncodedCommand ")
    assert base64.b64decode(line.split()[-1]).decode("utf-16-le") == "Write-Output 'héllo'"
    assert decode_script(line) == "Write-Output 'héllo'"


def test_upload_is_winrmcp_chunks_then_a_restore(emu: WinRMEmulator, comm: WinRMCommunicator) -> None:
    data = os.urandom(200_000)
    before = len(emu.commands)
    comm.upload("C:/Program Files/app/data.bin", data)
    assert emu.files["C:\\Program Files\\app\\data.bin"] == data
    sent = emu.commands[before:]
    echoes = [c for c in sent if c.command.startswith("echo ")]
    temp = re.fullmatch(r'echo [A-Za-z0-9+/=]+ >> "(%TEMP%\\winrmcp-[0-9a-f-]{36}\.tmp)"', echoes[0].command)
    assert temp is not None
    # winrmcp's chunk keeps each command line within cmd.exe's 8191 characters
    assert all(len(c.command) <= COMMAND_LIMIT + 11 for c in echoes)
    assert all(temp.group(1) in c.command for c in echoes)
    assert b"".join(base64.b64decode(c.command.split()[1]) for c in echoes) == data
    # at most 15 echo commands per shell, as winrmcp
    per_shell: dict[str, int] = {}
    for c in echoes:
        per_shell[c.shell_id] = per_shell.get(c.shell_id, 0) + 1
    assert max(per_shell.values()) == OPERATIONS_PER_SHELL and len(per_shell) == -(-len(echoes) // 15)
    restore, cleanup = sent[len(echoes):]
    assert restore.script is not None
    assert '::GetFullPath("C:\\Program Files\\app\\data.bin".Trim' in restore.script
    assert cleanup.script is not None and "Remove-Item $tmp_file_path" in cleanup.script
    assert not emu.temp_files()


def test_upload_of_an_empty_file_and_into_a_directory(emu: WinRMEmulator, comm: WinRMCommunicator,
                                                      tmp_path: Path) -> None:
    comm.upload("C:\\empty.txt", b"")
    assert emu.files["C:\\empty.txt"] == b""
    src = tmp_path / "notes.txt"
    src.write_bytes(b"abc")
    comm.upload("C:\\Users\\", src)
    assert emu.files["C:\\Users\\notes.txt"] == b"abc"
    # the restore script exits 1 when the destination is a directory
    emu.directories.add("C:\\Dir")
    with pytest.raises(CommunicatorError, match=r"to C:\\Dir: restore operation returned code=1"):
        comm.upload("C:\\Dir", b"x")


def test_upload_dir_follows_the_trailing_slash_rule(emu: WinRMEmulator, comm: WinRMCommunicator,
                                                    tmp_path: Path) -> None:
    tree = tmp_path / "site"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"A")
    (tree / "sub" / "b.txt").write_bytes(b"B")
    (tree / "skip.log").write_bytes(b"no")
    comm.upload_dir("C:\\inetpub", str(tree), exclude=["*.log"])
    comm.upload_dir("C:\\flat", str(tree) + "/")
    assert {k: v for k, v in emu.files.items() if k.startswith("C:\\inetpub")} == {
        "C:\\inetpub\\site\\a.txt": b"A", "C:\\inetpub\\site\\sub\\b.txt": b"B"}
    assert emu.files["C:\\flat\\sub\\b.txt"] == b"B" and emu.files["C:\\flat\\skip.log"] == b"no"


def test_download_and_download_dir(emu: WinRMEmulator, comm: WinRMCommunicator, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    emu.files["C:\\logs\\setup.log"] = data
    comm.download("C:\\logs\\setup.log", tmp_path / "setup.log")
    assert (tmp_path / "setup.log").read_bytes() == data
    assert emu.scripts()[-1] == ('$file=[System.IO.File]::ReadAllBytes("C:\\logs\\setup.log"); '
                                 "Write-Output $([System.Convert]::ToBase64String($file))")
    with pytest.raises(CommunicatorError, match="cannot download C:\\\\missing: exit status 1"):
        comm.download("C:\\missing", tmp_path / "x")
    with pytest.raises(CommunicatorError, match=r"^WinRM doesn't support download dir\.$"):
        comm.download_dir("C:\\logs", str(tmp_path))


def test_a_wrong_password_is_retried_until_the_timeout(emu: WinRMEmulator) -> None:
    started = time.monotonic()
    with pytest.raises(CommunicatorError, match=r"^Timeout waiting for WinRM\..*Failed to authenticate"):
        connect(settings(emu, password="wrong", timeout=1.5))
    assert 1.4 <= time.monotonic() - started < 6
    assert emu.auth_failures >= 2 and emu.commands == []


def test_reboot_drops_a_running_command_and_connect_waits_for_the_machine(emu: WinRMEmulator,
                                                                         comm: WinRMCommunicator) -> None:
    emu.respond(r"^shutdown /r /t 0$", reboot=1.5)
    assert comm.run("shutdown /r /t 0") == 0
    time.sleep(0.3)
    with pytest.raises((CommunicatorError, DisconnectedError)):
        comm.run("hostname")
    again = connect(settings(emu, timeout=20))
    assert again.run("hostname") == 0 and emu.reboots == 1
    again.close()


@pytest.mark.effect("builder/amazon-ebs", "winrm_use_ssl", "winrm_insecure")
def test_https_checks_the_certificate_unless_insecure() -> None:
    with WinRMEmulator("Administrator", PASSWORD, tls=True) as emu:
        config = ebs_config(winrm_port=emu.port, winrm_use_ssl=True, winrm_timeout="1s")
        with pytest.raises(CommunicatorError, match="Timeout waiting for WinRM"):
            connect(winrm_settings(config, "127.0.0.1"))
        assert emu.tls_refused and emu.commands == []
        config = ebs_config(winrm_port=emu.port, winrm_use_ssl=True, winrm_insecure=True, winrm_timeout="5s")
        assert winrm_settings(config, "127.0.0.1").endpoint == f"https://127.0.0.1:{emu.port}/wsman"
        connect(winrm_settings(config, "127.0.0.1")).close()
        assert emu.commands


def test_winrm_port_defaults_to_5986_with_ssl() -> None:
    assert ebs_config().winrm_port == 5985
    assert ebs_config(winrm_use_ssl=True).winrm_port == 5986


@pytest.mark.effect("builder/amazon-ebs", "winrm_no_proxy")
def test_no_proxy_bypasses_the_environment_proxy(emu: WinRMEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = free_port()  # nothing listens: a request sent through this proxy fails
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead}")
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    through_proxy = ebs_config(winrm_port=emu.port, winrm_timeout="1s")
    with pytest.raises(CommunicatorError, match="Timeout waiting for WinRM"):
        connect(winrm_settings(through_proxy, "127.0.0.1"))
    assert emu.requests == 0
    direct = ebs_config(winrm_port=emu.port, winrm_timeout="5s", winrm_no_proxy=True)
    connect(winrm_settings(direct, "127.0.0.1")).close()
    assert emu.requests > 0


def test_the_retrieved_password_wins_over_an_empty_template_password() -> None:
    config = ebs_config(winrm_password="")
    assert winrm_settings(config, "h", password="from-ec2").password == "from-ec2"
    assert winrm_settings(ebs_config(), "h", password="").password == PASSWORD


def test_decrypt_password_as_ec2_encrypts_it() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for fmt in (serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8):
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
        data = base64.b64encode(key.public_key().encrypt(b"Adm1n!pw", padding.PKCS1v15())).decode()
        assert decrypt_password(data, pem) == "Adm1n!pw"
    with pytest.raises(ValueError, match="not base64"):
        decrypt_password("%%%", pem)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    with pytest.raises(ValueError):
        decrypt_password(data, other_pem)


@pytest.mark.effect("builder/amazon-ebs", "winrm_use_ntlm")
def test_ntlm_authenticates_where_basic_is_off() -> None:
    with WinRMEmulator("Administrator", PASSWORD, ntlm=True, basic=False) as emu:
        basic = ebs_config(winrm_port=emu.port, winrm_timeout="1s")
        with pytest.raises(CommunicatorError, match=r"Failed to authenticate the user .* with basic"):
            connect(winrm_settings(basic, "127.0.0.1"))
        assert emu.ntlm_logins == 0 and emu.commands == []
        ntlm = ebs_config(winrm_port=emu.port, winrm_timeout="10s", winrm_use_ntlm=True)
        comm = connect(winrm_settings(ntlm, "127.0.0.1"))
        comm.upload("C:\\ntlm.txt", b"over ntlm")
        comm.close()
        # one NTLM handshake per connection (the session keeps its connection), no failed attempt
        assert emu.ntlm_logins >= 1 and emu.ntlm_refused == []
        assert emu.files["C:\\ntlm.txt"] == b"over ntlm"
        wrong = ebs_config(winrm_port=emu.port, winrm_timeout="1s", winrm_use_ntlm=True,
                           winrm_password="nope")
        with pytest.raises(CommunicatorError, match="with ntlm"):
            connect(winrm_settings(wrong, "127.0.0.1"))
        assert emu.ntlm_refused
