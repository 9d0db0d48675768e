"""Loading HCL2 templates: variables and their precedence, builds, sources, provisioners, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amibake.errors import TemplateError
from amibake.template.hcl import load_hcl

BASE = """
variable "region" {
  type    = string
  default = "us-east-1"
}
variable "count" {
  type    = number
  default = 1
}
variable "names" {
  type    = list(string)
  default = ["a"]
}
locals {
  ami  = "img-${var.region}-${local.n}"
  n    = var.count + 1
}
data "null" "x" {
  input = "from-null"
}
source "amazon-ebs" "ubuntu" {
  region        = var.region
  ami_name      = local.ami
  instance_type = data.null.x.output
  source_ami_filter {
    filters = { name = "ubuntu/*" }
    owners  = ["099720109477"]
  }
  launch_block_device_mappings {
    device_name = "/dev/sda1"
  }
  launch_block_device_mappings {
    device_name = "/dev/sdb"
  }
}
build {
  name    = "web"
  sources = ["source.amazon-ebs.ubuntu"]
  source "amazon-ebs.ubuntu" {
    name      = "second"
    ssh_username = "ubuntu"
  }
  provisioner "shell" {
    inline       = ["echo ${build.ID} ${source.name} ${build.name}"]
    pause_before = "10s"
    max_retries  = 2
    only         = ["amazon-ebs.ubuntu"]
  }
  post-processors {
    post-processor "manifest" {}
    post-processor "shell-local" { inline = ["true"] }
  }
}
"""


def write(tmp_path: Path, text: str, name: str = "t.pkr.hcl") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def load(tmp_path: Path, text: str = BASE, **kw: Any) -> Any:
    kw.setdefault("env", {})
    return load_hcl(write(tmp_path, text), **kw)


def test_builds_sources_and_nested_blocks(tmp_path: Path) -> None:
    t = load(tmp_path)
    assert t.format == "hcl2"
    names = [b.sources[0].name for b in t.builds]
    assert names == ["web.amazon-ebs.ubuntu", "web.amazon-ebs.second"]
    first = t.builds[0].sources[0]
    assert first.config["ami_name"] == "img-us-east-1-2"
    assert first.config["instance_type"] == "from-null"
    assert first.config["source_ami_filter"] == {"filters": {"name": "ubuntu/*"}, "owners": ["099720109477"]}
    assert [m["device_name"] for m in first.config["launch_block_device_mappings"]] == [
        "/dev/sda1",
        "/dev/sdb",
    ]
    assert first.key_path == "source.amazon-ebs.ubuntu"
    assert first.key_pos["region"].line == 22
    second = t.builds[1].sources[0]
    assert second.config["ssh_username"] == "ubuntu"


def test_provisioners_per_source_with_build_values(tmp_path: Path) -> None:
    t = load(tmp_path)
    prov = t.builds[0].provisioners
    assert len(prov) == 1
    assert prov[0].config["inline"] == ["echo {{ .ID }} ubuntu web"]
    assert prov[0].pause_before == "10s" and prov[0].max_retries == 2
    assert "pause_before" not in prov[0].config
    # only = ["amazon-ebs.ubuntu"] skips the provisioner for the "second" source
    assert t.builds[1].provisioners == []
    chain = t.builds[0].post_processors
    assert [[p.type for p in seq] for seq in chain] == [["manifest", "shell-local"]]


def test_variable_precedence(tmp_path: Path) -> None:
    (tmp_path / "a.auto.pkrvars.hcl").write_text('region = "auto"\n')
    write(tmp_path, BASE)
    vf = tmp_path / "x.pkrvars.hcl"
    vf.write_text('region = "file"\ncount = 5\n')
    t = load_hcl(tmp_path, env={"PKR_VAR_region": "env"})
    assert t.variables["region"].default == "auto"
    t = load_hcl(tmp_path, env={"PKR_VAR_region": "env"}, var_files=[vf])
    assert t.variables["region"].default == "file"
    assert t.variables["count"].default == 5
    t = load_hcl(tmp_path, env={}, var_files=[vf], vars={"region": "cli", "names": '["x", "y"]'})
    assert t.variables["region"].default == "cli"
    assert t.variables["names"].default == ["x", "y"]
    t = load_hcl(tmp_path / "t.pkr.hcl", env={"PKR_VAR_region": "env"})  # a file: no auto var files
    assert t.variables["region"].default == "env"


def test_type_conversion_errors_and_unset(tmp_path: Path) -> None:
    text = BASE + 'variable "req" {\n  type = string\n}\n'
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, text, vars={"count": "many"})
    msgs = [str(p) for p in ei.value.problems]
    assert any('Unset variable "req"' in m for m in msgs)
    assert any('variable "count"' in m and "number" in m for m in msgs)


def test_validation_block(tmp_path: Path) -> None:
    text = BASE.replace(
        'default = "us-east-1"\n}',
        'default = "us-east-1"\n  validation {\n    condition = can(regex("^us-", var.region))\n'
        '    error_message = "Region must be in the US."\n  }\n}',
    )
    load(tmp_path, text)
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, text, vars={"region": "eu-west-1"})
    assert "Region must be in the US." in ei.value.render()


def test_all_problems_at_once_with_positions(tmp_path: Path) -> None:
    text = """
