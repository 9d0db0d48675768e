"""WinRM (and the Windows password from GetPasswordData) for the builders other than amazon-ebs:
amazon-ebssurrogate, amazon-ebsvolume and amazon-instance run amazon-ebs's StepGetPassword before
StepConnect (as Packer 1.6.6's builders do); the null builder connects over WinRM with the template's
password (Packer's builder/null has no password step).

The "instance" is tests/winrm_emulation.py's WS-Man emulation; EC2 is moto behind that module's
GetPasswordData proxy. Each test names the options it proves with the ``effect`` marker
(tests/unit/test_option_effects.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.builders.null.builder import NullBuilder
from amibake.builders.null.config import NullConfig
from amibake.errors import BuildError, CommunicatorError
from amibake.plugins.amazon import steps_password
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.ebsvolume import EbsVolumeBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.instance import InstanceBuilder
from amibake.plugins.amazon.surrogate import EbsSurrogateBuilder
from tests.stack.test_ebs_builder import SOURCE_AMI, RecUi, make_env
from tests.stack.test_ebssurrogate_options import surrogate_config
from tests.stack.test_ebsvolume_options import volume_config
from tests.stack.test_ssm_tunnel import free_port
from tests.stack.test_winrm_ebs import PASSWORD, WinHooks
from tests.stackkit import MotoServer, Stack, amibake_exe
from tests.winrm_emulation import WinRMEmulator, password_proxy

pytestmark = pytest.mark.stack

STATIC = "Static-Passw0rd-7q"
#: amazon-instance's bundle on the Windows "instance" (the emulation runs nothing: the manifest is given)
BUNDLE = "C:\\bundle"
MANIFEST = (b"<manifest><image><parts><part><filename>image-win.part.0</filename></part></parts></image>"
            b"</manifest>")


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packer's 5 s between GetPasswordData polls, shortened (the count of polls is what is checked)."""
    monkeypatch.setattr(steps_password, "POLL_INTERVAL", 0.1)
    CLIENTS.clear()


def dead_https_proxy(env: dict[str, str]) -> dict[str, str]:
    """``env`` with an HTTPS proxy nothing listens on and no NO_PROXY: a WinRM request over HTTPS that
    honours the environment fails; EC2's (plain HTTP to the proxy in front of moto) is unaffected."""
    dead = f"http://127.0.0.1:{free_port()}"
    out = {k: v for k, v in env.items() if k.lower() not in ("no_proxy", "http_proxy", "all_proxy")}
    return {**out, "HTTPS_PROXY": dead, "https_proxy": dead}


def instance_config(stack: Stack, **over: Any) -> InstanceConfig:
    """An amazon-instance config for a Windows instance (``x509_cert_path``, ``x509_key_path`` given):
    X509 files and bundle in Windows paths, the bundle commands as given (the emulation records them)."""
    base: dict[str, Any] = dict(
        region="us-east-1", access_key="testing", secret_key="testing", source_ami=SOURCE_AMI,
        instance_type="t2.micro", run_tags={"Name": "amibake-builder"}, ami_name="instance-win",
        aws_polling={"delay_seconds": 1, "max_attempts": 30}, account_id="123456789012",
        s3_bucket="win-bundles",
        x509_upload_path="C:\\Windows\\Temp\\x509", bundle_destination=BUNDLE, bundle_prefix="image-win",
        bundle_vol_command=f"ec2-bundle-vol.cmd -d {BUNDLE} -p image-win",
        bundle_upload_command=f"ec2-upload-bundle.cmd -b win-bundles -m {BUNDLE}/image-win.manifest.xml",
    )
    base.update(over)
    fields = {info.alias or name for name, info in InstanceConfig.model_fields.items()}
    return InstanceConfig.model_validate({k: v for k, v in base.items() if k in fields})


BUILDERS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "amazon-ebssurrogate": (EbsSurrogateBuilder, surrogate_config),
    "amazon-ebsvolume": (EbsVolumeBuilder, volume_config),
    "amazon-instance": (InstanceBuilder, instance_config),
}


