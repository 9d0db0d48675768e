"""``-checks FILE``: the checks amibake runs on a fresh instance of a new image before it is distributed.

An amibake extension, kept out of the template so that every template stays a valid Packer
template. The file is JSON (for JSON and HCL2 templates alike)::

    {
      "checks": [
        {"type": "shell", "inline": ["systemctl is-enabled ssh", "test -s /etc/motd"]},
        {"type": "shell", "script": "checks/smoke.sh", "only": ["amazon-ebs.web"]}
      ],
      "junit_report": "/var/tmp/checks/junit.xml",
      "junit_dir": "check-reports"
    }

``checks`` holds provisioners, written exactly as in a JSON template's ``provisioners`` (with
``only``, ``except``, ``override``, ``pause_before``, ``max_retries``, ``timeout``); every
provisioner type amibake runs can check. ``junit_report``: a JUnit XML file the checks write on
the instance; it is fetched after the checks (passed or failed) into ``junit_dir`` (default
``check-reports``, relative to the working directory) as ``<build name>.xml``, and a report with
failures or errors fails the checks even when every command exited 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amibake.errors import Pos, Problem, TemplateError
from amibake.template.json_loader import _Loader, _type_name
from amibake.template.jsonpos import PosList, loads, read_source
from amibake.template.model import PluginBlock

#: the keys of a checks file
KEYS = ("checks", "junit_report", "junit_dir")
DEFAULT_JUNIT_DIR = "check-reports"


@dataclass
class Checks:
    """A loaded checks file."""

    path: Path
    #: the checks, as provisioner blocks (key paths ``checks[i]``, positions in the checks file)
    blocks: list[PluginBlock] = field(default_factory=list)
    #: the JUnit XML file the checks leave on the instance ("" when there is none to fetch)
    junit_report: str = ""
    #: where the fetched reports go, one ``<build name>.xml`` per build
    junit_dir: str = DEFAULT_JUNIT_DIR
    #: the file's text, for error excerpts
    sources: dict[str, str] = field(default_factory=dict)


def load_checks(path: Path) -> Checks:
    """Read and check a checks file; raises :class:`TemplateError` naming the file, line and key."""
    file = str(path)
    try:
        text = read_source(path)
    except FileNotFoundError:
        raise TemplateError([Problem(f"checks file not found: {path}")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise TemplateError([Problem(f"cannot read checks file: {e}", pos=Pos(file))]) from None
    raw, problems = loads(file, text)
    if raw is None and problems:
        raise TemplateError(problems)
    if not isinstance(raw, dict):
        raise TemplateError([Problem(f"a checks file must be a JSON object, not {_type_name(raw)}",
                                     pos=Pos(file, 1, 1))])
    loader = _Loader(path, text)
    loader.problems += problems
    out = Checks(path=path, sources={file: text})
    for key in raw:
        if key not in KEYS and not key.startswith("_"):
            loader.problem(f"unknown key in a checks file: '{key}' (known: {', '.join(KEYS)})", key,
                           loader.key_pos(raw, key))
    items = raw.get("checks")
    if not isinstance(items, list) or not items:
        loader.problem("'checks' must be a non-empty list of provisioners", "checks",
                       loader.key_pos(raw, "checks") if "checks" in raw else Pos(file, 1, 1))
        items = []
    for i, item in enumerate(items):
        pos = items.item_pos[i] if isinstance(items, PosList) and i < len(items.item_pos) else None
        block = loader.provisioner(item, f"checks[{i}]", pos)
        if block is not None:
            out.blocks.append(block)
    for key in ("junit_report", "junit_dir"):
        if key in raw:
            value: Any = raw[key]
            if not isinstance(value, str) or not value.strip():
                loader.problem(f"expected a non-empty string, got {_type_name(value)}", key,
                               loader.key_pos(raw, key))
            else:
                setattr(out, key, value)
    if loader.problems:
        raise TemplateError(loader.problems)
    return out
