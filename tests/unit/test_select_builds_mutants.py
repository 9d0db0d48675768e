"""``select_builds`` on HCL2 named build blocks: the short ``type.name`` form (docs/mutation.md).

A source of a named build block is called ``<build name>.<type>.<name>`` (``web.amazon-ebs.a``).
amibake also matches ``-only``/``-except`` patterns against the short form ``<type>.<name>``
(``amazon-ebs.a``), the name the same source has in an unnamed build block. Packer 1.6.6 matches the
full name only (``packer validate -only=amazon-ebs.b`` on a named build validates nothing, and
``-except=amazon-ebs.b`` does not exclude it). These tests pin amibake's current behaviour, a known
divergence kept as an extension: a change to Packer's behaviour has to change them on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from amibake.core import load_template, select_builds
from amibake.template.json_loader import load_json

Select = Callable[..., list[str]]

HCL = """
source "amazon-ebs" "a" {
  region = "us-east-1"
}
source "amazon-ebs" "b" {
  region = "us-east-1"
}
build {
  name    = "web"
  sources = ["source.amazon-ebs.a", "source.amazon-ebs.b"]
}
build {
  sources = ["source.amazon-ebs.b"]
}
"""


@pytest.fixture
def names(tmp_path: Path) -> Select:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(HCL)
    template = load_template(path).template

    def select(only: tuple[str, ...] = (), except_: tuple[str, ...] = ()) -> list[str]:
        return [source.name for _, source in select_builds(template, only, except_)]

    return select


def test_the_sources_of_a_named_build_carry_the_build_name(names: Select) -> None:
    assert names() == ["web.amazon-ebs.a", "web.amazon-ebs.b", "amazon-ebs.b"]
    assert names(only=("web.amazon-ebs.a",)) == ["web.amazon-ebs.a"]
    assert names(except_=("web.*",)) == ["amazon-ebs.b"]


def test_only_with_the_short_form_selects_a_source_of_a_named_build(names: Select) -> None:
    assert names(only=("amazon-ebs.a",)) == ["web.amazon-ebs.a"]
    assert names(only=("amazon-ebs.b",)) == ["web.amazon-ebs.b", "amazon-ebs.b"]
    assert names(only=("amazon-ebs.?",)) == ["web.amazon-ebs.a", "web.amazon-ebs.b", "amazon-ebs.b"]


def test_except_with_the_short_form_leaves_out_a_source_of_a_named_build(names: Select) -> None:
    assert names(except_=("amazon-ebs.b",)) == ["web.amazon-ebs.a"]
    assert names(except_=("amazon-ebs.a",)) == ["web.amazon-ebs.b", "amazon-ebs.b"]
    assert names(only=("web.*",), except_=("amazon-ebs.a",)) == ["web.amazon-ebs.b"]


def test_the_short_form_is_type_and_name_and_nothing_shorter(names: Select) -> None:
    for pattern in ("a", "web.a", "amazon-ebs", "web.amazon-ebs", "amazon-ebs.web.amazon-ebs"):
        assert names(only=(pattern,)) == [], pattern
        assert names(except_=(pattern,)) == ["web.amazon-ebs.a", "web.amazon-ebs.b", "amazon-ebs.b"], pattern


def test_a_json_build_has_no_short_form(tmp_path: Path) -> None:
    """A legacy JSON build is known by its ``name`` alone, never as ``type.name``."""
    path = tmp_path / "t.json"
    path.write_text('{"builders": [{"type": "amazon-ebs", "name": "a"},'
                    ' {"type": "amazon-ebs", "name": "b"}]}')
    template = load_json(path)
    assert [s.name for _, s in select_builds(template, ["amazon-ebs.a"])] == []
    assert [s.name for _, s in select_builds(template, [], ["amazon-ebs.a"])] == ["a", "b"]
    assert [s.name for _, s in select_builds(template, ["a"])] == ["a"]
