"""The shell, file, shell-local and breakpoint provisioners, without SSH.

The shell and file provisioners run over :class:`LocalComm`, a communicator whose "remote" machine
is this one (commands through ``/bin/sh -c``, files copied locally), and over :class:`ScriptedComm`,
which replays failures (a command that cannot start, a dropped connection).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake import localexec
from amibake.api import BuildEnv
from amibake.communicator.base import Communicator, DisconnectedError, LineSink
from amibake.errors import BuildError, CommunicatorError
from amibake.provisioners.breakpoint.provisioner import BreakpointProvisioner
from amibake.provisioners.file.provisioner import FileProvisioner
from amibake.provisioners.shell import provisioner as shellmod
from amibake.provisioners.shell.provisioner import (
    CMD_DISCONNECT,
    ExitCodeError,
    ShellProvisioner,
    check_exit_code,
    clean_output_line,
    env_vars,
    flatten_env_vars,
    go_duration,
    go_sprintf,
    inline_script,
    quote_value,
    retry_start,
    seconds,
    to_unix_newlines,
)
from amibake.provisioners.shell_local.provisioner import (
    ShellLocalProvisioner,
    current_os,
    execute_command_of,
)

# -- test doubles ----------------------------------------------------------------------------------


class RecordingUi:
    def __init__(self, answer: str = "") -> None:
        self.lines: list[tuple[str, str]] = []
        self.answer = answer

    def say(self, message: str) -> None:
        self.lines.append(("say", message))

    def message(self, message: str) -> None:
        self.lines.append(("message", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def ask(self, question: str) -> str:
        self.lines.append(("ask", question))
        return self.answer

    def of(self, kind: str) -> list[str]:
        return [m for k, m in self.lines if k == kind]


def render(text: str, data: Mapping[str, Any]) -> str:
    """A stand-in for the interpolation engine: ``{{.Key}}`` / ``{{ .Key }}`` only."""
    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: str(data[m.group(1)]), text)


def make_env(ui: RecordingUi | None = None, **kw: Any) -> BuildEnv:
    return BuildEnv(
        build_name=kw.pop("build_name", "vmware"),
        builder_type=kw.pop("builder_type", "iso"),
        template_dir=Path("."),
        ui=ui or RecordingUi(),
        render=render,
        **kw,
    )


def shell_config(**kw: Any) -> Any:
    base: dict[str, Any] = dict(
        inline=None, script="", scripts=[], environment_vars=[], env={}, execute_command="",
        inline_shebang="", remote_folder="", remote_file="", remote_path="", valid_exit_codes=[],
        expect_disconnect=False, start_retry_timeout=None, skip_clean=False, pause_after=None,
        binary=False, use_env_var_file=False, env_var_format="",
    )
    base.update(kw)
    return SimpleNamespace(**base)


def file_config(**kw: Any) -> Any:
    base: dict[str, Any] = dict(
        source="", sources=[], content="", destination="", direction="upload", generated=False
    )
    base.update(kw)
    return SimpleNamespace(**base)


def shell_local_config(**kw: Any) -> Any:
    base: dict[str, Any] = dict(
        command="", inline=None, script="", scripts=[], environment_vars=[], env={},
        execute_command=[], inline_shebang="", only_on=[], valid_exit_codes=[], env_var_format="",
        tempfile_extension="",
    )
    base.update(kw)
    return SimpleNamespace(**base)


class LocalComm(Communicator):
    """The "remote" machine is this one."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.uploads: list[tuple[str, int]] = []

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        self.commands.append(command)
        return localexec.run(["/bin/sh", "-c", command], stdout=stdout, stderr=stderr, timeout=timeout)

    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        if isinstance(src, Path):
            data = src.read_bytes()
        elif isinstance(src, bytes):
            data = src
        else:
            data = src.read()
        Path(dst).write_bytes(data)
        os.chmod(dst, mode)
        self.uploads.append((dst, mode))

    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        target = dst if src.endswith("/") else os.path.join(dst, os.path.basename(src))
        shutil.copytree(src, target, dirs_exist_ok=True)

    def download(self, src: str, dst: Path | BinaryIO) -> None:
        assert isinstance(dst, Path)
        shutil.copyfile(src, dst)

    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        shutil.copytree(src, os.path.join(dst, os.path.basename(src.rstrip("/"))), dirs_exist_ok=True)

    def close(self) -> None:
        pass


