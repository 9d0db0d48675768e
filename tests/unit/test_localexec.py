"""amibake.localexec: running local processes."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

import pytest

from amibake import localexec
from amibake.errors import AmibakeError
from amibake.localexec import (
    LocalCommandCancelled,
    LocalCommandError,
    LocalCommandTimeout,
    describe,
    exit_description,
    redact,
    run,
)


def test_exit_status_is_returned() -> None:
    assert run(["/bin/sh", "-c", "exit 0"]) == 0
    assert run(["/bin/sh", "-c", "exit 3"]) == 3


def test_stdout_and_stderr_lines_are_streamed_separately() -> None:
    out: list[str] = []
    err: list[str] = []
    status = run(
        ["/bin/sh", "-c", "echo one; echo two >&2; printf 'three'; echo; printf 'last'"],
        stdout=out.append,
        stderr=err.append,
    )
    assert status == 0
    assert out == ["one", "three", "last"]
    assert err == ["two"]


def test_empty_lines_and_crlf_are_passed_through() -> None:
    out: list[str] = []
    run(["/bin/sh", "-c", "printf 'a\\n\\nb\\r\\n'"], stdout=out.append)
    assert out == ["a", "", "b\r"]


def test_undecodable_bytes_are_replaced() -> None:
    out: list[str] = []
    run(["/bin/sh", "-c", "printf 'x\\377y\\n'"], stdout=out.append)
    assert out == ["x\ufffdy"]


def test_no_shell_is_involved() -> None:
    out: list[str] = []
    run(["/bin/echo", "$HOME; echo injected"], stdout=out.append)
    assert out == ["$HOME; echo injected"]


def test_env_replaces_the_environment_and_cwd_is_used(tmp_path: os.PathLike[str]) -> None:
    out: list[str] = []
    run(["/bin/sh", "-c", 'echo "$FOO:$HOME:$(pwd)"'], env={"FOO": "bar"}, cwd=tmp_path, stdout=out.append)
    assert out == [f"bar::{os.path.realpath(tmp_path)}"]


def test_check_raises_with_status_and_stderr_tail() -> None:
    script = "for i in $(seq 1 30); do echo line$i >&2; done; exit 4"
    with pytest.raises(LocalCommandError) as info:
        run(["/bin/sh", "-c", script], check=True)
    err = info.value
    assert isinstance(err, AmibakeError)
    assert err.status == 4
    assert err.stderr_tail == [f"line{i}" for i in range(11, 31)]
    assert "exited with status 4" in str(err)
    assert "line30" in str(err) and "line10\n" not in str(err)
    assert err.exit_code == 1  # the CLI exit code is untouched


def test_missing_program_raises() -> None:
    with pytest.raises(LocalCommandError, match="cannot run /nonexistent/prog"):
        run(["/nonexistent/prog", "x"])


def test_empty_argv_raises() -> None:
    with pytest.raises(LocalCommandError):
        run([])


def test_timeout_kills_the_process_group() -> None:
    start = time.monotonic()
    with pytest.raises(LocalCommandTimeout) as info:
        run(["/bin/sh", "-c", "sleep 30 & sleep 30; wait"], timeout=0.3)
    assert time.monotonic() - start < 10
    assert info.value.status is not None and info.value.status < 0


def test_cancel_event_stops_the_command() -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(LocalCommandCancelled):
        run(["/bin/sh", "-c", "sleep 30"], cancel=cancel)
    assert time.monotonic() - start < 10


def test_a_background_child_holding_the_pipe_does_not_hang() -> None:
    start = time.monotonic()
    status = run(["/bin/sh", "-c", "sleep 20 & echo started"], stdout=lambda line: None)
    assert status == 0
    assert time.monotonic() - start < localexec.DRAIN_SECONDS + 5


def test_a_failing_callback_does_not_block_the_command() -> None:
    def boom(line: str) -> None:
        raise RuntimeError("bad callback")

    assert run([sys.executable, "-c", "print('x' * 10); print('y')"], stdout=boom) == 0


def test_command_is_logged_with_secrets_redacted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="amibake.localexec"):
        run(["/bin/echo", "token=s3cr3t", "a b"], secrets=["s3cr3t"])
    text = caplog.text
    assert "Executing: /bin/echo token=<sensitive> 'a b'" in text
    assert "s3cr3t" not in text


def test_secrets_are_redacted_from_the_error() -> None:
    with pytest.raises(LocalCommandError) as info:
        run(["/bin/sh", "-c", "echo pw=hunter2 >&2; exit 1", "hunter2"], check=True, secrets=["hunter2"])
    assert "hunter2" not in str(info.value)


def test_helpers() -> None:
    assert redact("a-secret-b-sec", ["sec", "secret"]) == "a-<sensitive>-b-<sensitive>"
    assert redact("abc", [""]) == "abc"
    assert describe(["/bin/sh", "-c", "echo hi"]) == "/bin/sh -c 'echo hi'"
    assert exit_description(127) == "exited with status 127 (command not found)"
    assert exit_description(126).endswith("(command found but not executable)")
    assert exit_description(-9) == "was killed by signal 9 (SIGKILL)"
