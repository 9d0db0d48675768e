"""Counts, in mutmut's "stats" run, the functions that a test reaches in a subprocess.

Used only by ``scripts/mutation`` (never by the normal suite): the script puts this directory on the
``PYTHONPATH`` of the mutation run and ``scripts/mutation.cfg`` loads this module as a pytest plugin
(``-p mutmut_subprocess_hits``).

mutmut 3.8.1 maps each mutated function to the tests that call it by running the selected tests once
with ``MUTANT_UNDER_TEST=stats``: every trampoline then calls
``mutmut.mutation.trampoline.record_trampoline_hit``, which adds the function's name to
``state()._stats``, and mutmut's own pytest plugin (``StatsCollector.pytest_runtest_teardown``) moves
that set into ``state().tests_by_mangled_function_name[function]`` for the current test. A subprocess
(``amibake build`` started by a stack test) inherits ``MUTANT_UNDER_TEST=stats`` and records its hits
too, but in its own memory, which is lost when it exits; its functions count as "no tests".

The bridge has two halves:

* in the pytest process (this module as a plugin), during the stats run only: each test gets an
  empty directory, named in ``AMIBAKE_MUTMUT_HITS_DIR`` in ``os.environ`` while the test runs (setup,
  call and teardown), so the subprocesses it starts inherit it; after the test's teardown the plugin
  adds the functions listed there to the same mapping mutmut fills
  (``tests_by_mangled_function_name``, and the callers to ``function_dependencies``), under the test's
  name as mutmut writes it;
* in every Python process of the run, ``sitecustomize.py`` beside this file runs its ``install()``:
  when both ``MUTANT_UNDER_TEST=stats`` and ``AMIBAKE_MUTMUT_HITS_DIR`` are set, it replaces the
  trampoline's recorder with one that appends each new (function, caller) pair to
  ``<dir>/<pid>.hits`` at once (so a subprocess killed with SIGKILL keeps what it reported).

The replacement recorder also keeps such a subprocess alive: mutmut's own reads mutmut's configuration
from the working directory, and in one without ``setup.cfg`` or ``src/`` (a test's ``tmp_path``, as
the chroot builds use) it raises ``FileNotFoundError`` ("Could not figure out where the code to mutate
is"), so ``amibake`` failed with an internal error there during the stats run.

Outside the stats run both halves do nothing, and a mutant's run is unchanged: the subprocess runs the
active mutant anyway (``PYTHONPATH`` names the mutated sources and ``MUTANT_UNDER_TEST`` is inherited).
Limits: a subprocess started with an environment of its own (without these variables, or without
``PYTHONPATH``) is not counted, as it does not run the mutant either; hits a process reports after its
test ended are dropped (the directory is gone); mutmut's ``max_stack_depth`` (unset here) is not applied
to subprocess hits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest
from sitecustomize import HITS_DIR, SUFFIX, stats_run


def _attribute(nodeid: str, directory: Path) -> int:
    """Add the functions the test's subprocesses hit to mutmut's mapping; how many names were read."""
    from mutmut.configuration import config
    from mutmut.state import state
    from mutmut.utils.format_utils import strip_prefix

    test = strip_prefix(nodeid, prefix="mutants/")  # as mutmut's StatsCollector names it
    names = 0
    for hits in sorted(directory.glob(f"*{SUFFIX}")):
        for line in hits.read_text(encoding="utf-8", errors="replace").splitlines():
            name, tab, caller = line.partition("\t")
            if not name or not tab:  # a line cut short
                continue
            state().tests_by_mangled_function_name[name].add(test)
            if caller and config().track_dependencies:
                state().function_dependencies[name].add(caller)
            names += 1
    return names


class SubprocessHits:
    """The pytest plugin: a hits directory per test during the stats run, read after its teardown."""

    def __init__(self) -> None:
        self.root: Path | None = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        if not stats_run():
            yield
            return
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="amibake-mutmut-hits-"))
        directory = Path(tempfile.mkdtemp(dir=self.root))
        before = os.environ.get(HITS_DIR)
        os.environ[HITS_DIR] = str(directory)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(HITS_DIR, None)
            else:
                os.environ[HITS_DIR] = before
            try:
                _attribute(item.nodeid, directory)
            finally:
                shutil.rmtree(directory, ignore_errors=True)

    def pytest_unconfigure(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SubprocessHits(), "amibake-mutmut-subprocess-hits")