class ScriptedComm(LocalComm):
    """Runs locally, except that ``plan`` decides what the n-th matching command does."""

    def __init__(self, plan: Callable[[str, int], int | Exception | None]) -> None:
        super().__init__()
        self.plan = plan
        self.calls = 0

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        self.calls += 1
        outcome = self.plan(command, self.calls)
        if isinstance(outcome, Exception):
            self.commands.append(command)
            raise outcome
        if isinstance(outcome, int):
            self.commands.append(command)
            return outcome
        return super().run(command, stdout=stdout, stderr=stderr, pty=pty, timeout=timeout)


# -- env vars, quoting, formats -------------------------------------------------------------------

PACKER_VARS = "PACKER_BUILDER_TYPE='iso' PACKER_BUILD_NAME='vmware' "


@pytest.mark.parametrize(
    ("user_vars", "expected"),
    [
        ([], PACKER_VARS),
        (["FOO=bar"], "FOO='bar' " + PACKER_VARS),
        (["FOO=bar's"], "FOO='bar'\"'\"'s' " + PACKER_VARS),
        (["FOO=bar", "BAZ=qux"], "BAZ='qux' FOO='bar' " + PACKER_VARS),
        (["FOO=bar=baz"], "FOO='bar=baz' " + PACKER_VARS),
        (["FOO==bar"], "FOO='=bar' " + PACKER_VARS),
        (["FOO="], "FOO='' " + PACKER_VARS),
    ],
)
def test_flattened_env_vars_as_packer(user_vars: list[str], expected: str) -> None:
    assert flatten_env_vars(env_vars("vmware", "iso", {}, user_vars), "%s='%s' ") == expected


def test_env_map_overrides_environment_vars_and_http_vars_are_exported() -> None:
    data = {"PackerHTTPAddr": "10.0.0.1:8080", "PackerHTTPIP": "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER"}
    variables = env_vars("b", "amazon-ebs", data, ["A=1", "B=2"], {"B": "from-env", "C": "it's"})
    assert variables == {
        "PACKER_BUILD_NAME": "b",
        "PACKER_BUILDER_TYPE": "amazon-ebs",
        "PACKER_HTTP_ADDR": "10.0.0.1:8080",
        "A": "1",
        "B": "from-env",
        "C": "it's",
    }
    assert flatten_env_vars(variables, "export %s='%s'\n").splitlines()[2] == "export C='it'\"'\"'s'"


@pytest.mark.parametrize("bad", ["FOO", "=bar", ""])
def test_malformed_environment_var(bad: str) -> None:
    with pytest.raises(BuildError, match="not in format 'key=value'"):
        env_vars("b", "t", {}, [bad])


def test_go_sprintf() -> None:
    assert go_sprintf("%s='%s' ", "A", "b") == "A='b' "
    assert go_sprintf("set %s=%s && ", "A", "b") == "set A=b && "
    assert go_sprintf("100%% %s", "x") == "100% x"
    assert go_sprintf("%s", "a", "b") == "a%!(EXTRA string=b)"
    assert go_sprintf("%s %s", "a") == "a %!s(MISSING)"
    # Go's verbs, as Packer's fmt.Sprintf: %q quotes, %d of a string is a mismatch, a lone % has no verb
    assert go_sprintf("%s=%q ", "A", "b c") == 'A="b c" '
    assert go_sprintf("%s=%d ", "A", "1") == "A=%!d(string=1) "
    assert go_sprintf("export %s=%s %", "A", "b") == "export A=b %!(NOVERB)"


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
                       st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                               max_size=20),
                       max_size=4))
@settings(max_examples=25, deadline=None)
def test_quoted_values_survive_a_real_shell(values: dict[str, str]) -> None:
    values = {k: v for k, v in values.items() if not k.startswith("PACKER_")}
    flat = flatten_env_vars(env_vars("b", "t", {}, [], values), "%s='%s' ")
    script = flat + "/usr/bin/env -0"
    out: list[str] = []
    localexec.run(["/bin/sh", "-c", script], stdout=out.append)
    got = dict(item.split("=", 1) for item in "\n".join(out).split("\x00") if "=" in item)
    for key, value in values.items():
        assert got[key] == value


@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))))
def test_quote_value_only_escapes_quotes(value: str) -> None:
    assert quote_value(value).replace("'\"'\"'", "'") == value


