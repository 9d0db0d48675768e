"""The ``aws_secretsmanager`` template function against the stack's moto (which serves Secrets
Manager), through ``amibake build``/``validate`` as a user runs them: JSON
``{{ aws_secretsmanager `name` `key` }}`` in a variable's default, and HCL2
``aws_secretsmanager(name, key)`` in a local. The value reaches the build (a ``shell-local``
provisioner writes it to a file) and never the output; a missing secret or key is an error naming
the template, line and variable; the request goes to the endpoint of ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.stackkit import MotoServer

pytestmark = pytest.mark.stack

SECRET = "pa55-w0rd-Zq81"
PLAIN = "plain-secret-Xy7"


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "AMIBAKE_STATE_DIR": str(cwd / "state"), "AMIBAKE_NO_SERVER": "1",
                "AWS_MAX_ATTEMPTS": "2"}
    return subprocess.run(
        [sys.executable, "-m", "amibake", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=120,
    )


@pytest.fixture
def secrets(aws_env: dict[str, str], moto: MotoServer) -> dict[str, str]:
    sm = boto3.client("secretsmanager", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    sm.create_secret(Name="app/db", SecretString=json.dumps({"user": "admin", "password": SECRET}))
    sm.create_secret(Name="app/plain", SecretString=PLAIN)
    return aws_env


def json_template(tmp_path: Path, variables: dict[str, str]) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    tpl = {
        "variables": variables,
        "builders": [{"type": "null", "communicator": "none"}],
        "provisioners": [
            {
                "type": "shell-local",
                "inline": [f"printf %s '{{{{user `{k}`}}}}' > {out}/{k}.txt" for k in variables]
                + ["echo password is {{user `pw`}}"],
            }
        ],
    }
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(tpl, indent=2))
    return path


def test_json_function_reads_key_and_plaintext_and_redacts(
    secrets: dict[str, str], tmp_path: Path
) -> None:
    tpl = json_template(tmp_path, {
        "pw": "{{ aws_secretsmanager `app/db` `password` }}",
        "plain": "{{ aws_secretsmanager `app/plain` }}",
    })
    r = run(["build", "-color=false", str(tpl)], secrets, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out" / "pw.txt").read_text() == SECRET
    assert (tmp_path / "out" / "plain.txt").read_text() == PLAIN
    assert "password is <sensitive>" in r.stdout
    assert SECRET not in r.stdout + r.stderr and PLAIN not in r.stdout + r.stderr


def test_json_missing_secret_or_key_names_template_line_and_variable(
    secrets: dict[str, str], tmp_path: Path
) -> None:
    tpl = json_template(tmp_path, {"pw": "{{ aws_secretsmanager `app/nope` `password` }}"})
    r = run(["validate", str(tpl)], secrets, tmp_path)
    assert r.returncode == 1, r.stdout
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    assert f"{tpl.name}:3" in out and "variables.pw" in out, out
    assert "error calling aws_secretsmanager: ResourceNotFoundException" in out, out

    tpl.unlink()
    (tmp_path / "out").rmdir()
    tpl = json_template(tmp_path, {"pw": "{{ aws_secretsmanager `app/db` `pasword` }}"})
    r = run(["validate", str(tpl)], secrets, tmp_path)
    assert r.returncode == 1
    assert 'error calling aws_secretsmanager: No secret found for key "pasword"' in r.stdout + r.stderr
    assert SECRET not in r.stdout + r.stderr


def test_json_multiple_values_need_a_key(secrets: dict[str, str], tmp_path: Path) -> None:
    tpl = json_template(tmp_path, {"pw": "{{ aws_secretsmanager `app/db` }}"})
    r = run(["validate", str(tpl)], secrets, tmp_path)
    assert r.returncode == 1
    assert "Secret has multiple values and no key was set" in r.stdout + r.stderr
    assert SECRET not in r.stdout + r.stderr


def test_the_call_goes_to_the_endpoint_of_the_environment(secrets: dict[str, str], tmp_path: Path) -> None:
    tpl = json_template(tmp_path, {"pw": "{{ aws_secretsmanager `app/db` `password` }}"})
    closed = {**secrets, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens on port 9
    r = run(["validate", str(tpl)], closed, tmp_path)
    assert r.returncode == 1
    assert "Could not connect to the endpoint URL" in r.stdout + r.stderr, r.stdout
    r = run(["validate", str(tpl)], secrets, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


HCL = """
locals {
  pw = aws_secretsmanager("app/db", "password")
  plain = aws_secretsmanager("app/plain", null)
}
source "null" "s" {
  communicator = "none"
}
build {
  sources = ["source.null.s"]
  provisioner "shell-local" {
    inline = [
      "printf %s '${local.pw}' > OUT/pw.txt",
      "printf %s '${local.plain}' > OUT/plain.txt",
      "echo password is ${local.pw}",
    ]
  }
}
"""


def test_hcl2_function_in_a_build(secrets: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    tpl = tmp_path / "secret.pkr.hcl"
    tpl.write_text(HCL.replace("OUT", str(out)))
    r = run(["build", "-color=false", str(tpl)], secrets, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "pw.txt").read_text() == SECRET
    assert (out / "plain.txt").read_text() == PLAIN
    assert "password is <sensitive>" in r.stdout
    assert SECRET not in r.stdout + r.stderr and PLAIN not in r.stdout + r.stderr


def test_hcl2_plain_validate_leaves_the_secret_unknown(secrets: dict[str, str], tmp_path: Path) -> None:
    """As data sources: a plain ``validate`` makes no call (nothing listens at the endpoint, yet it
    passes); ``-evaluate-datasources`` reads the secret, and a missing one is an error naming the
    file and line."""
    out = tmp_path / "out"
    out.mkdir()
    tpl = tmp_path / "secret.pkr.hcl"
    tpl.write_text(HCL.replace("OUT", str(out)))
    closed = {**secrets, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    r = run(["validate", str(tpl)], closed, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(["validate", "-evaluate-datasources", str(tpl)], closed, tmp_path)
    assert r.returncode == 1 and "Could not connect to the endpoint URL" in r.stdout + r.stderr, r.stdout
    tpl.write_text(HCL.replace("OUT", str(out)).replace('"app/db"', '"app/nope"'))
    r = run(["validate", "-evaluate-datasources", str(tpl)], secrets, tmp_path)
    assert r.returncode == 1
    assert "secret.pkr.hcl:3:" in r.stdout + r.stderr and "ResourceNotFoundException" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
