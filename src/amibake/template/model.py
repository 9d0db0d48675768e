"""The template model: what the JSON and HCL2 loaders produce, and what validate/inspect/build consume.

Both formats load into these classes. Plugin configuration stays a plain ``dict`` here (raw for
JSON, where ``{{ }}`` interpolation happens later, per build; evaluated values for HCL2, where
build-time values such as ``build.ID`` are left as the legacy ``{{ .ID }}`` strings, as Packer does);
it is decoded into a typed, strict config object per plugin type by :mod:`amibake.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from amibake.errors import Pos


class _Missing:
    """The default of a variable that has none (a required variable)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass
class Variable:
    name: str
    default: Any = MISSING  # MISSING: required
    sensitive: bool = False
    description: str | None = None
    #: HCL2 type constraint as written (``string``, ``list(string)``), None for JSON
    type: str | None = None
    pos: Pos | None = None

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass
class PluginBlock:
    """One builder (source), provisioner or post-processor as written in the template."""

    kind: Literal["builder", "provisioner", "post-processor"]
    type: str
    #: builder: its build name (JSON ``name`` defaulting to ``type``; HCL2 source label).
    #: provisioner / post-processor: the optional ``name`` (HCL2) or "".
    name: str
    config: dict[str, Any]
    pos: Pos | None = None
    #: where each top-level key of ``config`` stands, when the loader knows
    key_pos: dict[str, Pos] = field(default_factory=dict)
    #: key path prefix for messages, e.g. ``builders[0]`` or ``source.amazon-ebs.ubuntu``
    key_path: str = ""
    # provisioner and post-processor options Packer handles in its core
    only: list[str] = field(default_factory=list)
    except_: list[str] = field(default_factory=list)
    override: dict[str, dict[str, Any]] = field(default_factory=dict)
    pause_before: str | None = None
    max_retries: int = 0
    timeout: str | None = None
    keep_input_artifact: bool | None = None
    #: builder of a JSON template: its ``name`` as written, before the core renders user variables
    #: into it (Packer's ``rawName``: what provisioner ``only``/``except``/``override`` refer to);
    #: "" when the name needs no rendering
    raw_name: str = ""

    @property
    def ref_name(self) -> str:
        """The name provisioners and post-processors use to refer to this builder."""
        return self.raw_name or self.name


@dataclass
class BuildBlock:
    """A ``build`` block (HCL2). A JSON template has exactly one, named ""."""

    name: str
    sources: list[PluginBlock]
    provisioners: list[PluginBlock] = field(default_factory=list)
    #: a list of sequences; each sequence is a chain of post-processors
    post_processors: list[list[PluginBlock]] = field(default_factory=list)
    error_cleanup_provisioner: PluginBlock | None = None
    description: str | None = None
    pos: Pos | None = None


@dataclass
class Template:
    path: Path
    format: Literal["json", "hcl2"]
    #: the directory of the template file (``{{template_dir}}``, ``path.root``)
    template_dir: Path
    builds: list[BuildBlock]
    variables: dict[str, Variable] = field(default_factory=dict)
    description: str | None = None
    #: JSON ``min_packer_version`` or HCL2 ``packer { required_version }``
    min_packer_version: str | None = None
    #: the raw file contents by path, for error excerpts
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: HCL2 ``locals`` as evaluated (``inspect``); the names of the sensitive ones
    locals: dict[str, Any] = field(default_factory=dict)
    sensitive_locals: set[str] = field(default_factory=set)

    def all_sources(self) -> list[tuple[BuildBlock, PluginBlock]]:
        return [(b, s) for b in self.builds for s in b.sources]
