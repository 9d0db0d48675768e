"""Packer's legacy-JSON ``{{ }}`` interpolation: the public face of the Go-template engine.

The engine (lexer, parse tree, parser, evaluator, functions, Go formatting) lives in
:mod:`amibake.template.gotemplate`; this module offers it to the rest of amibake together with
:class:`InterpContext` (what a template sees) and the amazon builders' template facts (late
fields, build data, the functions they add).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import amibake
from amibake.template.gotemplate.context import DeepInterpolationError, TemplateExecError, TemplateSyntaxError
from amibake.template.gotemplate.executor import (
    check,
    references,
    render,
    render_deep,
    render_repeat,
    user_references,
)
from amibake.template.gotemplate.functions import (
    ERR_VARIABLE_NOT_SET,
    PLACEHOLDER_MSG,
    _functions_with,
    placeholder_build_data,
)
from amibake.template.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TextNode,
    VariableNode,
    WithNode,
)
from amibake.template.gotemplate.parser import parse, validate

__all__ = [
    "AMAZON_BUILDER_FUNCS",
    "BUILD_DATA_COMMON_KEYS",
    "BUILD_DATA_FIELDS_AMAZON",
    "BUILD_DATA_GENERATED",
    "ERR_VARIABLE_NOT_SET",
    "LATE_FIELDS_AMAZON",
    "LATE_FIELDS_BY_BUILDER",
    "PLACEHOLDER_MSG",
    "ActionNode",
    "BoolNode",
    "BranchNode",
    "BreakNode",
    "ChainNode",
    "CommandNode",
    "ContinueNode",
    "DeepInterpolationError",
    "DotNode",
    "FieldNode",
    "IdentifierNode",
    "IfNode",
    "InterpContext",
    "ListNode",
    "NilNode",
    "Node",
    "NumberNode",
    "PipeNode",
    "RangeNode",
    "StringNode",
    "TemplateExecError",
    "TemplateSyntaxError",
    "TextNode",
    "VariableNode",
    "WithNode",
    "available_functions",
    "build_data_keys",
    "check",
    "complete_build_data",
    "parse",
    "placeholder_build_data",
    "references",
    "render",
    "render_deep",
    "render_repeat",
    "user_references",
    "validate",
]

# ---------------------------------------------------------------------------------------------
# Amazon builder facts
# ---------------------------------------------------------------------------------------------

#: The config keys each amazon builder leaves out of its first interpolation pass (in Prepare)
#: and renders later, at build time, with the build data (``{{ .SourceAMI }}``...). They are still
#: *parsed* in Prepare, so an unknown function in them is an error before the build starts.
#: Source: the ``InterpolateFilter: &interpolate.RenderFilter{Exclude: ...}`` list of each
#: builder's ``Prepare`` in github.com/hashicorp/packer-plugin-amazon (HEAD of 2026-07):
#: ``builder/ebs/builder.go``, ``builder/ebssurrogate/builder.go``, ``builder/ebsvolume/builder.go``,
#: ``builder/instance/builder.go``, ``builder/chroot/builder.go``. Packer 1.6.6's copies in
#: ``builder/amazon/*/builder.go`` are the same lists without ``fleet_tags``/``fleet_tag`` (keys
#: that 1.6.6 did not have at all). The filter compares keys case-insensitively.
LATE_FIELDS_BY_BUILDER: Mapping[str, frozenset[str]] = {
    "amazon-ebs": frozenset({
        "ami_description", "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags",
        "run_volume_tag", "spot_tags", "spot_tag", "snapshot_tags", "snapshot_tag", "tags", "tag",
    }),
    "amazon-ebssurrogate": frozenset({
        "ami_description", "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags",
        "run_volume_tag", "snapshot_tags", "snapshot_tag", "spot_tags", "spot_tag", "tags", "tag",
    }),
    "amazon-ebsvolume": frozenset({
        "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags", "run_volume_tag",
        "spot_tags", "spot_tag", "tags", "tag",
    }),
    "amazon-instance": frozenset({
        "ami_description", "bundle_upload_command", "bundle_vol_command", "fleet_tags", "fleet_tag",
        "run_tags", "run_volume_tags", "snapshot_tags", "tags", "spot_tags",
    }),
    "amazon-chroot": frozenset({
        "ami_description", "snapshot_tags", "snapshot_tag", "tags", "tag", "root_volume_tags",
        "root_volume_tag", "command_wrapper", "post_mount_commands", "pre_mount_commands",
        "mount_path",
    }),
}  # fmt: skip

#: Union of :data:`LATE_FIELDS_BY_BUILDER`.
LATE_FIELDS_AMAZON: frozenset[str] = frozenset().union(*LATE_FIELDS_BY_BUILDER.values())

#: The build data the amazon builders offer to late fields (``{{ .SourceAMI }}``), from
#: packer-plugin-amazon ``common/build_filter.go``/``step_source_ami_info.go`` (``BuildInfoTemplate``).
BUILD_DATA_FIELDS_AMAZON: frozenset[str] = frozenset({
    "BuildRegion", "SourceAMI", "SourceAMIName", "SourceAMIOwner", "SourceAMIOwnerName",
    "SourceAMICreationDate", "SourceAMITags",
})  # fmt: skip

#: packer ``packer/provisioner.go`` ``BuilderDataCommonKeys``: the build data every builder offers
#: to ``{{ build `X` }}`` (JSON) and ``build.X`` (HCL2), whatever its type.
BUILD_DATA_COMMON_KEYS: tuple[str, ...] = (
    "ID", "Host", "Port", "User", "Password", "ConnType", "PackerRunUUID", "PackerHTTPPort",
    "PackerHTTPIP", "PackerHTTPAddr", "SSHPublicKey", "SSHPrivateKey", "WinRMPassword",
)  # fmt: skip

#: The keys each builder adds (its ``Prepare``'s generated-data list): packer-plugin-amazon
#: ``common/interpolate_build_info.go`` ``GetGeneratedDataList`` for every amazon builder,
#: plus ``Device`` and ``MountPath`` for amazon-chroot (``builder/chroot/builder.go``). Not
#: ``SourceAMITags``: a map, offered only to the builder's own late fields (``{{ .SourceAMITags.X }}``),
#: never to ``build``. The null builder adds none.
_AMAZON_GENERATED = (
    "SourceAMIName", "BuildRegion", "SourceAMI", "SourceAMICreationDate", "SourceAMIOwner",
    "SourceAMIOwnerName",
)  # fmt: skip
BUILD_DATA_GENERATED: Mapping[str, tuple[str, ...]] = {
    "amazon-ebs": _AMAZON_GENERATED,
    "amazon-ebssurrogate": _AMAZON_GENERATED,
    "amazon-ebsvolume": _AMAZON_GENERATED,
    "amazon-instance": _AMAZON_GENERATED,
    "amazon-chroot": (*_AMAZON_GENERATED, "Device", "MountPath"),
    "null": (),
}


def build_data_keys(builder_type: str) -> tuple[str, ...]:
    """Every key ``{{ build `X` }}`` / ``build.X`` may name in a build of ``builder_type``."""
    return BUILD_DATA_COMMON_KEYS + BUILD_DATA_GENERATED.get(builder_type, ())


def complete_build_data(builder_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every key of :func:`build_data_keys` the builder did not supply set to Go's
    ``<no value>``: what Packer's two passes give (``{{ build `Host` }}`` becomes ``{{.Host}}`` in
    Prepare, then renders against the build's data, where a missing key prints ``<no value>``)."""
    out: dict[str, Any] = {k: "<no value>" for k in build_data_keys(builder_type)}
    out.update(data)
    return out


