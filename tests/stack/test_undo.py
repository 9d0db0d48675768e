"""Undo never stops early (#19 finding 3): a run journal that can no longer be written stops the build,
and every undo still runs; the message says the journal could not be written (no "internal error").

* in-process: every journal write fails (``EFBIG``) once the AMI's ``created`` entry is written;
* the finding's repro, as a real ``amibake build``: paused right after CreateImage, its file size
  limit is lowered to the journal's size (``prlimit``, as ``ulimit -f`` would), then it is
  interrupted: every ``removed`` entry fails, and the AMI, its snapshot and every temporary go.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.errors import BuildError
from amibake.journal import Journal
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from tests.stack.test_ebs_builder import Hooks, RecUi, assert_no_temporaries, make_config, make_env
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()


def ec2(moto: MotoServer) -> Any:
    return boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def snapshot_ids(moto: MotoServer) -> set[str]:
    return {s["SnapshotId"] for s in ec2(moto).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_journal_failing_after_create_image_still_undoes_everything(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot_ids(moto)
    original = Journal.write
    broken: list[bool] = []
    refused: list[str] = []

    def write(self: Journal, event: str, **data: Any) -> None:
        if broken:
            refused.append(f"{event} {data.get('kind', '')}")
            raise OSError(errno.EFBIG, "File too large")
        original(self, event, **data)
        if event == "created" and data.get("kind") == "image":
            broken.append(True)  # the disk is full from here on

    monkeypatch.setattr(Journal, "write", write)
    ui = RecUi()
    with pytest.raises(BuildError) as err:
        EbsBuilder(make_config(stack), make_env(ui)).run(Hooks("true"))
    message = str(err.value)
    assert "cannot write the run journal" in message and "File too large" in message, message
    # every undo ran although none of its removals could be recorded
    assert any(r.startswith("removed image") for r in refused), refused
    assert any(r.startswith("removed snapshot") for r in refused), refused
    assert ec2(moto).describe_images(Owners=["self"])["Images"] == []
    assert snapshot_ids(moto) - before == set(), "the AMI's snapshot was left behind"
    assert_no_temporaries(stack)
    assert "The run journal could not be written" in ui.text and "Every cleanup step still ran" in ui.text
    assert "Error during cleanup" not in ui.text, ui.text


class FullUi(RecUi):
    """A Ui whose output fails (stdout and stderr on a full disk) once ``full`` is set."""

    full: bool = False

    def _check(self) -> None:
        if self.full:
            raise OSError(errno.EFBIG, "File too large")

    def say(self, message: str) -> None:
        self._check()
        super().say(message)

    def message(self, message: str) -> None:
        self._check()
        super().message(message)

    def error(self, message: str) -> None:
        self._check()
        super().error(message)


def test_output_and_journal_full_still_undo_everything(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ulimit -f`` hits stdout/stderr too: every undo still runs (its messages are lost)."""
    before = snapshot_ids(moto)
    ui = FullUi()
    original = Journal.write

    def write(self: Journal, event: str, **data: Any) -> None:
        if ui.full:
            raise OSError(errno.EFBIG, "File too large")
        original(self, event, **data)
        if event == "created" and data.get("kind") == "image":
            ui.full = True

    monkeypatch.setattr(Journal, "write", write)
    with pytest.raises(BuildError, match="File too large"):
        EbsBuilder(make_config(stack), make_env(ui)).run(Hooks("true"))
    assert ec2(moto).describe_images(Owners=["self"])["Images"] == []
    assert snapshot_ids(moto) - before == set(), "the AMI's snapshot was left behind"
    assert_no_temporaries(stack)


@pytest.mark.parametrize("kind", ["key-pair", "image"])
def test_journal_full_before_a_create_makes_nothing_more(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The journal fills up just before a create call: that call is not made, what exists is undone."""
    before = snapshot_ids(moto)
    original = Journal.write
    broken: list[bool] = []

    def write(self: Journal, event: str, **data: Any) -> None:
        if event == "intent" and data.get("kind") == kind:
            broken.append(True)
        if broken:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, event, **data)

    monkeypatch.setattr(Journal, "write", write)
    ui = RecUi()
    with pytest.raises(BuildError) as err:
        EbsBuilder(make_config(stack), make_env(ui)).run(Hooks("true"))
    assert f"No space left on device (the intent to create the {kind} not recorded); no {kind} was created" \
        in str(err.value), str(err.value)
    assert ec2(moto).describe_images(Owners=["self"])["Images"] == []
    assert snapshot_ids(moto) - before == set()
    c = ec2(moto)
    assert c.describe_key_pairs()["KeyPairs"] == []
    assert [g["GroupName"] for g in c.describe_security_groups()["SecurityGroups"]] == ["default"]
    states = {i["State"]["Name"] for r in c.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states <= {"terminated"}
    assert "The run journal could not be written" in ui.text


TEMPLATE = {
    "variables": {"ssh_port": "22", "ssh_username": "", "ami_name": ""},
    "builders": [{
        "type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-785db401",
        "instance_type": "t2.micro", "ssh_host": "127.0.0.1", "ssh_port": "{{user `ssh_port`}}",
        "ssh_username": "{{user `ssh_username`}}", "ami_name": "{{user `ami_name`}}",
        "aws_polling": {"delay_seconds": 1, "max_attempts": 60},
    }],
    "provisioners": [{"type": "shell", "inline": ["true"]}],
}


def test_file_size_limit_during_build_leaves_nothing(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    """The finding's repro: ``ulimit -f`` reached while a build runs (here: right after CreateImage)."""
    before = snapshot_ids(moto)
    template = tmp_path / "t.json"
    template.write_text(json.dumps(TEMPLATE))
    state = tmp_path / "state"
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(state),
           "AMIBAKE_PAUSE_AT": "after-create-image", "AMIBAKE_PAUSE_SECONDS": "120"}
    cmd = [amibake_exe(), "build", "-var", f"ssh_port={stack.sshd.port}", "-var",
           f"ssh_username={stack.sshd.user}", "-var", f"ami_name=undo-{uuid.uuid4().hex[:8]}", str(template)]
    # stdout and stderr are pipes: only files (the journal) are subject to the size limit
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    err_lines: list[bytes] = []
    paused = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if b"amibake: paused at after-create-image" in line:
                paused.set()
        paused.set()  # ended without pausing: the assertion below says so

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert paused.wait(120), "the build never reached CreateImage"
        assert proc.poll() is None, b"".join(err_lines).decode(errors="replace")
        journal = next((state / "runs").glob("*.jsonl"))
        size = journal.stat().st_size
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (size, size))  # `ulimit -f` for that file
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    text = out.decode(errors="replace") + b"".join(err_lines).decode(errors="replace")
    assert journal.stat().st_size == size  # the limit held: nothing more was journaled
    assert ec2(moto).describe_images(Owners=["self"])["Images"] == [], text[-3000:]
    assert snapshot_ids(moto) - before == set(), "the AMI's snapshot was left behind"
    assert_no_temporaries(stack)
    assert proc.returncode == 130, (proc.returncode, text[-3000:])
    assert "internal error" not in text and "Traceback" not in text, text[-3000:]
    assert "The run journal could not be written" in text and "File too large" in text, text[-3000:]
    assert "Error during cleanup" not in text, text[-3000:]
    # the closing summary says what was removed, not what the journal could not record
    assert "Left behind" not in text and "Cleanup after the interruption removed 5 resource(s)" in text, text
