"""Hostile input, run as data: every case ends quickly with a clear message, never an internal error.

Each case is a command line (validate, inspect, fmt, hcl2_upgrade) over files written under
``tmp_path`` (some from ``data/``, most generated here in families), run in-process through the
CLI entry point. For every case: the exit status is 0, 1, 2 or 3 (never 70), there is no
traceback and no "internal error", it ends within :data:`LIMIT_SECONDS` (pytest-timeout's thread
method ends the whole run if one hangs in C code), an error names the file or argument at fault,
and a case's secret (a sensitive variable's value) appears in no output, in no encoding.
"""

from __future__ import annotations

import base64
import json
import os
import random
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from amibake.cli.main import main

DATA = Path(__file__).parent / "data"
#: each case must finish within this (Packer finishes all of them in well under a second)
LIMIT_SECONDS = 5.0

SOURCE = """
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "u"
  ami_name      = "name-x"
}
build {
  sources = ["source.amazon-ebs.x"]
}
"""

JSON_TEMPLATE = {
    "builders": [
        {
            "type": "amazon-ebs",
            "region": "us-east-1",
            "source_ami": "ami-12345678",
            "instance_type": "t2.micro",
            "ssh_username": "u",
            "ami_name": "name-x",
        }
    ],
}


@dataclass
class Case:
    id: str
    argv: list[str]
    #: files to write under the case's directory (relative name -> text or bytes)
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    #: values that must not appear in any output
    secrets: list[str] = field(default_factory=list)
    #: what an error must name (the file or the argument); default: the last argument's name
    mention: str | None = None
    #: extra set-up in the case's directory (FIFOs, symlinks)
    setup: Callable[[Path], None] | None = None
    codes: tuple[int, ...] = (0, 1, 2, 3)


def hcl_local(expr: str, *, prefix: str = "") -> str:
    return f"{prefix}locals {{\n  x = {expr}\n}}\n{SOURCE}"


def json_variable(value: str) -> str:
    """JSON_TEMPLATE with a variable ``a`` whose literal value is ``value``, as written."""
    return '{"variables": {"a": ' + value + "}, " + json.dumps(JSON_TEMPLATE)[1:]


def json_varfile_case(case_id: str, varfile: str | bytes) -> Case:
    """``validate -var-file=v.json t.json`` with the hostile var file ``varfile``."""
    return Case(case_id, ["validate", "-var-file=v.json", "t.json"],
                {"t.json": json.dumps(JSON_TEMPLATE), "v.json": varfile}, mention="v.json")


SECRET_VAR = 'variable "secret" {\n  type      = string\n  sensitive = true\n}\n'


# --- families --------------------------------------------------------------------------------


