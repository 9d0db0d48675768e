"""The ``datasource_resolver`` given to the HCL2 loader: decodes, checks and (when asked) executes.

Packer configures every data source whenever it loads a template (strict config: unknown keys
with a did-you-mean, required options) and executes them for ``build`` (and for ``validate
-evaluate-datasources``); ``validate`` otherwise leaves their outputs unknown. ``null`` is run by
the loader itself. Sensitive outputs (a Secrets Manager secret, a decrypted SecureString) are
collected in :attr:`DatasourceRunner.secrets` for the run's redactor.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake import registry
from amibake.datasources.errors import DatasourceError
from amibake.errors import Problem, UserInputError

if TYPE_CHECKING:
    from amibake.config.base import PluginConfig
    from amibake.registry import PluginSpec

#: what an unknown value becomes in a config (the HCL loader's placeholder)
UNKNOWN = "<unknown>"


def execute_http(cfg: Any) -> tuple[dict[str, Any], list[str]]:
    """``http``: (outputs, no sensitive values)."""
    from amibake.datasources.http import http

    return http(cfg), []


def null_output(config: Mapping[str, Any]) -> dict[str, Any]:
    """Packer's ``null`` data source: its ``input``, as ``output`` (evaluated by the HCL loader, in
    ``validate`` too)."""
    return {"output": config.get("input")}


def executed_spec(typ: str) -> PluginSpec | None:
    """The registry's spec of a data source this runner configures and executes (not ``null``)."""
    spec = registry.lookup("datasource", typ)
    return None if spec is None or spec.local else spec


class DatasourceConfigError(UserInputError):
    """A data source's configuration is invalid (every problem)."""


class DatasourceRunner:
    """Call as ``runner(type, name, config) -> outputs``. ``execute=False``: check only."""

    def __init__(self, *, execute: bool, template_dir: Path | None = None,
                 replay: Mapping[tuple[str, str], tuple[dict[str, Any], list[str]]] | None = None) -> None:
        self.execute = execute
        #: outputs of an earlier load of the same template, by (type, name): given back without
        #: executing again (the content fingerprint's second rendering makes no calls)
        self.replay = replay or {}
        #: (values, sensitive values) of each data source executed, by (type, name)
        self.outputs: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
        self.template_dir = template_dir or Path(".")
        #: sensitive output values seen so far (to register with the run's redactor)
        self.secrets: list[str] = []
        #: ``type.name`` of every data source executed, in order
        self.executed: list[str] = []

    def __call__(self, typ: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
        from amibake.config.base import CheckContext, decode

        spec = executed_spec(typ)
        if spec is None:
            return {}
        config_cls = spec.config_class()
        raw = config if self.execute else _without_unknown(config_cls, config)
        ctx = CheckContext(template_dir=self.template_dir, key_path="", check_files=False)
        cfg, problems, _warnings = decode(config_cls, raw, ctx)
        if problems or cfg is None:
            raise DatasourceConfigError(problems or [Problem("invalid configuration")])
        if not self.execute:
            return {}
        if (typ, name) in self.replay:
            values, secrets = self.replay[(typ, name)]
        else:
            values, secrets = spec.impl_class()(cfg)
            self.executed.append(f"{typ}.{name}")
        self.outputs[(typ, name)] = (values, list(secrets))
        for s in secrets:
            if s and s not in self.secrets:
                self.secrets.append(s)
        return values


def _without_unknown(cls: type[PluginConfig], config: Mapping[str, Any]) -> dict[str, Any]:
    """Packer configures a data source with unknown inputs replaced by a placeholder *of the
    option's type* (``"<unknown>"`` for a string, ``false``, ``0``...): an unknown non-string
    option keeps its default here instead of failing the type check (a list gets one placeholder)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        field = cls.model_fields.get(k)
        if field is not None and field.annotation is not str and v == UNKNOWN:
            if typing.get_origin(field.annotation) is list:
                out[k] = [UNKNOWN]
            continue
        out[k] = v
    return out


__all__ = ["DatasourceConfigError", "DatasourceError", "DatasourceRunner", "executed_spec"]
