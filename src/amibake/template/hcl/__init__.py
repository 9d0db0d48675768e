"""HCL2 Packer templates (``*.pkr.hcl``): parser, evaluator, Packer's functions and the loader."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amibake.template.facts import PluginFacts
    from amibake.template.model import Template


def load_hcl(
    path: Path,
    *,
    var_files: Sequence[Path] = (),
    vars: Mapping[str, str] = {},
    env: Mapping[str, str] | None = None,
    datasource_resolver: Callable[[str, str, dict[str, Any]], dict[str, Any]] | None = None,
    plugins: Collection[str] | None = None,
    lenient: bool = False,
    init_time: datetime | None = None,
    facts: PluginFacts | None = None,
) -> Template:
    """Load a ``.pkr.hcl``/``.pkr.json`` file or a directory of them into a :class:`Template`.

    ``datasource_resolver(type, name, config) -> outputs`` executes data sources (those of
    ``facts.datasource_outputs`` but the local ones); without one their outputs are unknown
    and end up as ``"<unknown>"`` in plugin configs, as in ``packer validate``. ``facts``: the
    plugins' facts (default: the registry's, as :func:`amibake.core.template_facts` gathers them).
    ``plugins``: plugin names satisfying ``required_plugins`` (default: the facts'). ``lenient``
    (``inspect``): unset variables are unknown and sources a build names but nobody defines are listed.
    ``init_time``: the run's clock (``timestamp()``, ``legacy_isotime``), read once per command.
    Raises :class:`amibake.errors.TemplateError` with every problem found.
    """
    from amibake import PACKER_COMPAT_VERSION
    from amibake.template.hcl.loader import load

    version = PACKER_COMPAT_VERSION
    return load(
        Path(path), var_files, vars, env, datasource_resolver, plugins, version, lenient, init_time=init_time,
        facts=facts,
    )


def evaluate_expression(
    text: str, variables: Mapping[str, Any] | None = None, basedir: Path | None = None
) -> Any:
    """Evaluate one HCL expression with Packer's functions (``packer console``-style).

    Raises :class:`amibake.errors.InterpolationError` (an ``HclError``) and nothing else.
    """
    from amibake.template.hcl.evaluator import Context, evaluate
    from amibake.template.hcl.functions import make_functions
    from amibake.template.hcl.parser import parse_expression

    funcs = make_functions(basedir or Path("."))
    node = parse_expression(text)
    return evaluate(node, Context(dict(variables or {}), funcs, "<expression>", text))


__all__ = ["evaluate_expression", "load_hcl"]
