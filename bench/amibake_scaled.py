"""Run amibake with every time constant of its AWS polling multiplied by AMIBAKE_BENCH_TIME_SCALE.

Used by the emulated-AWS benchmark (``bench/realistic.py``) only. At scale ``s`` the benchmark
shortens AWS's transitions by ``s`` and sets AWS_POLL_DELAY_SECONDS to ``15 * s`` for both tools.
For Packer 1.6.6 that scales its whole waiter schedule (a fixed delay: the first poll at once, then
one every AWS_POLL_DELAY_SECONDS). amibake's schedule has two more constants that are absolute
seconds and would otherwise stay at their scale-1 values: the first sleep between polls
(``Polling.first_delay``, 0.5 s, doubling up to the delay) and the snapshot-progress reports of a
long AMI wait (``PROGRESS_AFTER`` / ``PROGRESS_EVERY``, each one a DescribeSnapshots call). Leaving
them unscaled is what made the old polling benchmark's "0.05x Packer" (bench/FINDINGS.md); here
they are scaled like everything else, through amibake's own code (nothing re-implemented).

The SSH connect retry (amibake: 0.25 s doubling to 2 s; Packer 1.6.6: a fixed 5 s) is not scaled
for either tool: Packer has no knob for it. The benchmark therefore emulates SSH start-up only at
scale 1 (see ``bench/realistic.py``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator


def scale_polling(scale: float) -> None:
    from amibake.plugins.amazon import access, ec2

    original = access.Polling.delays

    def delays(self: access.Polling) -> Iterator[float]:
        return original(dataclasses.replace(self, first_delay=self.first_delay * scale))

    access.Polling.delays = delays  # type: ignore[method-assign]
    ec2.PROGRESS_AFTER *= scale
    ec2.PROGRESS_EVERY *= scale


def main() -> None:
    scale = float(os.environ.get("AMIBAKE_BENCH_TIME_SCALE", "1"))
    if not 0 < scale <= 1:
        raise SystemExit(f"AMIBAKE_BENCH_TIME_SCALE must be in (0, 1], got {scale}")
    scale_polling(scale)
    from amibake.launcher import main as amibake_main

    sys.argv[0] = "amibake"
    amibake_main()


if __name__ == "__main__":
    main()
