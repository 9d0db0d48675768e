"""The process belongs to the CLI (issue #11): the library raises and returns.

No module of ``src/amibake`` outside the CLI (``cli/``, ``launcher.py``, ``__main__.py``) and the
server (``server/``, which forks and serves processes) installs signal handlers, leaves the process
(``os._exit``, ``sys.exit``, ``raise SystemExit``) or sets up logging (``logging.basicConfig``,
``logging.config``, a handler added to any logger). Read from the syntax tree, with import aliases
resolved (``import signal as _signal``, ``from os import _exit``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "amibake"

#: where the process is owned
OWNERS = ("cli/", "server/", "launcher.py", "__main__.py")

#: calls that act on the whole process
FORBIDDEN = {
    "signal.signal": "installs a signal handler",
    "os._exit": "exits the process",
    "sys.exit": "exits the process",
    "logging.basicConfig": "configures global logging",
    "logging.config.dictConfig": "configures global logging",
    "logging.config.fileConfig": "configures global logging",
}

#: (module path relative to src/amibake, dotted call) -> why that call is the library's to make.
#: Empty: localexec's process groups use os.killpg / start_new_session, cleanup waits with
#: signal.pthread_sigmask/sigtimedwait; none of them installs a handler or exits.
ALLOWED: dict[tuple[str, str], str] = {}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it stands for, from every import of the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    names[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(expr: ast.expr, aliases: dict[str, str]) -> str | None:
    if isinstance(expr, ast.Name):
        return aliases.get(expr.id, expr.id)
    if isinstance(expr, ast.Attribute):
        base = _dotted(expr.value, aliases)
        return f"{base}.{expr.attr}" if base else None
    return None


def violations(source: str, filename: str = "<module>") -> list[tuple[int, str, str]]:
    """Every process-owning act in ``source``: (line, the call, what it does)."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func, aliases)
            if name in FORBIDDEN:
                found.append((node.lineno, name, FORBIDDEN[name]))
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "addHandler":
                found.append((node.lineno, "addHandler", "adds a handler to a logger"))
        elif isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if _dotted(exc, aliases) in ("SystemExit", "builtins.SystemExit"):
                found.append((node.lineno, "SystemExit", "exits the process"))
    return sorted(found)


def _library_modules() -> list[Path]:
    return sorted(
        p for p in SRC.rglob("*.py")
        if not p.relative_to(SRC).as_posix().startswith(OWNERS)
    )


def test_the_library_never_owns_the_process() -> None:
    problems = []
    for path in _library_modules():
        rel = path.relative_to(SRC).as_posix()
        for line, call, why in violations(path.read_text(encoding="utf-8"), rel):
            if (rel, call) not in ALLOWED:
                problems.append(f"src/amibake/{rel}:{line}: {call} ({why})")
    assert not problems, "the library acts on the process; move this to amibake.cli:\n" + "\n".join(problems)


def test_the_scan_covers_the_library() -> None:
    rels = {p.relative_to(SRC).as_posix() for p in _library_modules()}
    assert {"build.py", "core.py", "localexec.py", "plugins/amazon/cleanup.py"} <= rels
    assert not any(r.startswith(("cli/", "server/")) for r in rels)


@pytest.mark.parametrize(
    "source",
    [
        "import signal\nsignal.signal(signal.SIGINT, h)\n",
        "import signal as _s\n_s.signal(2, h)\n",
        "from signal import signal\nsignal(2, h)\n",
        "import os\nos._exit(1)\n",
        "from os import _exit as bye\nbye(1)\n",
        "import sys\ndef f():\n    sys.exit(1)\n",
        "import logging\nlogging.basicConfig(level=10)\n",
        "import logging.config\nlogging.config.dictConfig({})\n",
        "import logging\nlogging.getLogger().addHandler(h)\n",
        "import logging\nlog = logging.getLogger('amibake')\nlog.addHandler(h)\n",
        "raise SystemExit(2)\n",
        "raise SystemExit\n",
    ],
)
def test_the_scan_finds_each_kind(source: str) -> None:
    assert violations(source)


@pytest.mark.parametrize(
    "source",
    [
        "import os, signal\nos.killpg(pgid, signal.SIGTERM)\n",
        "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCONT})\n",
        "import logging\nlog = logging.getLogger(__name__)\nlog.debug('x')\n",
        "import subprocess\nsubprocess.Popen(['true'], start_new_session=True)\n",
    ],
)
def test_the_scan_lets_the_library_be(source: str) -> None:
    assert violations(source) == []