def function_cases() -> list[Case]:
    """HCL2 functions asked to allocate gigabytes, backtrack for ever or expand a bomb."""
    a = "a" * 30_000
    exprs = {
        "format-width": 'format("%999999999999d", 1)',
        "format-width-s": 'format("%999999999s", "x")',
        "format-precision": 'format("%.999999999f", 1.5)',
        "format-width-digits": 'format("%' + "9" * 5000 + 'd", 1)',
        "format-many-verbs": 'format("' + "%s" * 2000 + '", "x")',
        "formatlist-huge-width": 'formatlist("%99999999d", [1, 2])',
        "indent-1e11": 'indent(1e11, "a\\nb")',
        "indent-negative": 'indent(-5, "a\\nb")',
        "indent-float": 'indent(1.5, "a\\nb")',
        "indent-many-lines": 'indent(100000, join("\\n", [for i in range(1000) : "x"]))',
        "setproduct-huge": "setproduct(range(1000), range(1000), range(1000))",
        "setproduct-6": "setproduct(range(100), range(100), range(100), range(100), range(100), range(100))",
        "setproduct-empty": "setproduct()",
        "range-huge": "range(0, 1e12)",
        "range-float-step": "range(0, 1, 1e-9)",
        "range-zero-step": "range(0, 10, 0)",
        "range-wrong-sign": "range(10, 0, 1)",
        "regex-nested-plus": f'regex("(a+)+$", "{a}b")',
        "regex-nested-star": f'regex("(a*)*$", "{a}b")',
        "regex-alternation": f'regex("(a|aa)+$", "{a}b")',
        "regex-alternation-2": f'regex("(a|a?)+$", "{a}b")',
        "regex-dotstar": f'regex("(.*a){{20}}", "{a}")',
        "regexall-nested": f'regexall("(a+)+b", "{a}")',
        "replace-nested": f'replace("{a}c", "/(a+)+b/", "x")',
        "regex-lookahead": 'regex("a(?=b)", "ab")',
        "regex-lookbehind": 'regex("(?<=a)b", "ab")',
        "regex-backref": 'regex("(a)\\\\1", "aa")',
        "regex-possessive": 'regex("a++", "aa")',
        "regex-huge-repeat": 'regex("a{1001}", "a")',
        "regex-nested-repeat": 'regex("((a{100}){100}){100}", "a")',
        "regex-unbalanced": 'regex("(a", "a")',
        "regex-bad-escape": 'regex("\\\\Q", "a")',
        "regex-empty-class": 'regex("[]", "a")',
        "regex-bad-named": 'regex("(?P<>a)", "a")',
        "regexall-empty": 'regexall("a*", "baaac")',
        "replace-bad-group": 'replace("abc", "/(b)/", "$9")',
        "yaml-bomb-inline": 'yamldecode("a: &a [x,x,x,x,x,x,x,x,x]\\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\\n'
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\\n"
        'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\\n")',
        "yaml-bomb-file": 'yamldecode(file("billion_laughs.yaml"))',
        "yaml-merge-bomb": 'yamldecode(file("merge_key_bomb.yaml"))',
        "yaml-recursive": 'yamldecode(file("recursive_alias.yaml"))',
        "yaml-deep": 'yamldecode("' + "[" * 20000 + "]" * 20000 + '")',
        "yaml-deep-map": 'yamldecode("' + "{a: " * 5000 + "1" + "}" * 5000 + '")',
        "yaml-undefined-alias": 'yamldecode("a: *nope")',
        "yaml-two-docs": 'yamldecode("a: 1\\n---\\nb: 2")',
        "yaml-tab": 'yamldecode("a:\\n\\tb: 1")',
        "yaml-python-tag": 'yamldecode("!!python/object/apply:os.system [\\"true\\"]")',
        "yaml-binary": 'yamldecode("!!binary AAAA")',
        "yaml-huge-int": 'yamldecode("' + "9" * 6000 + '")',
        "json-deep": 'jsondecode("' + "[" * 20000 + "]" * 20000 + '")',
        "json-huge-int": 'jsondecode("' + "9" * 6000 + '")',
        "json-nan": 'jsondecode("NaN")',
        "json-trailing": 'jsondecode("{} x")',
        "csv-ragged": 'csvdecode("a,b\\n1\\n")',
        "csv-empty": 'csvdecode("")',
        "base64-garbage": 'base64decode("!!!not base64")',
        "base64-binary": 'base64decode("/w==")',
        "cidrhost-huge": 'cidrhost("10.0.0.0/8", 1e30)',
        "cidrhost-bad": 'cidrhost("not a cidr", 1)',
        "cidrsubnet-huge-bits": 'cidrsubnet("10.0.0.0/8", 1e9, 1)',
        "cidrsubnet-negative": 'cidrsubnet("10.0.0.0/8", -1, 1)',
        "cidrsubnets-many": 'cidrsubnets("10.0.0.0/8", [for i in range(1000) : 24]...)',
        "pow-huge": "pow(10, 1e9)",
        "pow-negative-frac": "pow(-8, 0.5)",
        "parseint-huge": 'parseint("' + "1" * 5000 + '", 2)',
        "parseint-base": 'parseint("zz", 99)',
        "substr-huge": 'substr("abc", 1e18, 1e18)',
        "substr-negative": 'substr("abc", -1e18, 1)',
        "element-huge": "element([1, 2], 1e18)",
        "slice-huge": "slice([1, 2], 0, 1e18)",
        "chunklist-zero": "chunklist([1, 2, 3], 0)",
        "chunklist-huge": "chunklist([1, 2, 3], 1e18)",
        "timeadd-huge": 'timeadd("2020-01-01T00:00:00Z", "99999999999999999h")',
        "timeadd-bad": 'timeadd("2020-01-01T00:00:00Z", "1 fortnight")',
        "formatdate-bad": 'formatdate("YYYY", "yesterday")',
        "formatdate-verb": 'formatdate("Q", "2020-01-01T00:00:00Z")',
        "file-dev-zero": 'file("/dev/zero")',
        "file-dev-urandom": 'filebase64("/dev/urandom")',
        "file-directory": 'file(".")',
        "file-missing": 'file("nope.txt")',
        "file-binary": 'file("binary.bin")',
        "templatefile-zero": 'templatefile("/dev/zero", {})',
        "templatefile-self": 'templatefile("self.tpl", {})',
        "fileset-loop": 'fileset(".", "**")',
        "textencode-bad": 'textencodebase64("x", "NOPE-ENCODING")',
        "uuidv5-bad": 'uuidv5("nope", "x")',
        "bcrypt-cost": 'bcrypt("x", 99)',
        "flatten-deep": "flatten(" + "[" * 3000 + "1" + "]" * 3000 + ")",
        "merge-many": "merge([for i in range(1000) : { (tostring(i)) = i }]...)",
        "distinct-big": "length(distinct([for i in range(1000) : i % 7]))",
        "strrev-long": f'strrev("{a}")',
        "title-long": f'title("{a}")',
        "sum-huge": "sum([1e308, 1e308])",
        "division-zero": "1 / 0",
        "modulo-zero": "1 % 0",
        "tonumber-huge": 'tonumber("' + "9" * 6000 + '")',
        "tonumber-inf": 'tonumber("1e999999")',
        "ceil-inf": "ceil(1e999)",
        "log-zero": "log(0, 10)",
        "min-empty": "min()",
        "coalesce-none": "coalesce()",
        "lookup-missing": 'lookup({}, "k")',
        "splat-deep": "[for i in range(1000) : [for j in range(1000) : i][0]]",
        "unknown-function": "nosuchfunction(1)",
        "wrong-arity": 'upper("a", "b")',
        "conditional-types": 'true ? "a" : [1]',
    }
    files = {
        "billion_laughs.yaml": (DATA / "billion_laughs.yaml").read_text(),
        "merge_key_bomb.yaml": (DATA / "merge_key_bomb.yaml").read_text(),
        "recursive_alias.yaml": (DATA / "recursive_alias.yaml").read_text(),
        "binary.bin": bytes(range(256)),
        "self.tpl": '${templatefile("self.tpl", {})}',
    }

    def loop(d: Path) -> None:
        (d / "sub").mkdir()
        (d / "sub" / "up").symlink_to("..")
        (d / "sub" / "up2").symlink_to("../..")

    out = []
    for name, expr in exprs.items():
        out.append(
            Case(
                f"fn-{name}",
                ["validate", "t.pkr.hcl"],
                {"t.pkr.hcl": hcl_local(expr), **files},
                mention="self.tpl" if name == "templatefile-self" else None,
                setup=loop if name == "fileset-loop" else None,
            )
        )
    return out


