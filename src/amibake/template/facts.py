"""What the template layer needs to know about the plugins, handed to it as a parameter.

The template layer never names a plugin: the late keys, the build data, the template functions,
the data sources' outputs and the single blocks come in a :class:`PluginFacts`, which the core
gathers from the plugin registry (:func:`registered`, through :func:`amibake.core.template_facts`)
and passes to the loaders and to every :class:`~amibake.template.interpolate.InterpContext`. A
caller that passes none gets :func:`registered` too. This module imports neither the core nor a
plugin: only the registry, whose registrations name plugins as strings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

#: packer ``packer/provisioner.go`` ``BuilderDataCommonKeys``: the build data every builder offers
#: to ``{{ build `X` }}`` (JSON) and ``build.X`` (HCL2), whatever its type.
BUILD_DATA_COMMON_KEYS: tuple[str, ...] = (
    "ID", "Host", "Port", "User", "Password", "ConnType", "PackerRunUUID", "PackerHTTPPort",
    "PackerHTTPIP", "PackerHTTPAddr", "SSHPublicKey", "SSHPrivateKey", "WinRMPassword",
)  # fmt: skip


#: a data source the loader evaluates itself: its config -> its outputs
LocalDatasource = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class PluginFacts:
    """The plugins' facts, by plugin type (the template layer treats the types as opaque names)."""

    #: config keys each plugin renders late, by (kind, type)
    late_keys: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    #: the build data keys each builder adds to :data:`BUILD_DATA_COMMON_KEYS`, by builder type
    build_data: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: template functions plugins add (string arguments, a string result), by name
    template_funcs: Mapping[str, Callable[..., str]] = field(default_factory=dict)
    #: old function names a template may still use, with their new name (for a hint)
    renamed_funcs: Mapping[str, str] = field(default_factory=dict)
    #: every data source type and its output attributes
    datasource_outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: data sources the HCL loader evaluates itself (``config -> outputs``), in ``validate`` too
    local_datasources: Mapping[str, LocalDatasource] = field(default_factory=dict)
    #: nested blocks the plugins declare as a single block (every other one is a list of blocks)
    single_blocks: frozenset[str] = frozenset()
    #: the plugins (``required_plugins`` source names) whose components amibake implements
    plugins: frozenset[str] = frozenset()
    #: ``hcl2_upgrade``: keys the plugins' HCL2 specs declare as blocks, even for a flat JSON object
    upgrade_block_keys: frozenset[str] = frozenset()
    #: ``hcl2_upgrade``: the builder options it copies into a data source it generates, by its type
    upgrade_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def late(self, kind: str, type_name: str) -> frozenset[str]:
        """The config keys plugin ``type_name`` of ``kind`` renders late."""
        return self.late_keys.get((kind, type_name), frozenset())

    def build_data_keys(self, builder_type: str) -> tuple[str, ...]:
        """Every key ``{{ build `X` }}`` / ``build.X`` may name in a build of ``builder_type``."""
        return BUILD_DATA_COMMON_KEYS + self.build_data.get(builder_type, ())


class SpecFacts(Protocol):
    """What :func:`gather` reads of a plugin registration (:class:`amibake.registry.PluginSpec`)."""

    @property
    def kind(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def impl(self) -> str: ...

    @property
    def late_keys(self) -> frozenset[str]: ...

    @property
    def build_data_keys(self) -> tuple[str, ...]: ...

    @property
    def template_funcs(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def renamed_funcs(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def single_blocks(self) -> frozenset[str]: ...

    @property
    def plugin(self) -> str: ...

    @property
    def hcl2_block_keys(self) -> frozenset[str]: ...

    @property
    def upgrade_keys(self) -> tuple[str, ...]: ...

    @property
    def outputs(self) -> tuple[str, ...]: ...

    @property
    def local(self) -> bool: ...


def gather(specs: Iterable[SpecFacts], load: Callable[[str], Any]) -> PluginFacts:
    """The facts of the plugin registrations ``specs``; ``load`` imports a ``"module:attr"`` (the
    template functions and the local data sources' implementations)."""
    specs = list(specs)
    funcs: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    for spec in specs:
        for name, path in spec.template_funcs:
            funcs.setdefault(name, load(path))
        renamed.update(spec.renamed_funcs)
    return PluginFacts(
        late_keys={(s.kind, s.type): s.late_keys for s in specs if s.late_keys},
        build_data={s.type: s.build_data_keys for s in specs if s.kind == "builder"},
        template_funcs=funcs,
        renamed_funcs=renamed,
        datasource_outputs={s.type: s.outputs for s in specs if s.kind == "datasource"},
        local_datasources={s.type: load(s.impl) for s in specs if s.kind == "datasource" and s.local},
        single_blocks=frozenset().union(*(s.single_blocks for s in specs)),
        plugins=frozenset(s.plugin for s in specs if s.plugin),
        upgrade_block_keys=frozenset().union(*(s.hcl2_block_keys for s in specs)),
        upgrade_keys={s.type: s.upgrade_keys for s in specs if s.upgrade_keys},
    )


@functools.cache
def registered() -> PluginFacts:
    """The facts of the registered plugins (gathered once). The registry sits below every layer
    (it names plugins only as ``"module:attr"`` strings, imported on demand), so this reaches
    neither the core nor a plugin module beyond the registrations themselves."""
    from amibake import registry

    return gather(registry.specs(), registry.load_attr)