#: Functions the amazon builders add to their interpolation context
#: (packer-plugin-amazon ``common/template_funcs.go``: ``TemplateFuncs``). Not available in
#: provisioner or post-processor configs. ``clean_ami_name``, its name before Packer 1.5, is
#: rejected by Packer 1.6.6 and by current Packer alike (``function "clean_ami_name" not
#: defined``), and so it is here.
AMAZON_BUILDER_FUNCS: frozenset[str] = frozenset({"clean_resource_name"})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class InterpContext:
    """Everything a template string may refer to when it is rendered."""

    #: ``{{user `x`}}``. An unknown name renders as "" (Packer's ``funcGenUser``), except when
    #: ``allow_env`` is set (the variables section) where it is "Error: variable not set: x".
    user_vars: Mapping[str, str] = field(default_factory=dict)
    #: ``{{env `X`}}`` (and the secret stores) are only allowed in variable defaults.
    allow_env: bool = False
    #: the environment for ``env``; None: ``os.environ``
    env: Mapping[str, str] | None = None
    build_name: str | None = None
    build_type: str | None = None
    #: absolute directory of the template (``{{template_dir}}``)
    template_dir: str | None = None
    #: the run's start (Packer's ``interpolate.InitTime``, UTC): what ``{{timestamp}}``, ``isotime``
    #: and ``strftime`` show. The run owns this clock (``RunContext.init_time``, read once per
    #: command) and hands it to every context it makes; the default is only for a lone context.
    init_time: datetime = field(default_factory=_now)
    packer_version: str = amibake.PACKER_COMPAT_VERSION
    #: ``.Field`` values: a mapping (missing keys render ``<no value>`` as in Go) or an object
    #: whose attributes are the fields (a missing one is an error, as for a Go struct)
    data: Any = None
    #: True: an action that uses a ``.Field`` missing from ``data`` (or ``build`` while
    #: ``build_fn_data`` is None) is left verbatim, for a later pass with the build data
    keep_unknown_fields: bool = False
    #: ``{{ build `ID` }}`` values; None: not available (Packer's error, or verbatim with
    #: ``keep_unknown_fields``)
    build_fn_data: Mapping[str, Any] | None = None
    #: functions a plugin adds (the amazon builders: ``clean_resource_name``); pass
    #: ``frozenset()`` for provisioner and post-processor configs
    extra_funcs: frozenset[str] = AMAZON_BUILDER_FUNCS
    #: where ``aws_secretsmanager`` records each value it read (the run redacts them); None: nowhere
    secrets_out: list[str] | None = None

    @property
    def timestamp(self) -> int:
        """``{{timestamp}}``: the run's start as Unix seconds."""
        return int(self.init_time.timestamp())

    def with_time(self, when: datetime) -> InterpContext:
        """A copy whose timestamp/isotime/strftime all use ``when``."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return replace(self, init_time=when)

    def functions(self) -> frozenset[str]:
        return available_functions(self.extra_funcs)


def available_functions(extra: Collection[str] = AMAZON_BUILDER_FUNCS) -> frozenset[str]:
    """Names usable in a template: Go's builtins, Packer's functions and the plugin's ``extra``."""
    return _functions_with(frozenset(extra))
