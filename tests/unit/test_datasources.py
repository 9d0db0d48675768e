"""Data sources without AWS: config checks, the pure rules of each data source, http on loopback,
and what ``load_template`` / ``validate`` do with them (boto3 stays unimported)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.core import load_template, prepare_builds
from amibake.datasources import DatasourceConfigError, DatasourceError, DatasourceRunner
from amibake.datasources.http import canonical_header, http
from amibake.datasources.http_config import HttpConfig
from amibake.errors import TemplateError
from amibake.plugins.amazon.datasource_configs import AmiDatasourceConfig
from amibake.plugins.amazon.datasources import (
    ami_params,
    image_outputs,
    most_recent,
    pick_image,
    secret_value,
)

CHECK = DatasourceRunner(execute=False)


# --- config ------------------------------------------------------------------------------------


def problems(typ: str, config: dict[str, Any]) -> list[str]:
    try:
        CHECK(typ, "x", config)
    except DatasourceConfigError as e:
        return [str(p) for p in e.problems]
    return []


def test_valid_configs_pass_and_leave_outputs_unknown() -> None:
    ami = {"owners": ["self"], "filters": {"name": "a*"}, "most_recent": True}
    assert CHECK("amazon-ami", "x", ami) == {}
    assert CHECK("amazon-parameterstore", "x", {"name": "/p", "with_decryption": True}) == {}
    sm = {"name": "s", "key": "k", "version_stage": "AWSPREVIOUS"}
    assert CHECK("amazon-secretsmanager", "x", sm) == {}
    assert CHECK("http", "x", {"url": "http://127.0.0.1/", "request_headers": {"Accept": "text/plain"}}) == {}
    assert CHECK("amazon-ami", "x", {"owners": ["self"], "region": "eu-west-1", "profile": "p"}) == {}


def test_unknown_key_did_you_mean() -> None:
    assert problems("amazon-ami", {"ownres": ["self"]}) == [
        'ownres: unknown configuration key: "ownres"; did you mean "owners"?'
    ]
    assert problems("http", {"url": "u", "request_header": {}}) == [
        'request_header: unknown configuration key: "request_header"; did you mean "request_headers"?'
    ]
    assert problems("amazon-secretsmanager", {"name": "s", "version": "1"})[0].startswith(
        'version: unknown configuration key: "version"'
    )


def test_required_options_have_packers_messages() -> None:
    assert problems("amazon-ami", {}) == [
        "filters: The `filters` must be specified",
        "owners: For security reasons, you must declare an owner.",
    ]
    assert problems("amazon-ami", {"filters": {"name": "x"}}) == [
        "owners: For security reasons, you must declare an owner."
    ]
    assert problems("amazon-parameterstore", {}) == ["name: a 'name' must be provided"]
    assert problems("amazon-secretsmanager", {"key": "k"}) == ["name: a 'name' must be provided"]
    assert problems("http", {}) == ["url: the `url` must be specified"]


def test_access_config_rules_apply() -> None:
    assert problems("amazon-parameterstore", {"name": "p", "access_key": "AK"}) == [
        "access_key: `access_key` and `secret_key` must both be either set or not set."
    ]


def test_wrong_types_are_reported() -> None:
    (p,) = problems("amazon-ami", {"owners": ["self"], "most_recent": "sometimes"})
    assert p.startswith("most_recent:")
    (p,) = problems("http", {"url": "u", "request_headers": ["a"]})
    assert p.startswith("request_headers:")


def test_unknown_inputs_take_a_placeholder_of_their_type() -> None:
    # validate: an input from another data source is unknown; a non-string option keeps its default
    assert CHECK("amazon-parameterstore", "x", {"name": "<unknown>", "with_decryption": "<unknown>"}) == {}
    assert CHECK("amazon-ami", "x", {"owners": ["<unknown>"], "most_recent": "<unknown>"}) == {}
    assert CHECK("amazon-ami", "x", {"owners": "<unknown>", "filters": {"name": "<unknown>"}}) == {}


def test_types_the_runner_does_not_know_are_left_to_the_loader() -> None:
    assert CHECK("null", "x", {"input": "a"}) == {}


# --- amazon-ami rules ------------------------------------------------------------------------------


def img(i: str, date: str, **kw: Any) -> dict[str, Any]:
    return {"ImageId": i, "Name": f"n-{i}", "CreationDate": date, **kw}


def ami_cfg(**kw: Any) -> AmiDatasourceConfig:
    return AmiDatasourceConfig.model_validate({"owners": ["self"], **kw})


def test_ami_params_one_value_per_filter() -> None:
    cfg = ami_cfg(filters={"name": "ubuntu/*", "root-device-type": "ebs"}, include_deprecated=True)
    assert ami_params(cfg) == {
        "Filters": [
            {"Name": "name", "Values": ["ubuntu/*"]},
            {"Name": "root-device-type", "Values": ["ebs"]},
        ],
        "Owners": ["self"],
        "IncludeDeprecated": True,
    }
    assert ami_params(ami_cfg())["IncludeDeprecated"] is False


def test_pick_image_errors_as_packer() -> None:
    with pytest.raises(DatasourceError, match="No AMI was found matching filters"):
        pick_image([], ami_cfg(), {"Owners": ["self"]})
    two = [img("a", "2020-01-01T00:00:00.000Z"), img("b", "2021-01-01T00:00:00.000Z")]
    with pytest.raises(DatasourceError, match=r"more than one result.*most_recent to true"):
        pick_image(two, ami_cfg(), {})
    assert pick_image(two, ami_cfg(most_recent=True), {})["ImageId"] == "b"
    assert pick_image(two[:1], ami_cfg(), {})["ImageId"] == "a"


def test_most_recent_by_time_not_text() -> None:
    images = [
        img("a", "2021-06-01T10:00:00+02:00"),  # 08:00Z
        img("b", "2021-06-01T09:00:00Z"),
        img("c", "garbage"),
    ]
    assert most_recent(images)["ImageId"] == "b"
    ties = [img("a", "2021-01-01T00:00:00Z"), img("b", "2021-01-01T00:00:00Z")]
    assert most_recent(ties)["ImageId"] == "b"


@given(st.lists(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)), min_size=1, max_size=8))
def test_most_recent_is_a_maximum(dates: list[Any]) -> None:
    images = [img(str(i), d.strftime("%Y-%m-%dT%H:%M:%S.000Z")) for i, d in enumerate(dates)]
    best = most_recent(images)
    assert best["CreationDate"] == max(i["CreationDate"] for i in images)


def test_image_outputs() -> None:
    out = image_outputs(
        img("ami-1", "2020-01-01T00:00:00Z", OwnerId="123", ImageOwnerAlias="amazon",
            Tags=[{"Key": "k", "Value": "v"}])
    )
    assert out == {
        "id": "ami-1", "name": "n-ami-1", "creation_date": "2020-01-01T00:00:00Z", "owner": "123",
        "owner_name": "amazon", "tags": {"k": "v"},
    }
    assert image_outputs({"ImageId": "ami-2"})["tags"] == {}


# --- amazon-secretsmanager rules -----------------------------------------------------------------


def test_secret_value_rules() -> None:
    assert secret_value("plain text", "") == "plain text"
    assert secret_value("plain text", "k") == "plain text"
    assert secret_value('{"user": "u", "pw": "p"}', "pw") == "p"
    assert secret_value('{"user": "u", "pw": "p"}', "") == "u"
    assert secret_value('{"user": "u"}', "missing") == ""
    assert secret_value('{"port": 5432}', "port") == "5432"
    assert secret_value("null", "") == ""
    with pytest.raises(DatasourceError, match="Unsupported secret value type: bool"):
        secret_value('{"on": true}', "on")
    with pytest.raises(DatasourceError, match="cannot unmarshal array"):
        secret_value("[1, 2]", "")


@given(st.dictionaries(st.text(min_size=1), st.text(), min_size=1))
def test_secret_value_of_a_string_map(d: dict[str, str]) -> None:
    text = json.dumps(d)
    for k, v in d.items():
        assert secret_value(text, k) == v
    assert secret_value(text, "") == next(iter(d.values()))


# --- http --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "want"),
    [("content-type", "Content-Type"), ("X-FOO-bar", "X-Foo-Bar"), ("etag", "Etag"), ("a_b", "a_b")],
)
def test_canonical_header(raw: str, want: str) -> None:
    assert canonical_header(raw) == want


@given(st.from_regex(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", fullmatch=True))
def test_canonical_header_is_idempotent_and_case_blind(name: str) -> None:
    c = canonical_header(name)
    assert canonical_header(c) == c
    assert canonical_header(name.upper()) == c and c.lower() == name.lower()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/missing":
            self.send_error(404)
            return
        if self.path == "/empty":
            self.send_response(204)
            self.end_headers()
            return
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-multi", "a")
        self.send_header("X-Multi", "b")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.effect("datasource/http", "url", "request_headers")
def test_http_get(server: str) -> None:
    out = http(HttpConfig.model_validate({"url": f"{server}/v1", "request_headers": {"Authorization": "T"}}))
    assert out["url"] == f"{server}/v1"
    assert json.loads(out["body"]) == {"path": "/v1", "auth": "T"}
    assert out["request_headers"]["Content-Type"] == "application/json"
    assert out["request_headers"]["X-Multi"] == "a, b"


def test_http_errors(server: str) -> None:
    with pytest.raises(DatasourceError, match=r"^HTTP request error\. Response code: 404$"):
        http(HttpConfig.model_validate({"url": f"{server}/missing"}))
    with pytest.raises(DatasourceError, match="Response code: 204"):
        http(HttpConfig.model_validate({"url": f"{server}/empty"}))


def test_http_unreachable_names_the_url() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(DatasourceError, match=f"error requesting {url}: .*refused"):
        http(HttpConfig.model_validate({"url": url}), timeout=5)
    with pytest.raises(DatasourceError, match="error requesting nope://x"):
        http(HttpConfig.model_validate({"url": "nope://x"}))


# --- through load_template --------------------------------------------------------------------


TEMPLATE = """
data "http" "meta" {
  url = "%s"
}
locals {
  conf = jsondecode(data.http.meta.body)
}
source "amazon-ebs" "a" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "u"
  ami_name      = "xyz"
  ami_description = "x-${local.conf.path}"
  communicator  = "none"
}
build {
  sources = ["source.amazon-ebs.a"]
}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.pkr.hcl"
    p.write_text(text)
    return p


