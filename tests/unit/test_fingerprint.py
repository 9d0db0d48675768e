"""The content fingerprint (amibake.fingerprint): what is in it, what is not, and its stability.

Property tests: the fingerprint does not move with option key order, file mtimes, the working
directory or where the checkout lives (another machine), the clock or randomness in the template;
it moves with any byte of a provisioned file. Sensitive values are never in anything it keeps.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amibake import fingerprint as fpmod
from amibake.fingerprint import Fingerprint, changes, for_template

SECRET = "s3cr3t-canary-Zq8"

PROPS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def builder(**extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "amazon-ebs", "name": "b", "region": "us-east-1", "source_ami": "ami-785db401",
        "instance_type": "t2.micro", "ssh_username": "u", "ami_name": "n-{{timestamp}}",
        "tags": {"Name": "x-{{timestamp}}", "Team": "t"},
        "launch_block_device_mappings": [{"device_name": "/dev/sdf", "volume_size": 2, "volume_type": "gp2"}],
    }
    b.update(extra)
    return b


def template(**extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "variables": {"pw": SECRET, "greeting": "hi"},
        "sensitive-variables": ["pw"],
        "builders": [builder()],
        "provisioners": [
            {"type": "shell", "script": "scripts/setup.sh",
             "environment_vars": ["PW={{user `pw`}}", "G={{user `greeting`}}", "WHEN={{timestamp}}",
                                  "ID={{uuid}}", "ISO={{isotime}}"]},
            {"type": "file", "source": "files/", "destination": "/opt/files"},
            {"type": "shell", "inline": ["sh {{template_dir}}/scripts/setup.sh"]},
        ],
        "post-processors": [{"type": "manifest", "output": "m.json"}],
    }
    t.update(extra)
    return t


def write_tree(root: Path, script: bytes = b"#!/bin/sh\necho hello\n",
               t: dict[str, Any] | None = None) -> Path:
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "files" / "sub").mkdir(parents=True, exist_ok=True)
    (root / "scripts" / "setup.sh").write_bytes(script)
    (root / "files" / "a.txt").write_text("a\n")
    (root / "files" / "sub" / "b.txt").write_text("b\n")
    (root / "t.json").write_text(json.dumps(t or template()))
    return root / "t.json"


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def fp_of(root: Path, key_dir: Path, **vars_: str) -> Fingerprint:
    with chdir(root):
        return for_template(Path("t.json"), [], vars_, key_dir=key_dir)["b"]


def reorder(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rnd) for v in value]
    return value


@PROPS
@given(seed=st.integers(0, 2**32 - 1))
def test_stable_across_key_order(tmp_path: Path, seed: int) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        root = Path(d)
        write_tree(root)
        base = fp_of(root, tmp_path / "key")
        (root / "t.json").write_text(json.dumps(reorder(template(), random.Random(seed))))
        assert fp_of(root, tmp_path / "key").digest == base.digest


@PROPS
@given(times=st.lists(st.integers(0, 2**31 - 1), min_size=4, max_size=4))
def test_stable_across_file_mtimes(tmp_path: Path, times: list[int]) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        root = Path(d)
        write_tree(root)
        base = fp_of(root, tmp_path / "key")
        paths = [root / "scripts" / "setup.sh", root / "files" / "a.txt", root / "files" / "sub" / "b.txt",
                 root / "files" / "sub"]
        for p, t in zip(paths, times, strict=True):
            os.utime(p, (t, t))
        assert fp_of(root, tmp_path / "key").digest == base.digest


@PROPS
@given(names=st.lists(st.text("abcdefghij_-", min_size=1, max_size=12), min_size=2, max_size=2, unique=True))
def test_stable_across_working_directory_and_checkout_location(tmp_path: Path, names: list[str]) -> None:
    """The same checkout at two places (as on two machines), each run from its own directory, and
    the template also run from its parent directory: one fingerprint."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        a, b = Path(d) / names[0] / "repo", Path(d) / names[1] / "deeper" / "repo"
        write_tree(a)
        shutil.copytree(a, b)
        fa = fp_of(a, tmp_path / "key")
        fb = fp_of(b, tmp_path / "key")
        assert fa.digest == fb.digest, changes(fa.breakdown(), fb)


def test_stable_across_runs_with_time_and_random_functions(tmp_path: Path) -> None:
    """{{timestamp}}, {{isotime}}, {{uuid}} in provisioners and ami_name: fixed placeholders."""
    write_tree(tmp_path)
    assert fp_of(tmp_path, tmp_path / "key").digest == fp_of(tmp_path, tmp_path / "key").digest


