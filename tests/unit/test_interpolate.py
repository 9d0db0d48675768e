"""Packer's {{ }} interpolation (amibake.template.interpolate): table-driven unit tests."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from amibake.errors import InterpolationError
from amibake.plugins.amazon.facts import BUILD_DATA_FIELDS as BUILD_DATA_FIELDS_AMAZON
from amibake.plugins.amazon.facts import LATE_FIELDS as LATE_FIELDS_AMAZON
from amibake.plugins.amazon.facts import LATE_FIELDS_BY_BUILDER
from amibake.template.interpolate import (
    ERR_VARIABLE_NOT_SET,
    DeepInterpolationError,
    InterpContext,
    ListNode,
    TemplateExecError,
    TemplateSyntaxError,
    available_functions,
    check,
    parse,
    placeholder_build_data,
    references,
    render,
    render_deep,
    render_repeat,
    user_references,
    validate,
)

T0 = datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)


def make_ctx(**kw: Any) -> InterpContext:
    base: dict[str, Any] = {
        "user_vars": {"region": "us-east-1", "name": "my app", "csv": "a,b,c", "empty": ""},
        "build_name": "amazon-ebs",
        "build_type": "amazon-ebs",
        "template_dir": "/abs/templates",
        "env": {"HOME": "/home/u", "EMPTY": ""},
        "data": {
            "BuildRegion": "eu-west-1",
            "SourceAMI": "ami-123",
            "SourceAMIName": "ubuntu/images/x",
            "SourceAMITags": {"Name": "base", "Team": "infra"},
            "Count": 3,
            "Nothing": None,
        },
    }
    base.update(kw)
    return InterpContext(**base).with_time(T0)


CTX = make_ctx()

# ------------------------------------------------------------------------------------------
# rendering: (template, expected output)
# ------------------------------------------------------------------------------------------

RENDER_CASES = [
    # plain text
    ("", ""),
    ("no actions at all", "no actions at all"),
    ("single { brace } and }} closing", "single { brace } and }} closing"),
    ("unicode ✓ ünïcödé", "unicode ✓ ünïcödé"),
    # user
    ("{{user `region`}}", "us-east-1"),
    ('{{ user "region" }}', "us-east-1"),
    ("{{user `unknown`}}", ""),
    ("{{user `empty`}}x", "x"),
    ("pre-{{user `name`}}-post", "pre-my app-post"),
    ("{{user `region`}}{{user `region`}}", "us-east-1us-east-1"),
    # build_name / build_type / template_dir / packer_version / timestamp
    ("{{build_name}}", "amazon-ebs"),
    ("{{ build_type }}", "amazon-ebs"),
    ("{{template_dir}}/scripts", "/abs/templates/scripts"),
    ("{{timestamp}}", str(int(T0.timestamp()))),
    ("{{ packer_version }}", "1.9.4"),
    # isotime / strftime
    ("{{isotime}}", "2024-03-05T07:08:09Z"),
    ('{{isotime "2006-01-02"}}', "2024-03-05"),
    ("{{isotime `20060102150405`}}", "20240305070809"),
    ('{{ isotime "Jan _2 15:04:05.000 MST" }}', "Mar  5 07:08:09.123 UTC"),
    ('{{ "2006" | isotime }}', "2024"),
    ('{{strftime "%Y%m%d%H%M%S"}}', "20240305070809"),
    ('{{ strftime "%Y-%m-%d %Q" }}', "2024-03-05 %Q"),
    # split / replace / replace_all / upper / lower
    ('{{ split (user `csv`) "," 0 }}', "a"),
    ('{{ split (user `csv`) "," 2 }}', "c"),
    ('{{ split "a-b" "" 1 }}', "-"),
    ('{{ user `csv` | split "," 1 }}' if False else '{{ split "x.y.z" "." 1 }}', "y"),
    ('{{ replace "a" "b" 1 "aaa" }}', "baa"),
    ('{{ replace "a" "b" -1 "aaa" }}', "bbb"),
    ('{{ replace "a" "b" 0 "aaa" }}', "aaa"),
    ('{{ replace "" "-" 2 "abc" }}', "-a-bc"),
    ('{{ "aaa" | replace "a" "b" 2 }}', "bba"),
    ('{{ replace_all "." "-" "1.2.3" }}', "1-2-3"),
    ('{{ "1.2.3" | replace_all "." "" }}', "123"),
    ('{{ upper "abc" }}', "ABC"),
    ('{{ lower "ÀBC" }}', "àbc"),
    ('{{ upper "straße" }}', "STRAßE"),  # Go maps rune by rune: no "SS"
    ("{{ user `name` | upper }}", "MY APP"),
    ("{{ user `name` | upper | lower }}", "my app"),
    # clean_resource_name
    ('{{ clean_resource_name "a b(c)[d].e/f-g\'h@i_j" }}', "a b(c)[d].e/f-g'h@i_j"),
    ('{{ clean_resource_name "a:b,c;d!e" }}', "a-b-c-d-e"),
    ('{{ clean_resource_name "é" }}', "--"),  # bytes, as the Go original
    ("{{ isotime | clean_resource_name }}", "2024-03-05T07-08-09Z"),
    ("{{ timestamp | clean_resource_name }}", str(int(T0.timestamp()))),
    # pipelines and sub-calls
    ("{{ (user `region`) }}", "us-east-1"),
    ("{{ upper (user `region`) }}", "US-EAST-1"),
    ('{{ upper (replace_all "-" "_" (user `region`)) }}', "US_EAST_1"),
    ("{{ user `region` | printf `%s!` }}", "us-east-1!"),
    # strings
    ('{{ "tab\\there" }}', "tab\there"),
    ('{{ "quote\\"d" }}', 'quote"d'),
    ('{{ "\\x41\\101\\u00e9\\U0001F600" }}', "AAé😀"),
    ('{{ "\\\\" }}', "\\"),
    ("{{ `raw \\n stays` }}", "raw \\n stays"),
    ("{{ `cr\r\nremoved` }}", "cr\nremoved"),
    ("{{ `multi\nline` }}", "multi\nline"),
    # numbers, bools, nil-ish
    ("{{ 42 }}", "42"),
    ("{{ -7 }}", "-7"),
    ("{{ 0x1F }}", "31"),
    ("{{ 0o17 }}", "15"),
    ("{{ 017 }}", "15"),
    ("{{ 0b101 }}", "5"),
    ("{{ 1_000 }}", "1000"),
    ("{{ 1.5 }}", "1.5"),
    ("{{ 1.0 }}", "1"),
    ("{{ 1e6 }}", "1e+06"),
    ("{{ 123456.0 }}", "123456"),
    ("{{ 0.0001 }}", "0.0001"),
    ("{{ 0.00001 }}", "1e-05"),
    ("{{ 'a' }}", "97"),
    ("{{ '\\n' }}", "10"),
    ("{{ true }} {{ false }}", "true false"),
    # fields
    ("{{ .BuildRegion }}", "eu-west-1"),
    ("{{.SourceAMI}}", "ami-123"),
    ("{{ .SourceAMITags.Name }}", "base"),
    ("{{ .SourceAMITags.Missing }}", "<no value>"),
    ("{{ .NotThere }}", "<no value>"),
    ("{{ .NotThere.Deeper }}", "<no value>"),
    ("{{ .Count }}", "3"),
    ("{{ .Nothing }}", "<no value>"),
    ("{{ .SourceAMITags }}", "map[Name:base Team:infra]"),
    ("{{ .SourceAMI | upper }}", "AMI-123"),
    ("{{ $.SourceAMI }}", "ami-123"),
    ("{{ (.SourceAMITags).Team }}", "infra"),
    # trimming
    ("a {{- `x` }} b", "ax b"),
    ("a {{ `x` -}} b", "a xb"),
    ("a \n\t {{- `x` -}} \n\t b", "axb"),
    ("a  {{-  `x`  -}}  b", "axb"),
    ("{{- `x` -}}", "x"),
    ("a {{-3}} b", "a -3 b"),  # no space after "-": a number, not a trim marker
    ("a {{ 3 -}}\n\nb", "a 3b"),
    # comments
    ("{{/* a comment */}}", ""),
    ("x{{/* a\nmultiline comment */}}y", "xy"),
    ("x {{- /* trimmed */ -}} y", "xy"),
    ("x {{/* not trimmed */}} y", "x  y"),
    # variables
    ("{{ $x := `v` }}[{{ $x }}]", "[v]"),
    ("{{ $x := `v` }}{{ $x = `w` }}{{ $x }}", "w"),
    ("{{ $r := user `region` | upper }}{{ $r }}-{{ $r }}", "US-EAST-1-US-EAST-1"),
    # newlines and tabs inside actions
    ("{{ user\n`region` }}", "us-east-1"),
    ("{{\tuser\t`region`\t}}", "us-east-1"),
    # Go builtins
    ("{{ print `a` `b` }}", "ab"),
    ("{{ print 1 2 }}", "1 2"),
    ("{{ print `a` 1 2 `b` }}", "a1 2b"),
    ("{{ println `a` 1 }}", "a 1\n"),
    ('{{ printf "%s-%d-%v-%q" `a` 1 true `b` }}', 'a-1-true-"b"'),
    ('{{ printf "%d" `x` }}', "%!d(string=x)"),
    ('{{ printf "%s %s" `x` }}', "x %!s(MISSING)"),
    ("{{ len `héllo` }}", "6"),
    ("{{ len .SourceAMITags }}", "2"),
    ('{{ index .SourceAMITags "Team" }}', "infra"),
    ('{{ index .SourceAMITags "Nope" }}', "<no value>"),
    ("{{ not true }} {{ not `` }} {{ not `x` }}", "false true false"),
    ("{{ and `a` `b` }} {{ and `` `b` }} {{ or `` `b` }} {{ or `a` `b` }}", "b  b a"),
    ("{{ eq `a` `a` }} {{ eq 1 2 }} {{ eq 1 2 1 }} {{ ne `a` `b` }}", "true false true true"),
    ("{{ lt 1 2 }} {{ le 2 2 }} {{ gt `b` `a` }} {{ ge 1 2 }}", "true true true false"),
    ('{{ html "<a&b>" }}', "&lt;a&amp;b&gt;"),
    ('{{ urlquery "a b&c" }}', "a+b%26c"),
    ('{{ js "it\'s" }}', "it\\'s"),
]


@pytest.mark.parametrize(("template", "want"), RENDER_CASES)
def test_render(template: str, want: str) -> None:
    assert render(template, CTX) == want


# ------------------------------------------------------------------------------------------
# errors: (template, exact message, offset)
# ------------------------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("{{ foo }}", 'template: root:1: function "foo" not defined', 3),
    ("{{ clean_ami_name `x` }}", 'template: root:1: function "clean_ami_name" not defined', 3),
    ("jenkins-{{isotime | clean_ami_name}}", 'template: root:1: function "clean_ami_name" not defined', 20),
    ("{{", "template: root:1: unclosed action", 2),
    ("abc {{ user `x`", "template: root:1: unclosed action", 15),
    ("x\n{{ user `a`\n", "template: root:3: unclosed action started at root:2", 14),
    ("{{ user `a` }", 'template: root:1: unexpected "}" in operand', 12),
    ("{{}}", "template: root:1: missing value for command", 2),
    ("{{ }}", "template: root:1: missing value for command", 3),
    ("{{/* never closed", "template: root:1: unclosed comment", 2),
    ("{{/* c */ }}", "template: root:1: comment ends before closing delimiter", 2),
    ('{{ "open }}', "template: root:1: unterminated quoted string", 3),
    ('{{ "a\nb" }}', "template: root:1: unterminated quoted string", 3),
    ("{{ `open }}", "template: root:1: unterminated raw quoted string", 3),
    ("{{ 'ab }}", "template: root:1: unterminated character constant", 3),
    ("{{ 'ab' }}", "template: root:1: malformed character constant: 'ab'", 3),
    ('{{ "\\q" }}', "template: root:1: invalid syntax", 3),
    ('{{ "\\\'" }}', "template: root:1: invalid syntax", 3),
    ("{{ 3x }}", 'template: root:1: bad number syntax: "3x"', 3),
    ("{{ user! }}", "template: root:1: bad character U+0021 '!'", 3),
    ("{{ .Foo# }}", "template: root:1: bad character U+0023 '#'", 3),
    ("{{ (user `a` }}", "template: root:1: unclosed left paren", 13),
    ("{{ user `a`) }}", "template: root:1: unexpected right paren", 11),
    ("{{ user: }}", "template: root:1: expected :=", 7),
    ("{{ a: }}", 'template: root:1: function "a" not defined', 3),  # Go parses as it lexes
    ("{{ user ~ }}", 'template: root:1: unexpected "~" in operand', 8),
    ("{{ | upper }}", 'template: root:1: unexpected "|" in command', 3),
    ("{{ `a` | `b` }}", "template: root:1: non executable command in pipeline stage 2", 9),
    ("{{ upper | 3 }}", "template: root:1: non executable command in pipeline stage 2", 11),
    ("{{ `a`.Field }}", 'template: root:1: unexpected . after term "`a`"', 6),
    ("{{ $undefined }}", 'template: root:1: undefined variable "$undefined"', 3),
    ("{{ $x, $y := 1 }}", "template: root:1: too many declarations in command", 5),
    ("{{ end }}", "template: root:1: unexpected {{end}}", 3),
    ("{{ else }}", "template: root:1: unexpected {{else}}", 3),
    ("{{ 99999999999999999999 }}", "template: root:1: integer overflow: 99999999999999999999", 3),
    ("line1\nline2 {{ nope }}", 'template: root:2: function "nope" not defined', 15),
    ("{{ user `a` \u00a7 }}", "template: root:1: unrecognized character in action: U+00A7 '§'", 12),
]


@pytest.mark.parametrize(("template", "message", "offset"), SYNTAX_ERRORS)
def test_syntax_errors(template: str, message: str, offset: int) -> None:
    with pytest.raises(TemplateSyntaxError) as ei:
        render(template, CTX)
    assert ei.value.message == message
    assert str(ei.value) == message
    assert ei.value.offset == offset
    assert isinstance(ei.value, InterpolationError)


@pytest.mark.parametrize("keyword", ["define", "template", "block"])
def test_named_templates_are_unsupported(keyword: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=f'unsupported action "{keyword}"') as ei:
        render(f"x {{{{ {keyword} .A }}}}y{{{{ end }}}}", CTX)
    assert ei.value.offset == 5
    assert "named templates" in ei.value.message


EXEC_ERRORS = [
    (
        "{{ user }}",
        'template: root:1:3: executing "root" at <user>: wrong number of args for user: want 1 got 0',
    ),
    (
        "{{ user `a` `b` }}",
        'template: root:1:3: executing "root" at <user>: wrong number of args for user: want 1 got 2',
    ),
    (
        "{{ `a` | user `b` }}",
        'template: root:1:9: executing "root" at <user>: wrong number of args for user: want 1 got 2',
    ),
    (
        "{{ timestamp `x` }}",
        'template: root:1:3: executing "root" at '
        "<timestamp>: wrong number of args for timestamp: want 0 got 1",
    ),
    (
        '{{ split "a" "b" }}',
        'template: root:1:3: executing "root" at <split>: wrong number of args for split: want 3 got 2',
    ),
    (
        "{{ printf }}",
        'template: root:1:3: executing "root" at <printf>: wrong number of args for printf: '
        "want at least 1 got 0",
    ),
    (
        '{{ split "a,b" "," 5 }}',
        'template: root:1:3: executing "root" at <split "a,b" "," 5>: error calling split: the substring 5 '
        "was unavailable using the separator value, ,, only 2 values were found",
    ),
    (
        '{{ split "a,b" "," -1 }}',
        'template: root:1:3: executing "root" at <split "a,b" "," -1>: error calling split: '
        "runtime error: index out of range [-1]",
    ),
    (
        '{{ split "a,b" "," "1" }}',
        'template: root:1:19: executing "root" at <"1">: expected integer; found "1"',
    ),
    ("{{ upper 3 }}", 'template: root:1:9: executing "root" at <3>: expected string; found 3'),
    (
        "{{ 3 | upper }}",
        'template: root:1:7: executing "root" at <upper>: wrong type for value; expected string; got int',
    ),
    (
        "{{ .Count | upper }}",
        'template: root:1:12: executing "root" at <upper>: wrong type for value; expected string; got int',
    ),
    (
        "{{ .Missing | upper }}",
        'template: root:1:14: executing "root" at <upper>: invalid value; expected string',
    ),
    (
        "{{ env `HOME` }}",
        'template: root:1:3: executing "root" at '
        "<env `HOME`>: error calling env: env vars are not allowed here",
    ),
    (
        '{{isotime "a" "b"}}',
        'template: root:1:2: executing "root" at <isotime "a" "b">: error calling isotime: '
        "too many values, 1 needed: [a b]",
    ),
    (
        "{{ .BuildRegion.Sub }}",
        'template: root:1:3: executing "root" at '
        "<.BuildRegion.Sub>: can't evaluate field Sub in type string",
    ),
    (
        "{{ .Nothing.Sub }}",
        'template: root:1:3: executing "root" at <.Nothing.Sub>: nil pointer evaluating interface {}.Sub',
    ),
    (
        "{{ `a` | .SourceAMI }}",
        'template: root:1:9: executing "root" at <.SourceAMI>: SourceAMI is not a method but has arguments',
    ),
    ("{{ nil }}", 'template: root:1:3: executing "root" at <nil>: nil is not a command'),
    (
        "{{ `a` `b` }}",
        'template: root:1:3: executing "root" at <`a`>: can\'t give argument to non-function `a`',
    ),
    (
        "{{ sed `a` `b` }}",
        'template: root:1:3: executing "root" at '
        "<sed `a` `b`>: error calling sed: template function `sed` is "
        "deprecated use `replace` or `replace_all` instead.Documentation: https://www.packer.io/docs/templates/engine",
    ),
    (
        "{{ build_name }}\n{{ 18446744073709551615 }}",
        'template: root:2:3: executing "root" at <18446744073709551615>: 18446744073709551615 overflows int',
    ),
    ("{{ len 3 }}", 'template: root:1:3: executing "root" at <len 3>: error calling len: len of type int'),
    (
        "{{ eq 1 `a` }}",
        'template: root:1:3: executing "root" at '
        "<eq 1 `a`>: error calling eq: incompatible types for comparison",
    ),
    (
        "{{ index .SourceAMITags.Name 9 }}",
        'template: root:1:3: executing "root" at <index .SourceAMITags.Name 9>: error calling index: '
        "index out of range: 9",
    ),
]


@pytest.mark.parametrize(("template", "message"), EXEC_ERRORS)
def test_exec_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateExecError) as ei:
        render(template, CTX)
    assert ei.value.message == message
    # the offset points at the node named in the message
    loc = re.match(r"template: root:(\d+):(\d+):", message)
    assert loc is not None
    line, col = int(loc.group(1)), int(loc.group(2))
    line_start = sum(len(x) + 1 for x in template.split("\n")[: line - 1])
    assert ei.value.offset == line_start + col


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert render("{{" + "(" * 50 + "`x`" + ")" * 50 + "}}", CTX) == "x"
    with pytest.raises(TemplateSyntaxError, match="max expression depth exceeded"):
        render("{{" + "(" * 5000 + "1" + ")" * 5000 + "}}", CTX)


def test_exec_error_column_counts_bytes_like_go() -> None:
    with pytest.raises(TemplateExecError) as ei:
        render("é{{ user }}", CTX)
    assert ei.value.column == 5  # "é" is two bytes
    assert ei.value.offset == 4  # but the offset is in characters


def test_exec_error_from_corpus_005_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    # Packer 1.6.6 on corpus entry 005 (run without network): the context is the whole command
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                 "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(TemplateExecError) as ei:
        render("{{ aws_secretsmanager `sample/app/password` }}", make_ctx(allow_env=True))
    assert ei.value.message.startswith(
        'template: root:1:3: executing "root" at <aws_secretsmanager `sample/app/password`>: '
        'error calling aws_secretsmanager: Could not connect to the endpoint URL: "http://127.0.0.1:9/"'
    )


# ------------------------------------------------------------------------------------------
# functions with context
# ------------------------------------------------------------------------------------------


def test_user_unknown_is_error_in_variables_section() -> None:
    ctx = make_ctx(allow_env=True)
    with pytest.raises(TemplateExecError, match="error calling user: Error: variable not set: nope"):
        render("{{ user `nope` }}", ctx)
    assert render("{{ user `region` }}", ctx) == "us-east-1"


def test_env_allowed_in_variables_section() -> None:
    ctx = make_ctx(allow_env=True)
    assert render("{{ env `HOME` }}", ctx) == "/home/u"
    assert render("{{ env `UNSET_VAR` }}", ctx) == ""
    assert render("[{{ env `EMPTY` }}]", ctx) == "[]"


def test_env_defaults_to_process_environment() -> None:
    ctx = InterpContext(allow_env=True)
    assert render("{{ env `PATH` }}", ctx) == os.environ.get("PATH", "")


@pytest.mark.parametrize(
    ("func", "message"),
    [
        ("build_name", "build_name not available"),
        ("build_type", "build_type not available"),
        ("template_dir", "template path not available"),
    ],
)
def test_unavailable_context_values(func: str, message: str) -> None:
    with pytest.raises(TemplateExecError, match=f"error calling {func}: {message}"):
        render(f"{{{{ {func} }}}}", InterpContext())


def test_packer_version_not_available() -> None:
    with pytest.raises(TemplateExecError, match="packer_version not available"):
        render("{{ packer_version }}", InterpContext(packer_version=""))


def test_pwd_is_cwd() -> None:
    assert render("{{ pwd }}", CTX) == os.getcwd()


def test_uuid_shape_and_uniqueness() -> None:
    a, b = render("{{ uuid }}", CTX), render("{{ uuid }}", CTX)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", a)
    assert a != b


def test_timestamp_and_isotime_show_the_context_clock() -> None:
    """The clock is the context's (the run hands its own to every context), never one read when
    the module was imported."""
    when = datetime(2030, 6, 7, 8, 9, 10, tzinfo=UTC)
    ctx = InterpContext(init_time=when)
    assert render("{{timestamp}}", ctx) == str(int(when.timestamp())) == str(ctx.timestamp)
    assert render("{{isotime}}", ctx) == "2030-06-07T08:09:10Z"
    assert abs(InterpContext().timestamp - datetime.now(UTC).timestamp()) < 5


@pytest.mark.parametrize("name", ["consul_key", "vault", "aws_secretsmanager_raw"])
def test_network_functions_not_supported(name: str) -> None:
    args = "`a` `b`" if name == "vault" else "`a`"
    with pytest.raises(TemplateExecError, match=f"amibake does not support the {name} function"):
        render(f"{{{{ {name} {args} }}}}", make_ctx(allow_env=True))


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("consul_key", "`a`", "consul_key is not allowed here"),
        ("vault", "`a` `b`", "Vault vars are only allowed in the variables section"),
        ("aws_secretsmanager", "`a`", "AWS Secrets Manager is only allowed in the variables section"),
    ],
)
def test_network_functions_outside_variables(name: str, args: str, message: str) -> None:
    with pytest.raises(TemplateExecError, match=message):
        render(f"{{{{ {name} {args} }}}}", CTX)


def test_build_function() -> None:
    with pytest.raises(TemplateExecError, match="the given variable ID will not be passed into your plugin"):
        render("{{ build `ID` }}", CTX)
    ctx = make_ctx(build_fn_data={"ID": "i-123", "Host": "10.0.0.1"})
    assert render("{{ build `ID` }}@{{ build `Host` }}", ctx) == "i-123@10.0.0.1"
    with pytest.raises(TemplateExecError, match=r"loaded data, but couldnt find Nope in it\."):
        render("{{ build `Nope` }}", ctx)
    placeholders = make_ctx(build_fn_data=placeholder_build_data(["ID", "PackerRunUUID"]))
    assert render("{{ build `ID` }}", placeholders) == "{{.ID}}"


def test_clean_resource_name_only_for_builders() -> None:
    provisioner_ctx = make_ctx(extra_funcs={})
    with pytest.raises(TemplateSyntaxError, match='function "clean_resource_name" not defined'):
        render("{{ clean_resource_name `x` }}", provisioner_ctx)
    assert "clean_resource_name" in available_functions()
    assert "clean_resource_name" not in available_functions(())
    assert "clean_ami_name" not in available_functions()


# ------------------------------------------------------------------------------------------
# late rendering
# ------------------------------------------------------------------------------------------


def test_keep_unknown_fields_leaves_actions_verbatim() -> None:
    ctx = InterpContext(data={"BuildRegion": "r"}, keep_unknown_fields=True)
    text = "{{ .SourceAMI }} {{ .BuildRegion }} {{- .SourceAMIName -}} {{ build `ID` }} {{ user `x` }}"
    assert render(text, ctx) == "{{ .SourceAMI }} r{{- .SourceAMIName -}}{{ build `ID` }} "


def test_keep_unknown_fields_with_no_data() -> None:
    ctx = InterpContext(keep_unknown_fields=True)
    assert render("ami-{{ .SourceAMITags.Name | lower }}-{{ timestamp }}", ctx) == (
        f"ami-{{{{ .SourceAMITags.Name | lower }}}}-{ctx.timestamp}"
    )


def test_verbatim_output_renders_later() -> None:
    early = InterpContext(keep_unknown_fields=True, user_vars={"p": "x"})
    late = InterpContext(data={"SourceAMI": "ami-9"})
    once = render("{{ user `p` }}-{{ .SourceAMI }}", early)
    assert once == "x-{{ .SourceAMI }}"
    assert render(once, late) == "x-ami-9"


def test_struct_like_data() -> None:
    @dataclass
    class ExecuteCommand:
        Vars: str
        Path: str

    ctx = make_ctx(data=ExecuteCommand("A=1", "/tmp/script.sh"))
    assert render("chmod +x {{.Path}}; {{ .Vars }} {{ .Path }}", ctx) == (
        "chmod +x /tmp/script.sh; A=1 /tmp/script.sh"
    )
    with pytest.raises(TemplateExecError, match="can't evaluate field Nope in type ExecuteCommand"):
        render("{{ .Nope }}", ctx)


# ------------------------------------------------------------------------------------------
# render_deep
# ------------------------------------------------------------------------------------------


def test_render_deep_renders_nested_values_and_keys() -> None:
    config = {
        "ami_name": "app-{{ user `region` }}",
        "count": 3,
        "flag": True,
        "none": None,
        "list": ["{{ upper `a` }}", 1, {"k": "{{ lower `B` }}"}],
        "tags": {"{{ user `region` }}": "{{ .SourceAMI }}", "Name": "{{ user `name` }}"},
        "{{ user `region` }}": "top-level keys are option names and stay",
    }
    out = render_deep(config, CTX)
    assert out == {
        "ami_name": "app-us-east-1",
        "count": 3,
        "flag": True,
        "none": None,
        "list": ["A", 1, {"k": "b"}],
        "tags": {"us-east-1": "ami-123", "Name": "my app"},
        "{{ user `region` }}": "top-level keys are option names and stay",
    }
    assert config["ami_name"] == "app-{{ user `region` }}"  # input untouched


def test_render_deep_skip_keys_are_validated_not_rendered() -> None:
    config = {
        "ami_description": "from {{ .SourceAMI }}",
        "Tags": {"a": "{{ .SourceAMIName }}"},
        "x": "{{ `y` }}",
    }
    out = render_deep(config, InterpContext(), skip_keys=LATE_FIELDS_AMAZON)
    assert out == {
        "ami_description": "from {{ .SourceAMI }}",
        "Tags": {"a": "{{ .SourceAMIName }}"},
        "x": "y",
    }
    with pytest.raises(DeepInterpolationError) as ei:
        render_deep({"tags": {"Name": "{{ clean_ami_name `x` }}"}}, CTX, skip_keys={"tags"})
    assert ei.value.message == (
        "invalid 'tags': template: root:1: function \"clean_ami_name\" not defined in:\n\n"
        "{{ clean_ami_name `x` }}"
    )
    assert ei.value.key == "tags"
    assert ei.value.key_path == "tags.Name"


def test_render_deep_error_matches_packer_wording() -> None:
    # corpus 036: Packer 1.6.6 says exactly this (after "Failed to prepare build")
    with pytest.raises(DeepInterpolationError) as ei:
        render_deep({"ami_name": "jenkins_worker-{{isotime | clean_ami_name}}"}, CTX)
    assert str(ei.value) == (
        "invalid 'ami_name': template: root:1: function \"clean_ami_name\" not defined in:\n\n"
        "jenkins_worker-{{isotime | clean_ami_name}}"
    )
    with pytest.raises(DeepInterpolationError) as ei2:
        render_deep({"run_tags": ["ok", "{{ user }}"]}, CTX)
    assert ei2.value.message.startswith("render 'run_tags': template: root:1:3: ")
    assert ei2.value.key_path == "run_tags[1]"
    assert isinstance(ei2.value.cause, TemplateExecError)


def test_render_deep_non_mapping() -> None:
    assert render_deep(["{{ upper `a` }}", ("{{ lower `B` }}",)], CTX) == ["A", ("b",)]
    assert render_deep("{{ upper `a` }}", CTX) == "A"
    assert render_deep(5, CTX) == 5


# ------------------------------------------------------------------------------------------
# parse / references / check / validate
# ------------------------------------------------------------------------------------------


def test_parse_returns_tree_without_function_check() -> None:
    tree = parse("a{{ anything_goes `x` }}b")
    assert isinstance(tree, ListNode)
    assert [type(n).__name__ for n in tree.nodes] == ["TextNode", "ActionNode", "TextNode"]
    assert tree.go_string() == "a{{anything_goes `x`}}b"
    with pytest.raises(TemplateSyntaxError):
        parse("{{ x }}", funcs={"y"})


def test_action_source_keeps_trim_markers() -> None:
    tree = parse("a {{- .X -}} b")
    action = tree.nodes[1]
    assert action.source == "{{- .X -}}"  # type: ignore[attr-defined]


def test_references() -> None:
    refs = references(
        "{{ user `a` | upper }}-{{ .SourceAMITags.Name }}{{ isotime `2006` }}{{ $.BuildRegion }}{{.}}"
    )
    assert refs == {"user", "upper", "isotime", ".SourceAMITags.Name", ".BuildRegion", "."}
    assert references("plain") == set()
    with pytest.raises(InterpolationError):
        references("{{ oops")


def test_user_references() -> None:
    assert user_references('{{user `a`}} {{ user "b" | upper }} {{ upper (user `c`) }} {{ env `d` }}') == {
        "a",
        "b",
        "c",
    }


CHECK_CASES = [
    ("plain", []),
    ("{{ user `a` }}", []),
    (
        "{{ user }}",
        ['template: root:1:3: executing "root" at <user>: wrong number of args for user: want 1 got 0'],
    ),
    (
        '{{ "x" | split "," }}',
        ['template: root:1:9: executing "root" at <split>: wrong number of args for split: want 3 got 2'],
    ),
    # the piped value is split's *last* argument (the index), so this puts 0 in the separator slot
    (
        '{{ "x" | split "," 0 }}',
        ['template: root:1:9: executing "root" at <split>: expected string; found 0'],
    ),
    ('{{ 0 | split "a,b" "," }}', []),
    (
        "{{ `x` | lower `y` }}",
        ['template: root:1:9: executing "root" at <lower>: wrong number of args for lower: want 1 got 2'],
    ),
    (
        '{{ split "a" "b" "c" }}',
        ['template: root:1:3: executing "root" at <split>: expected integer; found "c"'],
    ),
    ("{{ upper 1 }}", ['template: root:1:3: executing "root" at <upper>: expected string; found 1']),
    ("{{ nope }}", ['template: root:1: function "nope" not defined']),
    (
        "{{ clean_ami_name `x` }}",
        ['template: root:1: function "clean_ami_name" not defined (it was renamed clean_resource_name)'],
    ),
    ("{{ user `a`", ["template: root:1: unclosed action"]),
]


@pytest.mark.parametrize(("template", "problems"), CHECK_CASES)
def test_check(template: str, problems: list[str]) -> None:
    assert check(template, CTX) == problems


def test_check_flags_network_functions() -> None:
    problems = check("{{ vault `a` `b` }}", make_ctx(allow_env=True))
    assert len(problems) == 1
    assert "amibake does not support the vault function" in problems[0]


def test_validate() -> None:
    validate("{{ user `a` }}", CTX)
    validate("no template", CTX)
    with pytest.raises(TemplateSyntaxError):
        validate("{{ user `a` | nope }}", CTX)


# ------------------------------------------------------------------------------------------
# amazon facts
# ------------------------------------------------------------------------------------------


def test_late_fields() -> None:
    assert {"ami_description", "tags", "run_tags", "snapshot_tags", "spot_tags"} <= LATE_FIELDS_BY_BUILDER[
        "amazon-ebs"
    ]
    assert "ami_name" not in LATE_FIELDS_AMAZON
    assert "mount_path" in LATE_FIELDS_BY_BUILDER["amazon-chroot"]
    assert "ami_description" not in LATE_FIELDS_BY_BUILDER["amazon-ebsvolume"]
    assert frozenset().union(*LATE_FIELDS_BY_BUILDER.values()) == LATE_FIELDS_AMAZON
    assert all(k == k.lower() for k in LATE_FIELDS_AMAZON)


def test_build_data_fields() -> None:
    assert (
        frozenset(
            {
                "BuildRegion",
                "SourceAMI",
                "SourceAMIName",
                "SourceAMIOwner",
                "SourceAMIOwnerName",
                "SourceAMICreationDate",
                "SourceAMITags",
            }
        )
        == BUILD_DATA_FIELDS_AMAZON
    )


def test_render_repeat_renders_nested_templates() -> None:
    ctx = make_ctx(user_vars={"inner": "{{ user `leaf` }}", "leaf": "value"})
    assert render("{{ user `inner` }}", ctx) == "{{ user `leaf` }}"
    assert render_repeat("{{ user `inner` }}", ctx) == "value"
    grows = make_ctx(user_vars={"g": "x{{ user `g` }}"})
    with pytest.raises(InterpolationError, match="still changing after 5 renderings"):
        render_repeat("{{ user `g` }}", grows, limit=5)


def test_variable_not_set_marker() -> None:
    with pytest.raises(TemplateExecError) as ei:
        render("{{ user `later` }}", make_ctx(allow_env=True))
    assert f"{ERR_VARIABLE_NOT_SET} later" in ei.value.message