source "amazon-ebs" "a" {
  region = var.missing
  ami_name = upper(1, 2)
}
build {
  sources = ["source.amazon-ebs.a", "source.amazon-ebs.nope"]
}
"""
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, text)
    probs = ei.value.problems
    assert len(probs) == 3
    assert probs[0].pos is not None and probs[0].pos.line == 3 and probs[0].pos.column == 12
    assert "Unknown source amazon-ebs.nope" in ei.value.render()


def test_syntax_error_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, 'source "amazon-ebs" "a" {\n  region = \n}\n')
    assert ei.value.problems[0].pos is not None
    assert ei.value.problems[0].pos.line == 2


def test_required_plugins_and_version(tmp_path: Path) -> None:
    text = """
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = { source = "github.com/hashicorp/amazon", version = ">= 1" }
    azure  = { source = "github.com/hashicorp/azure", version = ">= 1" }
  }
}
"""
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, text)
    assert len(ei.value.problems) == 1 and "azure" in ei.value.render()
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, 'packer {\n  required_version = "< 1.0"\n}\n')
    assert "Unsupported Packer Core version" in ei.value.render()


def test_duplicate_argument_in_build_source(tmp_path: Path) -> None:
    text = """
source "amazon-ebs" "a" {
  region = "x"
}
build {
  source "source.amazon-ebs.a" {
    region = "y"
  }
}
"""
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, text)
    assert "Duplicate argument" in ei.value.render()


def test_datasource_resolver_and_placeholders(tmp_path: Path) -> None:
    text = """
data "amazon-ami" "u" {
  filters = { name = "ubuntu" }
  owners = ["self"]
}
source "amazon-ebs" "a" {
  source_ami = data.amazon-ami.u.id
}
build {
  sources = ["source.amazon-ebs.a"]
}
"""
    t = load(tmp_path, text)
    assert t.builds[0].sources[0].config["source_ami"] == "<unknown>"
    seen: list[Any] = []

    def resolver(typ: str, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
        seen.append((typ, name, cfg))
        return {"id": "ami-123"}

    t = load(tmp_path, text, datasource_resolver=resolver)
    assert t.builds[0].sources[0].config["source_ami"] == "ami-123"
    assert seen == [("amazon-ami", "u", {"filters": {"name": "ubuntu"}, "owners": ["self"]})]


def test_cyclic_locals(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, "locals {\n  a = local.b\n  b = local.a\n}\n")
    assert "Cyclic" in ei.value.render()


def test_dynamic_blocks(tmp_path: Path) -> None:
    text = """
locals {
  devs = ["/dev/sdb", "/dev/sdc"]
}
source "amazon-ebs" "a" {
  dynamic "launch_block_device_mappings" {
    for_each = local.devs
    iterator = d
    content {
      device_name = d.value
    }
  }
}
build {
  sources = ["source.amazon-ebs.a"]
  dynamic "provisioner" {
    for_each = ["one", "two"]
    labels   = ["shell"]
    content {
      inline = [provisioner.value]
    }
  }
}
"""
    t = load(tmp_path, text)
    cfg = t.builds[0].sources[0].config
    assert cfg["launch_block_device_mappings"] == [{"device_name": "/dev/sdb"}, {"device_name": "/dev/sdc"}]
    assert [p.config["inline"] for p in t.builds[0].provisioners] == [["one"], ["two"]]


def test_env_only_in_variable_defaults(tmp_path: Path) -> None:
    text = 'variable "home" {\n  default = env("HOME_X")\n}\nlocals {\n  x = env("A")\n}\n'
    with pytest.raises(TemplateError) as ei:
        load(tmp_path, text, env={"HOME_X": "/h"})
    assert 'no function named "env"' in ei.value.render()
    t = load(tmp_path, text.split("locals")[0], env={"HOME_X": "/h"})
    assert t.variables["home"].default == "/h"


def test_templatefile(tmp_path: Path) -> None:
    (tmp_path / "u.tpl").write_text("hello ${name}%{ for x in xs }-${x}%{ endfor }\n")
    text = 'locals {\n  s = templatefile("${path.root}/u.tpl", { name = "w", xs = [1, 2] })\n}\n' + (
        'source "amazon-ebs" "a" {\n  user_data = local.s\n}\n'
        'build {\n  sources = ["source.amazon-ebs.a"]\n}\n'
    )
    t = load(tmp_path, text)
    assert t.builds[0].sources[0].config["user_data"] == "hello w-1-2\n"