def test_hcl2_time_and_random_functions_are_fixed(tmp_path: Path) -> None:
    (tmp_path / "b.pkr.hcl").write_text("""
source "amazon-ebs" "b" {
  region = "us-east-1"
  source_ami = "ami-785db401"
  instance_type = "t2.micro"
  ssh_username = "u"
  ami_name = "n-${formatdate("YYYYMMDDhhmmss", timestamp())}"
}
build {
  sources = ["source.amazon-ebs.b"]
  provisioner "shell" {
    inline = ["echo ${timestamp()} ${uuidv4()}"]
  }
}
""")
    with chdir(tmp_path):
        one = for_template(Path("b.pkr.hcl"), [], {}, key_dir=tmp_path / "key")
        two = for_template(Path("b.pkr.hcl"), [], {}, key_dir=tmp_path / "key")
    assert list(one) == ["amazon-ebs.b"]
    assert one["amazon-ebs.b"].digest == two["amazon-ebs.b"].digest


@PROPS
@given(content=st.binary(min_size=1, max_size=512), data=st.data())
def test_sensitive_to_any_content_byte(tmp_path: Path, content: bytes, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(content) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != content[pos]))
    changed = content[:pos] + bytes([new]) + content[pos + 1:]
    where = data.draw(st.sampled_from(["script", "tree"]))
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        root = Path(d)
        write_tree(root, script=content if where == "script" else b"echo\n")
        target = root / "scripts" / "setup.sh" if where == "script" else root / "files" / "sub" / "b.txt"
        target.write_bytes(content)
        before = fp_of(root, tmp_path / "key")
        target.write_bytes(changed)
        after = fp_of(root, tmp_path / "key")
    assert before.digest != after.digest
    reasons = changes(before.breakdown(), after)
    assert reasons == (["scripts/setup.sh changed"] if where == "script" else ["files/ changed"])


def test_executable_bit_and_new_file_in_a_directory_count(tmp_path: Path) -> None:
    write_tree(tmp_path)
    key = tmp_path / "key"
    base = fp_of(tmp_path, key)
    f = tmp_path / "files" / "a.txt"
    f.chmod(f.stat().st_mode | stat.S_IXUSR)
    assert fp_of(tmp_path, key).digest != base.digest
    f.chmod(f.stat().st_mode & ~0o111)
    assert fp_of(tmp_path, key).digest == base.digest
    (tmp_path / "files" / "c.txt").write_text("")
    assert changes(base.breakdown(), fp_of(tmp_path, key)) == ["files/ changed"]


def test_what_only_names_or_distributes_the_image_is_out(tmp_path: Path) -> None:
    write_tree(tmp_path)
    key = tmp_path / "key"
    base = fp_of(tmp_path, key).digest
    for extra in (
        {"ami_name": "other"}, {"ami_description": "d"}, {"tags": {"New": "tag"}},
        {"ami_regions": ["us-west-2"]},
        {"ami_users": ["111122223333"]}, {"snapshot_tags": {"a": "b"}}, {"run_tags": {"Name": "x"}},
        {"ssh_timeout": "9m"}, {"subnet_id": "subnet-1"}, {"deprecate_at": "2030-01-01T00:00:00Z"},
    ):
        write_tree(tmp_path, t=template(builders=[builder(**extra)]))
        assert fp_of(tmp_path, key).digest == base, extra
    write_tree(tmp_path, t=template(**{"post-processors": [{"type": "manifest", "output": "other.json"}]}))
    assert fp_of(tmp_path, key).digest == base


def test_what_shapes_the_image_is_in(tmp_path: Path) -> None:
    write_tree(tmp_path)
    key = tmp_path / "key"
    base = fp_of(tmp_path, key)
    for extra in ({"instance_type": "m5.large"}, {"user_data": "#cloud-config"},
                  {"launch_block_device_mappings": [{"device_name": "/dev/sdf", "volume_size": 3}]},
                  {"ena_support": True}, {"ssh_username": "ubuntu"}):
        write_tree(tmp_path, t=template(builders=[builder(**extra)]))
        now = fp_of(tmp_path, key)
        assert now.digest != base.digest, extra
        assert changes(base.breakdown(), now) == ["builder amazon-ebs changed"]
    write_tree(tmp_path, t=template())
    greeting = fp_of(tmp_path, key, greeting="hello")
    assert changes(base.breakdown(), greeting) == ["provisioner 1 (shell) changed"]


