"""The ``amibake`` executable: through a running ``amibake server`` when there is one, else in-process.

Imports nothing heavy before it knows which: see :mod:`amibake.server`.
"""

from __future__ import annotations

import sys


def main() -> None:
    from amibake.server.client import run_through_server

    rc = run_through_server(sys.argv[1:])
    if rc is not None:
        sys.stdout.flush()
        raise SystemExit(rc)
    from amibake.cli.main import main as cli_main

    cli_main()
