"""Packer's legacy-JSON ``{{ }}`` interpolation: the public face of the Go-template engine.

The engine (lexer, parse tree, parser, evaluator, functions, Go formatting) lives in
:mod:`amibake.template.gotemplate`; this module offers it to the rest of amibake together with
:class:`InterpContext` (what a template sees). The plugins' facts (the functions they add, the
build data they offer) come from the core in a :class:`~amibake.template.facts.PluginFacts`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import amibake
from amibake.template import facts
from amibake.template.facts import BUILD_DATA_COMMON_KEYS
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
    "BUILD_DATA_COMMON_KEYS",
    "ERR_VARIABLE_NOT_SET",
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

def complete_build_data(keys: Collection[str], data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every key of ``keys`` (the build's :meth:`PluginFacts.build_data_keys`) the
    builder did not supply set to Go's ``<no value>``: what Packer's two passes give (``{{ build
    `Host` }}`` becomes ``{{.Host}}`` in Prepare, then renders against the build's data, where a
    missing key prints ``<no value>``)."""
    out: dict[str, Any] = {k: "<no value>" for k in keys}
    out.update(data)
    return out


def _plugin_funcs() -> Mapping[str, Callable[..., str]]:
    return facts.registered().template_funcs


def _renamed_funcs() -> Mapping[str, str]:
    return facts.registered().renamed_funcs


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
    #: functions plugins add, by name (the core passes the registry's; default: the same); ``{}``
    #: for Packer's core context
    extra_funcs: Mapping[str, Callable[..., str]] = field(default_factory=_plugin_funcs)
    #: old function names, with their new name, for a hint in the "not defined" error
    renamed_funcs: Mapping[str, str] = field(default_factory=_renamed_funcs)
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


def available_functions(extra: Collection[str] | None = None) -> frozenset[str]:
    """Names usable in a template: Go's builtins, Packer's functions and the plugins' ``extra``
    (default: the registered plugins' functions)."""
    return _functions_with(frozenset(_plugin_funcs() if extra is None else extra))
