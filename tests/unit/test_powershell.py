"""The powershell provisioner against a recording communicator: the exact uploads and commands, compared
with Packer 1.6.6's templates (provisioner/powershell, packer-plugin-sdk/guestexec/elevated.go) and the
expected strings of Packer's own provisioner_test.go."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from amibake.communicator.base import Communicator, DisconnectedError, LineSink
from amibake.config.base import CheckContext
from amibake.errors import BuildError, CommunicatorError
from amibake.provisioners.powershell.config import PowershellConfig
from amibake.provisioners.powershell.provisioner import (
    PowershellProvisioner,
    encoded_powershell,
    ps_escape,
    time_ordered_uuid,
    xml_escape_text,
)
from tests.unit.test_provisioners_local import RecordingUi, make_env

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PROGRESS = ("& { if (Test-Path variable:global:ProgressPreference)"
            "{set-variable -name variable:global:ProgressPreference -value 'SilentlyContinue'};")


class RecordingComm(Communicator):
    """Records uploads and commands; ``answers`` maps a command regex to (exit status, stdout lines);
    ``fail_uploads`` uploads fail first (a machine not reachable yet)."""

    def __init__(self, answers: Sequence[tuple[str, int, list[str]]] = (), fail_uploads: int = 0,
                 disconnect: bool = False) -> None:
        self.events: list[tuple[str, str, bytes]] = []
        self.answers = list(answers)
        self.fail_uploads = fail_uploads
        self.disconnect = disconnect

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        self.events.append(("run", command, b""))
        if self.disconnect:
            raise DisconnectedError("gone")
        for pattern, status, lines in self.answers:
            if re.search(pattern, command):
                for line in lines:
                    if stdout is not None:
                        stdout(line)
                return status
        return 0

    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        if self.fail_uploads:
            self.fail_uploads -= 1
            raise CommunicatorError("connection refused")
        if isinstance(src, bytes):
            data = src
        else:
            data = src.read_bytes() if isinstance(src, Path) else src.read()
        self.events.append(("upload", dst, data))

    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        raise AssertionError("not used")

    def download(self, src: str, dst: Path | BinaryIO) -> None:
        raise AssertionError("not used")

    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        raise AssertionError("not used")

    def close(self) -> None:
        pass

    def runs(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "run"]

    def uploads(self) -> list[tuple[str, bytes]]:
        return [(e[1], e[2]) for e in self.events if e[0] == "upload"]


def config(**kw: Any) -> PowershellConfig:
    return PowershellConfig(**kw)


def provisioner(ui: RecordingUi | None = None, **kw: Any) -> PowershellProvisioner:
    prov = PowershellProvisioner(config(**kw), make_env(ui))
    prov.retry_delay = 0.01
    prov.cleanup_delay = 0.01
    return prov


def default_command(policy: str = "bypass", middle: str = "") -> str:
    """Packer's default execute_command (provisioner_test.go's TestProvisionerPrepare_DebugMode)."""
    return f"powershell -executionpolicy {policy} \"{PROGRESS}{middle}. {{{{.Vars}}}}; &'{{{{.Path}}}}'; " \
        "exit $LastExitCode }\""


pytestmark = pytest.mark.effect("provisioner/powershell", "inline", "execute_command", "remote_path",
                                "remote_env_var_path", "environment_vars", "env")


def test_defaults_are_packers() -> None:
    prov = provisioner(inline=["Write-Host hi"])
    assert prov.execute_command == default_command()
    assert prov.elevated_execute_command == default_command()
    assert re.fullmatch(rf"c:/Windows/Temp/script-{UUID}\.ps1", prov.remote_path)
    assert re.fullmatch(rf"c:/Windows/Temp/packer-ps-env-vars-{UUID}\.ps1", prov.remote_env_var_path)
    assert re.fullmatch(rf"c:/Windows/Temp/packer-cleanup-{UUID}\.ps1", prov.cleanup_path)
    assert prov.start_retry_timeout == 300.0


@pytest.mark.effect("provisioner/powershell", "debug_mode", "execution_policy", "use_pwsh")
def test_debug_mode_execution_policy_and_pwsh() -> None:
    # Packer's own expected string for debug_mode = 1
    assert provisioner(inline=["x"], debug_mode=1).execute_command == (
        "powershell -executionpolicy bypass \"& { if (Test-Path variable:global:ProgressPreference)"
        "{set-variable -name variable:global:ProgressPreference -value 'SilentlyContinue'};"
        "Set-PsDebug -Trace 1;. {{.Vars}}; &'{{.Path}}'; exit $LastExitCode }\""
    )
    assert provisioner(inline=["x"], execution_policy="RemoteSigned").execute_command == \
        default_command("remotesigned")
    assert provisioner(inline=["x"], execution_policy="none", debug_mode=2).execute_command == (
        PROGRESS + "Set-PsDebug -Trace 2;. {{.Vars}}; &'{{.Path}}'; exit $LastExitCode }"
    )
    assert provisioner(inline=["x"], use_pwsh=True).execute_command == (
        f"pwsh -executionpolicy bypass -command \"{PROGRESS}. {{{{.Vars}}}}; &'{{{{.Path}}}}'; "
        "exit $LastExitCode }\""
    )
    assert provisioner(inline=["x"], use_pwsh=True).elevated_execute_command.startswith("pwsh -exec")


def test_inline_run_uploads_env_file_script_then_cleans_up() -> None:
    ui = RecordingUi()
    comm = RecordingComm(answers=[(r"script\.ps1", 0, ["hello"])])
    prov = provisioner(ui, inline=["Write-Host hi", "Get-Date"], environment_vars=["FOO=bar"],
                       env={"ZED": "1"}, remote_path="c:/Windows/Temp/script.ps1",
                       remote_env_var_path="c:/Windows/Temp/env.ps1")
    prov.provision(comm, {"PackerHTTPAddr": "10.0.0.1:8080"})
    cleanup = prov.cleanup_path
    command = (f"powershell -executionpolicy bypass \"{PROGRESS}. c:/Windows/Temp/env.ps1; "
               "&'c:/Windows/Temp/script.ps1'; exit $LastExitCode }\"")
    assert comm.events == [
        ("upload", "c:/Windows/Temp/env.ps1",
         b'$env:FOO="bar"; $env:PACKER_BUILDER_TYPE="iso"; $env:PACKER_BUILD_NAME="vmware"; '
         b'$env:PACKER_HTTP_ADDR="10.0.0.1:8080"; $env:ZED="1"; '),
        ("upload", "c:/Windows/Temp/script.ps1", b"Write-Host hi\nGet-Date\n"),
        ("run", command, b""),
        ("upload", cleanup,
         b"if (Test-Path c:/Windows/Temp/env.ps1) {Remove-Item c:/Windows/Temp/env.ps1}\n"
         b"if (Test-Path c:/Windows/Temp/script.ps1) {Remove-Item c:/Windows/Temp/script.ps1}\n"
         + f"if (Test-Path {cleanup}) {{Remove-Item {cleanup}}}\n".encode()),
        ("run", command.replace("c:/Windows/Temp/script.ps1", cleanup), b""),
    ]
    assert ui.lines[0] == ("say", "Provisioning with Powershell...")
    assert ui.lines[1][1].startswith("Provisioning with powershell script: ")
    assert ui.of("message") == ["hello"]


@pytest.mark.parametrize(("value", "expected"), [
    # Packer 1.6.6's TestProvisioner_createFlattenedEnvVars_windows
    ("bar=baz", '$env:FOO="bar=baz"; '),
    ("=bar", '$env:FOO="=bar"; '),
    ("bar$baz", '$env:FOO="bar`$baz"; '),
    ('bar"baz', '$env:FOO="bar`"baz"; '),
    ("bar'baz", "$env:FOO=\"bar`'baz\"; "),
    ("bar`baz", '$env:FOO="bar``baz"; '),
])
def test_env_var_escaping_is_packers(value: str, expected: str) -> None:
    prov = provisioner(inline=["x"], environment_vars=[f"FOO={value}"])
    base = '$env:PACKER_BUILDER_TYPE="iso"; $env:PACKER_BUILD_NAME="vmware"; '
    assert prov.flattened_env_vars({}, elevated=False) == expected + base


@pytest.mark.effect("provisioner/powershell", "env_var_format", "elevated_env_var_format")
def test_env_var_formats() -> None:
    prov = provisioner(inline=["x"], environment_vars=["A=1"], env_var_format="%s=%s;",
                       elevated_env_var_format="[%s|%s]")
    plain = "A=1;PACKER_BUILDER_TYPE=iso;PACKER_BUILD_NAME=vmware;"
    assert prov.flattened_env_vars({}, elevated=False) == plain
    elevated = "[A|1][PACKER_BUILDER_TYPE|iso][PACKER_BUILD_NAME|vmware]"
    assert prov.flattened_env_vars({}, elevated=True) == elevated


@pytest.mark.effect("provisioner/powershell", "script", "scripts", "binary")
def test_scripts_uploaded_byte_for_byte(tmp_path: Path) -> None:
    """Packer's powershell provisioner never converts line endings (binary or not)."""
    one, two = tmp_path / "one.ps1", tmp_path / "two.ps1"
    one.write_bytes(b"Write-Host one\r\n")
    two.write_bytes(b"\xff\xfeW\x00\r\n")
    for binary in (False, True):
        comm = RecordingComm()
        ui = RecordingUi()
        prov = provisioner(ui, scripts=[str(one), str(two)], remote_path="c:/s.ps1", binary=binary)
        prov.provision(comm, {})
        assert [d for p, d in comm.uploads() if p == "c:/s.ps1"] == [one.read_bytes(), two.read_bytes()]
        assert ui.of("say")[1:] == [f"Provisioning with powershell script: {one}",
                                    f"Provisioning with powershell script: {two}"]
    comm = RecordingComm()
    provisioner(script=str(one), remote_path="c:/s.ps1").provision(comm, {})
    assert [d for p, d in comm.uploads() if p == "c:/s.ps1"] == [one.read_bytes()]