def sensitive_cases() -> list[Case]:
    """A sensitive value with special characters, given every way, misused every way: it is never
    printed, in any encoding."""
    secrets = [
        "p@ss w0rd'!,x%y&z",
        "Zq7SecretAlpha913",
        'quote"back\\slash$dollar`tick',
        "<xml>&amp;</xml>",
        "ünïcødé-sëcret-✓",
        "line-one-secret\nline-two-secret",
        "10.0.0.0/8-not-really",
        "2020-01-01T00:00:00-ish",
        '{"json": [1, 2, 3]}',
        "a: [b, c]\nd: *e",
        "%s%d%v%q%x",
        "${var.secret}",
        "{{user `x`}}",
        "-----BEGIN-NOT-A-KEY-----",
        "tab\tseparated\tsecret",
    ]
    out = []
    misuse = (DATA / "sensitive_misuse.pkr.hcl").read_text()
    numeric = (DATA / "sensitive_number.pkr.hcl").read_text()
    legacy = (DATA / "sensitive_legacy.json").read_text()
    for i, s in enumerate(secrets):
        out.append(
            Case(
                f"secret-{i}-misuse-var",
                ["validate", "-var", f"secret={s}", "t.pkr.hcl"],
                {"t.pkr.hcl": misuse},
                secrets=[s],
                mention="t.pkr.hcl",
            )
        )
        out.append(
            Case(
                f"secret-{i}-misuse-env",
                ["validate", "t.pkr.hcl"],
                {"t.pkr.hcl": misuse},
                env={"PKR_VAR_secret": s},
                secrets=[s],
                mention="t.pkr.hcl",
            )
        )
        out.append(
            Case(
                f"secret-{i}-number-var",
                ["validate", "-var", f"n={s}", "t.pkr.hcl"],
                {"t.pkr.hcl": numeric},
                secrets=[s],
                mention="var.n",
            )
        )
        if "${" not in s:  # in a var file that is an expression, quoted as source, not a value
            out.append(
                Case(
                    f"secret-{i}-number-varfile",
                    ["validate", "-var-file=v.pkrvars.hcl", "t.pkr.hcl"],
                    {"t.pkr.hcl": numeric, "v.pkrvars.hcl": f"n = {json.dumps(s)}\n"},
                    secrets=[s],
                    mention="var.n",
                )
            )
        out.append(
            Case(
                f"secret-{i}-bool-list-map",
                [
                    "validate",
                    "-var",
                    f"b={s}",
                    "-var",
                    f"l={s}",
                    "-var",
                    f"m={s}",
                    "-var",
                    "n=1",
                    "t.pkr.hcl",
                ],
                {"t.pkr.hcl": numeric},
                secrets=[s],
                mention="var.",
            )
        )
        out.append(
            Case(
                f"secret-{i}-legacy",
                ["validate", "-var", f"secret={s}", "-var", f"n={s}", "t.json"],
                {"t.json": legacy},
                secrets=[s],
                mention=None,
            )
        )
        out.append(
            Case(
                f"secret-{i}-inspect",
                ["inspect", "-var", f"n={s}", "t.pkr.hcl"],
                {"t.pkr.hcl": numeric},
                secrets=[s],
                mention="var.n",
            )
        )
    return out


