"""The JSON loader: Packer's structural rules, with positions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.errors import TemplateError
from amibake.template.json_loader import load_json, weak_string
from amibake.template.jsonpos import PosDict, loads


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.json"
    p.write_text(text)
    return p


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(TemplateError) as e:
        load_json(write(tmp_path, text))
    return [str(p) for p in e.value.problems]


MINIMAL = {"builders": [{"type": "amazon-ebs"}]}


def test_positions_of_keys() -> None:
    v, probs = loads("f.json", '{\n  "a": {\n    "b": 1\n  }\n}')
    assert not probs
    assert isinstance(v, PosDict)
    assert (v.key_pos["a"].line, v.key_pos["a"].column) == (2, 3)
    assert (v["a"].key_pos["b"].line, v["a"].key_pos["b"].column) == (3, 5)


def test_syntax_error_has_line_column_and_caret(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, '{\n  "builders": [\n    {"type": "amazon-ebs",}\n  ]\n}')
    assert "t.json:3:" in msg
    assert "Error parsing JSON" in msg
    assert '    3:     {"type": "amazon-ebs",}' in msg
    assert msg.rstrip().endswith("^")


def test_duplicate_keys_rejected_with_both_lines(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, '{"builders": [{"type": "amazon-ebs", "region": "a",\n "region": "b"}]}')
    assert 'duplicate key "region"' in msg
    assert "first defined at line 1" in msg
    assert "t.json:2:2" in msg


def test_unknown_root_key_rejected_but_comments_allowed(tmp_path: Path) -> None:
    ok = dict(MINIMAL, _comment="hello", _note="x")
    assert load_json(write(tmp_path, json.dumps(ok))).builds[0].sources[0].type == "amazon-ebs"
    (msg,) = problems(tmp_path, json.dumps(dict(MINIMAL, buidlers=[])))
    assert "Unknown root level key in template: 'buidlers'" in msg


def test_comment_must_be_a_string(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, json.dumps(dict(MINIMAL, _c=1)))
    assert "comment" in msg


def test_builder_name_defaults_to_type_and_duplicates_rejected(tmp_path: Path) -> None:
    t = load_json(
        write(
            tmp_path, json.dumps({"builders": [{"type": "amazon-ebs"}, {"type": "amazon-ebs", "name": "b"}]})
        )
    )
    assert [s.name for s in t.builds[0].sources] == ["amazon-ebs", "b"]
    assert "type" not in t.builds[0].sources[0].config
    (msg,) = problems(tmp_path, json.dumps({"builders": [{"type": "amazon-ebs"}, {"type": "amazon-ebs"}]}))
    assert "builder with name 'amazon-ebs' already exists" in msg


def test_builder_without_type(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, json.dumps({"builders": [{"name": "x"}]}))
    assert "missing 'type'" in msg
    assert "builders[0]" in msg


def test_post_processor_shapes(tmp_path: Path) -> None:
    pps = ["manifest", {"type": "checksum"}, ["compress", {"type": "shell-local", "inline": ["x"]}]]
    t = load_json(write(tmp_path, json.dumps(dict(MINIMAL, **{"post-processors": pps}))))
    seqs = [[p.type for p in seq] for seq in t.builds[0].post_processors]
    assert seqs == [["manifest"], ["checksum"], ["compress", "shell-local"]]


def test_nested_post_processor_sequence_rejected(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, json.dumps(dict(MINIMAL, **{"post-processors": [["manifest", ["x"]]]})))
    assert "sequence not allowed to be nested in a sequence" in msg


def test_only_except_must_name_known_builds(tmp_path: Path) -> None:
    provs = [
        {"type": "shell", "inline": ["x"], "only": ["nope"]},
        {"type": "shell", "inline": ["x"], "except": ["nada"]},
    ]
    msgs = problems(tmp_path, json.dumps(dict(MINIMAL, provisioners=provs)))
    assert len(msgs) == 2
    assert "'nope' not found" in msgs[0] and "provisioners[0].only" in msgs[0]
    assert "'nada' not found" in msgs[1]


def test_override_must_name_known_builds(tmp_path: Path) -> None:
    provs = [{"type": "shell", "inline": ["x"], "override": {"other": {"inline": ["y"]}}}]
    (msg,) = problems(tmp_path, json.dumps(dict(MINIMAL, provisioners=provs)))
    assert "override specified builder 'other' not found" in msg


def test_core_provisioner_keys_are_understood(tmp_path: Path) -> None:
    provs = [
        {
            "type": "shell",
            "inline": ["x"],
            "pause_before": "10s",
            "max_retries": "3",
            "timeout": "5m",
            "only": ["amazon-ebs"],
            "override": {"amazon-ebs": {"inline": ["y"]}},
        }
    ]
    t = load_json(write(tmp_path, json.dumps(dict(MINIMAL, provisioners=provs))))
    p = t.builds[0].provisioners[0]
    assert (p.pause_before, p.max_retries, p.timeout, p.only) == ("10s", 3, "5m", ["amazon-ebs"])
    assert p.config == {"inline": ["x"]}
    assert p.override == {"amazon-ebs": {"inline": ["y"]}}


def test_keep_input_artifact(tmp_path: Path) -> None:
    pps = [{"type": "manifest", "keep_input_artifact": True}]
    t = load_json(write(tmp_path, json.dumps(dict(MINIMAL, **{"post-processors": pps}))))
    assert t.builds[0].post_processors[0][0].keep_input_artifact is True


def test_variables_weakly_decoded_and_sensitive(tmp_path: Path) -> None:
    doc = dict(MINIMAL, variables={"a": 22, "b": True, "c": None, "d": "x"}, **{"sensitive-variables": ["d"]})
    t = load_json(write(tmp_path, json.dumps(doc)))
    v = t.variables
    assert (v["a"].default, v["b"].default, v["c"].required, v["d"].sensitive) == ("22", "1", True, True)


def test_variable_with_object_default_rejected(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, json.dumps(dict(MINIMAL, variables={"a": {"b": 1}})))
    assert "variable a" in msg and "object" in msg


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    doc = {"builders": [{"name": "x"}], "oops": 1, "variables": {"a": []}, "post-processors": [["a", ["b"]]]}
    assert len(problems(tmp_path, json.dumps(doc))) == 4


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not found"):
        load_json(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("value", "expected"), [(1, "1"), (1.5, "1.5"), (2.0, "2"), (False, "0"), ("s", "s"), ([], None)]
)
def test_weak_string(value: object, expected: str | None) -> None:
    assert weak_string(value) == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_positions_parser_agrees_with_json(value: object) -> None:
    text = json.dumps(value, indent=1)
    parsed, probs = loads("f.json", text)
    assert not probs
    assert parsed == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_never_crashes(text: str) -> None:
    value, probs = loads("f.json", text)
    if not probs:
        assert value == json.loads(text)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_any_json_document_loads_or_reports(value: object) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.json"
        p.write_text(json.dumps(value))
        try:
            load_json(p)
        except TemplateError as e:
            assert e.problems
