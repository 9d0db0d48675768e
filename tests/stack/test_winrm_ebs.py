"""amazon-ebs over WinRM on the local stack: moto for EC2 (GetPasswordData answered as EC2 does by
tests/winrm_emulation.py's proxy), the WS-Man emulator of the same module as the Windows "instance".

Each test names the options it proves with the ``effect`` marker (tests/unit/test_option_effects.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.errors import BuildError, CommunicatorError
from amibake.plugins.amazon import steps_password
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from tests.stack.test_ebs_builder import RecUi, make_config, make_env
from tests.stackkit import MotoServer, Stack
from tests.winrm_emulation import WinRMEmulator, password_proxy

pytestmark = pytest.mark.stack

PASSWORD = "Wx7-generated-Adm1n-pass"


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packer's 5 s between GetPasswordData polls, shortened (the count of polls is what is checked)."""
    monkeypatch.setattr(steps_password, "POLL_INTERVAL", 0.1)
    CLIENTS.clear()


@pytest.fixture
def windows() -> Iterator[WinRMEmulator]:
    with WinRMEmulator("Administrator", PASSWORD) as emu:
        yield emu


@dataclass
class WinHooks:
    """A file provisioner and a command, as the template's provisioners would run them."""

    upload: tuple[str, bytes] | None = None
    command: str = "echo provisioned"
    results: list[int] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        self.data = dict(build_data)
        if self.upload is not None:
            comm.upload(self.upload[0], self.upload[1])
        code = comm.run(self.command, stdout=self.output.append, stderr=self.output.append)
        self.results.append(code)
        if code != 0:
            raise BuildError(f"Script exited with non-zero exit status: {code}")

    def cleanup_provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        pass

    def has_checks(self) -> bool:
        return False

    def run_checks(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        raise AssertionError("no -checks here")


def winrm_config(stack: Stack, emu: WinRMEmulator, endpoint: str, **over: Any) -> Any:
    base: dict[str, Any] = dict(custom_endpoint_ec2=endpoint, communicator="winrm",
                                winrm_username="Administrator", winrm_host="127.0.0.1", winrm_port=emu.port,
                                winrm_timeout="60s")
    base.update(over)
    return make_config(stack, **base)


def ec2(url: str) -> Any:
    return boto3.client("ec2", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def run_state(url: str, ami_name: str) -> tuple[list[str], list[str], list[str]]:
    """(states of the instances this build launched, its AMIs, its key pairs left) by the build's tags."""
    c = ec2(url)
    reservations = c.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["amibake-builder"]}])
    images = c.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [ami_name]}])["Images"]
    keys = [k["KeyName"] for k in c.describe_key_pairs()["KeyPairs"] if k["KeyName"].startswith("packer_")]
    states = [i["State"]["Name"] for r in reservations["Reservations"] for i in r["Instances"]]
    return states, [i["ImageId"] for i in images], keys


@pytest.mark.effect("builder/amazon-ebs", "winrm_host", "winrm_port", "winrm_username",
                    "windows_password_timeout")