def test_build_mode_executes_http(server: str, tmp_path: Path) -> None:
    run = load_template(write(tmp_path, TEMPLATE % f"{server}/v7"))
    builds, _ = prepare_builds(run)
    assert builds[0].builder.raw["ami_description"] == "x-/v7"


def test_validate_mode_leaves_outputs_unknown(tmp_path: Path) -> None:
    # no server at all: validate does not execute the data source
    run = load_template(write(tmp_path, TEMPLATE % "http://127.0.0.1:9/never"), execute_datasources=False)
    assert run.template.builds[0].sources[0].config["ami_description"] == "<unknown>"


def test_config_problem_names_file_line_and_block(tmp_path: Path) -> None:
    text = 'data "http" "meta" {\n  ulr = "x"\n}\n'
    with pytest.raises(TemplateError) as ei:
        load_template(write(tmp_path, text), execute_datasources=False)
    (p,) = ei.value.problems
    assert p.pos is not None and p.pos.file.endswith("t.pkr.hcl") and p.pos.line == 1
    assert p.key == "data.http.meta"
    assert 'did you mean "url"' in p.message


def test_unreachable_url_fails_the_build_load(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as ei:
        load_template(write(tmp_path, TEMPLATE % "http://127.0.0.1:9/never"))
    assert "error requesting http://127.0.0.1:9/never" in ei.value.render()


def test_unsupported_output_attribute(tmp_path: Path) -> None:
    text = TEMPLATE.replace("jsondecode(data.http.meta.body)", "data.http.meta.status_code") % "http://x/"
    with pytest.raises(TemplateError) as ei:
        load_template(write(tmp_path, text), execute_datasources=False)
    assert "status_code" in ei.value.render()


def test_validate_cli_does_not_import_boto3(tmp_path: Path) -> None:
    text = 'data "amazon-ami" "u" {\n  owners = ["self"]\n  filters = { name = "x" }\n}\n' + TEMPLATE.replace(
        'source_ami    = "ami-12345678"', "source_ami = data.amazon-ami.u.id"
    ) % "http://127.0.0.1:9/never"
    p = write(tmp_path, text)
    code = (
        "import sys\nfrom amibake.cli.main import main\n"
        "try:\n    main(['validate', sys.argv[1]])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "The configuration is valid." in r.stdout and "ok" in r.stdout
