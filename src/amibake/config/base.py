"""Typed, strict plugin configuration decoded with Packer's rules.

:func:`decode` turns a plugin block's raw options into a frozen :class:`PluginConfig`, gathering every
problem at once: unknown keys (with a did-you-mean), values of the wrong type (after Packer's weak
conversions, see :mod:`amibake.config.weak`), then the plugin's own cross-field rules
(:meth:`PluginConfig.check`, the equivalent of a Packer plugin's ``Prepare``).

The modules that declare config fields do not use ``from __future__ import annotations``: with it,
pydantic would compile and evaluate every field's annotation string when the class is created
(about a tenth of the time ``validate`` spends importing the amazon configs).
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from amibake.errors import Pos, Problem

C = TypeVar("C", bound="PluginConfig")


@dataclass
class CheckContext:
    """What a config's cross-field checks may know besides the options themselves."""

    template_dir: Path
    #: e.g. ``builders[0]`` or ``source.amazon-ebs.ubuntu``; problems name keys ``f"{key_path}.{key}"``
    key_path: str
    #: positions of top-level keys, when the loader knows them
    key_pos: Mapping[str, Pos] = field(default_factory=dict)
    #: check that files named by options exist (relative paths resolve against the current
    #: working directory, as Packer does)
    check_files: bool = True
    build_name: str = ""
    force: bool = False

    def key(self, name: str) -> str:
        return f"{self.key_path}.{name}" if self.key_path else name

    def problem(self, message: str, key: str | None = None) -> Problem:
        """A problem about option ``key`` (a dotted path below this plugin block), or the block."""
        if key is None:
            return Problem(message, key=self.key_path or None)
        top = re.split(r"[.\[]", key, maxsplit=1)[0]
        return Problem(message, key=self.key(key), pos=self.key_pos.get(top))

    def stat_error(self, path: str) -> str | None:
        """Go's ``os.Stat`` error text for a missing file (``stat x: no such file or directory``),
        or None when the file exists or file checks are off. ``~`` expands as Packer does."""
        if not self.check_files:
            return None
        full = os.path.expanduser(path) if path.startswith("~") else path
        try:
            os.stat(full)
        except FileNotFoundError:
            return f"stat {path}: no such file or directory"
        except NotADirectoryError:
            return f"stat {path}: not a directory"
        except PermissionError:
            return f"stat {path}: permission denied"
        except (OSError, ValueError) as exc:
            return f"stat {path}: {exc}"
        return None


class ConfigModel(BaseModel):
    """Base of every config model, nested blocks included: frozen, unknown keys forbidden.

    Before validation, ``null`` values are dropped (the option keeps its default, as mapstructure
    does) and keys are matched case-insensitively when there is no exact match (mapstructure's
    fallback), so ``"SSH_Username"`` reaches ``ssh_username``.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        defer_build=True,
        validate_default=False,
        arbitrary_types_allowed=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _packer_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        keys = option_keys(cls)
        folded = {k.lower(): k for k in keys}
        out: dict[str, Any] = {}
        for k, v in data.items():
            if v is None:
                continue
            if isinstance(k, str) and k not in keys and k.lower() in folded and folded[k.lower()] not in data:
                k = folded[k.lower()]
            out[k] = v
        return out


class PluginConfig(ConfigModel):
    """A plugin's whole configuration. Subclasses declare one field per Packer option."""

    #: option names Packer still accepts but ignores, with the warning to give
    deprecated_keys: ClassVar[Mapping[str, str]] = {}
    #: options (dotted paths for nested blocks: ``assume_role.policy``) that amibake declares, because
    #: Packer does, but does not carry out yet, each with the reason; ``validate`` and ``build`` refuse
    #: a template that sets one to anything but its default (what amibake accepts, it carries out)
    unsupported: ClassVar[Mapping[str, str]] = {}
    #: options that do not shape what is on the image (its name, tags, regions, sharing, credentials,
    #: how amibake reaches the machine): left out of the content fingerprint (amibake.fingerprint).
    #: Every other option is in it. Unioned over the MRO, like ``unsupported``.
    not_image_shaping: ClassVar[frozenset[str]] = frozenset()

    def local_inputs(self) -> list[tuple[str, str]]:
        """``(option, local path)`` of each local file or directory whose contents this plugin
        uploads, runs or puts on the image: the content fingerprint hashes their contents."""
        return []

    def check(self, ctx: CheckContext) -> list[Problem]:
        """Cross-field rules (Packer's ``Prepare``); every problem, not just the first."""
        return []

    def warnings(self, ctx: CheckContext) -> list[str]:
        return []


def option_keys(cls: type[BaseModel]) -> frozenset[str]:
    """The keys a model accepts: its fields' aliases (or names)."""
    cached = cls.__dict__.get("__amibake_keys__")
    if cached is None:
        cached = frozenset(f.alias or name for name, f in cls.model_fields.items())
        type.__setattr__(cls, "__amibake_keys__", cached)
    return typing.cast(frozenset[str], cached)


