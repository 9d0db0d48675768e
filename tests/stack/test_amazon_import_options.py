"""Every option of ``amazon-import`` takes effect (the option-effect rule): in-process runs of the
post-processor against the stack (moto's S3, the VM Import EMULATION of tests/vmimport_emulation.py),
each EC2 and STS request seen through the recording proxy, the end state read from moto."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon.amazon_import.config import AmazonImportConfig
from amibake.plugins.amazon.amazon_import.postprocessor import AmazonImportPostProcessor
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.postprocessors.common import FileArtifact
from tests.awsproxy import AwsProxy
from tests.stack.test_ebs_builder import RecUi, make_env
from tests.stack.test_ebs_options import ThrottleFirst, _creds_files, _no_env_credentials, _serve, one
from tests.stack.test_reliability import inventory
from tests.stackkit import MotoServer

pytestmark = pytest.mark.stack
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto: MotoServer) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)  # S3 and STS; EC2 through custom_endpoint_ec2
    CLIENTS.clear()


def aws(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.url, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"opts-{uuid.uuid4().hex[:10]}"
    aws(moto, "s3").create_bucket(Bucket=name)
    iam = aws(moto, "iam")
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "vmie.amazonaws.com"},
                            "Action": "sts:AssumeRole"}]}
    try:
        iam.create_role(RoleName="vmimport", AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    return name


def config(endpoint: str, bucket: str, **over: Any) -> AmazonImportConfig:
    base: dict[str, Any] = dict(region=REGION, access_key="testing", secret_key="testing",
                                custom_endpoint_ec2=endpoint, s3_bucket_name=bucket, format="raw",
                                s3_key_name=f"opts/{uuid.uuid4().hex[:8]}.raw",
                                aws_polling={"delay_seconds": 1, "max_attempts": 30})
    base.update(over)
    return AmazonImportConfig.model_validate(base)


def run(cfg: AmazonImportConfig, tmp_path: Path, ui: RecUi | None = None) -> str:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * 8192)
    artifact, keep, _ = AmazonImportPostProcessor(cfg, make_env(ui or RecUi())).post_process(
        FileArtifact("test", files=[str(disk)]))
    assert keep is False
    [ami] = artifact.id.split(",")
    return ami.split(":")[1]


@pytest.mark.effect("post-processor/amazon-import", "architecture", "ami_encrypt", "ami_kms_key",
                    "ami_groups", "ami_org_arns", "ami_ou_arns", "imds_support", "ami_name")
def test_image_options_reach_import_copy_and_attributes(
    moto: MotoServer, bucket: str, tmp_path: Path,
) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/abcd"
    with AwsProxy(moto.url) as proxy:
        ami = run(config(proxy.url, bucket, architecture="arm64", ami_encrypt=True, ami_kms_key=key,
                         ami_name=f"enc-{uuid.uuid4().hex[:6]}", ami_groups=["all"],
                         ami_org_arns=["arn:aws:organizations::123456789012:organization/o-1"],
                         ami_ou_arns=["arn:aws:organizations::123456789012:ou/o-1/ou-1"],
                         imds_support="v2.0", platform="linux"), tmp_path)
        imp = one(proxy, "ImportImage").params
        assert (imp["Architecture"], imp["BootMode"], imp["Encrypted"], imp["KmsKeyId"]) == (
            "arm64", "uefi", "true", key)  # arm64 imports boot uefi by default
        copy = one(proxy, "CopyImage").params
        assert (copy["Encrypted"], copy["KmsKeyId"]) == ("true", key)
        sent = {k: v for r in proxy.sent("ModifyImageAttribute") for k, v in r.params.items()
                if r.params["ImageId"] == ami}
        assert sent["UserGroup.1"] == "all" and sent["LaunchPermission.Add.1.Group"] == "all"
        assert sent["OrganizationArn.1"].endswith("o-1")
        assert sent["LaunchPermission.Add.1.OrganizationalUnitArn"].endswith("ou-1") or \
            sent["OrganizationalUnitArn.1"].endswith("ou-1")
        assert sent["ImdsSupport.Value"] == "v2.0"


@pytest.mark.effect("post-processor/amazon-import", "s3_encryption", "s3_encryption_key", "skip_clean")
def test_the_upload_is_encrypted_as_asked(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    cfg = config(moto.url, bucket, s3_encryption="aws:kms", s3_encryption_key="alias/images", skip_clean=True)
    run(cfg, tmp_path)
    head = aws(moto, "s3").head_object(Bucket=bucket, Key=cfg.s3_key_name)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith("alias/images")
    ui = RecUi()
    cfg = config(moto.url, bucket, s3_encryption="AES256", s3_encryption_key="ignored", skip_clean=True)
    run(cfg, tmp_path, ui)
    head = aws(moto, "s3").head_object(Bucket=bucket, Key=cfg.s3_key_name)
    assert head["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in head
    assert "==> Ignoring s3_encryption_key because s3_encryption is set to 'AES256'" in ui.lines


@pytest.mark.effect("post-processor/amazon-import", "access_key", "secret_key", "token", "region",
                    "custom_endpoint_ec2")
def test_static_credentials_and_the_ec2_endpoint(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with AwsProxy(moto.url) as proxy:
        _no_env_credentials(monkeypatch, proxy)
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: only the option
        run(config(proxy.url, bucket, access_key="AKIASTATIC000000001", secret_key="s", token="tok-123"),
            tmp_path)
        # custom_endpoint_ec2 serves every service of the session, S3 too (Packer sets it on the session)
        assert {r.service for r in proxy.requests} == {"ec2", "s3"}
        assert {r.action for r in proxy.requests} >= {"ImportImage", "DescribeImportImageTasks"}
        assert {r.access_key for r in proxy.requests} == {"AKIASTATIC000000001"}
        assert {r.security_token for r in proxy.requests} == {"tok-123"}
        assert {r.region for r in proxy.requests} == {REGION}


@pytest.mark.effect("post-processor/amazon-import", "assume_role")
def test_assume_role_signs_the_import_with_the_role(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with AwsProxy(moto.url) as proxy:
        _no_env_credentials(monkeypatch, proxy)
        run(config(proxy.url, bucket, access_key="AKIACALLER000000001", secret_key="s",
                   assume_role={"role_arn": "arn:aws:iam::123456789012:role/importer",
                                "session_name": "imp"}), tmp_path)
        assume = one(proxy, "AssumeRole", "sts")
        assert assume.access_key == "AKIACALLER000000001"
        assert assume.params["RoleArn"].endswith("role/importer")
        keys = {r.access_key for r in proxy.requests if r.service == "ec2"}
        assert len(keys) == 1 and next(iter(keys)).startswith("ASIA")


@pytest.mark.effect("post-processor/amazon-import", "shared_credentials_file", "profile", "mfa_code")
def test_credentials_file_profile_and_mfa(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds, conf = _creds_files(tmp_path)
    with AwsProxy(moto.url) as proxy:
        _no_env_credentials(monkeypatch, proxy)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(conf))
        run(config(proxy.url, bucket, access_key="", secret_key="", shared_credentials_file=str(creds),
                   profile="build", mfa_code="424242"), tmp_path)
        assume = one(proxy, "AssumeRole", "sts")
        assert assume.access_key == "AKIABASE00000000001" and assume.params["TokenCode"] == "424242"
        assert all(r.access_key.startswith("ASIA") for r in proxy.requests if r.service == "ec2")


@pytest.mark.effect("post-processor/amazon-import", "skip_credential_validation", "skip_metadata_api_check")
def test_credentials_are_resolved_first_and_the_metadata_service_can_be_skipped(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, port, asked = _serve(b"")
    try:
        with AwsProxy(moto.url) as proxy:
            _no_env_credentials(monkeypatch, proxy)
            monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
            monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}/")
            for skip in (False, True):
                CLIENTS.clear()
                asked.clear()
                with pytest.raises(BuildError, match=r"not be validated: .*no valid credential"):
                    run(config(proxy.url, bucket, access_key="", secret_key="", skip_metadata_api_check=skip),
                        tmp_path)
                assert bool(asked) is not skip
            assert proxy.requests == []  # nothing was uploaded or imported without credentials
            CLIENTS.clear()
            with pytest.raises(BuildError) as exc:
                run(config(proxy.url, bucket, access_key="", secret_key="", skip_metadata_api_check=True,
                           skip_credential_validation=True), tmp_path)
            assert "could not be validated" not in str(exc.value)
    finally:
        server.shutdown()


@pytest.mark.effect("post-processor/amazon-import", "max_retries")
def test_max_retries_bounds_the_attempts(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    with ThrottleFirst(moto.url, first=3) as proxy:
        with pytest.raises(BuildError, match="RequestLimitExceeded"):
            run(config(proxy.url, bucket, max_retries=2), tmp_path)
        sent = [(r.action, r.status) for r in proxy.requests if r.service == "ec2"]
        assert sent == [("ImportImage", 503)] * 3
    CLIENTS.clear()
    with ThrottleFirst(moto.url, first=3) as proxy:
        run(config(proxy.url, bucket, max_retries=3), tmp_path)
        assert [r.status for r in proxy.requests if r.service == "ec2"][:4] == [503, 503, 503, 200]


@pytest.mark.effect("post-processor/amazon-import", "aws_polling")
def test_aws_polling_bounds_the_import_wait(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    """The emulated task needs three polls: a one-second wait gives up before (and the task is undone:
    cancelled, or its image removed if it completed meanwhile), four attempts are enough."""
    before = inventory(moto)
    with AwsProxy(moto.url) as proxy:
        with pytest.raises(BuildError, match="gave up waiting for import task"):
            run(config(proxy.url, bucket, aws_polling={"delay_seconds": 1, "max_attempts": 1}), tmp_path)
        assert 2 <= len(proxy.sent("DescribeImportImageTasks")) <= 3
        assert proxy.sent("CancelImportTask") or proxy.sent("DeregisterImage")
    assert inventory(moto) - before == set()
    with AwsProxy(moto.url) as proxy:
        run(config(proxy.url, bucket, aws_polling={"delay_seconds": 1, "max_attempts": 4}), tmp_path)
        assert not proxy.sent("CancelImportTask")


@pytest.mark.effect("post-processor/amazon-import", "insecure_skip_tls_verify")
def test_insecure_skip_tls_verify(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.tlsfront import TlsFront

    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with AwsProxy(moto.url) as proxy, TlsFront(proxy.url) as front:
        with pytest.raises(BuildError, match="certificate verify failed"):
            run(config(front.url, bucket), tmp_path)
        assert proxy.requests == []
        CLIENTS.clear()
        run(config(front.url, bucket, insecure_skip_tls_verify=True), tmp_path)
        one(proxy, "ImportImage")