def test_remote_path_ending_in_backslash_takes_the_script_name(tmp_path: Path) -> None:
    one = tmp_path / "one.ps1"
    one.write_text("x")
    comm = RecordingComm()
    provisioner(script=str(one), remote_path="c:\\scripts\\").provision(comm, {})
    assert ("c:\\scripts\\one.ps1", b"x") in comm.uploads()


@pytest.mark.effect("provisioner/powershell", "valid_exit_codes")
def test_valid_exit_codes() -> None:
    comm = RecordingComm(answers=[(r"script", 3010, [])])
    provisioner(inline=["x"], remote_path="c:/script.ps1", valid_exit_codes=[0, 3010]).provision(comm, {})
    comm = RecordingComm(answers=[(r"script", 3010, [])])
    with pytest.raises(BuildError) as info:
        provisioner(inline=["x"], remote_path="c:/script.ps1").provision(comm, {})
    assert str(info.value) == "Script exited with non-zero exit status: 3010.Allowed exit codes are: [0]"
    assert all("cleanup" not in r for r in comm.runs())  # Packer returns before the cleanup


def test_disconnect_is_packers_exit_status() -> None:
    with pytest.raises(BuildError, match="exit status: 2300218"):
        provisioner(inline=["x"]).provision(RecordingComm(disconnect=True), {})


