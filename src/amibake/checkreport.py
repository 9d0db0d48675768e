"""The JUnit XML report of ``-checks``: fetched from the test instance, kept locally, summarised.

JUnit XML as test runners write it (pytest ``--junitxml``, bats ``--formatter junit``, goss
``--format junit``): a ``<testsuites>`` root holding ``<testsuite>`` elements, or one
``<testsuite>`` root; each ``<testcase>`` failed when it holds a ``<failure>`` or ``<error>``
element and was skipped with ``<skipped>``. Counting the test cases themselves (rather than
trusting the suites' ``tests``/``failures`` attributes, which some writers leave out) gives the
same figures for well-formed reports.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amibake.communicator.base import Communicator


@dataclass(frozen=True)
class ReportSummary:
    tests: int
    failures: int
    errors: int
    skipped: int
    #: the names (``classname.name``) of the failed and errored test cases, in report order
    failed_cases: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.failures or self.errors)

    def describe(self) -> str:
        text = (f"{self.tests} test(s), {self.failures} failure(s), {self.errors} error(s), "
                f"{self.skipped} skipped")
        if self.failed_cases:
            shown = ", ".join(self.failed_cases[:5])
            more = f" and {len(self.failed_cases) - 5} more" if len(self.failed_cases) > 5 else ""
            text += f" (failed: {shown}{more})"
        return text


class ReportError(Exception):
    """The report is missing, unreadable or not JUnit XML."""


def summarise(data: bytes) -> ReportSummary:
    """The counts of a JUnit XML document; raises :class:`ReportError` if it is not one."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportError(f"not well-formed XML: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"not a JUnit report: the root element is <{root.tag}>, not <testsuites> or "
                          "<testsuite>")
    tests = failures = errors = skipped = 0
    failed: list[str] = []
    for case in root.iter("testcase"):
        tests += 1
        name = ".".join(p for p in (case.get("classname", ""), case.get("name", "")) if p) or "(unnamed)"
        if case.find("failure") is not None:
            failures += 1
            failed.append(name)
        elif case.find("error") is not None:
            errors += 1
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped += 1
    return ReportSummary(tests, failures, errors, skipped, tuple(failed))


def local_name(build_name: str) -> str:
    """The file name of a build's report: its name with anything but ``[A-Za-z0-9._-]`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", build_name).strip(".") + ".xml"


def fetch_report(comm: Communicator, remote: str, local_dir: Path, build_name: str,
                 ui: Any) -> ReportSummary:
    """Download ``remote`` into ``local_dir/<build name>.xml``, say what it holds and return its counts.
    A report that is missing or is not JUnit XML counts as one error: the checks did not run as
    declared."""
    local_dir.mkdir(parents=True, exist_ok=True)
    dest = local_dir / local_name(build_name)
    try:
        comm.download(remote, dest)
        summary = summarise(dest.read_bytes())
    except ReportError as exc:
        ui.error(f"The checks' JUnit report {remote} (fetched to {dest}) is not usable: {exc}")
        return ReportSummary(0, 0, 1, 0, (f"junit report {remote}",))
    except Exception as exc:  # the communicator's own errors: the file is not there, no permission
        ui.error(f"The checks' JUnit report {remote} could not be fetched: {exc}")
        return ReportSummary(0, 0, 1, 0, (f"junit report {remote}",))
    ui.say(f"Checks' JUnit report ({dest}): {summary.describe()}")
    return summary
