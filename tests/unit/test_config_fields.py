"""Every option of every registered plugin config, pinned: name, key, type, default, description.

The expected data (``data/config_fields.json``) was generated from the configs before they were
refactored to declare each shared option once; this test proves that sharing declarations changes no
option of any plugin (nor of the nested blocks they accept). After a deliberate change to an option,
regenerate it with ``python tests/unit/test_config_fields.py --write`` and review the diff.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel, BeforeValidator

from amibake import registry
from amibake.config.base import option_keys

DATA = Path(__file__).parent / "data" / "config_fields.json"
KINDS: tuple[registry.Kind, ...] = typing.get_args(registry.Kind)


def render_type(tp: Any, found: dict[str, type[BaseModel]]) -> str:
    """A stable text for an annotation; models met on the way are added to ``found``."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = get_args(tp)
        return f"Annotated[{render_type(base, found)}, {', '.join(_render_meta(m) for m in meta)}]"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(render_type(a, found) for a in get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(render_type(a, found) for a in get_args(tp))}]"
    if tp is type(None):
        return "None"
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            found.setdefault(tp.__name__, tp)
        return tp.__name__
    return repr(tp)


def _render_meta(meta: Any) -> str:
    if isinstance(meta, BeforeValidator):
        return f"BeforeValidator({meta.func.__name__})"
    return repr(meta)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {"__model__": type(value).__name__, **{k: _plain(v) for k, v in value.model_dump().items()}}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def describe_model(cls: type[BaseModel], found: dict[str, type[BaseModel]]) -> dict[str, Any]:
    """Fields in declaration order, accepted keys, validators and model settings of ``cls``."""
    fields = []
    for name, info in cls.model_fields.items():
        fields.append(
            {
                "name": name,
                "alias": info.alias,
                "validation_alias": repr(info.validation_alias) if info.validation_alias else None,
                "type": render_type(_annotated(info), found),
                "required": info.is_required(),
                "factory": info.default_factory is not None,
                "default": None
                if info.is_required()
                else _plain(info.get_default(call_default_factory=True)),
                "description": info.description,
            }
        )
    decorators = cls.__pydantic_decorators__
    config = cls.model_config
    return {
        "keys": sorted(option_keys(cls)),
        "fields": fields,
        "model_validators": sorted(
            f"{name}:{d.info.mode}" for name, d in decorators.model_validators.items()
        ),
        "field_validators": sorted(
            f"{name}:{d.info.mode}:{','.join(d.info.fields)}"
            for name, d in decorators.field_validators.items()
        ),
        "config": {k: config.get(k) for k in ("frozen", "extra", "populate_by_name", "validate_default")},
        "deprecated_keys": dict(getattr(cls, "deprecated_keys", {}) or {}),
    }


def _annotated(info: Any) -> Any:
    """The field's annotation with its metadata (validators) put back."""
    if info.metadata:
        return typing.Annotated[(info.annotation, *info.metadata)]
    return info.annotation


def snapshot() -> dict[str, Any]:
    plugins: dict[str, Any] = {}
    found: dict[str, type[BaseModel]] = {}
    for kind in KINDS:
        for name in registry.known(kind):
            spec = registry.lookup(kind, name)
            assert spec is not None
            cls = spec.config_class()
            if cls is None:  # the `null` data source: the HCL2 loader evaluates it, with no config class
                continue
            plugins[f"{kind}/{name}"] = {"class": cls.__name__, **describe_model(cls, found)}
    models: dict[str, Any] = {}
    while len(models) < len(found):
        for name, cls in sorted(found.items()):
            if name not in models:
                models[name] = describe_model(cls, found)
    return {"plugins": plugins, "models": dict(sorted(models.items()))}


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    return snapshot()


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return typing.cast(dict[str, Any], json.loads(DATA.read_text(encoding="utf-8")))


def test_same_plugins(current: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(current["plugins"]) == sorted(expected["plugins"])


def test_same_nested_models(current: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(current["models"]) == sorted(expected["models"])


def _cases() -> list[str]:
    if not DATA.exists():  # only while --write makes it
        return []
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return [f"plugins:{k}" for k in data["plugins"]] + [f"models:{k}" for k in data["models"]]


def differences(name: str, got: dict[str, Any] | None, want: dict[str, Any]) -> list[str]:
    """What differs between a plugin's (or model's) current description and the pinned one."""
    if got is None:
        return [f"{name} is gone"]
    out = []
    got_names, want_names = [f["name"] for f in got["fields"]], [f["name"] for f in want["fields"]]
    if got_names != want_names:
        out.append(f"{name}: fields {got_names} != {want_names}")
    for g, w in zip(got["fields"], want["fields"]):
        out += [f"{name}.{w['name']}: {k}: {g.get(k)!r} != {w.get(k)!r}"
                for k in sorted(set(g) | set(w)) if g.get(k) != w.get(k)]
    rest = sorted(k for k in set(got) | set(want) if k != "fields" and got.get(k) != want.get(k))
    out += [f"{name}: {k}: {got.get(k)!r} != {want.get(k)!r}" for k in rest]
    return out


@pytest.mark.parametrize("case", _cases())
def test_fields_unchanged(case: str, current: dict[str, Any], expected: dict[str, Any]) -> None:
    section, _, name = case.partition(":")
    assert differences(name, current[section].get(name), expected[section][name]) == []


def test_snapshot_detects_a_changed_option(expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The pin can fail: an option's description and another's default changed in the real config
    class are each reported by the comparison test_fields_unchanged makes."""
    spec = registry.lookup("builder", "amazon-ebs")
    assert spec is not None
    cls = spec.config_class()
    described, defaulted = "ami_name", "ssh_port"
    monkeypatch.setattr(cls.model_fields[described], "description", "changed")
    monkeypatch.setattr(cls.model_fields[defaulted], "default", 2222)
    name = "builder/amazon-ebs"
    diffs = differences(name, snapshot()["plugins"][name], expected["plugins"][name])
    assert sorted(tuple(d.split(": ", 2)[:2]) for d in diffs) == [
        (f"{name}.{described}", "description"), (f"{name}.{defaulted}", "default")], diffs
    # and nothing is left changed for the other tests
    monkeypatch.undo()
    assert differences(name, snapshot()["plugins"][name], expected["plugins"][name]) == []


def test_every_option_has_a_description(current: dict[str, Any]) -> None:
    """One declaration per option, its description its documentation."""
    missing = [
        f"{where}.{f['name']}"
        for section in ("plugins", "models")
        for where, model in current[section].items()
        for f in model["fields"]
        if not f["description"]
    ]
    assert missing == []


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/unit/test_config_fields.py --write")
    DATA.parent.mkdir(parents=True, exist_ok=True)
    DATA.write_text(
        json.dumps(snapshot(), indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {DATA}")