@pytest.mark.effect("provisioner/powershell", "skip_clean")
def test_skip_clean_leaves_the_files() -> None:
    comm = RecordingComm()
    prov = provisioner(inline=["x"], skip_clean=True)
    prov.provision(comm, {})
    assert [p for p, _ in comm.uploads()] == [prov.remote_env_var_path, prov.remote_path]
    assert len(comm.runs()) == 1


@pytest.mark.effect("provisioner/powershell", "start_retry_timeout")
def test_start_retry_timeout() -> None:
    comm = RecordingComm(fail_uploads=3)
    provisioner(inline=["x"], start_retry_timeout="30s").provision(comm, {})
    assert len(comm.runs()) == 2
    comm = RecordingComm(fail_uploads=10**6)
    prov = provisioner(inline=["x"], start_retry_timeout="50ms")
    assert prov.start_retry_timeout == 0.05
    with pytest.raises(BuildError, match="Error uploading ps script containing env vars: connection refused"):
        prov.provision(comm, {})


@pytest.mark.effect("provisioner/powershell", "pause_after")
def test_pause_after() -> None:
    ui = RecordingUi()
    provisioner(ui, inline=["x"], pause_after="10ms").provision(RecordingComm(), {})
    assert ui.of("say")[-1] == "Pausing 10ms after this provisioner..."
    ui = RecordingUi()
    provisioner(ui, inline=["x"], pause_after="10ms", skip_clean=True).provision(RecordingComm(), {})
    assert not ui.of("say")[-1].startswith("Pausing")  # Packer returns before the pause with skip_clean


@pytest.mark.effect("provisioner/powershell", "elevated_user", "elevated_password",
                    "elevated_execute_command")