def windows_config(stack: Stack, builder_type: str, endpoint: str, emu: WinRMEmulator, tmp_path: Path,
                   **over: Any) -> Any:
    """The builder's stack-test config over WinRM to ``emu``; ``ssh_host`` unset, so only ``winrm_host``
    leads to the emulation (the instance's own address leads nowhere here)."""
    make = BUILDERS[builder_type][1]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nwin-cert\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nwin-key\n-----END PRIVATE KEY-----\n")
    options: dict[str, Any] = dict(
        x509_cert_path=str(cert), x509_key_path=str(key), custom_endpoint_ec2=endpoint, ssh_host="",
        communicator="winrm", winrm_username="Administrator", winrm_host="127.0.0.1", winrm_port=emu.port,
        winrm_timeout="60s")
    options.update(over)
    return make(stack, **options)


def left_behind(moto: MotoServer, key_name: str) -> tuple[list[str], bool]:
    """(states of the instances launched with ``key_name``, whether that key pair still exists)."""
    c = boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing")
    reservations = c.describe_instances(Filters=[{"Name": "key-name", "Values": [key_name]}])["Reservations"]
    states = [i["State"]["Name"] for r in reservations for i in r["Instances"]]
    return states, key_name in [k["KeyName"] for k in c.describe_key_pairs()["KeyPairs"]]


AMAZON = pytest.mark.parametrize("builder_type", sorted(BUILDERS))


@AMAZON
@pytest.mark.effect("builder/amazon-ebssurrogate", "winrm_host", "winrm_port", "winrm_username",
                    "winrm_use_ssl", "winrm_insecure", "winrm_use_ntlm", "winrm_no_proxy")
@pytest.mark.effect("builder/amazon-ebsvolume", "winrm_host", "winrm_port", "winrm_username",
                    "winrm_use_ssl", "winrm_insecure", "winrm_use_ntlm", "winrm_no_proxy")
@pytest.mark.effect("builder/amazon-instance", "winrm_host", "winrm_port", "winrm_username",
                    "winrm_use_ssl", "winrm_insecure", "winrm_use_ntlm", "winrm_no_proxy")
