"""What amibake accepts, it carries out: every option of every plugin amibake implements is either
proven by a test that observes its effect, or refused by name (``PluginConfig.unsupported``).

A test proves options with ``@pytest.mark.effect("kind/type", "option", ...)`` (or a module-level
``pytestmark``). The markers are read from the test files' syntax trees, so no test runs here.
Options are the top-level keys of a plugin's config; a nested block is one option, unless some of
its keys are listed in ``unsupported`` (``assume_role.policy``): then each of its keys is one.

The README's section "Options amibake refuses" must list exactly the ``unsupported`` entries.

``scripts/option-gaps`` (``python -m tests.unit.test_option_effects``) prints the gaps per plugin;
``--readme`` prints the README table.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from amibake import registry
from amibake.config.base import PluginConfig, _find_model, unsupported_options

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SRC = ROOT / "src" / "amibake"
README = ROOT / "README.md"
KINDS: tuple[registry.Kind, ...] = ("builder", "provisioner", "post-processor", "datasource")
README_SECTION = "## Options amibake refuses"


def implemented_plugins() -> dict[str, type[PluginConfig]]:
    """``kind/type`` -> config class, for every plugin amibake carries out (data sources too)."""
    out: dict[str, type[PluginConfig]] = {}
    for kind in KINDS:
        for name in registry.known(kind):
            spec = registry.lookup(kind, name)
            if spec is not None and spec.impl and spec.config:
                out[f"{kind}/{name}"] = spec.config_class()
    return dict(sorted(out.items()))


def _key_of(name: str, info: Any) -> str:
    return str(info.alias or name)


def plugin_options(cls: type[PluginConfig]) -> list[str]:
    """The options of ``cls``: top-level keys, and ``block.key`` for the keys of a nested block some
    of whose keys are listed in ``unsupported``."""
    refused = unsupported_options(cls)
    out: list[str] = []
    for name, info in cls.model_fields.items():
        key = _key_of(name, info)
        nested = _find_model(info.annotation)
        if nested is not None and any(r.startswith(f"{key}.") for r in refused):
            out += [f"{key}.{_key_of(n, i)}" for n, i in nested.model_fields.items()]
        else:
            out.append(key)
    return sorted(out)


@dataclass(frozen=True)
class Marker:
    plugin: str
    options: tuple[str, ...]
    where: str  # file:line


def _is_effect(node: ast.expr) -> bool:
    """``pytest.mark.effect(...)`` or ``mark.effect(...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "effect"
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "mark"
    )


def _marker(node: ast.Call, where: str) -> Marker:
    args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
    if not args or any(a is None for a in args):
        return Marker("", (), f"{where}: effect() takes string literals only")
    return Marker(str(args[0]), tuple(str(a) for a in args[1:]), where)


def _marks_in(expr: ast.expr) -> Iterator[ast.Call]:
    items = expr.elts if isinstance(expr, ast.List | ast.Tuple) else [expr]
    for item in items:
        if _is_effect(item):
            assert isinstance(item, ast.Call)
            yield item


CORPUS_FILES = TESTS / "corpus" / "templates"


def collect_markers(root: Path = TESTS) -> list[Marker]:
    """Every ``effect`` marker of the test tree: decorators of functions and classes, and
    ``pytestmark`` assignments of modules and classes."""
    found: list[Marker] = []
    for path in sorted(root.rglob("*.py")):
        if CORPUS_FILES in path.parents:
            continue  # upstream files of the corpus (017 brings a Python 2 script), not tests
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            calls: list[ast.Call] = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                for dec in node.decorator_list:
                    calls += _marks_in(dec)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
            ):
                calls += _marks_in(node.value)
            found += [_marker(c, f"{rel}:{c.lineno}") for c in calls]
    return found


