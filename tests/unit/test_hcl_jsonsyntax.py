"""HCL's JSON syntax (``.pkr.json``): the same template in both syntaxes loads into the same Template."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.errors import TemplateError
from amibake.template.hcl import ast as A
from amibake.template.hcl import load_hcl
from amibake.template.hcl.diagnostics import HclError
from amibake.template.hcl.jsonsyntax import parse_json_body

NATIVE = """
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      version = ">= 1.0.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}
variable "region" {
  type    = string
  default = "us-east-1"
}
variable "count" {
  type    = number
  default = 1
}
variable "names" {
  type        = list(string)
  default     = ["a"]
  description = "some names"
  validation {
    condition     = length(var.names) > 0
    error_message = "The names must not be empty."
  }
}
variable "secret" {
  type      = string
  default   = "s3cr3t"
  sensitive = true
}
locals {
  ami  = "img-${var.region}-${local.n}"
  n    = var.count + 1
  tags = { Name = "x", Env = "${var.region}" }
}
local "dollar" {
  expression = "$${literal} %{ if var.count > 0 }yes%{ else }no%{ endif }"
}
source "amazon-ebs" "ubuntu" {
  region        = var.region
  ami_name      = local.ami
  instance_type = "t3.micro"
  source_ami_filter {
    filters     = { name = "ubuntu/*", "virtualization-type" = "hvm" }
    owners      = ["099720109477"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name = "/dev/sda1"
    volume_size = 8
  }
  launch_block_device_mappings {
    device_name = "/dev/sdb"
    volume_size = 1.5
  }
  tags = local.tags
}
source "amazon-ebs" "other" {
  region   = "eu-west-1"
  ami_name = "other-${upper("x")}"
}
build {
  name    = "web"
  sources = ["source.amazon-ebs.ubuntu", "source.amazon-ebs.other"]
  provisioner "shell" {
    inline       = ["echo ${build.ID} ${source.name} ${build.name}"]
    pause_before = "10s"
    max_retries  = 2
    only         = ["amazon-ebs.other"]
  }
  provisioner "file" {
    source      = "a.txt"
    destination = "/tmp/a.txt"
  }
  post-processor "manifest" {
    output = "m.json"
  }
  post-processors {
    post-processor "shell-local" {
      inline = ["echo 1"]
    }
    post-processor "manifest" {
      output = "n.json"
    }
  }
  error-cleanup-provisioner "shell-local" {
    inline = ["echo cleanup"]
  }
}
"""

JSON_DOC: dict[str, Any] = {
    "//": "the same template as NATIVE, in HCL's JSON syntax",
    "packer": {
        "required_version": ">= 1.7.0",
        "required_plugins": {
            "amazon": {"version": ">= 1.0.0", "source": "github.com/hashicorp/amazon"},
        },
    },
    "variable": {
        "region": {"type": "string", "default": "us-east-1"},
        "count": {"type": "number", "default": 1},
        "names": {
            "type": "list(string)",
            "default": ["a"],
            "description": "some names",
            "validation": {
                "condition": "${length(var.names) > 0}",
                "error_message": "The names must not be empty.",
            },
        },
        "secret": {"type": "string", "default": "s3cr3t", "sensitive": True},
    },
    "locals": {
        "ami": "img-${var.region}-${local.n}",
        "n": "${var.count + 1}",
        "tags": {"Name": "x", "Env": "${var.region}"},
    },
    "local": {"dollar": {"expression": "$${literal} %{ if var.count > 0 }yes%{ else }no%{ endif }"}},
    "source": {
        "amazon-ebs": {
            "ubuntu": {
                "region": "${var.region}",
                "ami_name": "${local.ami}",
                "instance_type": "t3.micro",
                "source_ami_filter": {
                    "filters": {"name": "ubuntu/*", "virtualization-type": "hvm"},
                    "owners": ["099720109477"],
                    "most_recent": True,
                },
                "launch_block_device_mappings": [
                    {"device_name": "/dev/sda1", "volume_size": 8},
                    {"device_name": "/dev/sdb", "volume_size": 1.5},
                ],
                "tags": "${local.tags}",
            },
            "other": {"region": "eu-west-1", "ami_name": 'other-${upper("x")}'},
        }
    },
    "build": {
        "name": "web",
        "sources": ["source.amazon-ebs.ubuntu", "source.amazon-ebs.other"],
        "provisioner": [
            {
                "shell": {
                    "inline": ["echo ${build.ID} ${source.name} ${build.name}"],
                    "pause_before": "10s",
                    "max_retries": 2,
                    "only": ["amazon-ebs.other"],
                }
            },
            {"file": {"source": "a.txt", "destination": "/tmp/a.txt"}},
        ],
        "post-processor": {"manifest": {"output": "m.json"}},
        "post-processors": {
            "post-processor": [
                {"shell-local": {"inline": ["echo 1"]}},
                {"manifest": {"output": "n.json"}},
            ]
        },
        "error-cleanup-provisioner": {"shell-local": {"inline": ["echo cleanup"]}},
    },
}

_POS_FIELDS = {"pos", "key_pos", "path", "template_dir", "sources", "warnings"}


def plain(obj: Any) -> Any:
    """A Template as plain data without positions and file names (which differ between syntaxes)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in _POS_FIELDS
        }
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(x) for x in obj]
    return obj


