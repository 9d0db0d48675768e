"""The corpus in the repository: every entry has its origin and its upstream licence beside it, and
Packer 1.6.6's recorded run; entries whose upstream has no licence are listed but not copied."""

from __future__ import annotations

import csv
import re

from tests.corpus.corpus import CORPUS, NOT_REDISTRIBUTED, PACKER_166, entries

LICENSES = CORPUS / "LICENSES"


def sources() -> list[dict[str, str]]:
    with open(CORPUS / "SOURCES.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_entry_has_a_source_row_a_licence_and_packers_run() -> None:
    rows = {r["dir"]: r for r in sources()}
    present = sorted(p.name for p in (CORPUS / "templates").iterdir() if re.match(r"\d{3}-", p.name))
    assert len(present) == 64
    for d in present:
        row = rows[d]
        m = re.fullmatch(r"(\S+) \((\S+)\)", row["license"])
        assert m, (d, row["license"])
        spdx, name = m.groups()
        licence = LICENSES / f"{row['repo'].replace('/', '+')}@{row['commit'][:12]}" / name
        assert licence.is_file(), (d, licence)
        text = licence.read_text(encoding="utf-8", errors="replace")
        marker = {
            "MIT": "Permission is hereby granted",
            "Apache-2.0": "Apache License",
            "MPL-2.0": "Mozilla Public License",
            "GPL-3.0": "GNU GENERAL PUBLIC LICENSE",
            "AGPL-3.0": "GNU AFFERO GENERAL PUBLIC LICENSE",
            "BUSL-1.1": "Business Source License",
            "CC0-1.0": "CC0",
        }[spdx]
        assert marker.lower() in text.lower(), (d, spdx)
        for kind in ("validate", "inspect"):
            assert (PACKER_166 / "out" / f"{d}.{kind}.txt").is_file(), (d, kind)
    assert sorted(e.dir for e in entries()) == present


def test_unlicensed_entries_are_listed_but_not_copied() -> None:
    unlicensed = {r["dir"][:3] for r in sources() if r["license"].startswith("unknown")}
    assert unlicensed == NOT_REDISTRIBUTED
    for r in sources():
        if r["dir"][:3] in NOT_REDISTRIBUTED:
            assert not (CORPUS / "templates" / r["dir"]).exists()
            assert not list((PACKER_166 / "out").glob(f"{r['dir']}.*"))
            assert r["notes"].startswith("not redistributed")


def test_formats() -> None:
    json_entries = [e for e in entries() if e.is_json]
    assert (len(json_entries), len(entries()) - len(json_entries)) == (34, 30)