def proven_options(markers: list[Marker]) -> dict[str, dict[str, list[str]]]:
    """plugin -> option -> where it is proven."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for m in markers:
        for opt in m.options:
            out[m.plugin][opt].append(m.where)
    return out


#: Options the build carries out (read by the implementation, checked below) whose effect no marked
#: test observes yet: a debt, written down so that it can only shrink. An option leaves this list when
#: a test proves it (then the list must drop it) or when it is refused; a new option may never join it.
OWED: dict[str, frozenset[str]] = {
    "builder/amazon-ebs": frozenset(),
}


def gaps(plugin: str, cls: type[PluginConfig], proven: dict[str, dict[str, list[str]]]) -> list[str]:
    """Options of ``plugin`` neither proven nor refused."""
    refused = unsupported_options(cls)
    owed = OWED.get(plugin, frozenset())
    return [o for o in plugin_options(cls)
            if o not in proven.get(plugin, {}) and o not in refused and o not in owed]


# --- where options are read ---------------------------------------------------------------------


def _config_modules(plugins: dict[str, type[PluginConfig]]) -> set[str]:
    mods = set()
    for cls in plugins.values():
        for klass in cls.__mro__:
            if isinstance(klass, type) and issubclass(klass, BaseModel):
                mods.add(klass.__module__)
    return {m for m in mods if m.startswith("amibake.")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def names_read(plugins: dict[str, type[PluginConfig]]) -> set[str]:
    """Attribute names and string constants used in ``src/amibake``: everywhere outside the config
    modules, and in the config modules only inside functions (checks, as Packer's ``Prepare``: file's
    ``generated`` has its effect there; and the methods that turn a config into what the
    implementation takes), never in field declarations or ``unsupported`` lists."""
    config_modules = _config_modules(plugins) | {"amibake.config.base", "amibake.config.weak"}
    out: set[str] = set()

    def scan(tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                out.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.add(node.value)

    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if _module_name(path) not in config_modules:
            scan(tree)
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                scan(node)
    return out


# --- the README ---------------------------------------------------------------------------------


def refused_rows(plugins: dict[str, type[PluginConfig]]) -> list[tuple[str, str, str]]:
    return [
        (plugin, key, reason)
        for plugin, cls in plugins.items()
        for key, reason in sorted(unsupported_options(cls).items())
    ]


def readme_rows(text: str) -> list[tuple[str, str, str]]:
    """The ``| plugin | option | reason |`` rows of the README's section."""
    start = text.find(README_SECTION)
    if start < 0:
        return []
    end = text.find("\n## ", start + len(README_SECTION))
    rows = []
    for line in text[start : end if end >= 0 else None].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or set(cells[0]) <= {"-", ":"} or cells[0] == "plugin":
            continue
        rows.append((cells[0].strip("`"), cells[1].strip("`"), cells[2]))
    return rows


def readme_table(plugins: dict[str, type[PluginConfig]]) -> str:
    lines = ["| plugin | option | reason |", "|---|---|---|"]
    lines += [f"| `{p}` | `{k}` | {r} |" for p, k, r in refused_rows(plugins)]
    return "\n".join(lines)


# --- the tests ----------------------------------------------------------------------------------

PLUGINS = implemented_plugins()
MARKERS = collect_markers()
PROVEN = proven_options(MARKERS)


@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_every_option_is_proven_or_refused(plugin: str) -> None:
    missing = gaps(plugin, PLUGINS[plugin], PROVEN)
    assert not missing, (
        f"{plugin}: {len(missing)} option(s) neither proven by a test marked "
        f'@pytest.mark.effect("{plugin}", ...) nor listed in its config\'s `unsupported`: '
        + ", ".join(missing)
    )


@pytest.mark.parametrize("plugin", list(OWED))
def test_owed_options_are_still_owed_and_carried_out(plugin: str) -> None:
    """OWED only shrinks: an owed option that a test now proves, or that is refused, leaves it; and
    every owed option is read by the implementation (carried out, only its effect test is missing)."""
    cls = PLUGINS[plugin]
    settled = sorted(o for o in OWED[plugin]
                     if o in PROVEN.get(plugin, {}) or o in unsupported_options(cls))
    assert not settled, f"{plugin}: remove from OWED (now proven or refused): {', '.join(settled)}"
    unknown = sorted(OWED[plugin] - set(plugin_options(cls)))
    assert not unknown, f"{plugin}: OWED names no option: {', '.join(unknown)}"
    read = names_read(PLUGINS)
    unread = sorted(o for o in OWED[plugin] if o not in read)
    assert not unread, f"{plugin}: owed options the implementation never reads: {', '.join(unread)}"


