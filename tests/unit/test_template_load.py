"""``amibake.template.load``: the one way from a template path to a Template, for every verb."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from amibake.errors import TemplateError
from amibake.template.load import is_hcl2, load

HCL = """
variable "region" {
  type = string
}
source "amazon-ebs" "a" {
  region        = var.region
  ami_name      = "x"
  instance_type = "t3.micro"
  source_ami    = "ami-1"
  ssh_username  = "u"
}
build {
  sources = ["source.amazon-ebs.a"]
}
"""

JSON = {"variables": {"region": ""}, "builders": [{"type": "amazon-ebs", "region": "{{user `region`}}"}]}


@pytest.mark.parametrize(
    ("name", "hcl2"),
    [
        ("t.pkr.hcl", True),
        ("t.pkr.json", True),
        ("t.json", False),
        ("packer.json", False),
        ("t.hcl", False),  # anything else is a legacy JSON template
        ("t", False),
    ],
)
def test_the_format_is_chosen_by_the_path(tmp_path: Path, name: str, hcl2: bool) -> None:
    assert is_hcl2(tmp_path / name) is hcl2


def test_a_directory_is_hcl2(tmp_path: Path) -> None:
    assert is_hcl2(tmp_path)


def test_json_template(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(json.dumps(JSON))
    tpl = load(p, vars={"ignored": "for JSON"}, lenient=True)
    assert tpl.format == "json"
    assert list(tpl.variables) == ["region"]


def test_hcl2_file_and_directory(tmp_path: Path) -> None:
    p = tmp_path / "t.pkr.hcl"
    p.write_text(HCL)
    for path in (p, tmp_path):
        tpl = load(path, vars={"region": "us-east-1"})
        assert tpl.format == "hcl2"
        assert tpl.variables["region"].default == "us-east-1"


def test_hcl2_lenient_leaves_an_unset_variable_unknown(tmp_path: Path) -> None:
    p = tmp_path / "t.pkr.hcl"
    p.write_text(HCL)
    with pytest.raises(TemplateError, match="Unset variable"):
        load(p)
    assert load(p, lenient=True).format == "hcl2"


def test_a_missing_file_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="template file not found"):
        load(tmp_path / "nope.json")
    with pytest.raises(TemplateError):
        load(tmp_path / "nope.pkr.hcl")


def test_a_json_template_never_imports_the_hcl2_layer(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(json.dumps(JSON))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from amibake.template.load import load\n"
        f"load(Path({str(p)!r}))\n"
        "hcl = 'amibake.template.hcl'\n"
        "print(sorted(m for m in sys.modules if m == hcl or m.startswith(hcl + '.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
