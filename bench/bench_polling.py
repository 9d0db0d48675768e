"""Part 5: polling lag with real-AWS-shaped state transitions (``tests/awsproxy.py`` in front of moto).

moto flips states at once; the proxy makes an instance read ``pending`` for 20 s after
RunInstances, ``stopping`` for 30 s after StopInstances and an AMI ``pending`` for 60 s after
CreateImage, all scaled by ``scale`` (default 1/20: 1 s, 1.5 s, 3 s). For each resource it records
when it became ready and when a Describe answer first showed that to the tool; the difference is
the tool's polling lag. Both tools run with their default polling (no AWS_POLL_DELAY_SECONDS, no
``aws_polling``). EC2 calls are counted at moto (behind the proxy).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from tests.awsproxy import AwsProxy

#: the issue's real-AWS figures, seconds
REAL = {"instance_pending": 20.0, "instance_stopping": 30.0, "image_pending": 60.0}
#: (resource id prefix, ready state) -> label
WAITS = {
    ("i-", "running"): "instance running",
    ("i-", "stopped"): "instance stopped",
    ("ami-", "available"): "image available",
}


def lags(proxy: AwsProxy, source_ami: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for rid, states in proxy.ready_at.items():
        if rid == source_ami:
            continue
        for state, ready in states.items():
            label = next((v for (p, s), v in WAITS.items() if rid.startswith(p) and s == state), None)
            seen = proxy.first_seen_ready.get(rid, {}).get(state)
            if label and seen is not None:
                out[label] = seen - ready
    return out


def polling_rows(b: Any, runs: int, notes: list[str], scale: float) -> list[Any]:
    from run import SOURCE_AMI, TOOLS, Row, cell, interleaved, med

    delays = {k: v * scale for k, v in REAL.items()}
    per_run: dict[str, list[dict[str, float]]] = {t: [] for t in TOOLS}

    def one(tool: str, i: int) -> Any:
        with AwsProxy(b.stack.moto.url, delays=delays) as proxy:
            # the source AMI exists long before the build: never hold it as "pending"
            proxy.events.setdefault(SOURCE_AMI, {})["created"] = time.monotonic() - 3600
            run = b.build(tool, "basic.json", endpoint=proxy.url)
            per_run[tool].append(lags(proxy, SOURCE_AMI))
        return run

    res = interleaved(runs, one)
    rows = []
    all_lags = {t: [x for d in per_run[t] for x in d.values()] for t in TOOLS}
    calls = {t: [float(len(r.actions)) for r in res[t]] for t in TOOLS}
    ratio = (
        med(all_lags["amibake"]) / med(all_lags["packer"])
        if all_lags["packer"] and med(all_lags["packer"])
        else 0
    )
    met_calls = med(calls["amibake"]) <= med(calls["packer"])
    rows.append(
        Row(
            "polling lag, all waits",
            "s",
            all_lags["packer"],
            all_lags["amibake"],
            "<= 0.5x Packer, at <= Packer's calls",
            (ratio, 0.5, "max") if met_calls else (float("inf"), 0.5, "max"),
        )
    )
    for label in WAITS.values():
        p = [d[label] for d in per_run["packer"] if label in d]
        a = [d[label] for d in per_run["amibake"] if label in d]
        rows.append(Row(f"polling lag: {label}", "s", p, a))
    rows.append(Row("polling build: EC2 API calls", "calls", calls["packer"], calls["amibake"], fmt="{:.0f}"))
    rows.append(
        Row("polling build: wall", "s", [r.wall for r in res["packer"]], [r.wall for r in res["amibake"]])
    )
    notes.append(
        "polling: emulated transitions "
        + ", ".join(f"{k} {REAL[k]:.0f} s x {scale:g} = {v:.2f} s" for k, v in delays.items())
        + f"; lag = first Describe answer showing the ready state - the moment it became ready. "
        f"All-waits lag: Packer {cell(all_lags['packer'])}, amibake {cell(all_lags['amibake'])}; "
        f"median EC2 calls Packer {statistics.median(calls['packer']):.0f}, "
        f"amibake {statistics.median(calls['amibake']):.0f}."
    )
    return rows
