"""The run journal is durable: each record is on disk and fsync'ed before ``write`` returns.

On the stack (marked ``stack``): the ``intent`` record of every EC2 create call is on disk while that
call is in flight (read by the recording proxy as it answers the call, the build blocked on the
answer), and a build SIGKILLed during a create call leaves that intent, which ``amibake cleanup``
resolves to the resource the call created.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.journal import Journal, load_run
from tests.awsproxy import AwsProxy
from tests.stackkit import MotoServer, Stack


def test_every_record_is_written_then_fsynced_before_write_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal("run-durable", tmp_path)
    path = journal.path
    real_fsync = os.fsync
    #: per fsync call: (the file it syncs is the journal, records in the file when it was called)
    synced: list[tuple[bool, int]] = []

    synced_dirs: list[int] = []

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):  # the directory, once the journal's file was made in it
            synced_dirs.append(st.st_ino)
            real_fsync(fd)
            return
        same = path.exists() and (st.st_dev, st.st_ino) == (path.stat().st_dev, path.stat().st_ino)
        synced.append((same, len(path.read_bytes().splitlines()) if path.exists() else 0))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    build = journal.for_build("b")
    steps = [
        lambda: build.started(region="us-east-1"),
        lambda: build.intent("key-pair", "us-east-1", name="k"),
        lambda: build.created("key-pair", "us-east-1", "k", name="k"),
        lambda: build.intent("instance", "us-east-1", token="t-1"),
        lambda: build.created("instance", "us-east-1", "i-1", token="t-1"),
        lambda: build.removed("instance", "us-east-1", "i-1"),
        lambda: build.finished({"us-east-1": "ami-1"}),
    ]
    try:
        for n, step in enumerate(steps, start=1):
            step()
            # the record is in the file and was fsync'ed, after being written, before write returned
            assert len(synced) == n, f"record {n} returned without an fsync: {synced}"
            assert synced[-1] == (True, n), f"record {n}: fsync of another file or before the write: {synced}"
            assert len(path.read_bytes().splitlines()) == n
            # the new file's directory entry is made durable once, when the file is created
            assert synced_dirs == [journal.directory.stat().st_ino]
    finally:
        journal.close()
    events = [json.loads(line)["ev"] for line in path.read_bytes().splitlines()]
    assert events == ["build-started", "intent", "created", "intent", "created", "removed", "finished"]


def test_an_intent_alone_is_read_back_as_dangling(tmp_path: Path) -> None:
    """What a crash during a create call leaves: the intent, and no ``created``."""
    journal = Journal("run-crash", tmp_path)
    journal.for_build("b").intent("security-group", "us-east-1", name="packer_abc")
    # no close(): as after SIGKILL; a second reader sees the record already
    rec = load_run(journal.path)
    assert [(r.kind, r.region, r.id) for r in rec.dangling] == [("security-group", "us-east-1", "packer_abc")]
    assert rec.live == []
    journal.close()


def test_the_journal_file_is_private(tmp_path: Path) -> None:
    journal = Journal("run-mode", tmp_path / "new" / "state")  # parents made as needed
    journal.for_build("b").intent("key-pair", "us-east-1", name="k")
    journal.close()
    assert journal.path.stat().st_mode & 0o077 == 0
    assert journal.directory.stat().st_mode & 0o777 == 0o700
    # a second run in the same (existing) directory
    other = Journal("run-other", tmp_path / "new" / "state")
    other.for_build("b").intent("key-pair", "us-east-1", name="k2")
    other.close()
    assert sorted(p.name for p in journal.directory.iterdir()) == ["run-mode.jsonl", "run-other.jsonl"]


def test_each_record_names_its_run_and_time_and_takes_any_value(tmp_path: Path) -> None:
    journal = Journal("run-fields", tmp_path)
    journal.for_build("b").intent("image", "us-east-1", name="ami", where=tmp_path / "x")
    journal.close()
    (entry,) = [json.loads(line) for line in journal.path.read_bytes().splitlines()]
    assert entry["run"] == "run-fields" and entry["ev"] == "intent" and entry["build"] == "b"
    assert entry["at"].startswith("20") and entry["at"].endswith("Z")
    assert entry["where"] == str(tmp_path / "x")  # a non-JSON value is written as its text


# ---- on the stack: the intent is on disk while the create call is in flight ------------------

#: EC2 create call -> (journal kind, request parameter the intent names it by, intent key)
CREATES = {
    "CreateKeyPair": ("key-pair", "KeyName", "name"),
    "CreateSecurityGroup": ("security-group", "GroupName", "name"),
    "RunInstances": ("instance", "ClientToken", "token"),
    "CreateImage": ("image", "Name", "name"),
    "CopyImage": ("image", "Name", "name"),
}


class JournalWatch(AwsProxy):
    """The recording proxy, reading the build's journal from disk while it answers a create call.

    moto has done the call; the build is still blocked waiting for the answer, so whatever the
    journal holds now was written before the call returned. ``kill_on``: SIGKILL the build there.
    """

    def __init__(self, upstream: str, state_dir: Path, kill_on: str = "") -> None:
        super().__init__(upstream)
        self.state_dir = state_dir
        self.kill_on = kill_on
        self.proc: subprocess.Popen[bytes] | None = None
        #: (create action, the journal entries on disk while moto's answer to it was on its way)
        self.during: list[tuple[str, list[dict[str, Any]]]] = []

    def __enter__(self) -> JournalWatch:
        self.start()
        return self

    def observe(self, action: str, body: bytes) -> bytes:
        if action in CREATES:
            entries = [json.loads(line) for p in sorted((self.state_dir / "runs").glob("*.jsonl"))
                       for line in p.read_bytes().splitlines() if line.strip()]
            with self._lock:
                self.during.append((action, entries))
            if action == self.kill_on and self.proc is not None:
                self.proc.send_signal(signal.SIGKILL)
        return super().observe(action, body)


def _template(stack: Stack, tmp_path: Path) -> Path:
    template = {"builders": [{
        "type": "amazon-ebs", "name": "durable", "region": "us-east-1", "source_ami": "ami-785db401",
        "instance_type": "t2.micro", "ssh_username": stack.sshd.user, "ssh_host": "127.0.0.1",
        "ssh_port": stack.sshd.port, "ssh_timeout": "60s", "ami_regions": ["us-west-2"],
        "ami_name": f"durable-{uuid.uuid4().hex[:8]}",
    }]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template))
    return path


def _start(stack: Stack, proxy: JournalWatch, template: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **stack.env(), "AWS_ENDPOINT_URL": proxy.url,
           "AMIBAKE_STATE_DIR": str(proxy.state_dir)}
    with open(tmp_path / "out", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "amibake", "build", "-color=false", str(template)],
                                cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    proxy.proc = proc
    return proc


@pytest.mark.stack
def test_each_create_calls_intent_is_on_disk_while_the_call_is_in_flight(
    stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    with JournalWatch(moto.url, tmp_path / "state") as proxy:
        proc = _start(stack, proxy, _template(stack, tmp_path), tmp_path)
        rc = proc.wait(180)
        out = (tmp_path / "out").read_text(errors="replace")
        assert rc == 0, out
        requests = [r for r in proxy.requests if r.action in CREATES and r.status == 200]
    seen = [action for action, _ in proxy.during]
    assert sorted(seen) == sorted(CREATES), seen
    # pair each in-flight snapshot with its request (answers go out in the order observe() ran)
    assert [r.action for r in requests] == seen
    for request, (action, entries) in zip(requests, proxy.during, strict=True):
        kind, param, key = CREATES[action]
        ident = request.params[param]
        region = request.region
        intents = [e for e in entries if e["ev"] == "intent" and e["kind"] == kind
                   and e.get(key) == ident and e.get("region") == region]
        assert intents, f"{action} {ident} ({region}): no intent on disk during the call; journal:\n{entries}"
        created = [e for e in entries if e["ev"] == "created" and e["kind"] == kind and e.get(key) == ident
                   and e.get("region") == region]
        assert not created, f"{action}: 'created' written before the call returned?\n{entries}"


@pytest.mark.stack
def test_sigkill_during_a_create_call_leaves_the_intent_for_cleanup(
    stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    with JournalWatch(moto.url, tmp_path / "state", kill_on="CreateSecurityGroup") as proxy:
        proc = _start(stack, proxy, _template(stack, tmp_path), tmp_path)
        assert proc.wait(120) == -signal.SIGKILL, (tmp_path / "out").read_text(errors="replace")
        (group,) = [r.params["GroupName"] for r in proxy.sent("CreateSecurityGroup")]
    (path,) = (tmp_path / "state" / "runs").glob("*.jsonl")
    rec = load_run(path)
    assert ("security-group", "us-east-1", group) in [(r.kind, r.region, r.id) for r in rec.dangling]
    ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")

    def groups() -> list[str]:
        return [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]

    assert group in groups()  # moto made it; the build died before hearing so
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(tmp_path / "state")}
    res = subprocess.run([sys.executable, "-m", "amibake", "cleanup", "--run", rec.run_id], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert group not in groups(), res.stdout


def test_load_run_reads_back_what_a_crash_leaves(tmp_path: Path) -> None:
    """Intents are matched to their ``created`` record by client token (instances) or name: what is
    left unmatched is what a crash during the call leaves, with its build and region."""
    journal = Journal("run-readback", tmp_path)
    b = journal.for_build("web")
    b.started(region="us-east-1")
    b.intent("instance", "us-east-1", token="tok-1")
    b.created("instance", "us-east-1", "i-1", token="tok-1")
    b.intent("instance", "us-west-2", token="tok-2")  # in flight at the crash
    b.intent("key-pair", "us-east-1", name="kp")
    b.created("key-pair", "us-east-1", "kp", name="kp")
    journal.close()
    rec = load_run(journal.path)
    first = json.loads(journal.path.read_bytes().splitlines()[0])
    assert rec.run_id == "run-readback" and rec.path == journal.path
    assert rec.started == first["at"]
    assert rec.builds == {"web"} and rec.regions == {"us-east-1", "us-west-2"}
    assert [(r.kind, r.region, r.id, r.build) for r in rec.dangling] == [
        ("instance", "us-west-2", "tok-2", "web")]
    assert [(r.kind, r.region, r.id, r.build) for r in rec.live] == [
        ("instance", "us-east-1", "i-1", "web"), ("key-pair", "us-east-1", "kp", "web")]
    assert rec.live[0].detail.get("token") == "tok-1"


def test_a_record_after_a_torn_last_line_starts_a_line_of_its_own(tmp_path: Path) -> None:
    """A writer killed mid-write leaves a last line with no newline; the next record (another
    process's, e.g. cleanup's ``removed``) must not be glued to it and lost with it when read."""
    from amibake.journal import Journal, _entries

    j = Journal("run-torn", tmp_path)
    j.write("created", kind="instance", id="i-1", region="r")
    j.close()
    with open(j.path, "ab") as f:
        f.write(b'{"ev": "created", "kind": "key')  # torn
    again = Journal("run-torn", tmp_path)
    again.write("removed", kind="instance", id="i-1", region="r")
    again.close()
    events = [e["ev"] for e in _entries(j.path)]
    assert events == ["created", "removed"], j.path.read_bytes()
