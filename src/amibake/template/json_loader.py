"""Legacy JSON templates, with Packer's rules (``template/parse.go`` and ``Template.Validate``).

Loading only gives the template its structure: interpolation happens per build, later
(:mod:`amibake.core`). Every problem found is gathered into one :class:`TemplateError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amibake.errors import Pos, Problem, TemplateError
from amibake.template.jsonpos import PosDict, PosList, loads, read_source
from amibake.template.meta import POST_PROCESSOR_META, PROVISIONER_META
from amibake.template.model import MISSING, BuildBlock, PluginBlock, Template, Variable

ROOT_KEYS = frozenset(
    {
        "description",
        "min_packer_version",
        "variables",
        "sensitive-variables",
        "builders",
        "provisioners",
        "post-processors",
        "error-cleanup-provisioner",
        "push",
    }
)
#: keys Packer's core consumes; the plugin never sees them
BUILDER_CORE_KEYS = ("type", "name")
PROVISIONER_CORE_KEYS = ("type", *PROVISIONER_META)
POST_PROCESSOR_CORE_KEYS = ("type", *POST_PROCESSOR_META)


def weak_string(value: Any) -> str | None:
    """A variable value decoded the way Packer's weak decoder turns JSON into a string."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, str):
        return value
    return None


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


class _Loader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.file = str(path)
        self.text = text
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def problem(self, message: str, key: str | None, pos: Pos | None) -> None:
        self.problems.append(Problem(message, key=key, pos=pos))

    def key_pos(self, obj: Any, key: str) -> Pos | None:
        if isinstance(obj, PosDict):
            return obj.key_pos.get(key, obj.pos)
        return None

    def item_pos(self, arr: Any, i: int) -> Pos | None:
        if isinstance(arr, PosList) and i < len(arr.item_pos):
            return arr.item_pos[i]
        return None

    def load(self) -> Template:
        raw, problems = loads(self.file, self.text)
        self.problems += problems
        if raw is None and problems:
            raise TemplateError(self.problems)
        if not isinstance(raw, dict):
            raise TemplateError(
                [
                    Problem(
                        f"a template must be a JSON object, not {_type_name(raw)}", pos=Pos(self.file, 1, 1)
                    )
                ]
            )
        template = Template(
            path=self.path,
            format="json",
            template_dir=self.path.parent.resolve(),
            builds=[],
            sources={self.file: self.text},
        )
        for key in raw:
            if key in ROOT_KEYS:
                continue
            if key.startswith("_"):
                if not isinstance(raw[key], str):
                    self.problem(
                        "a root-level comment key must have a string value", key, self.key_pos(raw, key)
                    )
                continue
            self.problem(f"Unknown root level key in template: '{key}'", key, self.key_pos(raw, key))
        if "push" in raw:
            template.warnings.append("the 'push' section is ignored (Atlas push was removed from Packer)")

        for key in ("description", "min_packer_version"):
            if key in raw:
                if isinstance(raw[key], str):
                    setattr(template, key, raw[key])
                else:
                    self.problem(
                        f"expected a string, got {_type_name(raw[key])}", key, self.key_pos(raw, key)
                    )

        template.variables = self.variables(raw)
        template.warnings += self.warnings
        build = BuildBlock(name="", sources=self.builders(raw))
        build.provisioners = self.provisioners(raw)
        build.post_processors = self.post_processors(raw)
        if "error-cleanup-provisioner" in raw:
            p = self.provisioner(
                raw["error-cleanup-provisioner"],
                "error-cleanup-provisioner",
                self.key_pos(raw, "error-cleanup-provisioner"),
            )
            build.error_cleanup_provisioner = p
        template.builds = [build]
        self.validate_references(template)
        if self.problems:
            raise TemplateError(self.problems)
        return template

    # -- sections -------------------------------------------------------------------------------

    def variables(self, raw: dict[str, Any]) -> dict[str, Variable]:
        out: dict[str, Variable] = {}
        rv = raw.get("variables", {})
        if rv is None:
            rv = {}
        if not isinstance(rv, dict):
            self.problem(
                f"expected an object of variables, got {_type_name(rv)}",
                "variables",
                self.key_pos(raw, "variables"),
            )
            rv = {}
        sensitive = raw.get("sensitive-variables", [])
        if sensitive is None:
            sensitive = []
        if not isinstance(sensitive, list) or not all(isinstance(s, str) for s in sensitive):
            self.problem(
                "expected a list of variable names",
                "sensitive-variables",
                self.key_pos(raw, "sensitive-variables"),
            )
            sensitive = []
        for name, value in rv.items():
            pos = self.key_pos(rv, name)
            if value is None:
                out[name] = Variable(name=name, default=MISSING, pos=pos)
                continue
            s = weak_string(value)
            if s is None:
                self.problem(
                    f"variable {name}: expected a string (or number or boolean) default, got "
                    f"{_type_name(value)}",
                    f"variables.{name}",
                    pos,
                )
                continue
            out[name] = Variable(name=name, default=s, pos=pos)
        for i, name in enumerate(sensitive):
            if name in out:
                out[name].sensitive = True
            else:
                # Packer ignores such a name; say so rather than fail
                pos = self.item_pos(raw.get("sensitive-variables"), i)
                self.warnings.append(
                    f'{pos or self.file}: sensitive-variables[{i}]: "{name}" is not declared in "variables"; '
                    "ignored"
                )
        return out

    def _list(self, raw: dict[str, Any], key: str) -> list[Any]:
        value = raw.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"expected a list, got {_type_name(value)}", key, self.key_pos(raw, key))
            return []
        return value

    def _str_list(self, obj: dict[str, Any], key: str, path: str) -> list[str]:
        value = obj.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        self.problem("expected a list of build names", f"{path}.{key}", self.key_pos(obj, key))
        return []

    def builders(self, raw: dict[str, Any]) -> list[PluginBlock]:
        out: list[PluginBlock] = []
        seen: dict[str, int] = {}
        items = self._list(raw, "builders")
        if "builders" in raw and not items and isinstance(raw.get("builders"), list):
            pass
        for i, b in enumerate(items):
            path = f"builders[{i}]"
            pos = self.item_pos(raw.get("builders"), i)
            if not isinstance(b, dict):
                self.problem(f"builder {i + 1}: expected an object, got {_type_name(b)}", path, pos)
                continue
            btype = b.get("type")
            if not isinstance(btype, str) or not btype:
                self.problem(f"builder {i + 1}: missing 'type'", path, pos)
                continue
            name = b.get("name", "")
            if not isinstance(name, str):
                self.problem(
                    f"builder {i + 1}: 'name' must be a string", f"{path}.name", self.key_pos(b, "name")
                )
                continue
            name = name or btype
            if name in seen:
                self.problem(
                    f"builder {i + 1}: builder with name '{name}' already exists",
                    f"{path}.name",
                    self.key_pos(b, "name") or pos,
                )
                continue
            seen[name] = i
            config = {k: v for k, v in b.items() if k not in BUILDER_CORE_KEYS}
            out.append(
                PluginBlock(
                    kind="builder",
                    type=btype,
                    name=name,
                    config=config,
                    pos=pos,
                    key_pos=dict(b.key_pos) if isinstance(b, PosDict) else {},
                    key_path=path,
                )
            )
        return out

    def provisioner(self, p: Any, path: str, pos: Pos | None) -> PluginBlock | None:
        if not isinstance(p, dict):
            self.problem(f"expected an object, got {_type_name(p)}", path, pos)
            return None
        ptype = p.get("type")
        if not isinstance(ptype, str) or not ptype:
            self.problem("missing 'type'", path, pos)
            return None
        block = PluginBlock(
            kind="provisioner",
            type=ptype,
            name=p.get("name", "") if isinstance(p.get("name", ""), str) else "",
            config={k: v for k, v in p.items() if k not in PROVISIONER_CORE_KEYS},
            pos=pos,
            key_pos=dict(p.key_pos) if isinstance(p, PosDict) else {},
            key_path=path,
        )
        block.only = self._str_list(p, "only", path)
        block.except_ = self._str_list(p, "except", path)
        override = p.get("override", {})
        if not isinstance(override, dict) or not all(isinstance(v, dict) for v in override.values()):
            self.problem(
                "expected an object mapping build names to objects",
                f"{path}.override",
                self.key_pos(p, "override"),
            )
        else:
            block.override = {k: dict(v) for k, v in override.items()}
        for key in ("pause_before", "timeout"):
            if key in p:
                v = p[key]
                if isinstance(v, str):
                    setattr(block, key, v)
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    # Packer decodes a bare number as nanoseconds
                    setattr(block, key, f"{v}ns")
                else:
                    self.problem(
                        f'expected a duration such as "30s", got {_type_name(v)}',
                        f"{path}.{key}",
                        self.key_pos(p, key),
                    )
        if "max_retries" in p:
            v = p["max_retries"]
            try:
                if isinstance(v, bool):
                    raise ValueError
                block.max_retries = int(v)
            except (TypeError, ValueError):
                self.problem(
                    f"expected an integer, got {v!r}", f"{path}.max_retries", self.key_pos(p, "max_retries")
                )
        return block

    def provisioners(self, raw: dict[str, Any]) -> list[PluginBlock]:
        out = []
        for i, p in enumerate(self._list(raw, "provisioners")):
            block = self.provisioner(p, f"provisioners[{i}]", self.item_pos(raw.get("provisioners"), i))
            if block is not None:
                out.append(block)
        return out

    def post_processor(self, pp: Any, path: str, pos: Pos | None) -> PluginBlock | None:
        if isinstance(pp, str):
            return PluginBlock(kind="post-processor", type=pp, name=pp, config={}, pos=pos, key_path=path)
        if not isinstance(pp, dict):
            self.problem("unknown format: expected a type name or an object", path, pos)
            return None
        ptype = pp.get("type")
        if not isinstance(ptype, str) or not ptype:
            self.problem("type is required", path, pos)
            return None
        name = pp.get("name", "")
        block = PluginBlock(
            kind="post-processor",
            type=ptype,
            name=name if isinstance(name, str) and name else ptype,
            config={k: v for k, v in pp.items() if k not in POST_PROCESSOR_CORE_KEYS},
            pos=pos,
            key_pos=dict(pp.key_pos) if isinstance(pp, PosDict) else {},
            key_path=path,
        )
        block.only = self._str_list(pp, "only", path)
        block.except_ = self._str_list(pp, "except", path)
        if "keep_input_artifact" in pp:
            v = pp["keep_input_artifact"]
            if isinstance(v, bool):
                block.keep_input_artifact = v
            elif isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
                block.keep_input_artifact = v.lower() in ("true", "1")
            else:
                self.problem(
                    f"expected a boolean, got {v!r}",
                    f"{path}.keep_input_artifact",
                    self.key_pos(pp, "keep_input_artifact"),
                )
        return block

    def post_processors(self, raw: dict[str, Any]) -> list[list[PluginBlock]]:
        out: list[list[PluginBlock]] = []
        items = self._list(raw, "post-processors")
        for i, pp in enumerate(items):
            path = f"post-processors[{i}]"
            pos = self.item_pos(raw.get("post-processors"), i)
            if isinstance(pp, list):
                seq = []
                for j, inner in enumerate(pp):
                    ipath = f"{path}[{j}]"
                    ipos = self.item_pos(pp, j) or pos
                    if isinstance(inner, list):
                        self.problem(
                            f"post-processor {i + 1}.{j + 1}: "
                            "sequence not allowed to be nested in a sequence",
                            ipath,
                            ipos,
                        )
                        continue
                    block = self.post_processor(inner, ipath, ipos)
                    if block is not None:
                        seq.append(block)
                if seq:
                    out.append(seq)
            else:
                block = self.post_processor(pp, path, pos)
                if block is not None:
                    out.append([block])
        return out

    # -- cross references (Packer's Template.Validate) -----------------------------------------

    def validate_references(self, template: Template) -> None:
        build = template.builds[0]
        names = [b.name for b in build.sources]
        if not names and not self.problems:
            self.problem("at least one builder must be defined", "builders", Pos(self.file))
        blocks: list[PluginBlock] = list(build.provisioners)
        if build.error_cleanup_provisioner:
            blocks.append(build.error_cleanup_provisioner)
        blocks += [pp for seq in build.post_processors for pp in seq]
        for block in blocks:
            for key, refs in (("only", block.only), ("except", block.except_)):
                for n in refs:
                    if n not in names:
                        self.problem(
                            f"{key} specified builder '{n}' not found; known builders: {', '.join(names)}",
                            f"{block.key_path}.{key}",
                            block.key_pos.get(key, block.pos),
                        )
            for n in block.override:
                if n not in names:
                    self.problem(
                        f"override specified builder '{n}' not found; known builders: {', '.join(names)}",
                        f"{block.key_path}.override.{n}",
                        block.key_pos.get("override", block.pos),
                    )


def load_json(path: Path) -> Template:
    try:
        text = read_source(path)  # a regular file only: /dev/zero never ends
    except FileNotFoundError:
        raise TemplateError([Problem(f"template file not found: {path}")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise TemplateError([Problem(f"cannot read template: {e}", pos=Pos(str(path)))]) from None
    return _Loader(path, text).load()
