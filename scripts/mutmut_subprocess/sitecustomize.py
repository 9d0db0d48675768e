"""Imported at start-up by every Python process of a ``scripts/mutation`` run (this directory is on its
``PYTHONPATH``): in mutmut's stats run, a test's subprocess reports the mutated functions it calls to
the directory the pytest plugin ``mutmut_subprocess_hits`` (beside this file, which explains both
halves) named for the test. Does nothing otherwise; imports nothing but ``os`` then."""

from __future__ import annotations

import os

HITS_DIR = "AMIBAKE_MUTMUT_HITS_DIR"
SUFFIX = ".hits"


def stats_run() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


def install() -> None:
    """Replace mutmut's hit recorder with one that writes to this test's directory (stats run only)."""
    directory = os.environ.get(HITS_DIR)
    if not directory or not stats_run():
        return
    try:
        from mutmut.mutation import trampoline
    except ImportError:  # mutmut not importable: no trampoline can call a recorder either
        return
    path = os.path.join(directory, f"{os.getpid()}{SUFFIX}")
    seen: set[tuple[str, str | None]] = set()

    def record(name: str, caller: str | None = None) -> None:
        if (name, caller) in seen:
            return
        seen.add((name, caller))
        line = f"{name}\t{caller or ''}\n".encode()
        try:  # one short O_APPEND write per new pair: whole lines, even from forked children
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:  # the test is over (its directory removed): nothing to report to
            pass

    # the trampoline looks the recorder up in its module at each call (mutmut 3.8.1)
    trampoline.record_trampoline_hit = record  # type: ignore[attr-defined]


install()
