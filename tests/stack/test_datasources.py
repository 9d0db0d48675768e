"""The AWS data sources against the local moto server: EC2 DescribeImages on moto's bundled AMIs,
SSM parameters and Secrets Manager secrets created here, through the runner, ``load_template``
and ``amibake validate -evaluate-datasources``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.core import load_template
from amibake.datasources import DatasourceError, DatasourceRunner
from amibake.errors import TemplateError
from tests.awsproxy import AwsProxy
from tests.stackkit import MotoServer

pytestmark = pytest.mark.stack

UBUNTU_OWNER = "099720109477"
XENIAL = "ami-785db401"


@pytest.fixture
def env(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment pointed at moto (boto3 reads AWS_ENDPOINT_URL from it)."""
    for k, v in aws_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return aws_env


def boto(env: dict[str, str], service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=env["AWS_ENDPOINT_URL"])


def run(typ: str, config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    r = DatasourceRunner(execute=True)
    return r(typ, "x", config), r.secrets


# --- amazon-ami ---------------------------------------------------------------------------------


@pytest.mark.effect("datasource/amazon-ami", "owners", "filters")
def test_ami_by_filter(env: dict[str, str]) -> None:
    out, secrets = run(
        "amazon-ami",
        {"owners": [UBUNTU_OWNER], "filters": {"name": "ubuntu/images/hvm-ssd/ubuntu-xenial-*"}},
    )
    assert out["id"] == XENIAL
    assert out["name"].startswith("ubuntu/images/hvm-ssd/ubuntu-xenial-16.04")
    assert out["owner"] == UBUNTU_OWNER
    assert out["creation_date"] and isinstance(out["tags"], dict)
    assert secrets == []


@pytest.mark.effect("datasource/amazon-ami", "most_recent")
def test_ami_several_or_none(env: dict[str, str]) -> None:
    several = {"owners": [UBUNTU_OWNER], "filters": {"name": "ubuntu/images/hvm-ssd/*"}}
    with pytest.raises(DatasourceError, match="more than one result"):
        run("amazon-ami", several)
    out, _ = run("amazon-ami", {**several, "most_recent": True})
    assert out["id"] in {XENIAL, "ami-1e749f67"}
    with pytest.raises(DatasourceError, match="No AMI was found matching filters"):
        run("amazon-ami", {"owners": ["self"], "filters": {"name": "nothing-*"}})


def test_ami_most_recent_of_own_images(env: dict[str, str], moto: MotoServer) -> None:
    ec2 = boto(env, "ec2")
    ec2.create_tags(Resources=[XENIAL], Tags=[{"Key": "Role", "Value": "base"}])
    out, _ = run("amazon-ami", {"owners": [UBUNTU_OWNER], "filters": {"tag:Role": "base"}})
    assert out["id"] == XENIAL and out["tags"] == {"Role": "base"}


@pytest.mark.effect("datasource/amazon-ami", "custom_endpoint_ec2")
def test_ami_custom_endpoint_ec2(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")  # not used by EC2
    out, _ = run(
        "amazon-ami",
        {
            "owners": [UBUNTU_OWNER],
            "filters": {"image-id": XENIAL},
            "custom_endpoint_ec2": env["AWS_ENDPOINT_URL"],
            "region": "us-east-1",
            "access_key": "testing",
            "secret_key": "testing",
        },
    )
    assert out["id"] == XENIAL


# --- amazon-parameterstore ----------------------------------------------------------------------


@pytest.mark.effect("datasource/amazon-parameterstore", "name", "with_decryption")
def test_parameterstore(env: dict[str, str], moto: MotoServer) -> None:
    ssm = boto(env, "ssm")
    ssm.put_parameter(Name="/base/ami", Value=XENIAL, Type="String")
    ssm.put_parameter(Name="/base/ami", Value="ami-12345678", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/db/password", Value="s3cr3t-pw-value", Type="SecureString")
    out, secrets = run("amazon-parameterstore", {"name": "/base/ami"})
    assert out["value"] == "ami-12345678" and out["version"] == "2"
    assert out["arn"].endswith("parameter/base/ami")
    assert secrets == []
    out, secrets = run("amazon-parameterstore", {"name": "/db/password", "with_decryption": True})
    assert out["value"] == "s3cr3t-pw-value"
    assert secrets == ["s3cr3t-pw-value"]
    out, secrets = run("amazon-parameterstore", {"name": "/db/password"})
    assert out["value"] != "s3cr3t-pw-value" and secrets == []
    with pytest.raises(DatasourceError, match=r'^The parameter name "/nope" not found$'):
        run("amazon-parameterstore", {"name": "/nope"})


# --- amazon-secretsmanager ----------------------------------------------------------------------


@pytest.mark.effect("datasource/amazon-secretsmanager", "name", "key", "version_stage", "version_id")
def test_secretsmanager(env: dict[str, str], moto: MotoServer) -> None:
    sm = boto(env, "secretsmanager")
    doc = {"user": "admin", "password": "hunter2-x", "replicas": ["db-2.internal", {"port": 5433}]}
    created = sm.create_secret(Name="app/db", SecretString=json.dumps(doc))
    sm.create_secret(Name="plain", SecretString="just-a-token-123")
    sm.create_secret(Name="bin", SecretBinary=b"binary-key-\x01")
    out, secrets = run("amazon-secretsmanager", {"name": "app/db", "key": "password"})
    assert out["value"] == "hunter2-x"
    assert json.loads(out["secret_string"]) == doc
    assert out["version_id"] == created["VersionId"] and out["secret_binary"] == ""
    assert "hunter2-x" in secrets and out["secret_string"] in secrets and "admin" in secrets
    assert "db-2.internal" in secrets and "5433" in secrets  # every leaf, in lists too, is redacted
    out, secrets = run("amazon-secretsmanager", {"name": "bin"})
    assert (out["secret_binary"], out["secret_string"], out["value"]) == ("binary-key-\x01", "", "")
    assert secrets == ["binary-key-\x01"]
    out, _ = run("amazon-secretsmanager", {"name": "app/db"})
    assert out["value"] == "admin"
    out, _ = run("amazon-secretsmanager", {"name": "plain"})
    assert out["value"] == "just-a-token-123"
    out, _ = run("amazon-secretsmanager", {"name": created["ARN"], "version_stage": "AWSCURRENT"})
    assert out["value"] == "admin"
    missing = r'^Secrets Manager Secret "missing" Version "AWSCURRENT" not found$'
    with pytest.raises(DatasourceError, match=missing):
        run("amazon-secretsmanager", {"name": "missing"})
    with pytest.raises(DatasourceError, match=r'Version "v-nope" not found|error reading Secrets Manager'):
        run("amazon-secretsmanager", {"name": "app/db", "version_id": "v-nope"})


# --- access options (every AWS data source shares them) -------------------------------------------

@pytest.mark.effect("datasource/amazon-ami", "access_key", "secret_key", "token", "region", "profile",
                    "shared_credentials_file", "max_retries", "include_deprecated")
@pytest.mark.effect("datasource/amazon-parameterstore", "access_key", "secret_key", "token", "region",
                    "profile", "shared_credentials_file")
@pytest.mark.effect("datasource/amazon-secretsmanager", "access_key", "secret_key", "token", "region",
                    "profile", "shared_credentials_file")
@pytest.mark.parametrize("typ", ["amazon-ami", "amazon-parameterstore", "amazon-secretsmanager"])
def test_access_options_sign_and_route_the_call(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, typ: str
) -> None:
    region = "eu-west-3"
    action, config = {
        "amazon-ami": (
            "DescribeImages", {"owners": [UBUNTU_OWNER], "filters": {"name": "*"}, "most_recent": True}
        ),
        "amazon-parameterstore": ("GetParameter", {"name": "/access/p"}),
        "amazon-secretsmanager": ("GetSecretValue", {"name": "access/s"}),
    }[typ]
    regional = boto3.client  # seeded in the data source's region only
    regional("ssm", region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"]).put_parameter(
        Name="/access/p", Value="v", Type="String", Overwrite=True
    )
    sm = regional("secretsmanager", region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"])
    if not sm.list_secrets(Filters=[{"Key": "name", "Values": ["access/s"]}])["SecretList"]:
        sm.create_secret(Name="access/s", SecretString="v")
    creds = tmp_path / "credentials"
    creds.write_text(
        "[named]\naws_access_key_id = AKIDPROFILE000001\naws_secret_access_key = x\n"
        "[default]\naws_access_key_id = AKIDSHAREDFILE001\naws_secret_access_key = x\n"
    )
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with AwsProxy(env["AWS_ENDPOINT_URL"], error_rate=1.0 if typ == "amazon-ami" else 0.0) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        keys = {"access_key": "AKIDSTATIC0000001", "secret_key": "x", "token": "the-session-token"}
        if typ == "amazon-ami":
            # every EC2 answer is a 500: max_retries bounds the attempts (1 + 2 retries)
            with pytest.raises(DatasourceError):
                run(typ, {**config, **keys, "region": region, "max_retries": 2, "include_deprecated": True})
            sent = proxy.sent(action)
            assert len(sent) == 3
            assert sent[0].params["IncludeDeprecated"] == "true"
            proxy.error_rate = 0.0
        else:
            run(typ, {**config, **keys, "region": region})
            sent = proxy.sent(action)
        assert (sent[-1].access_key, sent[-1].security_token, sent[-1].region) == (
            "AKIDSTATIC0000001", "the-session-token", region
        )
        file = {"shared_credentials_file": str(creds), "region": region}
        run(typ, {**config, **file, "profile": "named"})
        assert (proxy.sent(action)[-1].access_key, proxy.sent(action)[-1].security_token) == (
            "AKIDPROFILE000001", ""
        )
        run(typ, {**config, **file})
        assert proxy.sent(action)[-1].access_key == "AKIDSHAREDFILE001"


class _Failing(BaseHTTPRequestHandler):
    """Every request is a 500: counts the attempts."""

    hits: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.hits.append(self.headers.get("X-Amz-Target", ""))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.effect("datasource/amazon-parameterstore", "custom_endpoint_ec2", "max_retries")
@pytest.mark.effect("datasource/amazon-secretsmanager", "custom_endpoint_ec2", "max_retries")
@pytest.mark.parametrize("typ", ["amazon-parameterstore", "amazon-secretsmanager"])
def test_custom_endpoint_and_max_retries_of_json_services(env: dict[str, str], typ: str) -> None:
    """As in Packer (the endpoint is set on the session), SSM and Secrets Manager calls go to
    ``custom_endpoint_ec2`` too; a failing endpoint sees 1 + max_retries attempts."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    _Failing.hits = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DatasourceError):
            run(typ, {"name": "n", "custom_endpoint_ec2": f"http://127.0.0.1:{srv.server_address[1]}",
                      "max_retries": 2, "region": "us-east-1"})
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(_Failing.hits) == 3
    assert _Failing.hits[0].endswith("GetParameter" if typ == "amazon-parameterstore" else "GetSecretValue")


@pytest.mark.effect("datasource/amazon-ami", "insecure_skip_tls_verify")
@pytest.mark.effect("datasource/amazon-parameterstore", "insecure_skip_tls_verify")
@pytest.mark.effect("datasource/amazon-secretsmanager", "insecure_skip_tls_verify")
@pytest.mark.parametrize("typ", ["amazon-ami", "amazon-parameterstore", "amazon-secretsmanager"])
def test_insecure_skip_tls_verify(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, moto: MotoServer, typ: str
) -> None:
    """An HTTPS endpoint with a self-signed certificate (tests/tlsfront.py in front of moto): the
    call is refused on the certificate, with a clear error, unless insecure_skip_tls_verify."""
    from tests.tlsfront import TlsFront

    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    cases: dict[str, dict[str, Any]] = {
        "amazon-ami": {"owners": [UBUNTU_OWNER], "filters": {"image-id": XENIAL}},
        "amazon-parameterstore": {"name": "/tls/p"},
        "amazon-secretsmanager": {"name": "tls/s"},
    }
    boto(env, "ssm").put_parameter(Name="/tls/p", Value="over-tls", Type="String")
    boto(env, "secretsmanager").create_secret(Name="tls/s", SecretString="over-tls")
    with TlsFront(env["AWS_ENDPOINT_URL"]) as front:
        # custom_endpoint_ec2 serves every service of a data source, as in Packer
        config = {**cases[typ], "custom_endpoint_ec2": front.url, "region": "us-east-1", "max_retries": 1}
        with pytest.raises(DatasourceError, match=r"certificate verify failed.*insecure_skip_tls_verify"):
            run(typ, config)
        assert front.handshakes == 0 and front.wait_refused()
        out, _ = run(typ, {**config, "insecure_skip_tls_verify": True})
        assert front.handshakes >= 1
    assert (out["id"] if typ == "amazon-ami" else out["value"]) == (
        XENIAL if typ == "amazon-ami" else "over-tls")


# --- whole templates ------------------------------------------------------------------------------

TEMPLATE = """
data "amazon-ami" "ubuntu" {
  owners  = ["UBUNTU_OWNER"]
  filters = { name = "ubuntu/images/hvm-ssd/ubuntu-xenial-*" }
}
data "amazon-parameterstore" "itype" {
  name = "/build/instance_type"
}
data "amazon-secretsmanager" "pw" {
  name = "build/pw"
  key  = "password"
}
source "amazon-ebs" "a" {
  region        = "us-east-1"
  source_ami    = data.amazon-ami.ubuntu.id
  instance_type = data.amazon-parameterstore.itype.value
  ssh_username  = "u"
  ssh_password  = data.amazon-secretsmanager.pw.value
  ami_name      = "from-data-sources"
  # not ami_name: Packer's validate checks the "<unknown>" placeholder against the AMI name rules
  ami_description = "from ${data.amazon-ami.ubuntu.id}"
}
build {
  sources = ["source.amazon-ebs.a"]
}
""".replace("UBUNTU_OWNER", UBUNTU_OWNER)


def seed(env: dict[str, str]) -> None:
    boto(env, "ssm").put_parameter(Name="/build/instance_type", Value="t3.small", Type="String")
    boto(env, "secretsmanager").create_secret(Name="build/pw", SecretString='{"password": "pw-0123456789"}')


def test_load_template_executes_and_registers_secrets(env: dict[str, str], tmp_path: Path) -> None:
    seed(env)
    p = tmp_path / "t.pkr.hcl"
    p.write_text(TEMPLATE)
    run_ctx = load_template(p)
    cfg = run_ctx.template.builds[0].sources[0].config
    assert cfg["source_ami"] == XENIAL and cfg["instance_type"] == "t3.small"
    assert cfg["ami_description"] == f"from {XENIAL}" and cfg["ssh_password"] == "pw-0123456789"
    assert "pw-0123456789" in run_ctx.secrets()


def test_failure_names_the_data_source(env: dict[str, str], tmp_path: Path) -> None:
    p = tmp_path / "t.pkr.hcl"
    p.write_text(TEMPLATE)  # nothing seeded: the parameter and the secret are missing
    with pytest.raises(TemplateError) as ei:
        load_template(p)
    text = ei.value.render()
    assert 'The parameter name "/build/instance_type" not found' in text
    assert 'Secrets Manager Secret "build/pw" Version "AWSCURRENT" not found' in text
    assert "data.amazon-parameterstore.itype" in text and "t.pkr.hcl:6" in text


def amibake(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amibake", *args],
        cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )


def test_validate_cli(env: dict[str, str], tmp_path: Path) -> None:
    p = tmp_path / "t.pkr.hcl"
    p.write_text(TEMPLATE)
    # not executed: nothing seeded, still valid
    r = amibake(["validate", str(p)], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "The configuration is valid." in r.stdout
    # executed: the missing parameter is an error naming the data source
    r = amibake(["validate", "-evaluate-datasources", str(p)], env, tmp_path)
    assert r.returncode == 1
    assert 'The parameter name "/build/instance_type" not found' in r.stderr
    seed(env)
    r = amibake(["validate", "-evaluate-datasources", str(p)], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "pw-0123456789" not in r.stdout + r.stderr