@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_no_option_is_both_proven_and_refused(plugin: str) -> None:
    both = sorted(set(PROVEN.get(plugin, {})) & set(unsupported_options(PLUGINS[plugin])))
    assert not both, f"{plugin}: proven by a test and listed in `unsupported`: " + ", ".join(
        f"{o} ({', '.join(PROVEN[plugin][o])})" for o in both
    )


@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_refused_keys_are_options(plugin: str) -> None:
    cls = PLUGINS[plugin]
    known = set(plugin_options(cls))
    bad = [k for k in unsupported_options(cls) if k not in known]
    assert not bad, f"{plugin}: `unsupported` names keys the config does not declare: {', '.join(bad)}"


def test_markers_name_known_plugins_and_options() -> None:
    bad = []
    for m in MARKERS:
        if m.plugin not in PLUGINS:
            bad.append(f"{m.where}: unknown plugin {m.plugin!r} (known: kind/type of an implemented plugin)")
            continue
        if not m.options:
            bad.append(f"{m.where}: effect({m.plugin!r}) names no option")
        known = set(plugin_options(PLUGINS[m.plugin]))
        bad += [f"{m.where}: {m.plugin} has no option {o!r}" for o in m.options if o not in known]
    assert not bad, "\n".join(bad)


def test_proven_options_are_read_by_the_implementation() -> None:
    read = names_read(PLUGINS)
    dead = [
        f"{plugin} {opt} ({', '.join(where)})"
        for plugin, options in sorted(PROVEN.items())
        for opt, where in sorted(options.items())
        if plugin in PLUGINS and opt.rsplit(".", 1)[-1] not in read
    ]
    header = "proven options that src/amibake never reads (outside the config modules):\n"
    assert not dead, header + "\n".join(dead)


@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_readme_lists_what_is_refused(plugin: str) -> None:
    code = {r for r in refused_rows(PLUGINS) if r[0] == plugin}
    readme = {r for r in readme_rows(README.read_text(encoding="utf-8")) if r[0] == plugin}
    missing = sorted(code - readme)
    extra = sorted(readme - code)
    assert not (missing or extra), (
        f'README section "{README_SECTION[3:]}" disagrees with {plugin}\'s `unsupported`:\n'
        + "".join(f"  missing row: | `{p}` | `{k}` | {r} |\n" for p, k, r in missing)
        + "".join(f"  row not in the code: | `{p}` | `{k}` | {r} |\n" for p, k, r in extra)
        + "(scripts/option-gaps --readme prints the whole table)"
    )


def test_readme_rows_name_implemented_plugins() -> None:
    rows = readme_rows(README.read_text(encoding="utf-8"))
    assert rows, f'README has no "{README_SECTION[3:]}" table'
    assert not [r for r in rows if r[0] not in PLUGINS]


def test_the_meta_test_sees_markers_of_both_shapes(tmp_path: Path) -> None:
    """Decorators and module-level ``pytestmark`` lists are both read; other marks are not."""
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "pytestmark = [pytest.mark.stack, pytest.mark.effect('provisioner/shell', 'env')]\n"
        "@pytest.mark.parametrize('x', [1])\n"
        "@pytest.mark.effect('post-processor/manifest', 'output', 'strip_time')\n"
        "def test_a(x): pass\n"
    )
    got = {(m.plugin, m.options) for m in collect_markers(tmp_path)}
    assert got == {("provisioner/shell", ("env",)), ("post-processor/manifest", ("output", "strip_time"))}


def main(argv: list[str]) -> int:
    if "--readme" in argv:
        print(readme_table(PLUGINS))
        return 0
    total = 0
    for plugin, cls in PLUGINS.items():
        missing = gaps(plugin, cls, PROVEN)
        proven = len(PROVEN.get(plugin, {}))
        refused = len(unsupported_options(cls))
        owed = len(OWED.get(plugin, ()))
        print(f"{plugin}: {len(plugin_options(cls))} options, {proven} proven, {refused} refused, "
              f"{owed} owed an effect test, {len(missing)} gaps")
        for opt in missing:
            print(f"    {opt}")
        total += len(missing)
    print(f"{total} gaps")
    return 1 if total else 0


if __name__ == "__main__":
    importlib.import_module("amibake.plugins")
    sys.exit(main(sys.argv[1:]))
