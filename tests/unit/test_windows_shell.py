"""The windows-shell provisioner against a recording communicator: the uploads and the exact commands of
Packer 1.6.6's provisioner/windows-shell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amibake.errors import BuildError, CommunicatorError
from amibake.provisioners.windows_shell.config import WindowsShellConfig
from amibake.provisioners.windows_shell.provisioner import WindowsShellProvisioner
from tests.unit.test_powershell import RecordingComm
from tests.unit.test_provisioners_local import RecordingUi, make_env

pytestmark = pytest.mark.effect("provisioner/windows-shell", "inline", "environment_vars", "env")


def provisioner(ui: RecordingUi | None = None, **kw: Any) -> WindowsShellProvisioner:
    prov = WindowsShellProvisioner(WindowsShellConfig(**kw), make_env(ui))
    prov.retry_delay = 0.01
    return prov


def test_inline_with_packers_defaults() -> None:
    ui = RecordingUi()
    comm = RecordingComm(answers=[("script.bat", 0, ["ok"])])
    provisioner(ui, inline=["echo %FOO%", "dir"], environment_vars=["FOO=a b&c"], env={"BAR": "1"}).provision(
        comm, {"PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"})
    assert comm.events == [
        ("upload", "c:/Windows/Temp/script.bat", b"echo %FOO%\ndir\n"),
        ("run", 'set "BAR=1" && set "FOO=a b&c" && set "PACKER_BUILDER_TYPE=iso" && '
                'set "PACKER_BUILD_NAME=vmware" && "c:/Windows/Temp/script.bat"', b""),
    ]
    assert ui.lines[0] == ("say", "Provisioning with windows-shell...")
    assert ui.lines[1][1].startswith("Provisioning with shell script: ")
    assert ui.of("message") == ["ok"]


@pytest.mark.effect("provisioner/windows-shell", "script", "scripts", "remote_path", "execute_command",
                    "env_var_format", "binary")
def test_scripts_remote_path_execute_command_and_format(tmp_path: Path) -> None:
    one, two = tmp_path / "one.bat", tmp_path / "two.bat"
    one.write_bytes(b"echo one\r\n")
    two.write_bytes(b"echo two\n")
    for binary in (False, True):  # Packer never converts line endings for windows-shell
        comm = RecordingComm()
        prov = provisioner(scripts=[str(one), str(two)], remote_path="d:/run.cmd", binary=binary,
                           execute_command="cmd /c {{.Vars}}{{.Path}}", env_var_format="SET %s=%s&")
        prov.provision(comm, {})
        run = "cmd /c SET PACKER_BUILDER_TYPE=iso&SET PACKER_BUILD_NAME=vmware&d:/run.cmd"
        assert comm.events == [("upload", "d:/run.cmd", b"echo one\r\n"), ("run", run, b""),
                               ("upload", "d:/run.cmd", b"echo two\n"), ("run", run, b"")]
    comm = RecordingComm()
    provisioner(script=str(one)).provision(comm, {})
    assert comm.uploads() == [("c:/Windows/Temp/script.bat", b"echo one\r\n")]


@pytest.mark.effect("provisioner/windows-shell", "valid_exit_codes")
def test_valid_exit_codes() -> None:
    comm = RecordingComm(answers=[("", 3010, [])])
    provisioner(inline=["x"], valid_exit_codes=[0, 3010]).provision(comm, {})
    with pytest.raises(BuildError) as info:
        provisioner(inline=["x"]).provision(RecordingComm(answers=[("", 1, [])]), {})
    assert str(info.value) == "Script exited with non-zero exit status: 1.Allowed exit codes are: [0]"


@pytest.mark.effect("provisioner/windows-shell", "start_retry_timeout")
def test_start_retry_timeout() -> None:
    comm = RecordingComm(fail_uploads=2)
    provisioner(inline=["x"], start_retry_timeout="1m").provision(comm, {})
    assert len(comm.runs()) == 1
    prov = provisioner(inline=["x"], start_retry_timeout="30ms")
    assert prov.start_retry_timeout == 0.03
    with pytest.raises(CommunicatorError, match="Error uploading script: connection refused"):
        prov.provision(RecordingComm(fail_uploads=10**6), {})