def number_cases() -> list[Case]:
    out = []
    for digits in (4300, 4301, 5000, 20_000, 200_000):
        n = "9" * digits
        out.append(
            Case(
                f"num-json-{digits}",
                ["validate", "t.json"],
                {"t.json": json_variable(n)},
            )
        )
        out.append(
            Case(
                f"num-json-neg-{digits}",
                ["inspect", "t.json"],
                {"t.json": json_variable("-" + n)},
            )
        )
        out.append(Case(f"num-hcl-{digits}", ["validate", "t.pkr.hcl"], {"t.pkr.hcl": hcl_local(n)}))
        out.append(Case(f"num-hcl-fmt-{digits}", ["fmt", "-check", "t.pkr.hcl"], {"t.pkr.hcl": hcl_local(n)}))
        out.append(json_varfile_case(f"num-varfile-{digits}", '{"a": ' + n + "}"))
        out.append(
            Case(
                f"num-upgrade-{digits}",
                ["hcl2_upgrade", "-output-file=o.pkr.hcl", "t.json"],
                {"t.json": json_variable(n)},
            )
        )
    for lit in (
        "1e999999",
        "-1e400",
        "1e-999999",
        "0.000000000000000000000000000000001e-400",
        "1" + "0" * 4000 + ".5",
        "9" * 4000 + "e9999",
    ):
        out.append(Case(f"num-float-{lit[:12]}", ["validate", "t.pkr.hcl"], {"t.pkr.hcl": hcl_local(lit)}))
        out.append(
            Case(
                f"num-float-json-{lit[:12]}",
                ["validate", "t.json"],
                {"t.json": json_variable(lit)},
            )
        )
    return out


