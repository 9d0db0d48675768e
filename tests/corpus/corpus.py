"""The corpus of real Packer templates (``tests/corpus/templates``, origins and licences in
``SOURCES.tsv``) and Packer 1.6.6's recorded verdicts and outputs on them (``packer-1.6.6/``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

#: the corpus, in the repository
CORPUS = Path(__file__).resolve().parent
#: Packer 1.6.6's recorded runs: ``results.tsv`` and ``out/<dir>.{validate,inspect}.txt``
PACKER_166 = CORPUS / "packer-1.6.6"
#: entries whose upstream repository has no licence: listed in SOURCES.tsv, not redistributed here
NOT_REDISTRIBUTED = frozenset({"029", "032", "042", "061", "067"})


@dataclass(frozen=True)
class Entry:
    dir: str
    file: str
    validate_exit: int
    first_error: str
    var_files: tuple[str, ...]
    dummy_vars: tuple[str, ...]
    newer: str
    notes: str = ""

    @property
    def path(self) -> Path:
        return CORPUS / "templates" / self.dir

    @property
    def is_json(self) -> bool:
        return self.file.endswith(".json") and not self.file.endswith(".pkr.json")

    @property
    def packer_accepts_today(self) -> bool:
        """1.6.6's verdict, except where it rejects only a feature newer than 1.6.6."""
        if self.validate_exit == 0:
            return True
        newer = self.newer.lower()
        if not newer:
            return False
        if "dangling refs" in self.notes:
            # 1.6.6 stopped at the newer option; today's Packer reaches the files missing from the corpus
            return False
        return "not a version issue" not in newer and "needs packer fix" not in newer

    def args(self) -> list[str]:
        out = []
        for f in self.var_files:
            out.append(f"-var-file={f}")
        for v in self.dummy_vars:
            out.append(f"-var={v}")
        return out


def _notes() -> dict[str, str]:
    with open(CORPUS / "SOURCES.tsv", newline="") as fh:
        return {r["dir"]: r.get("notes") or "" for r in csv.DictReader(fh, delimiter="\t")}


def entries() -> list[Entry]:
    notes = _notes()
    rows = []
    with open(PACKER_166 / "results.tsv", newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            rows.append(
                Entry(
                    dir=r["dir"],
                    file=r["file"],
                    validate_exit=int(r["validate_exit"] or 1),
                    first_error=r["first_error"],
                    var_files=tuple(v for v in r["var_files"].split(",") if v),
                    dummy_vars=tuple(v for v in r["dummy_vars"].split(" ") if v),
                    newer=r["newer_than_1.6.6_or_unsupported"],
                    notes=notes.get(r["dir"], ""),
                )
            )
    return rows