def test_elevated_runs_a_scheduled_task_wrapper() -> None:
    comm = RecordingComm()
    env = make_env(RecordingUi())
    prov = PowershellProvisioner(
        config(inline=["x"], elevated_user="Admin$", elevated_password='p"a$$`w0rd',
               elevated_execute_command="powershell -File {{.Path}} -Env {{.Vars}} & echo <done>",
               remote_path="c:/s.ps1", remote_env_var_path="c:/e.ps1"),
        env,
    )
    prov.provision(comm, {})
    assert 'p"a$$`w0rd' in env.secrets
    uploads = comm.uploads()
    assert [p for p, _ in uploads][:1] == ["c:/e.ps1"]
    wrapper_path, wrapper = uploads[1]
    assert re.fullmatch(rf"C:/Windows/Temp/packer-elevated-shell-{UUID}\.ps1", wrapper_path)
    assert comm.runs()[0] == f'powershell -executionpolicy bypass -file "{wrapper_path}"'
    text = wrapper.decode()
    task = re.search(r'\$name = "(packer-[^"]+)"', text)
    assert task is not None and re.fullmatch(f"packer-{UUID}", task.group(1))
    log = f"%SYSTEMROOT%/Temp/{task.group(1)}.out"
    # Go's xml.EscapeText escapes the command and the redirection Packer appends
    assert (f"<Arguments>/c powershell -File c:/s.ps1 -Env c:/e.ps1 &amp; echo &lt;done&gt; &gt; {log} "
            "2&gt;&amp;1</Arguments>") in text
    assert "<UserId>Admin`$</UserId>" in text
    assert '$password = "p`"a`$`$``w0rd"' in text
    register = '$f.RegisterTaskDefinition($name, $t, 6, "Admin`$", $password, $logon_type, $null) | Out-Null'
    assert register in text
    assert f'$script = [System.Environment]::ExpandEnvironmentVariables("{wrapper_path}")' in text
    assert '$f.DeleteTask("\\$name", "")' in text
    assert text.startswith('\n$name = "packer-') and text.endswith("\nexit $result")
    # the cleanup is not elevated: the plain (default) execute_command runs it
    assert comm.runs()[1] == (f"powershell -executionpolicy bypass \"{PROGRESS}. c:/e.ps1; "
                              f"&'{prov.cleanup_path}'; exit $LastExitCode }}\"")


def test_elevated_password_rendered_from_build_data_and_never_shown() -> None:
    comm = RecordingComm(answers=[("packer-elevated-shell", 0, ["the task printed S3cr3t!-pass"])])
    ui = RecordingUi()
    env = make_env(ui)
    cfg = config(inline=["x"], elevated_user="Administrator", elevated_password="{{.WinRMPassword}}")
    PowershellProvisioner(cfg, env).provision(comm, {"WinRMPassword": "S3cr3t!-pass"})
    assert "S3cr3t!-pass" in env.secrets
    assert '$password = "S3cr3t!-pass"' in comm.uploads()[1][1].decode()
    assert ui.of("message") == ["the task printed <sensitive>"]


def test_helpers_match_go() -> None:
    assert ps_escape("a$b\"c`d'e") == "a`$b`\"c``d`'e"
    assert xml_escape_text("a<b>&\"'\t\n\r\x01") == "a&lt;b&gt;&amp;&#34;&#39;&#x9;&#xA;&#xD;\ufffd"
    assert re.fullmatch(UUID, time_ordered_uuid())
    # masterzen/winrm's Powershell(): UTF-16LE for ASCII
    cmd = encoded_powershell("echo hi")
    assert cmd == "powershell.exe -EncodedCommand " + base64.b64encode("echo hi".encode("utf-16-le")).decode()


def test_check_refuses_what_packer_refuses() -> None:
    ctx = CheckContext(Path("."), "provisioners[0]", check_files=False)
    assert [p.message for p in config(inline=["x"], elevated_password="p").check(ctx)] == [
        "Must supply an 'elevated_user' if 'elevated_password' provided"]



@pytest.mark.parametrize(("given", "policy"), [
    (0, "bypass"), ("1", "allsigned"), ("3", "remotesigned"), (6, "unrestricted"), ("7", "none"),
])
def test_execution_policy_by_number_as_packer_decodes_it(given: object, policy: str) -> None:
    # Packer's StringToExecutionPolicyHook: a number names the policy at that place of its enum
    ctx = CheckContext(Path("."), "provisioners[0]", check_files=False)
    cfg = config(inline=["x"], execution_policy=given)
    assert cfg.check(ctx) == []
    unwrapped = PROGRESS + ". {{.Vars}}; &'{{.Path}}'; exit $LastExitCode }"
    assert provisioner(inline=["x"], execution_policy=given).execute_command == (
        default_command(policy) if policy != "none" else unwrapped)


@pytest.mark.parametrize("given", ["8", 12, "fast"])
def test_execution_policy_out_of_range_is_refused(given: object) -> None:
    ctx = CheckContext(Path("."), "provisioners[0]", check_files=False)
    assert [p.message for p in config(inline=["x"], execution_policy=given).check(ctx)] == [
        f"Invalid execution policy {given}"]
