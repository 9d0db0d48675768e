"""The HCL loader's ``source`` and ``build`` blocks: builders, provisioners and post-processors.

Each source used by a build becomes its own :class:`BuildBlock` (one source each), because
provisioners and post-processors are evaluated per source (``source.name`` differs); those skipped
by ``only``/``except`` for that source are left out, as Packer leaves them out. Build-time values
(``build.ID``, ``build.SourceAMIName``...) in provisioners and post-processors evaluate to the legacy
``"{{ .ID }}"`` strings, rendered late by the builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from amibake.errors import Pos
from amibake.template.hcl import ast as A
from amibake.template.hcl.base import IDENT, File, Recorder
from amibake.template.hcl.scope import Scope
from amibake.template.hcl.values import UNKNOWN, to_plain
from amibake.template.meta import HCL2_PROVISIONER_META, POST_PROCESSOR_META
from amibake.template.model import BuildBlock, PluginBlock

_PROVISIONER_META = HCL2_PROVISIONER_META
_POST_PROCESSOR_META = POST_PROCESSOR_META

#: a provisioner or post-processor block and the scope it is evaluated in (a dynamic block's iterator)
_Scoped = tuple[A.Block, Mapping[str, Any]]


@dataclass
class Source:
    """A top-level ``source "TYPE" "NAME"`` block."""

    type: str
    name: str
    block: A.Block
    file: File


@dataclass
class Usage:
    """A build's use of a source: by reference in ``sources``, or a ``source`` block that may add
    arguments and rename it (``name``)."""

    ref: tuple[str, str]
    local_name: str
    body: A.Body | None
    file: File | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def name(self) -> str:
        return self.local_name or self.ref[1]

    def __str__(self) -> str:
        return f"{self.ref[0]}.{self.name()}"


@dataclass
class _BuildParts:
    """A build block's nested blocks, sorted by kind."""

    provisioners: list[_Scoped] = field(default_factory=list)
    cleanup: A.Block | None = None
    post_processors: list[list[_Scoped]] = field(default_factory=list)