def write(d: Path, name: str, text: str) -> Path:
    p = d / name
    p.write_text(text)
    return p


def both(tmp_path: Path, native: str, doc: Any, **kw: Any) -> tuple[Any, Any]:
    (tmp_path / "n").mkdir()
    (tmp_path / "j").mkdir()
    n = load_hcl(write(tmp_path / "n", "t.pkr.hcl", native), env={}, **kw)
    j = load_hcl(write(tmp_path / "j", "t.pkr.json", json.dumps(doc, indent=2)), env={}, **kw)
    return n, j


def test_same_template_in_both_syntaxes(tmp_path: Path) -> None:
    n, j = both(tmp_path, NATIVE, JSON_DOC)
    assert j.format == n.format == "hcl2"
    assert plain(j) == plain(n)
    # and it is the template we meant, not two equally wrong readings
    ebs = j.builds[0].sources[0]
    assert ebs.config["ami_name"] == "img-us-east-1-2"
    assert ebs.config["launch_block_device_mappings"] == [
        {"device_name": "/dev/sda1", "volume_size": 8},
        {"device_name": "/dev/sdb", "volume_size": 1.5},
    ]
    assert ebs.config["source_ami_filter"]["filters"] == {"name": "ubuntu/*", "virtualization-type": "hvm"}
    assert ebs.config["tags"] == {"Name": "x", "Env": "us-east-1"}
    assert [b.sources[0].config["ami_name"] for b in j.builds][1] == "other-X"
    assert j.locals["dollar"] == "${literal} yes"
    assert j.variables["names"].type == "list(string)"
    assert j.variables["secret"].sensitive
    assert [p.type for p in j.builds[1].provisioners] == ["shell", "file"]
    assert [p.type for p in j.builds[0].provisioners] == ["file"]  # only = other
    assert [[p.type for p in seq] for seq in j.builds[0].post_processors] == [
        ["manifest"],
        ["shell-local", "manifest"],
    ]
    assert j.builds[0].error_cleanup_provisioner is not None
    assert j.min_packer_version == ">= 1.7.0"


def test_variables_from_cli_and_var_files_apply_alike(tmp_path: Path) -> None:
    vf = write(tmp_path, "x.pkrvars.json", json.dumps({"region": "eu-central-1", "count": 3}))
    n, j = both(tmp_path, NATIVE, JSON_DOC, var_files=[vf], vars={"names": '["p", "q"]'})
    assert plain(j) == plain(n)
    assert j.builds[0].sources[0].config["ami_name"] == "img-eu-central-1-4"


def test_varfile_json_is_attributes_only(tmp_path: Path) -> None:
    # in a variables file "source" or "build" are variable names, not block types
    body = parse_json_body('{"source": "x", "build": {"a": 1}, "//": "c"}', "v.pkrvars.json", varfile=True)
    assert list(body.attributes) == ["source", "build"]
    assert body.blocks == []


def test_directory_mixing_hcl_and_json(tmp_path: Path) -> None:
    write(tmp_path, "vars.pkr.hcl", 'variable "region" {\n  default = "us-west-2"\n}\n')
    doc = {
        "source": {"amazon-ebs": {"a": {"region": "${var.region}", "ami_name": "n"}}},
        "build": [{"sources": ["source.amazon-ebs.a"]}, {"name": "b2", "sources": ["source.amazon-ebs.a"]}],
    }
    write(tmp_path, "main.pkr.json", json.dumps(doc))
    t = load_hcl(tmp_path, env={})
    assert len(t.builds) == 2
    assert t.builds[1].name == "b2"
    assert t.builds[0].sources[0].config["region"] == "us-west-2"


def test_block_arrays_labels_as_arrays_and_null() -> None:
    text = json.dumps(
        {
            "source": [
                {"amazon-ebs": {"a": {"region": "r1"}}},
                {"amazon-ebs": [{"b": {"region": "r2"}}, {"c": [{"region": "r3"}, {"region": "r4"}]}]},
            ],
            "locals": None,
            "build": [],
        }
    )
    body = parse_json_body(text, "t.pkr.json")
    assert [(b.type, b.labels) for b in body.blocks] == [
        ("source", ["amazon-ebs", "a"]),
        ("source", ["amazon-ebs", "b"]),
        ("source", ["amazon-ebs", "c"]),
        ("source", ["amazon-ebs", "c"]),
    ]
    assert body.attributes == {}


def test_top_level_array_of_bodies() -> None:
    body = parse_json_body('[{"locals": {"a": 1}}, {"locals": {"b": 2}}]', "t.pkr.json")
    assert [list(b.body.attributes) for b in body.blocks] == [["a"], ["b"]]


