"""Packer's weak typing, Go durations and decode() mechanics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from amibake.config.base import CheckContext, decode, suggest
from amibake.config.communicator import CommunicatorConfig
from amibake.config.durations import format_duration, parse_duration
from amibake.config.weak import go_float_string, parse_go_int, to_bool, to_list, to_map, to_str
from amibake.errors import Pos
from amibake.provisioners.breakpoint.config import BreakpointConfig
from amibake.provisioners.shell.config import ShellConfig


def ctx(**kw: Any) -> CheckContext:
    return CheckContext(template_dir=Path("."), key_path="builders[0]", **kw)


def comm(raw: dict[str, Any]) -> tuple[Any, list[str], list[str]]:
    cfg, problems, warnings = decode(CommunicatorConfig, {"ssh_username": "u", **raw}, ctx())
    return cfg, [str(p) for p in problems], warnings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("1s", 1.0),
        ("300ms", 0.3),
        ("1h2m3.5s", 3723.5),
        ("1.5h", 5400.0),
        ("-2m", -120.0),
        ("+5s", 5.0),
        ("10us", 1e-5),
        ("10µs", 1e-5),
        ("7ns", 7e-9),
        (".5s", 0.5),
        ("1m30s", 90.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("90", 'time: missing unit in duration "90"'),
        ("5 m", 'time: unknown unit " m" in duration "5 m"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        ("1.s", None),
    ],
)
def test_parse_duration_errors(text: str, message: str | None) -> None:
    if message is None:
        assert parse_duration(text) == 1.0
        return
    with pytest.raises(ValueError, match="time: ") as exc:
        parse_duration(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (90, "1m30s"),
        (3723.5, "1h2m3.5s"),
        (0.3, "300ms"),
        (3600, "1h0m0s"),
        (-5, "-5s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_format_parse_roundtrip(ms: int) -> None:
    seconds = ms / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("22", 22),
        ("-1", -1),
        ("+3", 3),
        ("0x16", 22),
        ("026", 22),
        ("0o26", 22),
        ("0b101", 5),
        ("1_000", 1000),
    ],
)
def test_go_int(text: str, value: int) -> None:
    assert parse_go_int(text) == value


@pytest.mark.parametrize("text", [" 22", "22 ", "abc", "1.5", "0x", "1e3", "", "--1"])
def test_go_int_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_int(text)


def test_go_int_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_go_int(str(2**63))


@pytest.mark.parametrize(
    ("value", "text"), [(True, "1"), (False, "0"), (22, "22"), (1.5, "1.5"), (1e21, "1" + "0" * 21)]
)
def test_weak_string(value: Any, text: str) -> None:
    assert to_str(value) == text
    if isinstance(value, float):
        assert go_float_string(value) == text


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("true", True),
        ("1", True),
        ("T", True),
        ("False", False),
        ("0", False),
        ("", False),
        (2, True),
        (0, False),
    ],
)
def test_weak_bool(value: Any, result: bool) -> None:
    assert to_bool(value) is result


def test_weak_list_and_map() -> None:
    assert to_list("a,b") == ["a", "b"]
    assert to_list("") == []
    assert to_list({}) == []
    assert to_list(5) == [5]
    assert to_map([{"a": "1"}, {"b": "2"}, {"a": "3"}]) == {"a": "3", "b": "2"}
    assert to_map([]) == {}


@pytest.mark.parametrize(
    ("raw", "field", "value"),
    [
        ({"ssh_port": "2222"}, "ssh_port", 2222),
        ({"ssh_port": 2222.9}, "ssh_port", 2222),
        ({"ssh_port": True}, "ssh_port", 1),
        ({"ssh_port": ""}, "ssh_port", 0),
        ({"ssh_host": 10}, "ssh_host", "10"),
        ({"ssh_host": False}, "ssh_host", "0"),
        ({"ssh_pty": "true"}, "ssh_pty", True),
        ({"ssh_pty": "1"}, "ssh_pty", True),
        ({"ssh_pty": 0}, "ssh_pty", False),
        ({"ssh_ciphers": "aes128-ctr"}, "ssh_ciphers", ["aes128-ctr"]),
        ({"ssh_ciphers": "a,b"}, "ssh_ciphers", ["a", "b"]),
        ({"ssh_ciphers": ["a", 3]}, "ssh_ciphers", ["a", "3"]),
        ({"ssh_timeout": "1m30s"}, "ssh_timeout", 90.0),
        ({"winrm_use_ntlm": "true"}, "winrm_use_ntlm", True),
        ({"winrm_use_ntlm": ""}, "winrm_use_ntlm", None),
        ({"winrm_use_ntlm": False}, "winrm_use_ntlm", False),
        ({"ssh_port": None}, "ssh_port", 22),
        ({"SSH_Port": "23"}, "ssh_port", 23),
    ],
)
def test_weak_typing_on_fields(raw: dict[str, Any], field: str, value: Any) -> None:
    cfg, problems, _ = comm(raw)
    assert problems == []
    assert getattr(cfg, field) == value


def test_defaults() -> None:
    cfg, problems, _ = comm({})
    assert problems == []
    assert cfg.communicator == "ssh"
    assert cfg.ssh_port == 22
    assert cfg.ssh_timeout == 300.0
    assert cfg.ssh_handshake_attempts == 10
    assert cfg.ssh_keep_alive_interval == 5.0
    assert cfg.ssh_file_transfer_method == "scp"
    assert cfg.ssh_bastion_port == 22
    assert cfg.ssh_proxy_port == 1080
    assert cfg.winrm_port == 5985
    assert cfg.winrm_timeout == 1800.0
    assert cfg.temporary_key_pair_type == "rsa"


def test_dependent_defaults() -> None:
    cfg, _, _ = comm({"winrm_use_ssl": "true"})
    assert cfg.winrm_port == 5986
    cfg, _, _ = comm({"winrm_use_ssl": True, "winrm_port": 1234})
    assert cfg.winrm_port == 1234
    cfg, _, warnings = comm({"ssh_wait_timeout": "10m"})
    assert cfg.ssh_timeout == 600.0
    assert any("ssh_wait_timeout" in w for w in warnings)


def test_bare_number_duration_is_nanoseconds_with_warning() -> None:
    cfg, problems, warnings = comm({"ssh_timeout": 300})
    assert problems == []
    assert cfg.ssh_timeout == pytest.approx(300e-9)
    assert any("nanoseconds" in w and "ssh_timeout" in w for w in warnings)


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"ssh_port": "abc"}, "ssh_port", 'cannot parse as int (invalid syntax): "abc"'),
        ({"ssh_port": [1, 2]}, "ssh_port", "expected an int, got unconvertible type 'list'"),
        ({"ssh_port": {"a": 1}}, "ssh_port", "got unconvertible type 'map'"),
        ({"ssh_pty": "yes"}, "ssh_pty", "cannot parse as bool"),
        ({"ssh_host": ["a"]}, "ssh_host", "expected a string"),
        ({"ssh_timeout": "90"}, "ssh_timeout", 'time: missing unit in duration "90"'),
        ({"ssh_timeout": [1]}, "ssh_timeout", "expected a duration"),
        ({"ssh_ciphers": [[1]]}, "ssh_ciphers[0]", "expected a string"),
        ({"winrm_use_ntlm": "maybe"}, "winrm_use_ntlm", "cannot parse as bool"),
    ],
)
def test_wrong_types(raw: dict[str, Any], key: str, fragment: str) -> None:
    cfg, problems, _ = comm(raw)
    assert cfg is None
    assert len(problems) == 1
    assert problems[0].startswith(f"builders[0].{key}: ")
    assert fragment in problems[0]


def test_secrets_not_echoed() -> None:
    _, problems, _ = comm({"ssh_password": ["hunter2-secret"], "winrm_password": {"x": "hunter3"}})
    assert len(problems) == 2
    assert all("hunter" not in p for p in problems)


def test_all_errors_at_once_with_positions() -> None:
    pos = {"ssh_port": Pos("t.json", 3, 5), "ssh_usernme": Pos("t.json", 4, 5)}
    cfg, problems, _ = decode(
        CommunicatorConfig, {"ssh_port": "x", "ssh_pty": "y", "ssh_usernme": "u"}, ctx(key_pos=pos)
    )
    assert cfg is None
    assert len(problems) == 3
    by_key = {p.key: p for p in problems}
    assert by_key["builders[0].ssh_port"].pos == Pos("t.json", 3, 5)
    assert by_key["builders[0].ssh_usernme"].message == (
        'unknown configuration key: "ssh_usernme"; did you mean "ssh_username"?'
    )
    assert by_key["builders[0].ssh_usernme"].pos == Pos("t.json", 4, 5)
    assert str(by_key["builders[0].ssh_port"]).startswith("t.json:3:5: builders[0].ssh_port: ")


def test_unknown_key_without_suggestion() -> None:
    _, problems, _ = decode(BreakpointConfig, {"zzzzzzzz": 1}, ctx())
    assert [p.message for p in problems] == ['unknown configuration key: "zzzzzzzz"']


def test_type_and_packer_keys_ignored() -> None:
    cfg, problems, _ = decode(
        BreakpointConfig, {"type": "breakpoint", "packer_build_name": "x", "note": "hi"}, ctx()
    )
    assert problems == []
    assert cfg is not None and cfg.note == "hi"


def test_not_a_map() -> None:
    cfg, problems, _ = decode(BreakpointConfig, ["x"], ctx())  # type: ignore[arg-type]
    assert cfg is None and "expected a map" in problems[0].message


def test_check_runs_only_after_clean_decode() -> None:
    _, problems, _ = decode(ShellConfig, {"inlin": ["x"]}, ctx())
    assert [p.message for p in problems] == ['unknown configuration key: "inlin"; did you mean "inline"?']


def test_frozen() -> None:
    cfg, _, _ = comm({})
    assert cfg is not None
    port = cfg.ssh_port
    with pytest.raises(ValidationError, match=r"ssh_port\n  Instance is frozen") as exc:
        cfg.ssh_port = 1
    assert [e["type"] for e in exc.value.errors()] == ["frozen_instance"]
    assert cfg.ssh_port == port


@pytest.mark.parametrize(
    ("word", "expected"),
    [("ami_nmae", "ami_name"), ("aminame", "ami_name"), ("region", "region"), ("xyz", None), ("tags", "tag")],
)
def test_suggest(word: str, expected: str | None) -> None:
    assert suggest(word, ["ami_name", "region", "tag"]) == expected