def nesting_cases() -> list[Case]:
    out = []
    shapes: dict[str, Callable[[int], str]] = {
        "list": lambda n: "[" * n + "]" * n,
        "object": lambda n: "{a = " * n + "1" + "}" * n,
        "parens": lambda n: "(" * n + "1" + ")" * n,
        "unary": lambda n: "-" * n + "1",
        "not": lambda n: "!" * n + "true",
        "call": lambda n: "upper(" * n + '"a"' + ")" * n,
        "conditional": lambda n: "true ? " * n + "1" + " : 2" * n,
        "template": lambda n: '"${' * n + "1" + '}"' * n,
        "index": lambda n: "[1]" + "[0]" * n,
        "for": lambda n: "[for a in [1] : " * n + "a" + "]" * n,
    }
    for name, make in shapes.items():
        for depth in (1000, 10_000):
            text = hcl_local(make(depth))
            out.append(Case(f"nest-{name}-{depth}", ["validate", "t.pkr.hcl"], {"t.pkr.hcl": text}))
            out.append(Case(f"nest-fmt-{name}-{depth}", ["fmt", "-check", "t.pkr.hcl"], {"t.pkr.hcl": text}))
    blocks = "".join(f'dynamic "b{i}" {{\n content {{\n' for i in range(3000)) + "}}\n" * 3000
    out.append(Case("nest-blocks", ["validate", "t.pkr.hcl"], {"t.pkr.hcl": f"build {{\n{blocks}}}\n"}))
    out.append(
        Case("nest-blocks-fmt", ["fmt", "-check", "t.pkr.hcl"], {"t.pkr.hcl": f"build {{\n{blocks}}}\n"})
    )
    for depth in (1000, 100_000):
        arr = "[" * depth + "]" * depth
        obj = '{"a":' * depth + "1" + "}" * depth
        for cmd in ("validate", "inspect", "hcl2_upgrade"):
            out.append(Case(f"nest-json-arr-{cmd}-{depth}", [cmd, "t.json"], {"t.json": arr}))
            out.append(
                Case(
                    f"nest-json-obj-{cmd}-{depth}", [cmd, "t.json"], {"t.json": '{"variables": ' + obj + "}"}
                )
            )
        out.append(json_varfile_case(f"nest-varfile-{depth}", '{"a": ' + arr + "}"))
        out.append(
            Case(
                f"nest-hclvarfile-{depth}",
                ["validate", "-var-file=v.pkrvars.hcl", "t.pkr.hcl"],
                {"t.pkr.hcl": SOURCE, "v.pkrvars.hcl": "a = " + arr + "\n"},
                mention="v.pkrvars.hcl",
            )
        )
        out.append(
            Case(
                f"nest-pkrjson-{depth}",
                ["validate", "t.pkr.json"],
                {"t.pkr.json": '{"locals": {"a": ' + arr + "}}"},
            )
        )
    gotmpl = "{{if true}}" * 2000 + "x" + "{{end}}" * 2000
    out.append(
        Case(
            "nest-gotemplate",
            ["validate", "t.json"],
            {"t.json": json.dumps({**JSON_TEMPLATE, "variables": {"a": gotmpl}})},
        )
    )
    out.append(
        Case(
            "nest-gotemplate-parens",
            ["validate", "t.json"],
            {
                "t.json": json.dumps(
                    {**JSON_TEMPLATE, "variables": {"a": "{{" + "(" * 5000 + ")" * 5000 + "}}"}}
                )
            },
        )
    )
    return out


def binary_cases() -> list[Case]:
    rnd = random.Random(19)
    blobs: dict[str, bytes] = {
        "random": bytes(rnd.getrandbits(8) for _ in range(4096)),
        "nul": b"\0" * 1000,
        "nul-inside": b'locals {\n  a = "x\0y"\n}\n',
        "latin1": 'locals {\n  a = "caf\xe9"\n}\n'.encode("latin-1"),
        "utf16": 'locals {\n  a = "x"\n}\n'.encode("utf-16"),
        "bom": b"\xef\xbb\xbf" + SOURCE.encode(),
        "lone-surrogate": b'locals {\n  a = "\xed\xa0\x80"\n}\n',
        "crlf": SOURCE.replace("\n", "\r\n").encode(),
        "cr-only": SOURCE.replace("\n", "\r").encode(),
        "control-chars": bytes(range(1, 32)) * 10,
        "gzip": base64.b64decode("H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA=="),
        "long-line": b"a = " + b"x" * 2_000_000 + b"\n",
        "many-lines": b"\n" * 100_000,
        "unterminated-heredoc": b"locals {\n  a = <<EOT\nabc\n",
        "unterminated-string": b'locals {\n  a = "abc\n}\n',
        "unterminated-comment": b"/* never ends\n" + SOURCE.encode(),
    }
    out = []
    for name, data in blobs.items():
        out.append(Case(f"bin-tpl-{name}", ["validate", "t.pkr.hcl"], {"t.pkr.hcl": data}))
        out.append(Case(f"bin-json-{name}", ["validate", "t.json"], {"t.json": data}))
        out.append(
            Case(
                f"bin-varfile-{name}",
                ["validate", "-var-file=v.pkrvars.hcl", "t.pkr.hcl"],
                {"t.pkr.hcl": SOURCE, "v.pkrvars.hcl": data},
                mention="v.pkrvars.hcl",
            )
        )
        out.append(json_varfile_case(f"bin-jsonvarfile-{name}", data))
        out.append(Case(f"bin-fmt-{name}", ["fmt", "-check", "t.pkr.hcl"], {"t.pkr.hcl": data}))
    return out