def decode(
    cls: type[C], raw: Mapping[str, Any], ctx: CheckContext
) -> tuple[C | None, list[Problem], list[str]]:
    """Decode ``raw`` into ``cls``: (config or None, every problem, warnings).

    The ``type`` key and keys starting with ``packer_`` are ignored, as Packer's decoder does.
    """
    if not isinstance(raw, Mapping):
        return None, [ctx.problem(f"expected a map of options, got {type(raw).__name__}")], []
    data = {k: v for k, v in raw.items() if not _ignored_key(k)}
    collected: list[str] = []
    try:
        config = cls.model_validate(data, context={"warnings": collected})
    except ValidationError as exc:
        problems = [_translate(cls, err, ctx) for err in exc.errors(include_url=False)]
        return None, _dedupe(problems), collected
    problems = refused(config, ctx)
    problems += config.check(ctx)
    warnings = collected + list(config.warnings(ctx))
    for key, message in cls.deprecated_keys.items():
        if key in data:
            warnings.append(message)
    return config, problems, warnings


def unsupported_options(cls: type[PluginConfig]) -> dict[str, str]:
    """Every option ``cls`` refuses, with its reason: the ``unsupported`` of each class of its MRO
    (a mixin's list counts; a subclass's reason wins)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        out.update(klass.__dict__.get("unsupported", {}))
    return out


def not_image_shaping(cls: type[PluginConfig]) -> frozenset[str]:
    """Every option of ``cls`` left out of the content fingerprint: the ``not_image_shaping`` of each
    class of its MRO."""
    out: set[str] = set()
    for klass in cls.__mro__:
        out.update(klass.__dict__.get("not_image_shaping", ()))
    return frozenset(out)


def refused(config: PluginConfig, ctx: CheckContext) -> list[Problem]:
    """A problem for each option of ``unsupported_options`` that ``config`` sets to anything but its
    default. The message names the option, never its value (it may be a secret)."""
    return [
        ctx.problem(f'"{key}" is not supported by amibake yet: {reason}', key)
        for key, reason in unsupported_options(type(config)).items()
        if _set_off_default(config, key.split("."))
    ]


def _set_off_default(value: Any, path: list[str]) -> bool:
    """Whether option ``path`` (a dotted key split) of model ``value`` differs from its default.
    A nested block may be one model or a list of them (HCL2 blocks); any element counts."""
    if isinstance(value, list | tuple):
        return any(_set_off_default(v, path) for v in value)
    if not isinstance(value, BaseModel):
        return False
    fields = {(f.alias or n): (n, f) for n, f in type(value).model_fields.items()}
    if path[0] not in fields:
        return False
    name, info = fields[path[0]]
    current = getattr(value, name)
    if len(path) > 1:
        return _set_off_default(current, path[1:])
    return bool(current != info.get_default(call_default_factory=True))


def _ignored_key(key: Any) -> bool:
    return key == "type" or (isinstance(key, str) and key.startswith("packer_"))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for p in problems:
        if (p.message, p.key) not in seen:
            seen.add((p.message, p.key))
            out.append(p)
    return out


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _translate(cls: type[BaseModel], err: Any, ctx: CheckContext) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = _dotted(loc)
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if err["type"] == "extra_forbidden":
        owner = _model_at(cls, loc[:-1])
        candidates = sorted(option_keys(owner)) if owner is not None else []
        message = f'unknown configuration key: "{last}"'
        suggestion = suggest(str(last), candidates)
        if suggestion:
            message += f'; did you mean "{suggestion}"?'
        return ctx.problem(message, key)
    from amibake.ui.redact import SECRET_OPTION  # only on a problem: a valid template needs no redaction

    ectx = err.get("ctx") or {}
    secret = bool(SECRET_OPTION.search(str(last)))  # option names whose values never appear in messages
    if err["type"] == "weak":
        message = ectx["what"] if secret else err["msg"]
    elif err["type"] == "duration":
        message = "invalid duration" if secret else err["msg"]
    else:
        message = err["msg"]
        if not secret:
            from amibake.config.weak import show

            message += f": {show(err.get('input'))}"
    return ctx.problem(message, key)


def _model_at(cls: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = cls
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        if part not in fields:
            return None
        model = _find_model(fields[part].annotation)
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def suggest(word: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``word`` by edit distance, when fewer than 3 edits away
    (the rule of Packer's ``didyoumean``)."""
    best: tuple[int, str] | None = None
    for cand in candidates:
        d = _distance(word, cand)
        if d < 3 and (best is None or d < best[0]):
            best = (d, cand)
    return best[1] if best else None


def _distance(a: str, b: str) -> int:
    if abs(len(a) - len(b)) >= 3:
        return 3
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
