"""``amibake fmt``: hclwrite's canonical layout, idempotence, and the verb's flags and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.cli.main import cli
from amibake.errors import AmibakeError, TemplateError
from amibake.template.hclfmt import Kind, format_hcl, tokenize
from tests.corpus.corpus import CORPUS


def significant(text: str) -> list[tuple[Kind, str]]:
    return [(t.kind, t.text) for t in tokenize(text)]


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("a=1", "a = 1"),
        ("a  =  b.c", "a = b.c"),
        ("a=b [ 0 ]", "a = b[0]"),
        ("a = f( 1,2 )", "a = f(1, 2)"),
        ("a = - 1", "a = -1"),
        ("a = 1 - 1", "a = 1 - 1"),
        ("a = !b", "a = !b"),
        ('a = "${ var.x }"', 'a = "${var.x}"'),
        ('a = "  x  ${ 1+2 }  y "', 'a = "  x  ${1 + 2}  y "'),
        ("a = {b=1}", "a = { b = 1 }"),
        ("b {}", "b {}"),
        ("a = [ for s in var.l : upper( s ) ]", "a = [for s in var.l : upper(s)]"),
        ("a = x ? 1 : 2", "a = x ? 1 : 2"),
        ("a = 1   \n", "a = 1\n"),
        ("x {\n\ty = 1\n}\n", "x {\n  y = 1\n}\n"),
    ],
)
def test_single_lines(src: str, want: str) -> None:
    assert format_hcl(src) == want


def test_nesting_alignment_and_comments() -> None:
    src = (
        'source "amazon-ebs" "x" {\n'
        'region = "us-east-1" # where\n'
        '    instance_type   = "t3.micro" // size\n'
        "tags = {\n"
        'Name="n"\n'
        '  "a b" = 2\n'
        "}\n"
        "\n"
        "\n"
        "  launch_block_device_mappings {\n"
        '       device_name = "/dev/sda1"\n'
        "  }\n"
        "list = [\n"
        '"a",\n'
        "  ]\n"
        "}"
    )
    want = (
        'source "amazon-ebs" "x" {\n'
        '  region        = "us-east-1" # where\n'
        '  instance_type = "t3.micro"  // size\n'
        "  tags = {\n"
        '    Name  = "n"\n'
        '    "a b" = 2\n'
        "  }\n"
        "\n"
        "\n"
        "  launch_block_device_mappings {\n"
        '    device_name = "/dev/sda1"\n'
        "  }\n"
        "  list = [\n"
        '    "a",\n'
        "  ]\n"
        "}"
    )
    assert format_hcl(src) == want


def test_heredoc_body_is_untouched() -> None:
    src = "p {\n   inline = <<-EOF\n      echo   ${ var.x }\n  $${notinterp}\n    EOF\n    x=1\n}\n"
    out = format_hcl(src)
    assert "      echo   ${var.x}\n  $${notinterp}\n    EOF\n" in out
    assert out.startswith("p {\n  inline = <<-EOF\n")
    assert out.endswith("  x      = 1\n}\n")  # hclwrite aligns it with the heredoc attribute


def test_multiline_comment_and_string_escapes_are_kept() -> None:
    src = 'a = "q\\"${"in"}\\\\" /* c\n  d */\nb   = 2'
    out = format_hcl(src)
    assert out == 'a = "q\\"${"in"}\\\\" /* c\n  d */\nb = 2'


@pytest.mark.parametrize(
    ("src", "line"),
    [("a {\n  b = 1\n", 1), ('a = "x\n', 1), ("a = 1\n}\n", 2), ("a = <<EOF\nno end\n", 1), ("a = 1 $\n", 1)],
)
def test_syntax_errors_name_the_line(src: str, line: int) -> None:
    with pytest.raises(TemplateError) as e:
        format_hcl(src, "t.pkr.hcl")
    assert e.value.problems[0].pos is not None
    assert e.value.problems[0].pos.file == "t.pkr.hcl"
    assert e.value.problems[0].pos.line == line


def corpus_files() -> list[Path]:
    files = (CORPUS / "templates").rglob("*.hcl")
    return sorted(p for p in files if p.name.endswith((".pkr.hcl", ".pkrvars.hcl")))


def test_corpus_is_idempotent_and_keeps_tokens() -> None:
    files = corpus_files()
    assert len(files) > 30
    for path in files:
        text = path.read_text(encoding="utf-8")
        once = format_hcl(text, str(path))
        assert format_hcl(once, str(path)) == once, path
        assert significant(once) == significant(text), path


# --- generated inputs -------------------------------------------------------------------------

idents = st.sampled_from(["a", "ami_name", "region", "tags", "x-y", "in", "for"])
spaces = st.sampled_from(["", " ", "  ", "\t", "   "])
lit_text = st.text(alphabet="ab $%{}\\'-", max_size=6).map(
    lambda s: s.replace("\\", "\\\\").replace("${", "$${").replace("%{", "%%{")
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    sp = draw(spaces)
    choice = draw(st.integers(0, 7 if depth < 2 else 3))
    if choice == 0:
        return str(draw(st.integers(-5, 500)))
    if choice == 1:
        return f'"{draw(lit_text)}"'
    if choice == 2:
        return f'"{draw(lit_text)}${{{sp}var.{draw(idents)}{sp}}}{draw(lit_text)}"'
    if choice == 3:
        return f"var.{draw(idents)}"
    if choice == 4:
        items = draw(st.lists(expressions(depth + 1), max_size=3))
        nl = draw(st.sampled_from(["", "\n"]))
        return "[" + nl + ("," + sp + nl).join(items) + nl + "]"
    if choice == 5:
        pairs: list[tuple[str, str]] = draw(st.lists(st.tuples(idents, expressions(depth + 1)), max_size=3))
        return "{\n" + "".join(f"{sp}{k}{sp}={sp}{v}\n" for k, v in pairs) + "}"
    if choice == 6:
        return f"{draw(idents)}({sp}{draw(expressions(depth + 1))}{sp},{draw(expressions(depth + 1))})"
    return f"{draw(expressions(depth + 1))}{sp}{draw(st.sampled_from(['+', '-', '==', '&&']))}{sp}1"


@st.composite
def bodies(draw: st.DrawFn, depth: int = 0) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        sp = draw(spaces)
        kind = draw(st.integers(0, 4 if depth < 2 else 2))
        if kind == 0:
            lines.append(f"{sp}{draw(idents)}{sp}={sp}{draw(expressions())}{sp}")
        elif kind == 1:
            lines.append(f"{sp}{draw(st.sampled_from(['# c', '// c  ', '/* c */']))}")
        elif kind == 2:
            lines.append("")
        elif kind == 3:
            lines.append(f'{sp}{draw(idents)} "l"{sp}{{\n{draw(bodies(depth + 1))}\n{sp}}}')
        else:
            lines.append(f"{sp}{draw(idents)}{sp}={sp}<<-EOT\n  {draw(lit_text)}\n{sp}EOT\n")
    return "\n".join(lines)


@settings(max_examples=150, deadline=None)
@given(bodies())
def test_generated_inputs_format_idempotently(src: str) -> None:
    once = format_hcl(src, parse=False)
    assert format_hcl(once, parse=False) == once
    assert significant(once) == significant(src)
    toks = tokenize(once)
    assert not once.endswith((" ", "\t")) or toks[-2].kind is Kind.COMMENT  # comment text is kept


# --- the verb ---------------------------------------------------------------------------------

UGLY = 'variable "r" {\ntype=string\n    default = "x"\n}\n'
PRETTY = 'variable "r" {\n  type    = string\n  default = "x"\n}\n'


def run(args: list[str], stdin: str | None = None) -> tuple[int, str]:
    from amibake.cli import commands  # noqa: F401  (registers the verbs)

    res = CliRunner().invoke(cli, args, input=stdin)
    if isinstance(res.exception, AmibakeError):  # what main() prints, without a traceback
        return res.exception.exit_code, res.output + f"Error: {res.exception}\n"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def test_fmt_rewrites_and_prints_names(tmp_path: Path) -> None:
    (tmp_path / "a.pkr.hcl").write_text(UGLY)
    (tmp_path / "b.pkr.hcl").write_text(PRETTY)
    (tmp_path / "c.json").write_text("{}")
    code, out = run(["fmt", str(tmp_path)])
    assert code == 0
    assert out == f"{tmp_path / 'a.pkr.hcl'}\n"
    assert (tmp_path / "a.pkr.hcl").read_text() == PRETTY


def test_fmt_check_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "a.pkrvars.hcl"
    f.write_text("x=1\n")
    code, out = run(["fmt", "-check", str(f)])
    assert (code, out) == (3, f"{f}\n")
    assert f.read_text() == "x=1\n"
    f.write_text("x = 1\n")
    assert run(["fmt", "-check", str(f)]) == (0, "")


def test_fmt_write_false_and_diff(tmp_path: Path) -> None:
    f = tmp_path / "a.pkr.hcl"
    f.write_text(UGLY)
    code, out = run(["fmt", "-write=false", "-diff", str(f)])
    assert code == 0
    assert f.read_text() == UGLY
    assert f"--- old/{f}" in out and f"+++ new/{f}" in out
    assert "+  type    = string" in out and "-type=string" in out


def test_fmt_recursive(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a.pkr.hcl").write_text(UGLY)
    assert run(["fmt", str(tmp_path)]) == (0, "")
    assert run(["fmt", "-recursive", str(tmp_path)]) == (0, f"{sub / 'a.pkr.hcl'}\n")


def test_fmt_stdin() -> None:
    assert run(["fmt", "-"], stdin=UGLY) == (0, PRETTY)
    assert run(["fmt", "-"], stdin=PRETTY) == (0, PRETTY)
    assert run(["fmt", "-check", "-"], stdin=UGLY)[0] == 3


def test_fmt_errors_are_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pkr.hcl"
    bad.write_text("a {\n")
    code, out = run(["fmt", str(bad)])
    assert code == 1
    assert f"{bad}:1" in out
    code, out = run(["fmt", str(tmp_path / "x.json")])
    assert code == 1 and "is not a HCL file" in out


def test_recursive_fmt_does_not_follow_directory_links(tmp_path: Path) -> None:
    """As Go's filepath.Walk (Lstat): a link to a directory is not descended, so `..` links make
    no cycle and a linked tree is not formatted twice."""
    from amibake.template.hclfmt import format_paths

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.pkr.hcl").write_text("a   = 1\n")
    (tmp_path / "a" / "b" / "up").symlink_to("..")
    (tmp_path / "a" / "b" / "up2").symlink_to("../..")
    (tmp_path / "a" / "linked").symlink_to("b")
    seen: list[str] = []
    result = format_paths([str(tmp_path / "a")], write=False, recursive=True, echo=seen.append)
    assert result.changed == [str(tmp_path / "a" / "b" / "x.pkr.hcl")]
    assert not result.problems
