"""Plugins register here under their Packer type names (``amazon-ebs``, ``shell``, ``manifest``).

A registration names the plugin's typed config class and its implementation as ``"module:attr"``
(imported lazily: ``validate`` must not pay for boto3, asyncssh or the validators of plugins the
template does not name). Registrations live in :mod:`amibake.plugins`, one line per plugin.

A spec also carries the plugin's facts the template layer needs (the keys it renders late, the
build data it offers, the template functions it adds, a data source's outputs, the nested blocks
its HCL2 spec declares single). :func:`amibake.template.facts.registered` gathers them; the core
passes them to the template layer, which never names a plugin itself. Data sources register here
too.
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
    #: config keys the plugin leaves out of the first interpolation pass and renders itself, later,
    #: with data only known then (``{{ .SourceAMI }}``, ``{{ .Vars }}``); they are still parsed
    late_keys: frozenset[str] = frozenset()
    #: builders only: the build data keys the builder adds to Packer's common ones (``build.X``)
    build_data_keys: tuple[str, ...] = ()
    #: builders only: template functions the builder adds, ``(name, "module:function")``; the
    #: function takes string arguments and returns a string (loaded when a template needs them)
    template_funcs: tuple[tuple[str, str], ...] = ()
    #: functions a template may still call by an old name: ``(old, new)``, for a hint in the error
    renamed_funcs: tuple[tuple[str, str], ...] = ()
    #: nested blocks the plugin's HCL2 spec declares as a single block (decoded to one object)
    single_blocks: frozenset[str] = frozenset()
    #: the Packer plugin (``required_plugins`` source name) the type belongs to, "" for Packer's core
    plugin: str = ""
    #: keys the plugin's HCL2 spec declares as (repeatable) blocks even when their JSON value is a
    #: flat object (``hcl2_upgrade`` writes them as blocks)
    hcl2_block_keys: frozenset[str] = frozenset()
    #: data sources only: the builder options ``hcl2_upgrade`` copies into a block of this type it
    #: generates (from a builder's ``source_ami_filter``)
    upgrade_keys: tuple[str, ...] = ()
    #: data sources only: the output attributes (unknown while ``validate`` does not execute it)
    outputs: tuple[str, ...] = ()
    #: data sources only: True when the HCL loader evaluates it itself, in ``validate`` too (a pure
    #: function of its config); ``impl`` is then ``"module:function"`` of ``config -> outputs``
    local: bool = False
    #: builders only: ``"module:function"`` making the cleaner of what the builder's runs leave in
    #: the cloud (``amibake cleanup``), called as ``function(region, state_dir, echo)``; builders
    #: whose resources one cleaner finds (every amazon builder) name the same function
    cleanup: str = ""
    #: builders only: ``"module:function"`` running ``amibake prune`` over the images the builder
    #: family's runs make, called as ``function(console, **options)`` (the verb's options) and
    #: returning the exit status; shared by the family, as ``cleanup``
    prune: str = ""
    #: builders only: True when the builder runs ``-checks FILE`` on a fresh instance of its new
    #: image before distributing it (amibake's test-before-distribute); False: such checks are refused
    checks: bool = False

    @property
    def runnable(self) -> bool:
        """Whether ``build`` can carry this type out; False: amibake only validates its config."""
        return bool(self.impl)

    def config_class(self) -> Any:
        return _load(self.config) if self.config else None

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


def specs() -> list[PluginSpec]:
    """Every registered spec, in registration order."""
    _ensure_loaded()
    return list(_REGISTRY.values())


def known(kind: Kind) -> list[str]:
    _ensure_loaded()
    return sorted(t for k, t in _REGISTRY if k == kind)


def cleaners() -> list[str]:
    """The distinct ``cleanup`` functions of the registered builders, in registration order."""
    _ensure_loaded()
    return list(dict.fromkeys(spec.cleanup for spec in _REGISTRY.values() if spec.cleanup))


def pruners() -> list[str]:
    """The distinct ``prune`` functions of the registered builders, in registration order."""
    _ensure_loaded()
    return list(dict.fromkeys(spec.prune for spec in _REGISTRY.values() if spec.prune))


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

    A spec without an implementation is validate-only.
    """
    _ensure_loaded()
    found = {(k, t): spec.runnable for (k, t), spec in _REGISTRY.items()}
    order = {k: i for i, k in enumerate(KINDS)}
    keys = sorted(found, key=lambda kt: (order[kt[0]], kt[1]))
    return [Installed(k, t, found[(k, t)]) for k, t in keys]


def load_attr(path: str) -> Any:
    """The attribute ``attr`` of module ``module`` named by ``"module:attr"`` (imported now)."""
    return _load(path)


def _load(path: str) -> Any:
    mod, _, attr = path.partition(":")
    return getattr(importlib.import_module(mod), attr)


_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("amibake.plugins")
