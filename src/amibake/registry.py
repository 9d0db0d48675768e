"""Plugins register here under their Packer type names (``amazon-ebs``, ``shell``, ``manifest``).

A registration names the plugin's typed config class (imported eagerly: ``validate`` needs it)
and its implementation as ``"module:attr"`` (imported lazily: ``validate`` must not pay for
boto3 or asyncssh). Registrations live in :mod:`amibake.plugins`, one line per plugin.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["builder", "provisioner", "post-processor", "communicator", "datasource"]


@dataclass(frozen=True)
class PluginSpec:
    kind: Kind
    type: str
    #: ``"module:Class"`` of the config class (a :class:`amibake.config.base.PluginConfig`)
    config: str
    #: ``"module:Class"`` of the implementation, or "" when amibake only validates this type
    impl: str = ""
    #: shown by ``inspect`` and in errors
    summary: str = ""
    #: builders only: ``"module:Class"`` of what finds and converges an existing image by its content
    #: fingerprint (an :class:`amibake.api.ImageReuse`), or "" when the builder makes no image to reuse
    reuse: str = ""

    @property
    def runnable(self) -> bool:
        """Whether ``build`` can carry this type out; False: amibake only validates its config."""
        return bool(self.impl)

    def config_class(self) -> Any:
        return _load(self.config)

    def impl_class(self) -> Any:
        if not self.impl:
            return None
        return _load(self.impl)

    def reuse_class(self) -> Any:
        return _load(self.reuse) if self.reuse else None


_REGISTRY: dict[tuple[Kind, str], PluginSpec] = {}


def register(spec: PluginSpec) -> None:
    key = (spec.kind, spec.type)
    if key in _REGISTRY:
        raise ValueError(f"{spec.kind} {spec.type!r} registered twice")
    _REGISTRY[key] = spec


def lookup(kind: Kind, type_name: str) -> PluginSpec | None:
    _ensure_loaded()
    return _REGISTRY.get((kind, type_name))


def known(kind: Kind) -> list[str]:
    _ensure_loaded()
    return sorted(t for k, t in _REGISTRY if k == kind)


#: the kinds in the order ``plugins installed`` lists them
KINDS: tuple[Kind, ...] = ("builder", "provisioner", "post-processor", "datasource", "communicator")


@dataclass(frozen=True)
class Installed:
    """One built-in plugin type as ``plugins installed`` shows it."""

    kind: Kind
    type: str
    #: True: ``build`` carries it out; False: its config is checked, but amibake cannot execute it
    runnable: bool


def installed() -> list[Installed]:
    """Every built-in plugin type, by kind (in :data:`KINDS` order), then by name.

    Builders, provisioners and post-processors come from this registry (a spec without an
    implementation is validate-only); data sources from :data:`amibake.datasources.runner.SPECS`,
    where every type is executed, plus ``null``, which the HCL2 loader runs itself.
    """
    from amibake.datasources.runner import SPECS

    _ensure_loaded()
    found = {(k, t): spec.runnable for (k, t), spec in _REGISTRY.items()}
    for type_name in SPECS:
        found[("datasource", type_name)] = True
    found[("datasource", "null")] = True
    order = {k: i for i, k in enumerate(KINDS)}
    keys = sorted(found, key=lambda kt: (order[kt[0]], kt[1]))
    return [Installed(k, t, found[(k, t)]) for k, t in keys]


def _load(path: str) -> Any:
    mod, _, attr = path.partition(":")
    return getattr(importlib.import_module(mod), attr)


_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("amibake.plugins")