def test_positions_of_nodes() -> None:
    text = '{\n  "locals": {\n    "a": "x-${var.y}",\n    "b": [1, "\\u00e9${upper(\\"q\\")}"]\n  }\n}\n'
    body = parse_json_body(text, "t.pkr.json")
    (locals_,) = body.blocks
    assert (locals_.line, locals_.col) == (2, 3)
    a = locals_.body.attributes["a"]
    assert (a.line, a.col) == (3, 5)
    assert isinstance(a.expr, A.Template)
    assert (a.expr.line, a.expr.col) == (3, 10)
    assert text[a.expr.start : a.expr.end] == '"x-${var.y}"'
    var = a.expr.parts[1]
    assert isinstance(var, A.GetAttr)
    assert (var.line, var.col) == (3, 15)
    assert text[var.start : var.end] == "var.y"
    b = locals_.body.attributes["b"].expr
    assert isinstance(b, A.TupleCons)
    assert text[b.start : b.end] == '[1, "\\u00e9${upper(\\"q\\")}"]'
    call = b.items[1]
    assert isinstance(call, A.Template)
    inner = call.parts[1]
    assert isinstance(inner, A.Call)
    # after an escape the column still counts the file's characters
    assert (inner.line, inner.col) == (4, 23)
    assert text[inner.start : inner.end] == 'upper(\\"q\\")'


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ('{\n  "locals": {\n    "a": 1,\n  }\n}', 4, 3, "Error parsing JSON"),
        ('{"locals": {"a": 1, "a": 2}}', 1, 21, 'duplicate key "a"'),
        ('{\n  "locals": "x"\n}', 2, 13, "JSON object"),
        ('{\n  "source": {"amazon-ebs": "x"}\n}', 2, 28, "labels"),
        ('{\n  "source": {}\n}', 2, 13, "Missing block label"),
        ('{\n  "build": [1]\n}', 2, 13, "must be a JSON object"),
        ('{\n  "locals": {\n    "a": "${var.}"\n  }\n}', 3, 17, "attribute name"),
        ('{\n  "locals": {\n    "a": "%{ if true }x"\n  }\n}', 3, 24, "endif"),
        ('{\n  "variable": {"v": {"type": "list(" }}\n}', 2, 36, "expected an expression"),
        ('{\n  "variable": {"v": {"type": 3 }}\n}', 2, 30, "type expression"),
        ("[1]", 1, 2, "expected a JSON object"),
        ('"x"', 1, 1, "the top level"),
    ],
)
def test_errors_with_positions(text: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(HclError) as e:
        parse_json_body(text, "t.pkr.json")
    assert (e.value.file, e.value.line, e.value.col) == ("t.pkr.json", line, col), e.value.message
    assert fragment in e.value.message


def test_loader_errors_name_the_json_file(tmp_path: Path) -> None:
    p = write(tmp_path, "t.pkr.json", '{\n  "locals": {\n    "a": "${nosuchfn(1)}"\n  },\n  "bogus": 1\n}\n')
    with pytest.raises(TemplateError) as e:
        load_hcl(p, env={})
    msg = str(e.value)
    assert "t.pkr.json:5:3" in msg  # the unexpected top-level argument
    p2 = write(tmp_path, "u.pkr.json", '{\n  "build": {\n    "sources": ["source.x.y"],\n  }\n}')
    with pytest.raises(TemplateError) as e2:
        load_hcl(p2, env={})
    assert "u.pkr.json:4:3" in str(e2.value)


def test_evaluation_errors_point_into_the_json_file(tmp_path: Path) -> None:
    doc = '{\n  "source": {"amazon-ebs": {"a": {\n    "region": "${var.nope}"\n  }}},\n'
    doc += '  "build": {"sources": ["source.amazon-ebs.a"]}\n}\n'
    with pytest.raises(TemplateError) as e:
        load_hcl(write(tmp_path, "t.pkr.json", doc), env={})
    assert "t.pkr.json:3:" in str(e.value)


_KEYS = ["variable", "locals", "local", "source", "data", "build", "packer", "provisioner", "type", "//", "x"]
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet='ab${}%~"\\\n /.()', max_size=12)
    | st.sampled_from(["${var.x}", "${1 + 2}", "%{ if true }a%{ endif }", "$${x}", "list(string)"]),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.sampled_from(_KEYS) | st.text(max_size=4),
            kids,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_arbitrary_json_raises_only_hcl_errors(doc: Any) -> None:
    text = json.dumps(doc, indent=1)
    try:
        parse_json_body(text, "t.pkr.json")
    except HclError as e:
        assert e.line is not None and e.col is not None
    try:
        parse_json_body(text, "t.pkrvars.json", varfile=True)
    except HclError:
        pass


@settings(max_examples=40, deadline=None)
@given(_json)
def test_arbitrary_json_loads_or_raises_template_error(tmp_path_factory: Any, doc: Any) -> None:
    d = tmp_path_factory.mktemp("j")
    p = d / "t.pkr.json"
    p.write_text(json.dumps(doc))
    try:
        load_hcl(p, env={}, lenient=True)
    except TemplateError:
        pass