def test_exit_code_message_is_packers() -> None:
    with pytest.raises(ExitCodeError) as info:
        check_exit_code(3, [])
    assert str(info.value) == "Script exited with non-zero exit status: 3.Allowed exit codes are: [0]"
    with pytest.raises(ExitCodeError, match=r"Allowed exit codes are: \[0 2\]$"):
        check_exit_code(1, [0, 2])
    check_exit_code(2, [0, 2])
    check_exit_code(0, None)


def test_to_unix_newlines() -> None:
    assert to_unix_newlines(b"") == b""
    assert to_unix_newlines(b"a\r\nb\r\n") == b"a\nb\n"
    assert to_unix_newlines(b"a\nb") == b"a\nb\n"
    assert to_unix_newlines(b"a\r\n\r\n") == b"a\n\n"


def test_inline_script_and_output_cleaning() -> None:
    assert inline_script("/bin/sh -e", ["echo a", "echo b"]) == "#!/bin/sh -e\necho a\necho b\n"
    assert clean_output_line("progress 10%\rprogress 100%  ") == "progress 100%"
    assert clean_output_line("plain") == "plain"


@pytest.mark.parametrize(
    ("value", "secs"),
    [(None, 0.0), ("", 0.0), ("0", 0.0), ("5m", 300.0), ("1h30m", 5400.0), ("1.5s", 1.5),
     ("300ms", 0.3), (10, 10.0), (2.5, 2.5)],
)
def test_seconds(value: Any, secs: float) -> None:
    assert seconds(value) == pytest.approx(secs)


def test_seconds_rejects_garbage() -> None:
    with pytest.raises(BuildError, match="invalid duration"):
        seconds("5 minutes")


@pytest.mark.parametrize(
    ("secs", "text"),
    [(0, "0s"), (5, "5s"), (90, "1m30s"), (3600, "1h0m0s"), (0.5, "500ms"), (1.5, "1.5s"),
     (61.25, "1m1.25s")],
)
def test_go_duration(secs: float, text: str) -> None:
    assert go_duration(secs) == text


def test_retry_start_retries_communicator_errors_until_success() -> None:
    attempts: list[int] = []

    def fn() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise CommunicatorError("not yet")
        return "ok"

    assert retry_start(fn, timeout=10, delay=0.01) == "ok"
    assert len(attempts) == 3


def test_retry_start_gives_up_after_the_timeout_and_other_errors_pass() -> None:
    def fails() -> None:
        raise CommunicatorError("never")

    with pytest.raises(CommunicatorError, match="never"):
        retry_start(fails, timeout=0.05, delay=0.01)

    def bug() -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError):
        retry_start(bug, timeout=10, delay=0.01)


def test_retry_start_stops_on_cancel() -> None:
    cancel = threading.Event()

    def fails() -> None:
        cancel.set()
        raise CommunicatorError("down")

    with pytest.raises(CommunicatorError):
        retry_start(fails, timeout=10, cancel=cancel, delay=5)


# -- shell provisioner ---------------------------------------------------------------------------


def test_shell_inline_runs_with_vars_and_cleans_up(tmp_path: Path) -> None:
    ui = RecordingUi()
    remote = tmp_path / "script.sh"
    config = shell_config(
        inline=["echo hello $FOO", "echo to-stderr >&2", 'echo "name=$PACKER_BUILD_NAME"'],
        environment_vars=["FOO=it's me"],
        remote_path=str(remote),
    )
    comm = LocalComm()
    ShellProvisioner(config, make_env(ui)).provision(comm, {})
    says = ui.of("say")
    assert len(says) == 1 and says[0].startswith("Provisioning with shell script: ")
    temp_script = says[0].split(": ", 1)[1]
    assert os.path.basename(temp_script).startswith("packer-shell")
    assert not os.path.exists(temp_script)  # the local temp script is removed
    assert ui.of("message") == ["hello it's me", "name=vmware"]
    assert ui.of("error") == ["to-stderr"]
    assert comm.commands == [
        f"chmod 0755 {remote}",
        f"chmod +x {remote}; FOO='it'\"'\"'s me' PACKER_BUILDER_TYPE='iso' "
        f"PACKER_BUILD_NAME='vmware'  {remote}",
        f"rm -f {remote}",
    ]
    assert not remote.exists()


def test_shell_default_remote_path(tmp_path: Path) -> None:
    p = ShellProvisioner(shell_config(inline=["true"]), make_env())
    assert re.fullmatch(r"/tmp/script_\d{1,4}\.sh", p.remote_path)
    config = shell_config(inline=["true"], remote_folder="/var/x", remote_file="a.sh")
    p = ShellProvisioner(config, make_env())
    assert p.remote_path == "/var/x/a.sh"