@dataclass
class Builds:
    """``source`` and ``build`` blocks; :meth:`load_builds` makes the template's builds."""

    rec: Recorder
    scope: Scope
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)
    builds: list[tuple[A.Block, File]] = field(default_factory=list)

    def top_source(self, b: A.Block, f: File) -> None:
        ref = (b.labels[0], b.labels[1])
        if ref in self.sources:
            prev = self.sources[ref]
            self.rec.problem(
                f'Duplicate source block: source "{ref[0]}" "{ref[1]}" is already defined at '
                f"{prev.file.name}:{prev.block.line}",
                f,
                b.line,
                b.col,
            )
            return
        self.sources[ref] = Source(ref[0], ref[1], b, f)

    def top_build(self, b: A.Block, f: File) -> None:
        self.builds.append((b, f))

    # --- build blocks ------------------------------------------------------------------------

    def load_builds(self) -> list[BuildBlock]:
        out: list[BuildBlock] = []
        for b, f in self.builds:
            out.extend(self.load_build(b, f))
        return out

    def load_build(self, b: A.Block, f: File) -> list[BuildBlock]:
        """One :class:`BuildBlock` per source the build uses."""
        bname, desc = self._build_header(b, f)
        key = f"build.{bname}" if bname else "build"
        usages = self._source_refs(b, f, key)
        parts = self._build_parts(b, f, key, usages)
        if not usages:
            self.rec.problem(
                "missing source reference: a build block must reference at least one source to be built",
                f,
                b.line,
                b.col,
                key,
            )
        out: list[BuildBlock] = []
        for u in usages:
            src = self.sources.get(u.ref)
            if src is None and self.rec.lenient:
                src = Source(u.ref[0], u.ref[1], A.Block(u.ref[0], list(u.ref), A.Body(), b.line, b.col), f)
            if src is None:
                known = ", ".join(f"{t}.{n}" for t, n in sorted(self.sources)) or "none"
                self.rec.problem(
                    f"Unknown source {u.ref[0]}.{u.ref[1]}: known sources: {known}",
                    f,
                    b.line,
                    b.col,
                    f"{key}.sources",
                )
                continue
            out.append(self.load_usage(bname, desc, b, f, u, src, parts))
        return out

    def _build_header(self, b: A.Block, f: File) -> tuple[str, str | None]:
        """The build's ``name`` ("" when none) and ``description``."""
        attrs = b.body.attributes
        bname, desc = "", None
        for a in attrs.values():
            if a.name not in ("name", "description", "sources"):
                self.rec.problem(
                    f'Unsupported argument: "{a.name}" is not expected in a build block',
                    f,
                    a.line,
                    a.col,
                    "build",
                )
        if "name" in attrs:
            v = self.rec.eval(attrs["name"].expr, f, self.scope.vars, "build.name")
            bname = v if isinstance(v, str) else ""
        if "description" in attrs:
            v = self.rec.eval(attrs["description"].expr, f, self.scope.vars, "build.description")
            desc = v if isinstance(v, str) else None
        return bname, desc

    def _source_refs(self, b: A.Block, f: File, key: str) -> list[Usage]:
        """The sources the build's ``sources`` argument names."""
        if "sources" not in b.body.attributes:
            return []
        a = b.body.attributes["sources"]
        refs = self.rec.eval(a.expr, f, self.scope.vars, f"{key}.sources")
        if refs is not UNKNOWN and (not isinstance(refs, list) or not all(isinstance(r, str) for r in refs)):
            self.rec.problem(
                'sources must be a list of source references like "source.amazon-ebs.NAME"',
                f,
                a.line,
                a.col,
                f"{key}.sources",
            )
            return []
        usages: list[Usage] = []
        if isinstance(refs, list):
            for r in refs:
                ref = source_ref(r)
                if ref is None:
                    self.rec.problem(
                        f'Invalid source reference "{r}": a valid source reference looks like '
                        "source.TYPE.NAME",
                        f,
                        a.line,
                        a.col,
                        f"{key}.sources",
                    )
                    continue
                usages.append(Usage(ref, "", None, None))
        return usages

    def _build_parts(self, b: A.Block, f: File, key: str, usages: list[Usage]) -> _BuildParts:
        """Sort the build's nested blocks; its ``source`` blocks are added to ``usages``."""
        parts = _BuildParts()
        for blk, extra in self.scope.expand_blocks(b.body, f, self.scope.vars, key):
            if blk.type == "source":
                usage = self._source_block(blk, f, extra, key)
                if usage is not None:
                    usages.append(usage)
            elif blk.type == "provisioner" and len(blk.labels) == 1:
                parts.provisioners.append((blk, extra))
            elif blk.type == "error-cleanup-provisioner" and len(blk.labels) == 1:
                if parts.cleanup is not None:
                    self.rec.problem(
                        "Only one error-cleanup-provisioner is allowed", f, blk.line, blk.col, key
                    )
                parts.cleanup = blk
            elif blk.type == "post-processor" and len(blk.labels) == 1:
                parts.post_processors.append([(blk, extra)])
            elif blk.type == "post-processors" and not blk.labels:
                parts.post_processors.append(self._post_processor_chain(blk, f, extra, key))
            elif blk.type == "hcp_packer_registry" and not blk.labels:
                self.rec.warnings.append(
                    f"{f.name}:{blk.line}: hcp_packer_registry is accepted but ignored: amibake "
                    "does not publish to HCP Packer"
                )
            else:
                self.rec.problem(
                    f'Unsupported block type: "{blk.type}" with {len(blk.labels)} label(s) is not '
                    "expected in a build block",
                    f,
                    blk.line,
                    blk.col,
                    key,
                )
        return parts

    def _source_block(self, blk: A.Block, f: File, extra: Mapping[str, Any], key: str) -> Usage | None:
        """A ``source "TYPE.NAME"`` block inside a build."""
        ref = source_ref(blk.labels[0]) if len(blk.labels) == 1 else None
        if ref is None:
            self.rec.problem(
                'a source block inside build takes one label "TYPE.NAME"', f, blk.line, blk.col, key
            )
            return None
        local = ""
        if "name" in blk.body.attributes:
            v = self.rec.eval(blk.body.attributes["name"].expr, f, extra, f"{key}.source.name")
            local = v if isinstance(v, str) else ""
        return Usage(ref, local, blk.body, f, {k: v for k, v in extra.items() if k not in self.scope.vars})

    def _post_processor_chain(
        self, blk: A.Block, f: File, extra: Mapping[str, Any], key: str
    ) -> list[_Scoped]:
        """A ``post-processors`` block: its ``post-processor`` blocks, run in sequence."""
        seq = []
        for inner, iextra in self.scope.expand_blocks(blk.body, f, extra, key):
            if inner.type != "post-processor" or len(inner.labels) != 1:
                self.rec.problem(
                    f'Unsupported block type "{inner.type}" in post-processors: expected '
                    'post-processor "TYPE" blocks',
                    f,
                    inner.line,
                    inner.col,
                    key,
                )
                continue
            seq.append((inner, iextra))
        for a in blk.body.attributes.values():
            self.rec.problem(f'Unsupported argument "{a.name}" in post-processors', f, a.line, a.col, key)
        return seq

    # --- one build of one source -------------------------------------------------------------

    def load_usage(
        self, bname: str, desc: str | None, b: A.Block, f: File, u: Usage, src: Source, parts: _BuildParts
    ) -> BuildBlock:
        """The build of one source: its builder, and the provisioners and post-processors it runs."""
        svars = dict(self.scope.vars)
        svars.update(u.extra)
        svars["source"] = {"type": u.ref[0], "name": u.name()}
        builder = self._builder(bname, u, src, svars)
        bvars = dict(svars)
        # Packer's BuilderDataCommonKeys and this builder's generated data; each becomes the legacy
        # {{ .Key }} the plugin renders with the build's data (a missing one: "<no value>")
        keys = self.scope.facts.build_data_keys(src.type)
        build_obj: dict[str, Any] = {k: "{{ ." + k + " }}" for k in keys}
        build_obj["name"] = bname
        bvars["build"] = build_obj
        provisioners = self._plugins(parts.provisioners, f, bvars, "provisioner", u)
        cleanup_block = self.plugin(parts.cleanup, f, bvars, "provisioner", u) if parts.cleanup else None
        pps: list[list[PluginBlock]] = []
        for seq in parts.post_processors:
            chain = self._plugins(seq, f, bvars, "post-processor", u)
            if chain:
                pps.append(chain)
        return BuildBlock(
            name=bname,
            sources=[builder],
            provisioners=provisioners,
            post_processors=pps,
            error_cleanup_provisioner=cleanup_block,
            description=desc,
            pos=Pos(f.name, b.line, b.col),
        )

    def _builder(self, bname: str, u: Usage, src: Source, svars: Mapping[str, Any]) -> PluginBlock:
        """The source's config, with the arguments the build's ``source`` block adds."""
        key = f"source.{src.type}.{src.name}"
        config, kpos = self.scope.decode_body(src.block.body, src.file, svars, key)
        if u.body is not None and u.file is not None:
            more, mpos = self.scope.decode_body(u.body, u.file, svars, key, skip=("name",))
            for k, v in more.items():
                if k in config and not isinstance(v, list):
                    p = mpos[k]
                    self.rec.problem(
                        f'Duplicate argument: "{k}" is already set in source "{src.type}" "{src.name}" '
                        f"at {kpos[k]}; a build's source block may only add arguments",
                        p.file,
                        p.line,
                        p.column,
                        f"{key}.{k}",
                    )
                    continue
                if k in config and isinstance(v, list) and isinstance(config[k], list):
                    config[k] = config[k] + v
                else:
                    config[k] = v
                    kpos[k] = mpos[k]
        return PluginBlock(
            kind="builder",
            type=src.type,
            name=f"{bname}.{u}" if bname else str(u),
            config=to_plain(config),
            pos=Pos(src.file.name, src.block.line, src.block.col),
            key_pos=kpos,
            key_path=key,
        )

    def _plugins(
        self,
        blocks: list[_Scoped],
        f: File,
        bvars: Mapping[str, Any],
        kind: Literal["provisioner", "post-processor"],
        u: Usage,
    ) -> list[PluginBlock]:
        """The provisioners (or post-processors) of ``blocks`` that run for this source."""
        out: list[PluginBlock] = []
        for blk, extra in blocks:
            pvars = dict(bvars)
            pvars.update({k: v for k, v in extra.items() if k not in self.scope.vars})
            pb = self.plugin(blk, f, pvars, kind, u)
            if pb is not None:
                out.append(pb)
        return out

    def plugin(
        self,
        blk: A.Block,
        f: File,
        variables: Mapping[str, Any],
        kind: Literal["provisioner", "post-processor"],
        u: Usage,
    ) -> PluginBlock | None:
        """A provisioner or post-processor; None when ``only``/``except`` skip it for this source."""
        ptype = blk.labels[0]
        key = f"{kind} {ptype!r}"
        attrs = blk.body.attributes
        meta_names = _PROVISIONER_META if kind == "provisioner" else _POST_PROCESSOR_META
        meta: dict[str, Any] = {}
        for m in meta_names:
            if m in attrs:
                meta[m] = self.rec.eval(attrs[m].expr, f, variables, f"{key}.{m}")
        only = self.str_list(meta.get("only"), attrs.get("only"), f, f"{key}.only")
        except_ = self.str_list(meta.get("except"), attrs.get("except"), f, f"{key}.except")
        if only and except_:
            self.rec.problem("only one of only or except may be set", f, blk.line, blk.col, key)
        target = str(u)
        if not self.rec.lenient and ((only and target not in only) or (except_ and target in except_)):
            return None
        config, kpos = self.scope.decode_body(blk.body, f, variables, key, skip=meta_names)
        pb = PluginBlock(
            kind=kind,
            type=ptype,
            name=str(meta["name"]) if isinstance(meta.get("name"), str) else "",
            config=to_plain(config),
            pos=Pos(f.name, blk.line, blk.col),
            key_pos=kpos,
            key_path=key,
            only=only,
            except_=except_,
        )
        self._apply_meta(pb, meta, attrs, f, key)
        return pb

    def _apply_meta(
        self, pb: PluginBlock, meta: Mapping[str, Any], attrs: Mapping[str, A.Attribute], f: File, key: str
    ) -> None:
        """Check and set the plugin's ``pause_before``, ``timeout``, ``max_retries``, ``override`` and
        ``keep_input_artifact``."""
        for dname in ("pause_before", "timeout"):
            v = meta.get(dname)
            if v is None or v is UNKNOWN:
                continue
            if not isinstance(v, str) or not _valid_duration(v):
                a = attrs[dname]
                self.rec.problem(
                    f'Failed to parse {dname} duration: "{v}" is not a duration like "30s" or "5m"',
                    f,
                    a.line,
                    a.col,
                    f"{key}.{dname}",
                )
                continue
            setattr(pb, dname, v)
        if "max_retries" in meta and meta["max_retries"] is not UNKNOWN:
            v = meta["max_retries"]
            if isinstance(v, str) and v.isdigit():
                v = int(v)
            if not isinstance(v, int) or isinstance(v, bool):
                a = attrs["max_retries"]
                self.rec.problem("max_retries must be a whole number", f, a.line, a.col, f"{key}.max_retries")
            else:
                pb.max_retries = v
        if "override" in meta and meta["override"] not in (None, UNKNOWN):
            ov = meta["override"]
            if not isinstance(ov, dict) or not all(isinstance(x, dict) for x in ov.values()):
                a = attrs["override"]
                self.rec.problem(
                    f"{pb.kind}'s override must be an object of objects keyed by source name",
                    f,
                    a.line,
                    a.col,
                    f"{key}.override",
                )
            else:
                pb.override = to_plain(ov)
        if "keep_input_artifact" in meta and isinstance(meta["keep_input_artifact"], bool):
            pb.keep_input_artifact = meta["keep_input_artifact"]

    def str_list(self, v: Any, attr: A.Attribute | None, f: File, key: str) -> list[str]:
        if v is None or v is UNKNOWN or attr is None:
            return []
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return list(v)
        self.rec.problem('expected a list of strings like ["amazon-ebs.NAME"]', f, attr.line, attr.col, key)
        return []


def source_ref(s: str) -> tuple[str, str] | None:
    """``source.TYPE.NAME`` (or ``TYPE.NAME``) as (TYPE, NAME); None if it is not one."""
    parts = s.split(".")
    if len(parts) < 2:
        return None
    if len(parts) > 2:
        parts = parts[1:]
    t, n = parts[0], parts[1]
    if not IDENT.match(t) or not IDENT.match(n):
        return None
    return t, n


def _valid_duration(s: str) -> bool:
    from amibake.config.durations import DurationError, parse_duration

    try:
        parse_duration(s.strip())
    except DurationError:
        return False
    return True