def test_password_from_get_password_data_over_https_and_ntlm(
        stack: Stack, moto: MotoServer, builder_type: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One build: the password polled from GetPasswordData until there (one empty answer), decrypted
    with the temporary key; WinRM over HTTPS (self-signed certificate: winrm_insecure) with NTLM only,
    past an environment proxy that leads nowhere (winrm_no_proxy); a file and a command on the
    "instance"; the password in no output."""
    for key, value in dead_https_proxy(dict(os.environ)).items():
        monkeypatch.setenv(key, value)
    for key in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    ui = RecUi()
    blob = b"hello windows\r\n" * 500
    hooks = WinHooks(upload=("C:\\Windows\\Temp\\hello.txt", blob), command="hostname")
    with WinRMEmulator("Administrator", PASSWORD, tls=True, ntlm=True, basic=False) as emu, \
            password_proxy(moto.url, PASSWORD, not_ready=1) as proxy:
        emu.respond(r"^hostname$", stdout="WIN-BUILDER\r\n")
        emu.files[f"{BUNDLE}/image-win.manifest.xml"] = MANIFEST
        config = windows_config(stack, builder_type, proxy.url, emu, tmp_path, winrm_use_ssl=True,
                                winrm_insecure=True, winrm_use_ntlm=True, winrm_no_proxy=True,
                                windows_password_timeout="60s")
        builder = BUILDERS[builder_type][0]
        artifact = builder(config, make_env(ui)).run(hooks)
        assert artifact is not None
        [launched] = proxy.sent("RunInstances")
        [ingress] = proxy.sent("AuthorizeSecurityGroupIngress")
        [iid] = proxy.instance_keys
        registered = proxy.sent("RegisterImage")
    # the temporary security group opens the WinRM port
    assert {v for k, v in ingress.params.items() if k.endswith(("FromPort", "ToPort"))} == {str(emu.port)}
    # polled until EC2 had the password, decrypted with the build's temporary key pair
    assert proxy.password_polls == {iid: 2} and proxy.instance_keys[iid] == launched.params["KeyName"]
    assert hooks.data["Password"] == PASSWORD and hooks.data["WinRMPassword"] == PASSWORD
    # HTTPS accepted without a certificate check, NTLM logins only (Basic is off), the password right
    assert emu.tls_refused == [] and emu.ntlm_logins >= 1 and emu.ntlm_refused == []
    assert emu.auth_failures == 0
    assert emu.files["C:\\Windows\\Temp\\hello.txt"] == blob and not emu.temp_files()
    assert hooks.results == [0] and hooks.output == ["WIN-BUILDER"]
    expected = ["==> Waiting for auto-generated password for instance...",
                "==> Using winrm communicator to connect: 127.0.0.1",
                "==> Waiting for WinRM to become available...", "==> Connected to WinRM!"]
    assert [line for line in ui.lines if line in expected] == expected
    assert "    WinRM connected." in ui.lines
    assert PASSWORD not in ui.text
    lines = emu.command_lines()
    if builder_type == "amazon-instance":
        # the bundle steps over WinRM: the X509 files uploaded, the bundle commands run after the provisioner
        assert emu.files["C:\\Windows\\Temp\\x509\\cert.pem"] == Path(config.x509_cert_path).read_bytes()
        assert emu.files["C:\\Windows\\Temp\\x509\\key.pem"] == Path(config.x509_key_path).read_bytes()
        assert lines.index("hostname") < lines.index(config.bundle_vol_command) \
            < lines.index(config.bundle_upload_command)
        [register] = registered
        assert register.params["ImageLocation"] == "win-bundles/image-win.manifest.xml"
    else:
        assert lines[-1] == "hostname"


@AMAZON
@pytest.mark.effect("builder/amazon-ebssurrogate", "windows_password_timeout", "winrm_password",
                    "winrm_timeout")
@pytest.mark.effect("builder/amazon-ebsvolume", "windows_password_timeout", "winrm_password",
                    "winrm_timeout")
@pytest.mark.effect("builder/amazon-instance", "windows_password_timeout", "winrm_password",
                    "winrm_timeout")
def test_password_and_winrm_timeouts_and_the_template_password(stack: Stack, moto: MotoServer,
                                                               builder_type: str, tmp_path: Path) -> None:
    """Two failing builds, each leaving nothing: a password EC2 never has fails after
    windows_password_timeout; with winrm_password set, no GetPasswordData, WinRM logs in with it and a
    machine whose connect check never passes fails after winrm_timeout."""
    builder = BUILDERS[builder_type][0]
    ui = RecUi()
    with WinRMEmulator("Administrator", STATIC) as emu, \
            password_proxy(moto.url, PASSWORD, not_ready=10_000) as proxy:
        config = windows_config(stack, builder_type, proxy.url, emu, tmp_path, windows_password_timeout="1s")
        with pytest.raises(BuildError, match=r"^Timeout waiting for password\.$"):
            builder(config, make_env(ui)).run(WinHooks())
        assert 3 <= sum(proxy.password_polls.values()) <= 11  # every 0.1 s for 1 s
        assert emu.requests == 0
        [launched] = proxy.sent("RunInstances")
    assert left_behind(moto, launched.params["KeyName"]) == (["terminated"], False)

    ui = RecUi()
    with WinRMEmulator("Administrator", STATIC) as emu, password_proxy(moto.url, PASSWORD) as proxy:
        emu.respond(r'echo "WinRM connected\."', stdout="", exit_code=1)  # WinRM up, the machine not ready
        config = windows_config(stack, builder_type, proxy.url, emu, tmp_path, winrm_password=STATIC,
                                winrm_timeout="2s")
        with pytest.raises(CommunicatorError, match=r"^Timeout waiting for WinRM\."):
            builder(config, make_env(ui)).run(WinHooks())
        assert not proxy.sent("GetPasswordData")
        [launched] = proxy.sent("RunInstances")
    # the template's password logged in (the checks ran: no refused request), over and over until the timeout
    assert emu.auth_failures == 0 and len(emu.scripts()) >= 2
    assert "==> Skipping waiting for password since WinRM password set..." in ui.lines
    assert STATIC not in ui.text
    assert left_behind(moto, launched.params["KeyName"]) == (["terminated"], False)


@pytest.mark.effect("builder/null", "winrm_host", "winrm_port", "winrm_username", "winrm_password",
                    "winrm_use_ssl", "winrm_insecure", "winrm_use_ntlm", "winrm_no_proxy")
def test_null_builder_over_winrm(tmp_path: Path) -> None:
    """``amibake build`` of a null builder over WinRM (HTTPS, NTLM, past a dead environment proxy), with
    the template's password: a file and a windows-shell script reach the "instance", whose build data
    are the WinRM connection's; the password is in no output."""
    (tmp_path / "app.conf").write_text("setting=1\r\n")
    with WinRMEmulator("Administrator", STATIC, tls=True, ntlm=True, basic=False) as emu:
        template = {
            "builders": [{"type": "null", "communicator": "winrm", "winrm_host": "127.0.0.1",
                          "winrm_port": emu.port, "winrm_username": "Administrator", "winrm_password": STATIC,
                          "winrm_use_ssl": True, "winrm_insecure": True, "winrm_use_ntlm": True,
                          "winrm_no_proxy": True, "winrm_timeout": "30s"}],
            "provisioners": [
                {"type": "file", "source": "app.conf", "destination": "C:\\app\\app.conf"},
                {"type": "windows-shell", "remote_path": "C:/Windows/Temp/null.bat",
                 "inline": ["echo {{build `ConnType`}} {{build `Host`}} {{build `Port`}} {{build `User`}}"]}]}
        (tmp_path / "t.json").write_text(json.dumps(template))
        env = dead_https_proxy({**os.environ, "AMIBAKE_STATE_DIR": str(tmp_path / "state"),
                                "AMIBAKE_NO_SERVER": "1"})
        res = subprocess.run([amibake_exe(), "build", "-color=false", "t.json"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert emu.tls_refused == [] and emu.ntlm_logins >= 1 and emu.ntlm_refused == []
    assert emu.auth_failures == 0
    assert emu.files["C:\\app\\app.conf"] == b"setting=1\r\n"
    script = emu.files["C:\\Windows\\Temp\\null.bat"].decode()
    assert f"echo winrm 127.0.0.1 {emu.port} Administrator" in script
    assert any("C:/Windows/Temp/null.bat" in line for line in emu.command_lines())
    assert "Using winrm communicator to connect: 127.0.0.1" in res.stdout
    assert "Connected to WinRM!" in res.stdout and "Did not export anything" in res.stdout
    assert STATIC not in res.stdout + res.stderr


@pytest.mark.effect("builder/null", "winrm_timeout")
def test_null_builder_winrm_timeout() -> None:
    """A machine whose WinRM answers but whose connect check never passes: the null build fails after
    winrm_timeout, having logged in with the template's password."""
    with WinRMEmulator("Administrator", STATIC) as emu:
        emu.respond(r'echo "WinRM connected\."', stdout="", exit_code=1)
        config = NullConfig.model_validate({
            "communicator": "winrm", "winrm_host": "127.0.0.1", "winrm_port": emu.port,
            "winrm_username": "Administrator", "winrm_password": STATIC, "winrm_timeout": "1s"})
        with pytest.raises(CommunicatorError, match=r"^Timeout waiting for WinRM\."):
            NullBuilder(config, make_env(RecUi())).run(WinHooks())
    assert emu.auth_failures == 0 and len(emu.scripts()) >= 2