@pytest.mark.effect("provisioner/shell", "scripts", "skip_clean", "remote_path")
def test_shell_scripts_in_order_with_crlf_converted_and_skip_clean(tmp_path: Path) -> None:
    one = tmp_path / "one.sh"
    one.write_bytes(b"#!/bin/sh\r\necho one\r\n")
    two = tmp_path / "two.sh"
    two.write_text("#!/bin/sh\necho two $PACKER_BUILDER_TYPE\n")
    remote = tmp_path / "remote.sh"
    ui = RecordingUi()
    config = shell_config(scripts=[str(one), str(two)], remote_path=str(remote), skip_clean=True)
    comm = LocalComm()
    ShellProvisioner(config, make_env(ui)).provision(comm, {})
    assert ui.of("say") == [f"Provisioning with shell script: {p}" for p in (one, two)]
    assert ui.of("message") == ["one", "two iso"]
    assert remote.exists() and not any(c.startswith("rm ") for c in comm.commands)


@pytest.mark.effect("provisioner/shell", "binary")
def test_shell_binary_keeps_crlf(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_bytes(b"echo a\r\n")
    remote = tmp_path / "r.sh"
    config = shell_config(script=str(script), remote_path=str(remote), binary=True, skip_clean=True,
                          execute_command="true")
    ShellProvisioner(config, make_env()).provision(LocalComm(), {})
    assert remote.read_bytes() == b"echo a\r\n"


def test_shell_failing_script_reports_packers_error(tmp_path: Path) -> None:
    config = shell_config(inline=["echo before", "exit 3"], remote_path=str(tmp_path / "s.sh"))
    ui = RecordingUi()
    with pytest.raises(ExitCodeError, match=r"exit status: 3\.Allowed exit codes are: \[0\]"):
        ShellProvisioner(config, make_env(ui)).provision(LocalComm(), {})
    assert ui.of("message") == ["before"]


def test_shell_inline_shebang_default_stops_at_first_error(tmp_path: Path) -> None:
    config = shell_config(inline=["false", "echo not reached"], remote_path=str(tmp_path / "s.sh"))
    ui = RecordingUi()
    with pytest.raises(ExitCodeError):
        ShellProvisioner(config, make_env(ui)).provision(LocalComm(), {})
    assert ui.of("message") == []


@pytest.mark.effect("provisioner/shell", "valid_exit_codes")
def test_shell_valid_exit_codes(tmp_path: Path) -> None:
    def provision(code: int, valid: list[int]) -> RecordingUi:
        config = shell_config(inline=[f"echo ran {code}", f"exit {code}"], valid_exit_codes=valid,
                              remote_path=str(tmp_path / "s.sh"))
        ui = RecordingUi()
        ShellProvisioner(config, make_env(ui)).provision(LocalComm(), {})
        return ui

    # 7 is listed: the script ran to its end and the provisioner succeeds
    assert provision(7, [0, 7]).of("message") == ["ran 7"]
    # the same exit status fails without the list, and another one fails with it
    with pytest.raises(ExitCodeError, match=r"exit status: 7\.Allowed exit codes are: \[0\]"):
        provision(7, [])
    with pytest.raises(ExitCodeError, match=r"exit status: 8\.Allowed exit codes are: \[0 7\]"):
        provision(8, [0, 7])


@pytest.mark.effect("provisioner/shell", "execute_command")
def test_shell_custom_execute_command_sees_build_data(tmp_path: Path) -> None:
    remote = tmp_path / "s.sh"
    config = shell_config(
        inline=["echo in-script"],
        remote_path=str(remote),
        execute_command="echo host={{ .Host }} path={{.Path}}; sh {{.Path}}",
    )
    ui = RecordingUi()
    ShellProvisioner(config, make_env(ui)).provision(LocalComm(), {"Host": "10.1.2.3"})
    assert ui.of("message") == [f"host=10.1.2.3 path={remote}", "in-script"]


def test_shell_inline_commands_are_rendered_with_build_data(tmp_path: Path) -> None:
    config = shell_config(inline=["echo id={{ .ID }}"], remote_path=str(tmp_path / "s.sh"))
    ui = RecordingUi()
    ShellProvisioner(config, make_env(ui)).provision(LocalComm(), {"ID": "i-123"})
    assert ui.of("message") == ["id=i-123"]


@pytest.mark.effect("provisioner/shell", "use_env_var_file")
def test_shell_env_var_file(tmp_path: Path) -> None:
    config = shell_config(
        inline=['echo "$FOO|$BAR"'],
        environment_vars=["FOO=a b"],
        env={"BAR": "q'uote"},
        use_env_var_file=True,
        remote_folder=str(tmp_path),
        remote_file="s.sh",
    )
    ui = RecordingUi()
    comm = LocalComm()
    ShellProvisioner(config, make_env(ui)).provision(comm, {})
    assert ui.of("message") == ["a b|q'uote"]
    varfile = comm.uploads[0][0]
    assert re.fullmatch(re.escape(str(tmp_path)) + r"/varfile_\d+\.sh", varfile)
    assert f"chmod 0600 {varfile}" in comm.commands
    assert f"rm -f {varfile}" in comm.commands
    assert not os.path.exists(varfile) and not (tmp_path / "s.sh").exists()


def test_shell_unexpected_disconnect(tmp_path: Path) -> None:
    comm = ScriptedComm(lambda cmd, n: DisconnectedError("gone") if "chmod +x" in cmd else None)
    config = shell_config(inline=["reboot"], remote_path=str(tmp_path / "s.sh"))
    with pytest.raises(BuildError, match="Script disconnected unexpectedly"):
        ShellProvisioner(config, make_env()).provision(comm, {})


def test_shell_expected_disconnect_then_cleans_up(tmp_path: Path) -> None:
    comm = ScriptedComm(lambda cmd, n: DisconnectedError("gone") if "chmod +x" in cmd else None)
    remote = tmp_path / "s.sh"
    config = shell_config(inline=["reboot"], remote_path=str(remote), expect_disconnect=True)
    ShellProvisioner(config, make_env()).provision(comm, {})
    assert comm.commands[-1] == f"rm -f {remote}"


def test_shell_retries_while_the_command_cannot_start(tmp_path: Path) -> None:
    def plan(cmd: str, n: int) -> Exception | None:
        return CommunicatorError("connection refused") if n <= 2 else None

    comm = ScriptedComm(plan)
    config = shell_config(inline=["echo up"], remote_path=str(tmp_path / "s.sh"))
    ui = RecordingUi()
    p = ShellProvisioner(config, make_env(ui))
    p.retry_delay = 0.01
    p.provision(comm, {})
    assert ui.of("message") == ["up"]


@pytest.mark.effect("provisioner/shell", "start_retry_timeout")
def test_shell_start_retry_timeout_gives_up(tmp_path: Path) -> None:
    comm = ScriptedComm(lambda cmd, n: CommunicatorError("connection refused"))
    config = shell_config(inline=["true"], remote_path=str(tmp_path / "s.sh"), start_retry_timeout="50ms")
    p = ShellProvisioner(config, make_env())
    p.retry_delay = 0.01
    with pytest.raises(CommunicatorError, match=r"chmodding script file to 0755.*connection refused"):
        p.provision(comm, {})


def test_shell_cleanup_failure_is_an_error(tmp_path: Path) -> None:
    comm = ScriptedComm(lambda cmd, n: 1 if cmd.startswith("rm -f") else None)
    config = shell_config(inline=["true"], remote_path=str(tmp_path / "s.sh"), start_retry_timeout="20ms")
    p = ShellProvisioner(config, make_env())
    p.retry_delay = 0.01
    with pytest.raises(CommunicatorError, match=r"Error removing temporary script at .*s\.sh!"):
        p.provision(comm, {})


@pytest.mark.effect("provisioner/shell", "pause_after")
def test_shell_pause_after(tmp_path: Path) -> None:
    ui = RecordingUi()
    config = shell_config(inline=["true"], remote_path=str(tmp_path / "s.sh"), pause_after="10ms")
    ShellProvisioner(config, make_env(ui)).provision(LocalComm(), {})
    assert ui.of("say")[-1] == "Pausing 10ms after this provisioner..."


@pytest.mark.effect("provisioner/shell", "pause_after")
def test_shell_pause_after_is_cancellable(tmp_path: Path) -> None:
    env = make_env()
    env.cancel.set()
    config = shell_config(inline=["true"], remote_path=str(tmp_path / "s.sh"), pause_after="1h")
    with pytest.raises(BuildError, match="cancelled"):
        ShellProvisioner(config, env).provision(LocalComm(), {})


def test_shell_missing_script_file(tmp_path: Path) -> None:
    config = shell_config(script=str(tmp_path / "nope.sh"))
    with pytest.raises(BuildError, match="Error opening shell script"):
        ShellProvisioner(config, make_env()).provision(LocalComm(), {})


def test_cmd_disconnect_constant() -> None:
    assert CMD_DISCONNECT == 2300218
    assert shellmod.DEFAULT_EXECUTE_COMMAND == "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"


# -- file provisioner ----------------------------------------------------------------------------


def test_file_upload_single_file_into_directory(tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_text("hi\n")
    os.chmod(src, 0o640)
    dest = tmp_path / "remote"
    dest.mkdir()
    ui = RecordingUi()
    comm = LocalComm()
    FileProvisioner(file_config(source=str(src), destination=f"{dest}/"), make_env(ui)).provision(comm, {})
    assert ui.of("say") == [f"Uploading {src} => {dest}/"]
    assert (dest / "hello.txt").read_text() == "hi\n"
    assert comm.uploads == [(f"{dest}/hello.txt", 0o640)]


@pytest.mark.effect("provisioner/file", "sources", "source", "destination")
def test_file_upload_sources_then_source_order_and_render(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    dest = tmp_path / "out-{{ .ID }}"
    ui = RecordingUi()
    config = file_config(sources=[str(b)], source=str(a), destination=f"{dest}/")
    (tmp_path / "out-i-1").mkdir()
    FileProvisioner(config, make_env(ui)).provision(LocalComm(), {"ID": "i-1"})
    assert ui.of("say") == [f"Uploading {b} => {tmp_path}/out-i-1/", f"Uploading {a} => {tmp_path}/out-i-1/"]
    assert (tmp_path / "out-i-1" / "a").read_text() == "a"
    assert (tmp_path / "out-i-1" / "b").read_text() == "b"


@pytest.mark.effect("provisioner/file", "generated")
def test_file_generated_is_checked_when_uploading_not_when_validating(tmp_path: Path) -> None:
    from amibake.config.base import CheckContext, decode
    from amibake.provisioners.file.config import FileConfig

    src, dest = tmp_path / "made-later.txt", tmp_path / "dest.txt"
    raw = {"source": str(src), "destination": str(dest)}
    ctx = CheckContext(template_dir=tmp_path, key_path="provisioners[0]")
    _, problems, _ = decode(FileConfig, raw, ctx)
    assert [p.message for p in problems] == [f"Bad source '{src}': stat {src}: no such file or directory"]
    config, problems, _ = decode(FileConfig, {**raw, "generated": True}, ctx)
    assert problems == [] and config is not None
    src.write_text("generated during the build")  # e.g. by a shell-local provisioner before this one
    FileProvisioner(config, make_env()).provision(LocalComm(), {})
    assert dest.read_text() == "generated during the build"


def test_file_upload_directory_trailing_slash_rule(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("x")
    dest = tmp_path / "dest"
    dest.mkdir()
    FileProvisioner(file_config(source=str(tree), destination=str(dest)), make_env()).provision(
        LocalComm(), {}
    )
    assert (dest / "tree" / "sub" / "f").exists()
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    FileProvisioner(file_config(source=f"{tree}/", destination=str(dest2)), make_env()).provision(
        LocalComm(), {}
    )
    assert (dest2 / "sub" / "f").exists()


def test_file_content(tmp_path: Path) -> None:
    dest = tmp_path / "c.txt"
    ui = RecordingUi()
    FileProvisioner(file_config(content="inline text", destination=str(dest)), make_env(ui)).provision(
        LocalComm(), {}
    )
    assert dest.read_text() == "inline text"
    uploaded_from = ui.of("say")[0].split(" ")[1]
    assert os.path.basename(uploaded_from).startswith("pkr-file-content")
    assert not os.path.exists(uploaded_from)


def test_file_missing_source(tmp_path: Path) -> None:
    config = file_config(source=str(tmp_path / "nope"), destination="/tmp/x", generated=True)
    with pytest.raises(BuildError, match="Bad source"):
        FileProvisioner(config, make_env()).provision(LocalComm(), {})


def test_file_upload_failure_is_reported(tmp_path: Path) -> None:
    class Failing(LocalComm):
        def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
            raise CommunicatorError("scp: Error restoring file")

    src = tmp_path / "f"
    src.write_text("x")
    ui = RecordingUi()
    with pytest.raises(CommunicatorError):
        FileProvisioner(file_config(source=str(src), destination="/tmp/dir"), make_env(ui)).provision(
            Failing(), {}
        )
    assert ui.of("error")[0].endswith("folder without a trailing slash.")
    assert ui.of("error")[1] == "Upload failed: scp: Error restoring file"


def test_file_download_file_into_directory(tmp_path: Path) -> None:
    remote = tmp_path / "remote.txt"
    remote.write_text("data")
    dest = tmp_path / "local" / "deeper"
    ui = RecordingUi()
    config = file_config(source=str(remote), destination=f"{dest}/", direction="download")
    FileProvisioner(config, make_env(ui)).provision(LocalComm(), {})
    assert (dest / "remote.txt").read_text() == "data"
    assert ui.of("say") == [f"Downloading {remote} => {dest}/remote.txt"]


def test_file_download_to_a_file_path_and_directory(tmp_path: Path) -> None:
    remote = tmp_path / "r"
    (remote / "d").mkdir(parents=True)
    (remote / "d" / "x").write_text("x")
    (remote / "f").write_text("f")
    out = tmp_path / "out"
    FileProvisioner(
        file_config(source=str(remote / "f"), destination=str(out / "renamed"), direction="download"),
        make_env(),
    ).provision(LocalComm(), {})
    assert (out / "renamed").read_text() == "f"
    FileProvisioner(
        file_config(source=f"{remote / 'd'}/", destination=f"{out}/", direction="download"), make_env()
    ).provision(LocalComm(), {})
    assert (out / "d" / "x").read_text() == "x"


# -- shell-local ---------------------------------------------------------------------------------


def test_shell_local_inline_with_vars() -> None:
    ui = RecordingUi()
    config = shell_local_config(
        inline=['echo "$FOO $PACKER_BUILD_NAME $PACKER_BUILDER_TYPE"', "echo err >&2"],
        environment_vars=["FOO=it's {{ .ID }}"],
    )
    ShellLocalProvisioner(config, make_env(ui, build_name="b1", builder_type="amazon-ebs")).provision(
        LocalComm(), {"ID": "ami-1"}
    )
    said = ui.of("say")
    assert len(said) == 1 and said[0].startswith("Running local shell script: ")
    assert not os.path.exists(said[0].rsplit(" ", 1)[1])
    assert ui.of("message") == ["it's ami-1 b1 amazon-ebs"]
    assert ui.of("error") == ["err"]


def test_shell_local_command_script_and_exit_codes(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("echo from-script\nexit 2\n")
    script.chmod(0o755)  # as in Packer, the default execute_command runs the script directly
    ui = RecordingUi()
    with pytest.raises(ExitCodeError, match="exit status: 2"):
        ShellLocalProvisioner(shell_local_config(script=str(script)), make_env(ui)).provision(LocalComm(), {})
    assert ui.of("message") == ["from-script"]
    assert ui.of("say") == [f"Running local shell script: {script}"]
    ShellLocalProvisioner(
        shell_local_config(script=str(script), valid_exit_codes=[2]), make_env()
    ).provision(LocalComm(), {})
    ui2 = RecordingUi()
    ShellLocalProvisioner(shell_local_config(command="echo cmd"), make_env(ui2)).provision(LocalComm(), {})
    assert ui2.of("message") == ["cmd"]


def test_shell_local_custom_execute_command(tmp_path: Path) -> None:
    ui = RecordingUi()
    config = shell_local_config(
        inline=["echo ignored"],
        execute_command=["/bin/sh", "-c", "echo script={{.Script}} vars={{.Vars}}"],
        env={"K": "v"},
    )
    ShellLocalProvisioner(config, make_env(ui)).provision(LocalComm(), {})
    (line,) = ui.of("message")
    assert line.startswith("script=/") and "vars=K=v PACKER_BUILDER_TYPE=iso PACKER_BUILD_NAME=vmware" in line


def test_shell_local_only_on() -> None:
    ui = RecordingUi()
    other = "windows" if current_os() != "windows" else "linux"
    ShellLocalProvisioner(shell_local_config(inline=["exit 1"], only_on=[other]), make_env(ui)).provision(
        LocalComm(), {}
    )
    assert ui.of("say") == ["Skipping shell-local due to runtime OS"]
    ShellLocalProvisioner(
        shell_local_config(inline=["echo here"], only_on=[current_os()]), make_env(ui)
    ).provision(LocalComm(), {})
    assert ui.of("message") == ["here"]


def test_shell_local_program_that_cannot_start() -> None:
    config = shell_local_config(inline=["true"], execute_command=["/nonexistent/shell", "{{.Script}}"])
    with pytest.raises(BuildError, match=r"Error executing script: .*\n\nPlease see output above"):
        ShellLocalProvisioner(config, make_env()).provision(LocalComm(), {})


def test_shell_local_tempfile_extension_and_mode() -> None:
    ui = RecordingUi()
    config = shell_local_config(
        inline=["true"], tempfile_extension=".cmd", execute_command=["/bin/sh", "-c", "ls -l {{.Script}}"]
    )
    ShellLocalProvisioner(config, make_env(ui)).provision(LocalComm(), {})
    assert ui.of("say")[0].endswith(".cmd")
    assert ui.of("message")[0].startswith("-rwx------")


def test_execute_command_defaults() -> None:
    assert execute_command_of(shell_local_config()) == ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]
    one = shell_local_config(execute_command=["{{.Vars}} bash {{.Script}}"])
    assert execute_command_of(one) == ["{{.Vars}} bash {{.Script}}"]
    assert execute_command_of(one, post_processor=True) == ["sh", "-c", "{{.Vars}} bash {{.Script}}"]
    single = shell_local_config(execute_command="x")
    assert execute_command_of(single, post_processor=True) == ["sh", "-c", "x"]


def test_current_os() -> None:
    assert current_os("linux") == "linux"
    assert current_os("darwin") == "darwin"
    assert current_os("freebsd13") == "freebsd"
    assert current_os("sunos5") == "solaris"
    assert current_os("win32") == "windows"


# -- breakpoint ----------------------------------------------------------------------------------


@pytest.mark.effect("provisioner/breakpoint", "note", "disable")
@pytest.mark.parametrize(
    ("note", "disable", "says", "asks"),
    [
        ("", True, ["Breakpoint provisioner disabled; continuing..."], []),
        ("n1", True, ['Breakpoint provisioner with note "n1" disabled; continuing...'], []),
        ("", False, ["Pausing at breakpoint provisioner."], ["Press enter to continue."]),
        ("n2", False, ['Pausing at breakpoint provisioner with note "n2".'], ["Press enter to continue."]),
    ],
)
def test_breakpoint(note: str, disable: bool, says: list[str], asks: list[str]) -> None:
    ui = RecordingUi()
    config = SimpleNamespace(note=note, disable=disable)
    BreakpointProvisioner(config, make_env(ui)).provision(LocalComm(), {})
    assert ui.of("say") == says
    assert ui.of("ask") == asks


def test_local_comm_preserves_mode(tmp_path: Path) -> None:
    comm = LocalComm()
    comm.upload(str(tmp_path / "x"), b"x", mode=0o600)
    assert stat.S_IMODE(os.stat(tmp_path / "x").st_mode) == 0o600


# -- with the real config classes ----------------------------------------------------------------


def test_real_config_classes_drive_the_provisioners(tmp_path: Path) -> None:
    from amibake.provisioners.breakpoint.config import BreakpointConfig
    from amibake.provisioners.file.config import FileConfig
    from amibake.provisioners.shell.config import ShellConfig
    from amibake.provisioners.shell_local.config import ShellLocalConfig

    ui = RecordingUi()
    env = make_env(ui)
    comm = LocalComm()
    ShellProvisioner(
        ShellConfig(inline=["echo $A"], environment_vars=["A=1"], remote_folder=str(tmp_path)), env
    ).provision(comm, {})
    src = tmp_path / "src.txt"
    src.write_text("x")
    file_cfg = FileConfig(source=str(src), destination=str(tmp_path / "dst.txt"))
    FileProvisioner(file_cfg, env).provision(comm, {})
    ShellLocalProvisioner(ShellLocalConfig(command="echo local"), env).provision(comm, {})
    BreakpointProvisioner(BreakpointConfig(disable=True), env).provision(comm, {})
    assert ui.of("message") == ["1", "local"]
    assert (tmp_path / "dst.txt").read_text() == "x"
    assert ui.of("say")[-1] == "Breakpoint provisioner disabled; continuing..."


def test_default_remote_script_numbers_never_repeat_within_a_run() -> None:
    """Parallel builds reaching one host must not overwrite or delete each other's scripts."""
    from amibake.provisioners.shell.provisioner import unique_number

    seen = [unique_number() for _ in range(3000)]
    assert len(set(seen)) == len(seen)
    assert all(0 <= n < 9999 for n in seen)
