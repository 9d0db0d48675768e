"""Property tests of the {{ }} interpolation engine (amibake.template.interpolate)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from amibake.errors import InterpolationError
from amibake.template.interpolate import (
    InterpContext,
    check,
    parse,
    references,
    render,
    render_deep,
    user_references,
)

CTX = InterpContext(
    user_vars={"a": "alpha", "b": "x,y,z"},
    build_name="b",
    build_type="amazon-ebs",
    template_dir="/t",
    env={"HOME": "/h"},
    data={"SourceAMI": "ami-1", "SourceAMITags": {"Name": "n"}, "A": 1, "L": ["x", "y"], "M": {"k": "v"}},
).with_time(datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC))

# fragments that make the lexer and parser work hard
FRAGMENTS = [
    "{{", "}}", "{{-", "-}}", "{{- ", " -}}", "{{/*", "*/}}", "/*", "*/", "`", '"', "'", "|", "(", ")",
    ".", ".A", ".SourceAMI", ".SourceAMITags.Name", "$", "$x", ":=", "=", ",", " ", "\t", "\n", "\r",
    "\\", "\\n", "\\x4", "\\u00e9", "1", "-1", "0x1F", "1e3", "1.5", "'a'", "true", "nil", "if", "end",
    "else", "range", "user", "upper", "lower", "split", "replace", "replace_all", "isotime", "strftime",
    "timestamp", "build_name", "env", "clean_resource_name", "print", "printf", "len", "index", "eq",
    "`a`", '"b"', "%Y", "2006", "é", "✓", "~", "#", "!",
    "with", "break", "continue", "{{if .A}}", "{{if .Missing}}", "{{range .L}}", "{{with .M}}",
    "{{else}}", "{{else if true}}", "{{else with .M}}", "{{end}}", "{{- end -}}", "{{break}}",
    "{{continue}}", "$i, $v :=", "{{range $i, $v := .L}}", "{{range 2}}", "{{$i}}", "{{$v}}",
]  # fmt: skip

template_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=25).map("".join),
)

plain_text = st.text(max_size=80).filter(lambda s: "{{" not in s)


@given(template_text)
@settings(max_examples=400)
def test_render_raises_only_interpolation_errors(text: str) -> None:
    try:
        out = render(text, CTX)
    except InterpolationError as e:
        assert e.message
        assert e.offset is None or 0 <= e.offset <= len(text)
    else:
        assert isinstance(out, str)


@given(template_text)
@settings(max_examples=300)
def test_parse_check_references_raise_only_interpolation_errors(text: str) -> None:
    try:
        parse(text)
        parse(text, funcs=CTX.functions())
        references(text)
    except InterpolationError as e:
        assert e.message.startswith("template: root:")
    problems = check(text, CTX)
    assert all(isinstance(p, str) and p for p in problems)


@given(plain_text)
def test_text_without_actions_renders_to_itself(text: str) -> None:
    assert render(text, CTX) == text
    assert render(text, InterpContext(keep_unknown_fields=True)) == text
    assert check(text, CTX) == []


@given(template_text)
def test_rendering_is_deterministic(text: str) -> None:
    assume("uuid" not in text)

    def attempt() -> tuple[str, str | None]:
        try:
            return "ok", render(text, CTX)
        except InterpolationError as e:
            return "error", e.message

    assert attempt() == attempt()


@given(st.text(max_size=40).filter(lambda s: "`" not in s))
def test_raw_string_roundtrip(s: str) -> None:
    assert render("{{ `" + s + "` }}", CTX) == s.replace("\r", "")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_quoted_string_roundtrip(s: str) -> None:
    # JSON string escapes (\" \\ \n \t \uXXXX) are a subset of Go's
    quoted = json.dumps(s, ensure_ascii=False)
    assert render("{{ " + quoted + " }}", CTX) == s


@given(plain_text, st.text(max_size=20).filter(lambda s: "`" not in s), plain_text)
def test_text_around_actions_is_verbatim(before: str, s: str, after: str) -> None:
    assume(not before.endswith("{"))
    assert render(before + "{{`" + s + "`}}" + after, CTX) == before + s.replace("\r", "") + after


@given(plain_text, plain_text)
def test_trim_markers_strip_adjacent_white_space(before: str, after: str) -> None:
    assume(not before.endswith("{"))
    out = render(before + "{{- `X` -}}" + after, CTX)
    assert out == before.rstrip(" \t\r\n") + "X" + after.lstrip(" \t\r\n")


@given(
    st.text(alphabet="abc,;", max_size=20),
    st.sampled_from([",", ";", "ab", "c"]),
    st.integers(min_value=0, max_value=6),
)
def test_split_matches_python_split(s: str, sep: str, i: int) -> None:
    parts = s.split(sep)
    text = f"{{{{ split `{s}` `{sep}` {i} }}}}"
    if i < len(parts):
        assert render(text, CTX) == parts[i]
    else:
        try:
            render(text, CTX)
        except InterpolationError as e:
            assert f"only {len(parts)} values were found" in e.message
        else:
            raise AssertionError("split past the end must fail")


@given(st.text(max_size=40).filter(lambda s: "`" not in s))
def test_clean_resource_name_output_is_allowed_chars(s: str) -> None:
    out = render("{{ clean_resource_name `" + s + "` }}", CTX)
    expected_len = len(s.replace("\r", "").encode("utf-8", "surrogatepass"))
    assert len(out) == expected_len
    assert all(c.isascii() and (c.isalnum() or c in "()[] ./-'@_") for c in out)


@given(st.text(max_size=30).filter(lambda s: "`" not in s))
def test_upper_lower_preserve_length(s: str) -> None:
    body = s.replace("\r", "")
    assert len(render("{{ upper `" + s + "` }}", CTX)) == len(body)
    assert len(render("{{ lower `" + s + "` }}", CTX)) == len(body)


@given(
    st.lists(st.sampled_from([".SourceAMI", ".BuildRegion", ".X.Y", "build `ID`", "user `a`"]), max_size=6)
)
def test_late_rendering_is_a_fixpoint(parts: list[str]) -> None:
    text = "-".join("{{ " + p + " }}" for p in parts)
    early = InterpContext(user_vars={"a": "A"}, keep_unknown_fields=True)
    once = render(text, early)
    assert render(once, early) == once


@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), plain_text),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_render_deep_without_actions_is_identity(value: object) -> None:
    assume(not any("{{" in k for k in _keys(value)))
    assert render_deep(value, CTX) == value
    if isinstance(value, dict):
        assert render_deep(value, CTX, skip_keys=list(value)) == value


def _keys(value: object) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


# ------------------------------------------------------------------------------------------
# control actions: random nesting of if/else if/else/range/with/break/continue
# ------------------------------------------------------------------------------------------

# data the generated templates see; "Late*" fields are missing from the early pass
FULL_DATA = {
    "A": 1, "Z": 0, "S": "s", "E": "", "L": ["x", "y"], "N": [], "M": {"k": "v", "j": "w"},
    "Late": True, "LateL": ["p", "q"], "LateS": "late", "LateE": "",
}  # fmt: skip
EARLY_DATA = {k: v for k, v in FULL_DATA.items() if not k.startswith("Late")}

# operands valid anywhere, on any dot (wrong ones must give an InterpolationError, never a crash)
OPERANDS = [
    ".A", ".Z", ".S", ".E", ".L", ".N", ".M", ".M.k", ".Missing", ".", "$", "$.A", "$.L", "$.Late",
    "$.LateL", "$.LateS", "$.LateE", ".Late", ".LateL", "user `a`", "user `none`", "1", "0", "2",
    "-1", '""', '"t"', "true", "false", "nil", "1.5", "(len $.L)", "(eq $.A 1)", "(not .)",
    "(index $.M `k`)", "(and $.A $.S)", "(or $.Z $.E)", "build `ID`",
]  # fmt: skip

operand = st.sampled_from(OPERANDS)
text_piece = st.sampled_from(["", "x", " ", "\n", "-", "{", "}", "é"])


def _action(op: str) -> str:
    return "{{" + op + "}}"


plain_piece = st.one_of(text_piece, operand.map(_action), st.just("{{$x := .A}}"), st.just("{{$x}}"))


@st.composite
def _block(draw: st.DrawFn, body: st.SearchStrategy[str]) -> str:
    kind = draw(st.sampled_from(["if", "range", "with"]))
    trim_l = draw(st.sampled_from(["", "- "]))
    trim_r = draw(st.sampled_from(["", " -"]))
    decl = ""
    if kind == "range":
        decl = draw(st.sampled_from(["", "$v := ", "$i, $v := "]))
    elif draw(st.booleans()):
        decl = "$w := "
    out = "{{" + trim_l + kind + " " + decl + draw(operand) + trim_r + "}}" + draw(body)
    if kind == "range" and draw(st.booleans()):
        out += draw(st.sampled_from(["{{break}}", "{{continue}}", "{{if .}}{{break}}{{end}}"]))
    links = draw(st.integers(min_value=0, max_value=2)) if kind in ("if", "with") else 0
    for _ in range(links):
        out += "{{else " + kind + " " + draw(operand) + "}}" + draw(body)
    if draw(st.booleans()):
        out += "{{else}}" + draw(body)
    return out + "{{" + trim_l + "end" + trim_r + "}}"


control_template = st.recursive(
    st.lists(plain_piece, max_size=3).map("".join),
    lambda inner: st.lists(st.one_of(plain_piece, _block(inner)), min_size=1, max_size=3).map("".join),
    max_leaves=12,
)


def _ctx(data: object, keep: bool = False, build: bool = True) -> InterpContext:
    return InterpContext(
        user_vars={"a": "A"},
        data=data,
        keep_unknown_fields=keep,
        build_fn_data={"ID": "i-1"} if build else None,
    ).with_time(datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC))


def _outcome(text: str, ctx: InterpContext) -> tuple[str, str]:
    """("ok", output) or ("error", message without its line:column, which moves with the text)."""
    try:
        return "ok", render(text, ctx)
    except InterpolationError as e:
        assert e.message.startswith("template: ")
        return "error", re.sub(r"^template: root:\d+(:\d+)?: ", "", e.message)


@given(control_template)
@settings(max_examples=250)
def test_random_control_nesting_raises_only_interpolation_errors(text: str) -> None:
    for ctx in (_ctx(FULL_DATA), _ctx(None), _ctx(EARLY_DATA, keep=True, build=False), _ctx(None, keep=True)):
        _outcome(text, ctx)
    try:
        parse(text)
        references(text)
        user_references(text)
    except InterpolationError as e:
        assert e.message.startswith("template: root:")
    assert all(isinstance(p, str) and p for p in check(text, _ctx(FULL_DATA)))


@given(control_template)
@settings(max_examples=200)
def test_late_rendering_of_control_blocks(text: str) -> None:
    early = _ctx(EARLY_DATA, keep=True, build=False)
    full = _ctx(FULL_DATA)
    kind, once = _outcome(text, early)
    if kind == "error":
        # what fails now fails with all the data too
        assert _outcome(text, full)[0] == "error"
        return
    # the early pass is a fixpoint, and finishing it later gives what one full pass gives
    assert render(once, early) == once
    assert _outcome(once, full) == _outcome(text, full)


@given(control_template)
@settings(max_examples=150)
def test_late_rendering_without_any_data(text: str) -> None:
    early = _ctx(None, keep=True, build=False)
    kind, once = _outcome(text, early)
    if kind == "ok":
        assert render(once, early) == once
        assert _outcome(once, _ctx(FULL_DATA)) == _outcome(text, _ctx(FULL_DATA))
