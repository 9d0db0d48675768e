"""A sensitive value with any characters never reaches an output of a real build, in any encoding.

Hypothesis draws secrets of arbitrary printable characters (quotes, ``&``, ``%``, ``$``, spaces,
non-ASCII); each is a sensitive variable that a real ``amibake build`` against the local stack
sends everywhere a value can go: EC2 tags (URL-encoded in the query, XML-escaped in the answer),
user data (base64), a remote command's environment (shell-quoted), a local command's environment
and output, a remote command's output. Then every channel is grepped for the secret in each form
it could take: stdout, stderr, the debug log (``PACKER_LOG=1``), the manifest and the run journal.
The debug log already exists with mode 0644 and must come out 0600.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import stat
import subprocess
import urllib.parse
import uuid
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack

AMIBAKE = amibake_exe()

TEMPLATE: dict[str, Any] = {
    "variables": {"ssh_host": "", "ssh_port": "22", "ssh_username": "", "ami_name": "", "secret": ""},
    "sensitive-variables": ["secret"],
    "builders": [{
        "type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-785db401",
        "instance_type": "t2.micro",
        "ssh_username": "{{user `ssh_username`}}", "ssh_host": "{{user `ssh_host`}}",
        "ssh_port": "{{user `ssh_port`}}", "ssh_timeout": "60s",
        "ami_name": "{{user `ami_name`}}",
        "user_data": "{{user `secret`}}",
        "tags": {"Secret": "{{user `secret`}}"},
        "run_tags": {"Secret": "{{user `secret`}}"},
    }],
    "provisioners": [
        {"type": "shell", "environment_vars": ["SECRET={{user `secret`}}"],
         "inline": ['echo "remote: $SECRET"']},
        {"type": "shell-local", "environment_vars": ["SECRET={{user `secret`}}"],
         "inline": ['echo "local: $SECRET"']},
    ],
    "post-processors": [{"type": "manifest", "output": "manifest.json"}],
}


def forms(secret: str) -> dict[str, str]:
    """The secret as each channel could carry it, had it not been redacted."""
    return {
        "raw": secret,
        "xml": escape(secret),
        "xml-quotes": escape(secret, {'"': "&quot;", "'": "&apos;"}),
        "json": json.dumps(secret)[1:-1],
        "url": urllib.parse.quote(secret, safe="-_.~"),
        "url-plus": urllib.parse.quote_plus(secret),
        "shell": shlex.quote(secret),
        "shell-inner": secret.replace("'", "'\"'\"'"),
        "repr": repr(secret)[1:-1],
        "bytes-repr": repr(secret.encode())[2:-1],
        "base64": base64.b64encode(secret.encode()).decode(),
    }


#: printable text with the characters that change under each encoding; no braces (a JSON
#: template's variable values are themselves templates), no line breaks (echo prints them apart)
SECRETS = st.text(
    alphabet=st.sampled_from("abcXYZ0189 '\"!,%&<>;$`\\|*?#=+/@-_.~:^()[]üé✓"), min_size=8, max_size=20,
).filter(lambda s: s.strip() == s and sum(c.isalnum() for c in s) >= 3 and "<sensitive>" not in s)


def _build(stack: Stack, base: Path, secret: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    work = base / uuid.uuid4().hex[:8]
    work.mkdir(parents=True)
    (work / "template.json").write_text(json.dumps(TEMPLATE, indent=1))
    log = work / "debug.log"
    log.write_text("")
    log.chmod(0o644)  # left by an earlier run, readable by others
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(work / "state"), "PACKER_LOG": "1",
           "PACKER_LOG_PATH": str(log), "AMIBAKE_NO_SERVER": "1"}
    cmd = [AMIBAKE, "build", "-var", f"ssh_host={stack.env()['AMIBAKE_SSH_HOST']}",
           "-var", f"ssh_port={stack.sshd.port}", "-var", f"ssh_username={stack.sshd.user}",
           "-var", f"ami_name=secret-{uuid.uuid4().hex[:8]}", "-var", f"secret={secret}", "template.json"]
    res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=180)
    return res, work, log


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example("p@ss w0rd'!,x%y&z")
@example("ü<&>\"'$`\\x!")
@given(secret=SECRETS)
def test_a_secret_never_reaches_any_output_of_a_build(
    stack: Stack, moto: MotoServer, tmp_path: Path, secret: str
) -> None:
    res, work, log = _build(stack, tmp_path, secret)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "remote: <sensitive>" in res.stdout and "local: <sensitive>" in res.stdout, res.stdout[-3000:]
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    debug = log.read_text(errors="replace")
    assert "DEBUG" in debug and "RunInstances" in debug  # the log did log the requests
    channels = {"stdout": res.stdout, "stderr": res.stderr, "debug log": debug}
    channels |= {str(p.relative_to(work)): p.read_text(errors="replace")
                 for p in work.rglob("*") if p.is_file() and p.name not in ("debug.log", "template.json")}
    assert "manifest.json" in channels
    for channel, text in channels.items():
        for name, form in forms(secret).items():
            assert form not in text, f"{channel} holds the secret ({name} form {form!r})"