def special_file_cases() -> list[Case]:
    def fifo(name: str) -> Callable[[Path], None]:
        return lambda d: os.mkfifo(d / name)

    def loop(name: str) -> Callable[[Path], None]:
        def make(d: Path) -> None:
            (d / name).symlink_to(name + ".other")
            (d / (name + ".other")).symlink_to(name)

        return make

    def tree_loop(d: Path) -> None:
        (d / "tree" / "a" / "b").mkdir(parents=True)
        (d / "tree" / "a" / "b" / "x.pkr.hcl").write_text("a   = 1\n")
        (d / "tree" / "a" / "b" / "up").symlink_to("..")
        (d / "tree" / "a" / "b" / "up2").symlink_to("../..")
        (d / "tree" / "self").symlink_to(".")

    def deep_tree(d: Path) -> None:
        p = d / "deep"
        for i in range(200):
            p = p / f"d{i}"
        p.mkdir(parents=True)
        (p / "x.pkr.hcl").write_text("a = 1\n")

    json_tpl = {"t.json": json.dumps(JSON_TEMPLATE)}
    hcl_tpl = {"t.pkr.hcl": SOURCE}
    out = [
        Case("dev-zero-template", ["validate", "/dev/zero"], mention="/dev/zero"),
        Case(
            "dev-zero-hcl-suffix",
            ["validate", "z.pkr.hcl"],
            setup=lambda d: (d / "z.pkr.hcl").symlink_to("/dev/zero"),
        ),
        Case(
            "dev-zero-json-suffix",
            ["validate", "z.json"],
            setup=lambda d: (d / "z.json").symlink_to("/dev/zero"),
        ),
        Case("dev-null-template", ["validate", "/dev/null"], mention="/dev/null"),
        Case(
            "dev-zero-varfile", ["validate", "-var-file=/dev/zero", "t.json"], json_tpl, mention="/dev/zero"
        ),
        Case(
            "dev-zero-hclvarfile",
            ["validate", "-var-file=z.pkrvars.hcl", "t.pkr.hcl"],
            hcl_tpl,
            setup=lambda d: (d / "z.pkrvars.hcl").symlink_to("/dev/zero"),
            mention="z.pkrvars.hcl",
        ),
        Case(
            "dev-zero-fmt",
            ["fmt", "-check", "z.pkr.hcl"],
            setup=lambda d: (d / "z.pkr.hcl").symlink_to("/dev/zero"),
        ),
        Case("dev-zero-upgrade", ["hcl2_upgrade", "/dev/zero"], mention="/dev/zero"),
        Case("dev-zero-inspect", ["inspect", "/dev/zero"], mention="/dev/zero"),
        Case("fifo-template", ["validate", "f.pkr.hcl"], setup=fifo("f.pkr.hcl")),
        Case("fifo-json", ["validate", "f.json"], setup=fifo("f.json")),
        Case(
            "fifo-varfile",
            ["validate", "-var-file=f.json", "t.json"],
            json_tpl,
            setup=fifo("f.json"),
            mention="f.json",
        ),
        Case("fifo-fmt", ["fmt", "-check", "f.pkr.hcl"], setup=fifo("f.pkr.hcl")),
        Case("fifo-in-dir", ["validate", "."], hcl_tpl, setup=fifo("g.pkr.hcl"), mention="g.pkr.hcl"),
        Case(
            "fifo-auto-varfile",
            ["validate", "."],
            hcl_tpl,
            setup=fifo("a.auto.pkrvars.hcl"),
            mention="a.auto.pkrvars.hcl",
        ),
        Case("loop-template", ["validate", "l.pkr.hcl"], setup=loop("l.pkr.hcl")),
        Case("loop-json", ["validate", "l.json"], setup=loop("l.json")),
        Case(
            "loop-varfile",
            ["validate", "-var-file=l.json", "t.json"],
            json_tpl,
            setup=loop("l.json"),
            mention="l.json",
        ),
        Case("loop-in-dir", ["validate", "."], hcl_tpl, setup=loop("l.pkr.hcl"), mention="l.pkr.hcl"),
        Case("loop-fmt", ["fmt", "-check", "l.pkr.hcl"], setup=loop("l.pkr.hcl")),
        Case(
            "dir-as-varfile",
            ["validate", "-var-file=d.json", "t.json"],
            json_tpl,
            setup=lambda d: (d / "d.json").mkdir(),
        ),
        Case(
            "dir-as-hclvarfile",
            ["validate", "-var-file=d.pkrvars.hcl", "t.pkr.hcl"],
            hcl_tpl,
            setup=lambda d: (d / "d.pkrvars.hcl").mkdir(),
        ),
        Case("dir-named-template", ["validate", "d.pkr.hcl"], setup=lambda d: (d / "d.pkr.hcl").mkdir()),
        Case("dir-in-dir", ["validate", "."], hcl_tpl, setup=lambda d: (d / "sub.pkr.hcl").mkdir()),
        Case("missing-template", ["validate", "nope.pkr.hcl"]),
        Case("missing-varfile", ["validate", "-var-file=nope.json", "t.json"], json_tpl, mention="nope.json"),
        Case("empty-template", ["validate", "e.pkr.hcl"], {"e.pkr.hcl": ""}),
        Case("empty-json", ["validate", "e.json"], {"e.json": ""}),
        Case("empty-dir", ["validate", "."], mention="."),
        Case(
            "fmt-recursive-loops",
            ["fmt", "-check", "-recursive", "tree"],
            setup=tree_loop,
            mention="x.pkr.hcl",
        ),
        Case(
            "fmt-recursive-deep",
            ["fmt", "-check", "-recursive", "deep"],
            setup=deep_tree,
            mention="x.pkr.hcl",
        ),
        Case(
            "fmt-loop-argument",
            ["fmt", "-check", "-recursive", "tree/a/b/up"],
            setup=tree_loop,
            mention="x.pkr.hcl",
        ),
        Case(
            "journal-dir",
            ["cleanup", "--run", "r1", "--dry-run"],
            setup=lambda d: (d / "state" / "runs" / "r1.jsonl").mkdir(parents=True),
            mention="r1.jsonl",
        ),
        Case(
            "journal-loop",
            ["cleanup", "--run", "r1", "--dry-run"],
            setup=lambda d: (
                (d / "state" / "runs").mkdir(parents=True),
                (d / "state" / "runs" / "r1.jsonl").symlink_to("r2.jsonl"),
                (d / "state" / "runs" / "r2.jsonl").symlink_to("r1.jsonl"),
            ),
            mention="r1.jsonl",
        ),
        Case(
            "server-socket-parent-file",
            ["server", "start", "--socket", "f/server.sock"],
            setup=lambda d: (d / "f").write_text("x"),
            mention="f",
        ),
        Case(
            "server-socket-too-long",
            ["server", "run", "--socket", "x" * 120 + "/s.sock", "--idle-timeout", "1s"],
            mention="AF_UNIX",
        ),
        Case(
            "server-log-unwritable",
            ["server", "run", "--socket", "s/s.sock", "--log", "f/log"],
            setup=lambda d: (d / "f").write_text("x"),
            mention="f/log",
        ),
    ]
    return out