def test_source_ami_is_the_resolved_id(tmp_path: Path) -> None:
    write_tree(tmp_path)
    base = fp_of(tmp_path, tmp_path / "key")
    a, b = base.resolved({"source AMI": "ami-1"}), base.resolved({"source AMI": "ami-2"})
    assert a.digest != b.digest and a.digest != base.digest
    assert changes(a.breakdown(), b) == ["source AMI resolved to another id (ami-1 -> ami-2)"]
    # the filter as written is out: only what it resolves to counts
    write_tree(tmp_path, t=template(builders=[builder(source_ami="", source_ami_filter={
        "filters": {"name": "ubuntu/*"}, "owners": ["self"], "most_recent": True})]))
    assert fp_of(tmp_path, tmp_path / "key").resolved({"source AMI": "ami-1"}).digest == a.digest


def test_sensitive_value_only_as_keyed_hash(tmp_path: Path) -> None:
    write_tree(tmp_path)
    key_dir = tmp_path / "state"
    fp = fp_of(tmp_path, key_dir)
    kept = key_dir / "kept"
    fpmod.remember(fp, "b", kept)
    stored = "".join(p.read_text() for p in kept.rglob("*.json"))
    assert SECRET not in stored and SECRET not in json.dumps(fp.breakdown()) and SECRET not in fp.digest
    assert stat.S_IMODE((key_dir / fpmod.KEY_FILE).stat().st_mode) == 0o600
    other = fp_of(tmp_path, key_dir, pw="another-secret")
    assert other.digest != fp.digest
    assert changes(fp.breakdown(), other) == ["provisioner 1 (shell) changed"]
    # the same value, the same key: the same fingerprint; another key (another state dir): another
    assert fp_of(tmp_path, key_dir).digest == fp.digest
    assert fp_of(tmp_path, tmp_path / "other-state").digest != fp.digest


def test_sensitive_values_are_hashed_not_dropped(tmp_path: Path) -> None:
    canon = fpmod.Canonicalizer([SECRET], tmp_path, tmp_path, key_dir=tmp_path / "k")
    out = canon.value({"env": [f"A={SECRET}", "B=plain"], "elevated_password": "pw"})
    text = json.dumps(out)
    assert SECRET not in text and '"pw"' not in text and "B=plain" in text
    assert out["env"][0].startswith("sensitive:") and out["elevated_password"].startswith("sensitive:")


def test_key_is_made_once(tmp_path: Path) -> None:
    one = fpmod.load_key(tmp_path)
    assert fpmod.load_key(tmp_path) == one and len(one) == 32
    assert [p.name for p in tmp_path.iterdir()] == [fpmod.KEY_FILE]


def test_breakdown_kept_and_recalled(tmp_path: Path) -> None:
    fp = Fingerprint({"a": "1" * 64}).resolved({"source AMI": "ami-1"})
    fpmod.remember(fp, "b", tmp_path)
    assert fpmod.recall(fp.digest, tmp_path) == fp.breakdown()
    assert fpmod.recall("0" * 64, tmp_path) is None
    assert fpmod.recall("../x", tmp_path) is None
    assert changes(None, fp)[0].startswith("no breakdown")


