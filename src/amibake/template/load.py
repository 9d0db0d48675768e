"""One way in for every verb: a template path to a :class:`~amibake.template.model.Template`.

The format is chosen by the path, as Packer does: a directory, a ``.pkr.hcl`` or a ``.pkr.json``
file is HCL2; anything else is a legacy JSON template. The loaders are imported only once the
format is known, so ``validate -syntax-only`` or ``inspect`` of a JSON template never imports the
HCL2 layer, and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amibake.template.facts import PluginFacts
    from amibake.template.model import Template

#: the file names Packer reads as HCL2 (a directory is HCL2 too)
HCL2_SUFFIXES = (".pkr.hcl", ".pkr.json")


def is_hcl2(path: Path) -> bool:
    """A directory, a ``.pkr.hcl`` or a ``.pkr.json`` file is HCL2; anything else a legacy JSON template."""
    return path.is_dir() or path.name.endswith(HCL2_SUFFIXES)


def load(
    path: Path,
    *,
    var_files: Sequence[Path] = (),
    vars: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    lenient: bool = False,
    init_time: datetime | None = None,
    datasource_resolver: Callable[[str, str, dict[str, Any]], dict[str, Any]] | None = None,
    plugins: Collection[str] | None = None,
    facts: PluginFacts | None = None,
) -> Template:
    """Load the JSON or HCL2 template at ``path`` (file or directory).

    HCL2: variables (``var_files``, ``vars``, ``env``), locals and data sources are evaluated while
    loading; see :func:`amibake.template.hcl.load_hcl` for ``lenient``, ``init_time``,
    ``datasource_resolver``, ``plugins`` and ``facts`` (the plugins' facts; default: the
    registry's). JSON: only the document is read and checked; its user variables are resolved
    afterwards against the run (``amibake.template.variables``), so the other arguments do not
    apply. Raises :class:`amibake.errors.TemplateError` with every problem.
    """
    path = Path(path)
    if is_hcl2(path):
        from amibake.template.hcl import load_hcl

        return load_hcl(
            path,
            var_files=var_files,
            vars=dict(vars or {}),
            env=env,
            datasource_resolver=datasource_resolver,
            plugins=plugins,
            lenient=lenient,
            init_time=init_time,
            facts=facts,
        )
    from amibake.template.json_loader import load_json

    return load_json(path)