def truncation_cases() -> list[Case]:
    out = []
    for name in ("truncate_base.pkr.hcl", "truncate_base.json"):
        text = (DATA / name).read_text()
        step = max(1, len(text) // 24)
        suffix = ".pkr.hcl" if name.endswith(".hcl") else ".json"
        for cut in range(1, len(text), step):
            out.append(
                Case(f"cut-{suffix[1:4]}-{cut}", ["validate", "t" + suffix], {"t" + suffix: text[:cut]})
            )
    return out


def flag_cases() -> list[Case]:
    json_tpl = {"t.json": json.dumps(JSON_TEMPLATE)}
    hcl_tpl = {"t.pkr.hcl": SOURCE}
    huge = "v" * 2_000_000
    return [
        Case("var-no-equals", ["validate", "-var", "novalue", "t.json"], json_tpl, mention="novalue"),
        Case("var-empty-name", ["validate", "-var", "=x", "t.json"], json_tpl, mention="=x"),
        Case("var-huge-value", ["validate", "-var", f"a={huge}", "t.json"], json_tpl),
        Case("var-huge-name", ["validate", "-var", f"{huge}=1", "t.pkr.hcl"], hcl_tpl, mention="var.vvv"),
        Case("var-nul", ["validate", "-var", "a=x\0y", "t.json"], json_tpl),
        Case("only-garbage", ["validate", "-only", "\0,,,*", "t.json"], json_tpl),
        Case("except-huge", ["validate", "-except", ",".join(["x"] * 100_000), "t.json"], json_tpl),
        Case(
            "parallel-huge",
            ["build", "-parallel-builds=" + "9" * 5000, "t.json"],
            json_tpl,
            mention="parallel-builds",
        ),
        Case("on-error-bad", ["build", "-on-error=explode", "t.json"], json_tpl, mention="on-error"),
        Case(
            "cleanup-older-bad",
            ["cleanup", "--older-than", "9" * 5000 + "h", "--dry-run"],
            mention="older-than",
        ),
        Case(
            "server-idle-bad",
            ["server", "run", "--idle-timeout", "9" * 5000 + "h", "--socket", "s/s.sock"],
            mention="idle-timeout",
        ),
        Case(
            "pkr-var-huge",
            ["validate", "t.pkr.hcl"],
            {"t.pkr.hcl": 'variable "a" {\n  type = list(string)\n}\n' + SOURCE},
            env={"PKR_VAR_a": "[" * 50_000},
        ),
        Case(
            "pkr-var-deep",
            ["validate", "t.pkr.hcl"],
            {"t.pkr.hcl": 'variable "a" {\n  type = any\n}\n' + SOURCE},
            env={"PKR_VAR_a": "[" * 5000 + "]" * 5000},
        ),
        Case(
            "var-list-deep",
            ["validate", "-var", "a=" + "[" * 5000 + "]" * 5000, "t.pkr.hcl"],
            {"t.pkr.hcl": 'variable "a" {\n  type = list(any)\n}\n' + SOURCE},
        ),
    ]


def all_cases() -> list[Case]:
    return (
        function_cases()
        + sensitive_cases()
        + number_cases()
        + nesting_cases()
        + binary_cases()
        + special_file_cases()
        + truncation_cases()
        + flag_cases()
    )


CASES = all_cases()


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 200
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})