def test_main_run_values_are_used_and_time_in_json_variables_is_fixed(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from amibake.core import load_template, prepare_builds

    t = template()
    t["variables"]["stamp"] = "v-{{timestamp}}"
    t["provisioners"][2]["inline"].append("echo {{user `stamp`}}")
    write_tree(tmp_path, t=t)
    key = tmp_path / "key"
    out = []
    with chdir(tmp_path):
        for year in (2020, 2021):
            main = load_template(Path("t.json"), started=datetime(year, 1, 1, tzinfo=UTC))
            builds, _ = prepare_builds(main)
            out.append(for_template(Path("t.json"), [], {}, main=main, main_builds=builds, key_dir=key)["b"])
        plain = for_template(Path("t.json"), [], {}, key_dir=key)["b"]
    assert out[0].digest == out[1].digest == plain.digest


def test_hcl2_data_sources_are_not_called_again(tmp_path: Path, monkeypatch: Any) -> None:
    from amibake.core import load_template, prepare_builds
    from amibake.datasources import runner

    calls: list[str] = []
    body = {"v": "one"}

    def fake(cfg: Any) -> tuple[dict[str, Any], list[str]]:
        calls.append(cfg.url)
        return {"body": body["v"], "url": cfg.url, "request_headers": {}}, []

    monkeypatch.setattr(runner, "execute_http", fake)
    (tmp_path / "b.pkr.hcl").write_text("""
data "http" "v" {
  url = "https://example.invalid/version"
}
source "amazon-ebs" "b" {
  region = "us-east-1"
  source_ami = "ami-785db401"
  instance_type = "t2.micro"
  ssh_username = "u"
  ami_name = "name-b"
}
build {
  sources = ["source.amazon-ebs.b"]
  provisioner "shell" {
    inline = ["echo ${data.http.v.body}"]
  }
}
""")
    with chdir(tmp_path):
        main = load_template(Path("b.pkr.hcl"))
        builds, _ = prepare_builds(main)
        one = for_template(Path("b.pkr.hcl"), [], {}, main=main, main_builds=builds, key_dir=tmp_path / "k")
        assert calls == ["https://example.invalid/version"]
        body["v"] = "two"
        main = load_template(Path("b.pkr.hcl"))
        two = for_template(Path("b.pkr.hcl"), [], {}, main=main, main_builds=builds, key_dir=tmp_path / "k")
    assert len(calls) == 2
    assert changes(one["amazon-ebs.b"].breakdown(), two["amazon-ebs.b"]) == ["provisioner 1 (shell) changed"]


def _amibake(args: list[str], cwd: Path) -> Any:
    import subprocess

    from tests.stackkit import amibake_exe

    env = {**os.environ, "AMIBAKE_STATE_DIR": str(cwd / "state"), "AMIBAKE_NO_SERVER": "1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run([amibake_exe(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_plan_of_builds_that_make_no_image_makes_no_call(tmp_path: Path) -> None:
    """null and skip_create_ami builds simply build: plan says so without asking AWS (the endpoint
    is a closed port: any call would fail the plan)."""
    t = {"builders": [{"type": "null", "name": "n", "communicator": "none"},
                      builder(name="e", skip_create_ami=True, custom_endpoint_ec2="http://127.0.0.1:9")],
         "provisioners": [{"type": "shell-local", "inline": ["echo hi"]}]}
    (tmp_path / "t.json").write_text(json.dumps(t))
    r = _amibake(["plan", "-color=false", "-skip-unchanged", "t.json"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "==> n: rebuild\n    n: why: the null builder makes no image to reuse" in r.stdout
    assert "==> e: rebuild\n    e: why: skip_create_ami is set" in r.stdout
    r = _amibake(["plan", "-machine-readable", "t.json"], tmp_path)
    assert ",n,plan-action,rebuild," in r.stdout and ",e,plan-action,rebuild," in r.stdout


def test_bad_max_age_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"builders": [{"type": "null", "communicator": "none"}]}))
    for verb in ("build", "plan"):
        r = _amibake([verb, "-max-age=3d", "t.json"], tmp_path)
        assert r.returncode == 1 and 'Error: -max-age: time: unknown unit "d" in duration "3d"' in r.stderr
        assert "Traceback" not in r.stderr


def test_a_damaged_key_is_a_clear_error(tmp_path: Path) -> None:
    from amibake.errors import AmibakeError

    (tmp_path / fpmod.KEY_FILE).write_text("not hex\n")
    try:
        fpmod.load_key(tmp_path)
    except AmibakeError as exc:
        assert "is not a fingerprint key" in str(exc) and fpmod.KEY_FILE in str(exc)
    else:
        raise AssertionError("a damaged key was used")


def test_paths_under_home_are_relative_to_it(tmp_path: Path, monkeypatch: Any) -> None:
    fps = []
    for who in ("alice", "bob"):
        home = tmp_path / who
        (home / "lib").mkdir(parents=True)
        (home / "lib" / "common.sh").write_text("echo common\n")
        work = tmp_path / f"work-{who}"
        write_tree(work, t=template(provisioners=[{"type": "shell", "script": "~/lib/common.sh"},
                                                  {"type": "shell", "inline": [f"sh {home}/lib/common.sh"]}]))
        monkeypatch.setenv("HOME", str(home))
        fps.append(fp_of(work, tmp_path / "key"))
    assert fps[0].digest == fps[1].digest, changes(fps[0].breakdown(), fps[1])
    assert "file ~/lib/common.sh" in fps[0].components
