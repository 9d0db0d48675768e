"""Go's control actions in Packer's {{ }} interpolation (amibake.template.interpolate).

Expected values follow Go's text/template documentation and its exec_test.go/parse_test.go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from amibake.errors import InterpolationError
from amibake.template.interpolate import (
    IfNode,
    InterpContext,
    RangeNode,
    TemplateExecError,
    TemplateSyntaxError,
    WithNode,
    check,
    parse,
    references,
    render,
    render_deep,
    user_references,
    validate,
)

DATA: dict[str, Any] = {
    "T": True,
    "F": False,
    "I": 17,
    "Zero": 0,
    "Fl": 1.5,
    "FlZero": 0.0,
    "S": "str",
    "Empty": "",
    "SI": [3, 4, 5],
    "SIEmpty": [],
    "SS": ["a", "b"],
    "MSI": {"one": 1, "two": 2, "three": 3},
    "MEmpty": {},
    "MInt": {10: "ten", 2: "two", -1: "minus"},
    "Nil": None,
    "Nested": {"Inner": {"V": "deep"}, "List": [{"N": "x"}, {"N": "y"}]},
    "LL": [[1, 2], [], [3]],
}

CTX = InterpContext(data=DATA, user_vars={"a": "A", "empty": ""})


# ------------------------------------------------------------------------------------------
# rendering: (template, want)
# ------------------------------------------------------------------------------------------

IF_CASES = [
    # truth of each kind (Go's isTrue)
    ("{{if true}}TRUE{{end}}", "TRUE"),
    ("{{if false}}TRUE{{else}}FALSE{{end}}", "FALSE"),
    ("{{if 1}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO"),
    ("{{if 0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO"),
    ("{{if 0.0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("{{if 1.5i}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO"),
    ("{{if 0i}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ('{{if ""}}NON-EMPTY{{else}}EMPTY{{end}}', "EMPTY"),
    ('{{if "x"}}NON-EMPTY{{else}}EMPTY{{end}}', "NON-EMPTY"),
    ("{{if `x`}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("{{if .T}}T{{else}}F{{end}}", "T"),
    ("{{if .F}}T{{else}}F{{end}}", "F"),
    ("{{if .I}}T{{else}}F{{end}}", "T"),
    ("{{if .Zero}}T{{else}}F{{end}}", "F"),
    ("{{if .Fl}}T{{else}}F{{end}}", "T"),
    ("{{if .FlZero}}T{{else}}F{{end}}", "F"),
    ("{{if .S}}T{{else}}F{{end}}", "T"),
    ("{{if .Empty}}T{{else}}F{{end}}", "F"),
    ("{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("{{if .MEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{if .Nil}}T{{else}}F{{end}}", "F"),
    ("{{if .Missing}}T{{else}}F{{end}}", "F"),  # missing map key: invalid value, false
    ("{{if .Nested}}T{{else}}F{{end}}", "T"),
    ("{{if .Nested.Inner.V}}T{{else}}F{{end}}", "T"),
    ("{{if user `a`}}T{{else}}F{{end}}", "T"),
    ("{{if user `empty`}}T{{else}}F{{end}}", "F"),
    ("{{if user `unset`}}T{{else}}F{{end}}", "F"),
    # no else: nothing
    ("a{{if false}}b{{end}}c", "ac"),
    ("{{if false}}x{{end}}", ""),
    ("{{if true}}{{end}}", ""),
    # functions in the condition
    ("{{if and .T .I}}and{{end}}", "and"),
    ("{{if and .T .Zero}}and{{else}}not{{end}}", "not"),
    ("{{if or .Zero .Empty}}or{{else}}neither{{end}}", "neither"),
    ("{{if not .F}}not{{end}}", "not"),
    ("{{if eq .I 17}}seventeen{{end}}", "seventeen"),
    ('{{if eq .S "str" "other"}}match{{end}}', "match"),
    ("{{if ne .I 17}}x{{else}}same{{end}}", "same"),
    ("{{if lt .I 20}}lt{{end}}{{if ge .I 17}}ge{{end}}", "ltge"),
    ("{{if len .SI}}has{{end}}", "has"),
    ("{{if index .MSI `two`}}two{{end}}", "two"),
    ("{{if eq (len .SS) 2}}two{{end}}", "two"),
    ("{{if .I | eq 17}}piped{{end}}", "piped"),
    # else if chains
    ("{{if eq .I 1}}one{{else if eq .I 17}}seventeen{{else}}other{{end}}", "seventeen"),
    ("{{if eq .I 1}}one{{else if eq .I 2}}two{{else}}other{{end}}", "other"),
    ("{{if eq .I 1}}one{{else if eq .I 2}}two{{end}}", ""),
    ("{{if .T}}first{{else if .T}}second{{end}}", "first"),
    ("{{if .F}}1{{else if .F}}2{{else if .Zero}}3{{else if .S}}4{{else}}5{{end}}", "4"),
    ("{{if .F}}1{{else if .F}}2{{else if .Zero}}3{{else if .Empty}}4{{else}}5{{end}}", "5"),
    # nesting
    ("{{if .T}}a{{if .F}}b{{else}}c{{if .I}}d{{end}}{{end}}e{{end}}", "acde"),
    ("{{if .F}}{{if .T}}x{{end}}{{else}}{{if .T}}y{{end}}{{end}}", "y"),
    # spaces inside the actions
    ("{{ if .T }}x{{ else }}y{{ end }}", "x"),
    ("{{ if .F }}x{{ else if .T }}y{{ end }}", "y"),
    ("{{if\t.T\n}}x{{end}}", "x"),
    # the Packer use: chef-solo/ansible execute_command
    ("{{if .T}}sudo {{end}}chef-solo -c {{.S}}", "sudo chef-solo -c str"),
    ("{{if .F}}sudo {{end}}chef-solo -c {{.S}}", "chef-solo -c str"),
]

WITH_CASES = [
    ("{{with true}}{{.}}{{end}}", "true"),
    ("{{with false}}{{.}}{{else}}FALSE{{end}}", "FALSE"),
    ("{{with 1}}{{.}}{{else}}ZERO{{end}}", "1"),
    ("{{with 0}}{{.}}{{else}}ZERO{{end}}", "ZERO"),
    ("{{with 1.5}}{{.}}{{else}}ZERO{{end}}", "1.5"),
    ('{{with ""}}{{.}}{{else}}EMPTY{{end}}', "EMPTY"),
    ('{{with "notempty"}}{{.}}{{else}}EMPTY{{end}}', "notempty"),
    ("{{with .SI}}{{.}}{{else}}EMPTY{{end}}", "[3 4 5]"),
    ("{{with .SIEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{with .MSI}}{{.one}}{{else}}EMPTY{{end}}", "1"),
    ("{{with .MEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{with .Missing}}{{.}}{{else}}MISSING{{end}}", "MISSING"),
    ("{{with .Nil}}{{.}}{{else}}NIL{{end}}", "NIL"),
    ("{{with .Nested.Inner}}{{.V}}{{end}}", "deep"),
    ("{{with .Nested}}{{with .Inner}}{{.V}}{{end}}{{end}}", "deep"),
    # $ is still the data inside
    ("{{with .Nested.Inner}}{{.V}}-{{$.S}}{{end}}", "deep-str"),
    # the else branch sees the outer dot
    ("{{with .Empty}}x{{else}}{{.S}}{{end}}", "str"),
    # declarations
    ("{{with $x := 3}}{{$x}}{{end}}", "3"),
    ("{{with $x := .S}}{{$x}}={{.}}{{end}}", "str=str"),
    ("{{with $x := .Empty}}{{$x}}{{else}}empty:{{$x}}.{{end}}", "empty:."),
    # else with (Go 1.23)
    ("{{with .Empty}}a{{else with .S}}{{.}}{{end}}", "str"),
    ("{{with .Empty}}a{{else with .Zero}}b{{else}}c{{end}}", "c"),
    # functions on the dot
    ("{{with .S}}{{upper .}}{{end}}", "STR"),
    ("{{with .SS}}{{index . 1}}{{end}}", "b"),
    ("{{with .SS}}{{len .}}{{end}}", "2"),
]

RANGE_CASES = [
    ("{{range .SI}}-{{.}}-{{end}}", "-3--4--5-"),
    ("{{range .SIEmpty}}-{{.}}-{{end}}", ""),
    ("{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}", "-3--4--5-"),
    ("{{range .SS}}{{.}},{{end}}", "a,b,"),
    ("{{range .Missing}}x{{else}}none{{end}}", "none"),
    ("{{range .Nil}}x{{else}}nil{{end}}", "nil"),
    # variables
    ("{{range $x := .SI}}<{{$x}}>{{end}}", "<3><4><5>"),
    ("{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}", "<0=3><1=4><2=5>"),
    ("{{range $x,$y:=.SI}}<{{$x}}={{$y}}>{{end}}", "<0=3><1=4><2=5>"),
    ("{{range $i, $v := .SS}}{{if $i}},{{end}}{{$v}}{{end}}", "a,b"),
    # maps: sorted keys
    ("{{range .MSI}}-{{.}}-{{end}}", "-1--3--2-"),
    ("{{range $x, $y := .MSI}}<{{$x}}={{$y}}>{{end}}", "<one=1><three=3><two=2>"),
    ("{{range $k, $v := .MInt}}{{$k}}:{{$v}} {{end}}", "-1:minus 2:two 10:ten "),
    ("{{range .MEmpty}}x{{else}}EMPTY{{end}}", "EMPTY"),
    # $ inside a range is the data
    ("{{range .SS}}{{.}}{{$.S}}{{end}}", "astrbstr"),
    ("{{range .SS}}{{$.I}}{{end}}", "1717"),
    # nesting
    ("{{range .LL}}[{{range .}}{{.}}{{else}}-{{end}}]{{end}}", "[12][-][3]"),
    ("{{range $i, $l := .LL}}{{range $j, $v := $l}}{{$i}}{{$j}}{{$v}} {{end}}{{end}}", "001 012 203 "),
    ("{{range .Nested.List}}{{.N}}{{end}}", "xy"),
    ("{{range .SI}}{{if eq . 4}}four{{else}}{{.}}{{end}}{{end}}", "3four5"),
    ("{{range .SS}}{{with $.Nested.Inner}}{{.V}}{{end}}{{end}}", "deepdeep"),
    # break and continue (Go 1.18)
    ("{{range .SI}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}", "3"),
    ("{{range .SI}}{{if eq . 4}}{{continue}}{{end}}{{.}}{{end}}", "35"),
    ("{{range .SI}}{{break}}{{else}}empty{{end}}", ""),
    ("{{range .LL}}{{range .}}{{break}}{{end}}x{{end}}", "xxx"),
    ("{{range .LL}}{{range .}}{{.}}{{continue}}no{{end}}|{{end}}", "12||3|"),
    ("{{range .SI}}{{with .}}{{if eq . 5}}{{break}}{{end}}{{end}}{{.}}{{end}}", "34"),
    # integers (Go 1.24)
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range $v := 3}}<{{$v}}>{{end}}", "<0><1><2>"),
    ("{{range 0}}x{{else}}zero{{end}}", "zero"),
    ("{{range -2}}x{{else}}negative{{end}}", "negative"),
    ("{{range .I}}{{end}}done", "done"),
    ("{{range len .SS}}{{.}}{{end}}", "01"),
    # a function's list
    ("{{range .SS}}{{upper .}}{{end}}", "AB"),
]

VARIABLE_CASES = [
    # a variable lives until the {{end}} of the block that declares it
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{$x := 1}}{{with $x := 3}}{{$x}}{{end}}{{$x}}", "31"),
    ("{{$x := 0}}{{range .SI}}{{$x = .}}{{end}}{{$x}}", "5"),
    ("{{$n := 0}}{{range .SI}}{{$n = len $.SS}}{{end}}{{$n}}", "2"),
    ("{{$i := 0}}{{$v := 0}}{{range $i, $v = .SS}}{{end}}{{$i}}{{$v}}", "1b"),
    ("{{$v := 0}}{{range $v = .SI}}{{end}}{{$v}}", "5"),
    ("{{range $i, $v := .SS}}{{$w := $v}}{{$w}}{{end}}", "ab"),
    ("{{if $x := .S}}{{$x}}{{end}}", "str"),
    ("{{if $x := .Empty}}{{$x}}{{else}}<{{$x}}>{{end}}", "<>"),
    ("{{range $i, $x := .SS}}{{range $j, $x := $.SI}}{{end}}{{$x}}{{end}}", "ab"),
    ("{{$ := 1}}{{$}}", "1"),
]

TRIM_CASES = [
    ("a {{- if true -}} b {{- end -}} c", "abc"),
    ("a {{- if false -}} b {{- else -}} c {{- end -}} d", "acd"),
    ("x\n{{- range .SS }}\n  - {{ . }}\n{{- end }}\n", "x\n  - a\n  - b\n"),
    ("{{ if .T -}}\n  yes\n{{- end }}", "yes"),
    ("{{- with .S -}}  {{ . }}  {{- end -}}", "str"),
    ("[ {{- range $i, $v := .SI -}} {{ $v }} {{- end -}} ]", "[345]"),
    ("a {{- /* comment */ -}} {{- if true }} b{{end}}", "a b"),
]


@pytest.mark.parametrize(
    ("template", "want"), IF_CASES + WITH_CASES + RANGE_CASES + VARIABLE_CASES + TRIM_CASES
)
def test_render_control(template: str, want: str) -> None:
    assert render(template, CTX) == want


def test_struct_data_in_conditions() -> None:
    @dataclass
    class ExecuteCommand:
        Sudo: bool
        Vars: str
        Path: str

    cmd = "{{if .Sudo}}sudo -E {{end}}{{ .Vars }} {{ .Path }}"
    assert render(cmd, InterpContext(data=ExecuteCommand(True, "A=1", "/s.sh"))) == "sudo -E A=1 /s.sh"
    assert render(cmd, InterpContext(data=ExecuteCommand(False, "A=1", "/s.sh"))) == "A=1 /s.sh"
    # a struct is always true; a field it lacks is an error (as in Go)
    assert render("{{with .}}yes{{end}}", InterpContext(data=ExecuteCommand(False, "", ""))) == "yes"
    with pytest.raises(TemplateExecError, match="can't evaluate field Nope in type ExecuteCommand"):
        render("{{if .Nope}}x{{end}}", InterpContext(data=ExecuteCommand(False, "", "")))


# ------------------------------------------------------------------------------------------
# syntax errors: (template, exact message)
# ------------------------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("{{if .T}}x", "template: root:1: unexpected EOF"),
    ("{{if .T}}x\n{{else}}\ny", "template: root:3: unexpected EOF"),
    ("{{range .SI}}{{if .}}{{end}}", "template: root:1: unexpected EOF"),
    ("{{with .S}}", "template: root:1: unexpected EOF"),
    ("{{if}}{{end}}", "template: root:1: missing value for if"),
    ("{{range}}{{end}}", "template: root:1: missing value for range"),
    ("{{with}}{{end}}", "template: root:1: missing value for with"),
    ("{{if .T}}{{else}}{{else}}{{end}}", "template: root:1: expected end; found {{else}}"),
    ("{{if .T}}{{else if .F}}{{else}}{{else}}{{end}}", "template: root:1: expected end; found {{else}}"),
    ("{{range .SI}}{{else if .T}}{{end}}{{end}}", "template: root:1: unexpected <if> in input"),
    ("{{if .T}}{{else with .S}}{{end}}", "template: root:1: unexpected <with> in input"),
    ("{{with .S}}{{else if .T}}{{end}}", "template: root:1: unexpected <if> in input"),
    ("{{with .S}}{{else range .S}}{{end}}", "template: root:1: unexpected <range> in else"),
    ("{{if .T}}{{else x}}{{end}}", 'template: root:1: unexpected "x" in else'),
    ("{{if .T}}{{else .S}}{{end}}", 'template: root:1: unexpected ".S" in else'),
    ("{{if .T}}{{end .S}}", 'template: root:1: unexpected ".S" in end'),
    ("{{else if .T}}", "template: root:1: unexpected {{else}}"),
    ("{{if .T}}{{end}}{{end}}", "template: root:1: unexpected {{end}}"),
    ("{{break}}", "template: root:1: {{break}} outside {{range}}"),
    ("{{continue}}", "template: root:1: {{continue}} outside {{range}}"),
    ("{{if .T}}{{break}}{{end}}", "template: root:1: {{break}} outside {{range}}"),
    ("{{range .SI}}{{else}}{{break}}{{end}}", "template: root:1: {{break}} outside {{range}}"),
    ("{{range .SI}}{{break 1}}{{end}}", 'template: root:1: unexpected "1" in {{break}}'),
    ("{{range .SI}}{{continue .}}{{end}}", "template: root:1: unexpected <.> in {{continue}}"),
    ("{{range $k, .}}{{end}}", "template: root:1: range can only initialize variables"),
    ("{{range $k, 123 := .}}{{end}}", "template: root:1: range can only initialize variables"),
    ("{{range $k,}}{{end}}", "template: root:1: missing value for range"),
    ("{{range $k, $v := }}{{end}}", "template: root:1: missing value for range"),
    ("{{range $k, $v}}{{end}}", 'template: root:1: undefined variable "$v"'),
    ("{{range $a, $b, $c := .SI}}{{end}}", "template: root:1: too many declarations in range"),
    ("{{if $a, $b := .SI}}{{end}}", "template: root:1: too many declarations in if"),
    ("{{with $a, $b := .SI}}{{end}}", "template: root:1: too many declarations in with"),
    # scoping: gone after {{end}}
    ("{{with $x := 4}}{{end}}{{$x}}", 'template: root:1: undefined variable "$x"'),
    ("{{range $i, $v := .SI}}{{end}}{{$i}}", 'template: root:1: undefined variable "$i"'),
    ("{{if true}}{{$y := 1}}{{end}}{{$y}}", 'template: root:1: undefined variable "$y"'),
    ("{{if .T}}{{nope}}{{end}}", 'template: root:1: function "nope" not defined'),
    ("{{if nope}}{{end}}", 'template: root:1: function "nope" not defined'),
    ("{{if .T}}\n{{else}}\n{{ user `x` \n", "template: root:4: unclosed action started at root:3"),
    ("{{if .T}}{{end", "template: root:1: unclosed action"),
]


@pytest.mark.parametrize(("template", "message"), SYNTAX_ERRORS)
def test_control_syntax_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError) as ei:
        render(template, CTX)
    assert ei.value.message == message
    assert ei.value.offset is not None and 0 <= ei.value.offset <= len(template)
    # validate and check report the same problem
    with pytest.raises(TemplateSyntaxError):
        validate(template, CTX)
    assert check(template, CTX) == [message]


def test_deep_control_nesting_is_an_error_not_a_crash() -> None:
    deep = "{{if true}}" * 200 + "x" + "{{end}}" * 200
    with pytest.raises(TemplateSyntaxError, match="max control nesting depth exceeded"):
        render(deep, CTX)
    ok = "{{if true}}" * 40 + "x" + "{{end}}" * 40
    assert render(ok, CTX) == "x"
    chain = "{{if false}}a" + "{{else if false}}a" * 200 + "{{end}}"
    with pytest.raises(TemplateSyntaxError, match="max control nesting depth exceeded"):
        render(chain, CTX)


@pytest.mark.parametrize("name", ["break", "continue"])
def test_break_continue_are_keywords(name: str) -> None:
    # Go 1.18+: keywords, not functions (Go 1.15 said 'function "break" not defined')
    with pytest.raises(TemplateSyntaxError, match=f"{{{{{name}}}}} outside"):
        parse(f"{{{{{name}}}}}")


# ------------------------------------------------------------------------------------------
# execution errors: (template, exact message)
# ------------------------------------------------------------------------------------------

EXEC_ERRORS = [
    (
        '{{range "abc"}}{{end}}',
        'template: root:1:8: executing "root" at <"abc">: range can\'t iterate over abc',
    ),
    (
        "{{range true}}{{end}}",
        'template: root:1:8: executing "root" at <true>: range can\'t iterate over true',
    ),
    ("{{range .S}}{{end}}", 'template: root:1:8: executing "root" at <.S>: range can\'t iterate over str'),
    ("{{range .Fl}}{{end}}", 'template: root:1:8: executing "root" at <.Fl>: range can\'t iterate over 1.5'),
    (
        "{{range upper .S}}{{end}}",
        'template: root:1:14: executing "root" at <.S>: range can\'t iterate over STR',
    ),
    (
        "{{range $i, $v := 3}}{{end}}",
        'template: root:1:18: executing "root" at <3>: can\'t use 3 to iterate over more than one variable',
    ),
    ("{{if nil}}{{end}}", 'template: root:1:5: executing "root" at <nil>: nil is not a command'),
    (
        "{{range .SI}}{{index $.SS .}}{{end}}",
        'template: root:1:15: executing "root" at <index $.SS .>: error calling index: index out of range: 3',
    ),
    (
        "{{if .T}}\n  {{ user }}\n{{end}}",
        'template: root:2:5: executing "root" at <user>: wrong number of args for user: want 1 got 0',
    ),
    # Go quirk: the else list may name a variable of the if list at parse time, not when run
    (
        "{{if false}}{{$x := 1}}{{else}}{{$x}}{{end}}",
        'template: root:1:33: executing "root" at <$x>: undefined variable: $x',
    ),
]


@pytest.mark.parametrize(("template", "message"), EXEC_ERRORS)
def test_control_exec_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateExecError) as ei:
        render(template, CTX)
    assert ei.value.message == message


def test_unchosen_branch_is_not_run() -> None:
    # errors in the branch not taken do not happen (only parse errors do)
    assert render("{{if false}}{{index .SS 9}}{{else}}ok{{end}}", CTX) == "ok"
    assert render("{{range .SIEmpty}}{{index .SS 9}}{{end}}ok", CTX) == "ok"
    assert render("{{with .Empty}}{{index . 9}}{{end}}ok", CTX) == "ok"


def test_runaway_range_stops() -> None:
    with pytest.raises(TemplateExecError, match="range iterations"):
        render("{{range 1000}}{{range 1000}}{{end}}{{end}}", CTX)
    assert render("{{range 300}}{{range 300}}{{end}}{{end}}ok", CTX) == "ok"


# ------------------------------------------------------------------------------------------
# late rendering (keep_unknown_fields)
# ------------------------------------------------------------------------------------------

EARLY = InterpContext(keep_unknown_fields=True, user_vars={"environment": "prod", "a": "A"})

# (template, after the early pass)
LATE_CASES = [
    # corpus 028 (chef-solo execute_command)
    (
        "{{if .Sudo}}sudo {{end}}chef-solo -E {{user `environment`}} --no-color -c {{.ConfigPath}} -j x.json",
        "{{if .Sudo}}sudo {{end}}chef-solo -E prod --no-color -c {{.ConfigPath}} -j x.json",
    ),
    # ansible-local / shell style
    ("{{if .Sudo}}sudo -E {{end}}{{.Vars}} {{.Path}}", "{{if .Sudo}}sudo -E {{end}}{{.Vars}} {{.Path}}"),
    ("{{ if .Sudo }}sudo{{ else }}su -c{{ end }} x", "{{ if .Sudo }}sudo{{ else }}su -c{{ end }} x"),
    # the whole block is kept, trim markers and all; text outside is still trimmed now
    ("a {{- if .Sudo -}} b {{- end -}} c", "a{{- if .Sudo -}} b {{- end -}}c"),
    ("{{range .Vars}}{{.}} {{end}}{{user `a`}}", "{{range .Vars}}{{.}} {{end}}A"),
    ("{{with .Path}}{{.}}{{else}}none{{end}}", "{{with .Path}}{{.}}{{else}}none{{end}}"),
    ("{{if .X}}1{{else if .Y}}2{{else}}3{{end}}", "{{if .X}}1{{else if .Y}}2{{else}}3{{end}}"),
    # a block that needs nothing missing is rendered now
    ("{{if eq (user `a`) `A`}}yes{{else}}no{{end}}", "yes"),
    ("{{range $v := split `x,y` `,` 1 | len}}{{$v}}{{end}}", "0"),
    # a field used only in the body or in an else branch makes the block late too
    ("{{if true}}{{.Path}}{{end}}", "{{if true}}{{.Path}}{{end}}"),
    ("{{if false}}x{{else}}{{.Path}}{{end}}!", "{{if false}}x{{else}}{{.Path}}{{end}}!"),
    ("{{if true}}{{$.Path}}{{end}}", "{{if true}}{{$.Path}}{{end}}"),
    ("{{if true}}{{build `ID`}}{{end}}", "{{if true}}{{build `ID`}}{{end}}"),
    # .Fields inside a with/range body are fields of its dot, not of the data
    ("{{with `x`}}{{.}}{{end}}", "x"),
    # variables set by a late action are late too
    ("{{$p := .Path}}{{if true}}{{$p}}{{end}}-{{user `a`}}", "{{$p := .Path}}{{if true}}{{$p}}{{end}}-A"),
    ("{{$p := .Path}}{{$p}}", "{{$p := .Path}}{{$p}}"),
    # a late part that also needs values of this pass: the whole string waits
    ("{{$x := user `a`}}{{if .Sudo}}{{$x}}{{end}}", "{{$x := user `a`}}{{if .Sudo}}{{$x}}{{end}}"),
    (
        "{{range split `a,b` `,` 0 | len}}{{$.Path}}{{end}}",
        "{{range split `a,b` `,` 0 | len}}{{$.Path}}{{end}}",
    ),
    # ... also when the block declares the same name after using the outside one
    ("{{$x := 1}}{{if .Sudo}}{{$x}}{{$x := 2}}{{end}}", "{{$x := 1}}{{if .Sudo}}{{$x}}{{$x := 2}}{{end}}"),
    (
        "{{$x := 1}}{{if .Sudo}}{{$x := 2}}{{else}}{{$x}}{{end}}",
        "{{$x := 1}}{{if .Sudo}}{{$x := 2}}{{else}}{{$x}}{{end}}",
    ),
    # variables of the block itself are fine
    ("{{if .Sudo}}{{$y := 2}}{{$y}}{{end}}{{user `a`}}", "{{if .Sudo}}{{$y := 2}}{{$y}}{{end}}A"),
    # no data at all: the data itself is late
    ("{{if .}}x{{end}}", "{{if .}}x{{end}}"),
    ("{{with $}}x{{end}}", "{{with $}}x{{end}}"),
]


@pytest.mark.parametrize(("template", "early"), LATE_CASES)
def test_late_rendering_keeps_blocks(template: str, early: str) -> None:
    once = render(template, EARLY)
    assert once == early
    assert render(once, EARLY) == once  # a fixpoint


LATE_DATA: dict[str, Any] = {"Sudo": True, "Vars": ["A=1", "B=2"], "Path": "/tmp/s.sh", "ConfigPath": "/c"}


@pytest.mark.parametrize(("template", "early"), LATE_CASES)
def test_late_then_full_equals_full(template: str, early: str) -> None:
    full = InterpContext(user_vars=EARLY.user_vars, data=LATE_DATA, build_fn_data={"ID": "i-1"})
    assert render(render(template, EARLY), full) == render(template, full)


# corpus 034 (puppet-masterless execute_command), shortened
PUPPET = (
    "export http_proxy={{user `http_proxy`}} && cd {{.WorkingDir}} && {{.FacterVars}}{{if .Sudo}} sudo -E "
    "{{end}} {{.PuppetBinDir}}/puppet apply --verbose --modulepath='{{.ModulePath}}' "
    "{{if ne .HieraConfigPath \"\"}}--hiera_config='{{.HieraConfigPath}}' {{end}} "
    '{{if ne .ExtraArguments ""}}{{.ExtraArguments}} {{end}} --detailed-exitcodes {{.ManifestFile}}'
)


def test_corpus_034_puppet_execute_command() -> None:
    early = InterpContext(keep_unknown_fields=True, user_vars={"http_proxy": "http://p:3128"})
    once = render(PUPPET, early)
    assert once == PUPPET.replace("{{user `http_proxy`}}", "http://p:3128")
    assert check(PUPPET, early) == []
    data = {
        "WorkingDir": "/tmp/pp",
        "FacterVars": "FACTER_a='1' ",
        "Sudo": True,
        "PuppetBinDir": "/opt/puppetlabs/bin",
        "ModulePath": "/tmp/pp/modules",
        "HieraConfigPath": "",
        "ExtraArguments": "--debug",
        "ManifestFile": "/tmp/pp/site.pp",
    }
    assert render(once, InterpContext(data=data)) == (
        "export http_proxy=http://p:3128 && cd /tmp/pp && FACTER_a='1'  sudo -E  /opt/puppetlabs/bin/puppet "
        "apply --verbose --modulepath='/tmp/pp/modules'  --debug  --detailed-exitcodes /tmp/pp/site.pp"
    )


def test_late_with_partial_data() -> None:
    ctx = InterpContext(keep_unknown_fields=True, data={"L": ["a", "b"], "Sudo": False})
    # known list, late root field inside: the whole block waits
    assert render("{{range .L}}{{$.Path}}-{{.}};{{end}}", ctx) == "{{range .L}}{{$.Path}}-{{.}};{{end}}"
    assert render("{{range .L}}{{.}}{{end}}", ctx) == "ab"
    assert render("{{if .Sudo}}sudo {{end}}run", ctx) == "run"
    text = '{{range .L}}{{printf "%s%s" . $.Path}}{{end}}'
    assert render(text, ctx) == text
    text = "{{range .L}}{{if $.Stop}}{{break}}{{end}}{{.}}{{end}}"
    assert render(text, ctx) == text
    # a late {{else if}} cannot be cut out of its chain: the whole string waits
    text = "{{if .Sudo}}a{{else if $.X}}b{{end}}"
    ctx2 = InterpContext(keep_unknown_fields=True, data={"Sudo": False, "X": 1})
    assert render(text, ctx2) == "b"


def test_without_keep_unknown_fields_missing_is_false() -> None:
    assert render("{{if .Sudo}}sudo {{end}}x", InterpContext()) == "x"
    assert render("{{range .Vars}}v{{else}}none{{end}}", InterpContext(data={})) == "none"


# ------------------------------------------------------------------------------------------
# parse tree and static inspection
# ------------------------------------------------------------------------------------------


def test_parse_tree_of_control_actions() -> None:
    tree = parse("a{{if .A}}b{{else if .B}}c{{else}}d{{end}}{{range $i, $v := .L}}{{$v}}{{end}}")
    if_node, range_node = tree.nodes[1], tree.nodes[2]
    assert isinstance(if_node, IfNode)
    assert isinstance(range_node, RangeNode)
    assert if_node.source == "{{if .A}}b{{else if .B}}c{{else}}d{{end}}"
    assert if_node.else_list is not None
    inner = if_node.else_list.nodes[0]
    assert isinstance(inner, IfNode) and inner.else_if
    # Go's String(): else if is an if inside the else list
    assert tree.go_string() == (
        "a{{if .A}}b{{else}}{{if .B}}c{{else}}d{{end}}{{end}}{{range $i, $v := .L}}{{$v}}{{end}}"
    )
    with_node = parse("{{- with .X -}} y {{- end -}}").nodes[0]
    assert isinstance(with_node, WithNode)
    assert with_node.source == "{{- with .X -}} y {{- end -}}"
    assert with_node.go_string() == "{{with .X}}y{{end}}"


def test_references_and_user_references_see_inside_blocks() -> None:
    text = "{{if .Sudo}}{{user `a`}}{{else}}{{env `E`}}{{end}}{{range .Vars}}{{upper .}}{{end}}"
    assert references(text) == {".Sudo", "user", "env", ".Vars", "upper", "."}
    assert user_references("{{with .X}}{{user `inner`}}{{end}}{{if user `cond`}}{{end}}") == {"inner", "cond"}


def test_check_looks_inside_blocks() -> None:
    problems = check("{{if .Sudo}}{{ upper 1 }}{{else}}{{ user }}{{end}}", CTX)
    assert problems == [
        'template: root:1:15: executing "root" at <upper>: expected string; found 1',
        'template: root:1:36: executing "root" at <user>: wrong number of args for user: want 1 got 0',
    ]
    assert check("{{if .Sudo}}sudo {{end}}chef-solo -c {{.ConfigPath}}", CTX) == []


def test_render_deep_with_blocks() -> None:
    config = {"execute_command": "{{if .Sudo}}sudo {{end}}{{.Path}}", "name": "{{if true}}n{{end}}"}
    assert render_deep(config, EARLY, skip_keys=["execute_command"]) == {
        "execute_command": "{{if .Sudo}}sudo {{end}}{{.Path}}",
        "name": "n",
    }
    with pytest.raises(InterpolationError, match=r"invalid 'execute_command'.*unexpected EOF"):
        render_deep({"execute_command": "{{if .Sudo}}x"}, EARLY, skip_keys=["execute_command"])


@pytest.mark.parametrize(
    "text",
    [
        "{{if .Missing -}}{{end -}}{{$x := .A}} ",  # found by hypothesis: "-}}" must not trim later text
        '{{" "}}   {{- if .Missing}}x{{end}}',
        "a  {{- .Missing -}}  b",
        "{{.A}} {{- .Missing}}",
        "{{.Missing -}}{{.A}} tail",
    ],
)
def test_trim_markers_of_late_parts_do_not_reach_text_rendered_early(text: str) -> None:
    early = render(text, InterpContext(data={"A": 1}, keep_unknown_fields=True))
    full = InterpContext(data={"A": 1, "Missing": True})
    assert render(early, full) == render(text, full)