def test_password_from_get_password_data_connects_uploads_and_runs(stack: Stack, moto: MotoServer,
                                                                   windows: WinRMEmulator) -> None:
    ui = RecUi()
    hooks = WinHooks(upload=("C:\\Windows\\Temp\\hello.txt", b"hello windows\r\n" * 1000),
                     command="ipconfig /all")
    windows.respond(r"^ipconfig /all$", stdout="Windows IP Configuration\r\n\r\n   Host Name . . : WIN\r\n")
    with password_proxy(moto.url, PASSWORD, not_ready=2) as proxy:
        config = winrm_config(stack, windows, proxy.url, windows_password_timeout="60s")
        artifact = EbsBuilder(config, make_env(ui)).run(hooks)
        [launched] = proxy.sent("RunInstances")
        [ingress] = proxy.sent("AuthorizeSecurityGroupIngress")
        [iid] = proxy.instance_keys
        key_name = launched.params["KeyName"]
    assert artifact is not None and artifact.amis
    # the temporary security group opens the WinRM port (the SDK's Config.Port()), not SSH's
    ports = {v for k, v in ingress.params.items() if k.endswith(("FromPort", "ToPort"))}
    assert ports == {str(windows.port)}, ingress.params
    said = f"==> Authorizing access to port {windows.port} from [0.0.0.0/0] in the temporary security groups"
    assert said + "..." in ui.lines
    # polled until EC2 had the password (two empty answers first), decrypted with the temporary key
    assert proxy.password_polls == {iid: 3} and proxy.instance_keys[iid] == key_name
    assert windows.auth_failures == 0
    assert hooks.data["Password"] == PASSWORD and hooks.data["WinRMPassword"] == PASSWORD
    # the file landed through winrmcp-style chunks; the command ran with its output streamed back
    assert windows.files["C:\\Windows\\Temp\\hello.txt"] == b"hello windows\r\n" * 1000
    assert not windows.temp_files()
    assert hooks.results == [0]
    assert hooks.output == ["Windows IP Configuration", "", "   Host Name . . : WIN"]
    assert windows.command_lines()[-1] == "ipconfig /all"
    said = [line for line in ui.lines if line.startswith("==> ")]
    expected = ["==> Waiting for auto-generated password for instance...",
                "==> Using winrm communicator to connect: 127.0.0.1",
                "==> Waiting for WinRM to become available...", "==> Connected to WinRM!"]
    assert [line for line in said if line in expected] == expected
    assert "     \n    Password retrieved!" in ui.text or "     \nPassword retrieved!" in ui.text
    assert "    WinRM connected." in ui.lines
    assert PASSWORD not in ui.text


@pytest.mark.effect("builder/amazon-ebs", "winrm_password", "winrm_use_ssl", "winrm_insecure")
def test_failing_command_over_https_fails_the_build_and_leaves_nothing(stack: Stack,
                                                                       moto: MotoServer) -> None:
    ui = RecUi()
    hooks = WinHooks(command="cmd /c exit 3")
    with WinRMEmulator("Administrator", "Static-Passw0rd", tls=True) as emu, \
            password_proxy(moto.url, PASSWORD) as proxy:
        emu.respond(r"exit 3", stderr="it broke\r\n", exit_code=3)
        name = "amibake-winrm-fail"
        config = winrm_config(stack, emu, proxy.url, ami_name=name, winrm_password="Static-Passw0rd",
                              winrm_use_ssl=True, winrm_insecure=True)
        with pytest.raises(BuildError, match="non-zero exit status: 3"):
            EbsBuilder(config, make_env(ui)).run(hooks)
        assert not proxy.sent("GetPasswordData") and not proxy.sent("CreateImage")
        [launched] = proxy.sent("RunInstances")
    # HTTPS with the emulator's self-signed certificate (accepted: winrm_insecure), the template's password
    assert emu.tls_refused == [] and emu.auth_failures == 0
    assert emu.command_lines()[-1] == "cmd /c exit 3" and hooks.output == ["it broke"]
    assert "==> Skipping waiting for password since WinRM password set..." in ui.lines
    assert "Static-Passw0rd" not in ui.text
    c = ec2(moto.url)
    [instance] = [i for r in c.describe_instances(
        Filters=[{"Name": "key-name", "Values": [launched.params["KeyName"]]}])["Reservations"]
        for i in r["Instances"]]
    assert instance["State"]["Name"] == "terminated"
    assert not c.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    assert launched.params["KeyName"] not in [k["KeyName"] for k in c.describe_key_pairs()["KeyPairs"]]


@pytest.mark.effect("builder/amazon-ebs", "windows_password_timeout", "winrm_timeout")
def test_password_never_ready_times_out(stack: Stack, moto: MotoServer, windows: WinRMEmulator) -> None:
    ui = RecUi()
    with password_proxy(moto.url, PASSWORD, not_ready=10_000) as proxy:
        config = winrm_config(stack, windows, proxy.url, windows_password_timeout="1s")
        with pytest.raises(BuildError, match=r"^Timeout waiting for password\.$"):
            EbsBuilder(config, make_env(ui)).run(WinHooks())
        polls = sum(proxy.password_polls.values())
    assert 3 <= polls <= 11  # every 0.1 s for 1 s
    assert windows.commands == []
    # winrm_timeout: an instance whose WinRM never answers the right password fails in that time
    with password_proxy(moto.url, "not-the-password", not_ready=0) as proxy:
        config = winrm_config(stack, windows, proxy.url, winrm_timeout="2s")
        with pytest.raises(CommunicatorError, match=r"^Timeout waiting for WinRM\."):
            EbsBuilder(config, make_env(ui)).run(WinHooks())
    assert windows.auth_failures >= 2 and windows.commands == []