def _forms(secret: str) -> set[str]:
    """A secret as an output could carry it (raw, quoted, escaped, encoded)."""
    from xml.sax.saxutils import escape

    forms = {
        secret,
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        escape(secret),
        urllib.parse.quote(secret),
        secret.encode("unicode_escape").decode(),
    }
    forms |= {ln.strip() for ln in secret.splitlines() if len(ln.strip()) >= 8}
    return {f for f in forms if len(f) >= 3}


@pytest.mark.timeout(30, method="thread")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_gets_a_clear_answer_quickly(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, content in case.files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    if case.setup is not None:
        case.setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith(("PKR_VAR_", "AMIBAKE_", "PACKER_"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AMIBAKE_NO_SERVER", "1")
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    t0 = time.monotonic()
    try:
        main(case.argv)
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    took = time.monotonic() - t0
    out, err = capsys.readouterr()
    text = out + err
    shown = text[-2000:]
    assert rc != 70 and "internal error" not in text.lower(), shown
    assert "Traceback" not in text, shown
    assert rc in case.codes, (rc, shown)
    assert took < LIMIT_SECONDS, f"took {took:.1f} s"
    if rc == 1:
        mention = case.mention if case.mention is not None else os.path.basename(case.argv[-1])
        assert mention in text, shown
    for secret in case.secrets:
        for form in _forms(secret):
            assert form not in text, (form, shown)
    sys.stdout.flush()