def test_cli_build_keeps_the_password_out_of_every_output(stack: Stack, moto: MotoServer,
                                                          windows: WinRMEmulator, tmp_path: Path) -> None:
    """A real ``amibake build`` (Packer's 5 s between GetPasswordData polls, one empty answer): the
    password reaches the instance (WinRM auth) and ``{{build `Password`}}``, and no output, debug log,
    manifest or journal holds it in any form."""
    from tests.stack.test_secrets import forms
    from tests.stackkit import amibake_exe

    (tmp_path / "app.conf").write_text("setting=1\r\n")
    with password_proxy(moto.url, PASSWORD, not_ready=1) as proxy:
        template = {"builders": [{
            "type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-785db401",
            "instance_type": "t2.micro", "custom_endpoint_ec2": proxy.url, "ami_name": "winrm-cli-build",
            "communicator": "winrm", "winrm_host": "127.0.0.1", "winrm_port": windows.port,
            "winrm_username": "Administrator", "winrm_timeout": "60s"}],
            "provisioners": [
                {"type": "file", "source": "app.conf", "destination": "C:\\app\\app.conf"},
                {"type": "shell-local", "inline": ["echo \"local: {{build `Password`}}\""]}],
            "post-processors": [{"type": "manifest", "output": "manifest.json"}]}
        (tmp_path / "template.json").write_text(json.dumps(template))
        log = tmp_path / "debug.log"
        env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(tmp_path / "state"), "PACKER_LOG": "1",
               "PACKER_LOG_PATH": str(log), "AMIBAKE_NO_SERVER": "1"}
        res = subprocess.run([amibake_exe(), "build", "template.json"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert sum(proxy.password_polls.values()) == 2
    assert windows.auth_failures == 0 and windows.files["C:\\app\\app.conf"] == b"setting=1\r\n"
    assert "local: <sensitive>" in res.stdout and "Password retrieved!" in res.stdout
    channels = {"stdout": res.stdout, "stderr": res.stderr, "debug log": log.read_text(errors="replace")}
    channels |= {str(p.relative_to(tmp_path)): p.read_text(errors="replace")
                 for p in tmp_path.rglob("*") if p.is_file() and p.name not in ("debug.log", "template.json")}
    assert "manifest.json" in channels and "DEBUG" in channels["debug log"]
    for channel, text in channels.items():
        for name, form in forms(PASSWORD).items():
            assert form not in text, f"{channel} holds the password ({name} form {form!r})"


@dataclass
class CheckingHooks(WinHooks):
    checked: list[dict[str, Any]] = field(default_factory=list)

    def has_checks(self) -> bool:
        return True

    def run_checks(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        self.checked.append(dict(build_data))
        if comm.run("Get-Service WinRM") != 0:
            raise BuildError("check failed")


def test_checks_get_the_test_instance_password(stack: Stack, moto: MotoServer,
                                               windows: WinRMEmulator) -> None:
    """-checks launches a fresh Windows instance of the AMI: it has a password of its own, retrieved
    as the build's was before WinRM connects to it."""
    hooks = CheckingHooks()
    with password_proxy(moto.url, PASSWORD, not_ready=1) as proxy:
        config = winrm_config(stack, windows, proxy.url)
        EbsBuilder(config, make_env(RecUi())).run(hooks)
        assert len(proxy.sent("RunInstances")) == 2
        # each instance polled until its password was there (one empty answer each)
        assert sorted(proxy.password_polls.values()) == [2, 2]
    assert [c["Password"] for c in hooks.checked] == [PASSWORD]
    assert windows.command_lines()[-1] == "Get-Service WinRM" and windows.auth_failures == 0
