"""Reason classes: what a validate error is about, as ``(kind, key)``, read from Packer 1.6.6's
recorded output and from amibake's, so that the two are compared by *why* they reject a template,
not only by verdict.

Kinds (the key in brackets):

* ``unknown-option`` (the option): ``unknown configuration key: '"X"'``, HCL2's
  ``An argument named "X" is not expected here``;
* ``unknown-builder`` / ``unknown-provisioner`` / ``unknown-post-processor`` (the type);
* ``not-implemented`` (the option or communicator): amibake's ``... is not supported by amibake yet``;
* ``missing-plugin`` (the plugin): HCL2 ``required_plugins`` not installed;
* ``required-version``: HCL2 ``required_version`` excludes the running version;
* ``unknown-source`` (the source): a build names a source no block defines;
* ``unsupported-block`` (the block type): HCL2 ``Blocks of type "X" are not expected here``;
* ``variable-required`` (the variable): ``required variable not set: X``, HCL2 ``Unset variable "X"``;
* ``variable-undefined`` (the variable): a JSON default refers to ``{{user `X`}}`` that no variable
  defines;
* ``file-not-found`` (the file's last path element): ``Bad source``, ``Bad script``,
  ``user_data_file not found``, ``... is invalid: stat X``, ``points to bad file``;
* ``function-error`` / ``unknown-function`` (the function);
* ``invalid`` (the message's first words): any other check, worded as Packer words it.

Packer 1.6.6 wraps its lines at 80 columns and orders the errors of one build at random (see
README.md): items are re-joined before classifying, and the comparison uses sets.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from tests.corpus.corpus import PACKER_166, Entry


class Reason(NamedTuple):
    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind} {self.key}".strip()


_RULES: list[tuple[str, re.Pattern[str], str]] = [
    # (kind, pattern, how to read the key: "1" = group 1, "file" = group 1's last path element)
    ("unknown-option", re.compile(r"unknown configuration key: '?\"?([\w.-]+)\"?'?"), "1"),
    ("unknown-option", re.compile(r'An argument named "([\w-]+)" is not expected here'), "1"),
    ("unsupported-block", re.compile(r'Blocks of type "([\w-]+)" are not expected here'), "1"),
    ("missing-plugin", re.compile(r'Missing plugin: plugin "([\w-]+)"'), "1"),
    ("required-version", re.compile(r"Unsupported Packer Core version", re.I), "0"),
    ("unknown-source", re.compile(r"Unknown source ([\w.-]+)", re.I), "1"),
    ("not-implemented", re.compile(r'"?([\w-]+)"? is not supported by amibake yet'), "1"),
    ("not-implemented", re.compile(r'communicator "(\w+)" is not supported by amibake'), "1"),
    ("unknown-builder", re.compile(r'unknown builder type "([^"]+)"'), "1"),
    ("unknown-builder", re.compile(r"Unknown builder (\S+)"), "1"),
    ("unknown-provisioner", re.compile(r'unknown provisioner type "([^"]+)"'), "1"),
    ("unknown-provisioner", re.compile(r"Unknown provisioner (\S+)"), "1"),
    ("unknown-post-processor", re.compile(r'unknown post-processor type "([^"]+)"'), "1"),
    ("unknown-post-processor", re.compile(r"Unknown post-processor (\S+)"), "1"),
    ("variable-required", re.compile(r"required variable not set: (\S+)"), "1"),
    ("variable-required", re.compile(r'Unset variable "([\w-]+)"'), "1"),
    ("variable-undefined", re.compile(r"variable not set: (\S+)"), "1"),
    ("variable-undefined", re.compile(r"Failed to interpolate \"([\w-]+)\""), "1"),
    ("file-not-found", re.compile(r"Bad (?:source|script) '([^']*)'"), "file"),
    ("file-not-found", re.compile(r"user_data_file not found: (\S+)"), "file"),
    ("file-not-found", re.compile(r"is invalid: stat (\S+?):? no such file"), "file"),
    ("file-not-found", re.compile(r"points to bad file: stat (\S+?):? no such file"), "file"),
    ("file-not-found", re.compile(r"stat (\S+?): no such file or directory"), "file"),
    ("unknown-function", re.compile(r'function "([\w-]+)" not defined'), "1"),
    ("function-error", re.compile(r"error calling ([\w-]+):"), "1"),
    ("function-error", re.compile(r"Error in function call.*?([\w-]+)\("), "1"),
]

#: amibake's location prefix: ``file:line:col: `` then the key path (``builders[0].ami_name: ``)
_AMIBAKE_PREFIX = re.compile(
    r"^(?:\S+?:\d+:\d+: )?(?:[\w-]+(?:\[\d+\])*(?:\.[\w-]+(?:\[\d+\])*)+: |[\w-]+\[\d+\]: )?"
)


def classify(message: str) -> Reason:
    text = " ".join(message.split())
    for kind, pattern, how in _RULES:
        m = pattern.search(text)
        if m:
            key = m.group(int(how)) if how != "file" else m.group(1)
            if how == "0":
                key = ""
            if how == "file":
                key = posixpath.basename(posixpath.normpath(key.rstrip("/"))) or key
            return Reason(kind, key)
    words = re.sub(r"[^\w ]", "", _AMIBAKE_PREFIX.sub("", text)).lower().split()
    return Reason("invalid", " ".join(words[:6]))


_COUNT = re.compile(r"^\d+ error(?:s|\(s\))? occurred:$")


def _items(lines: list[str], bullet: re.Pattern[str], header: re.Pattern[str]) -> list[str]:
    """Messages of an error report: each bullet item, or a header's message, with its wrapped
    continuation lines joined back."""
    items: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if _COUNT.match(line.strip()):
            current = None
            continue
        if bullet.match(line):
            current = [bullet.sub("", line, count=1)]
            items.append("")
        elif header.match(line):
            rest = header.sub("", line, count=1).strip()
            if not rest or _COUNT.match(rest) or rest.startswith(
                ("Failed to prepare build", "Failed to initialize build")
            ):
                current = None
                continue
            current = [rest]
            items.append("")
        elif not line.strip():
            if current is not None and current[-1] != "":
                current.append("")
            continue
        elif current is not None:
            current.append(line)
        else:  # a message after a header that only names the build
            current = [line]
            items.append("")
        if current is not None:
            items[-1] = " ".join(x for x in current if x)
    return [i for i in items if i.strip()]


def packer_messages(entry: Entry) -> list[str]:
    """The error messages of Packer 1.6.6's recorded ``validate`` of the entry (its last full run
    before any supplementary one), in Packer's order."""
    text = (PACKER_166 / "out" / f"{entry.dir}.validate.txt").read_text()
    text = text.split("\n# ---- supplementary", 1)[0]
    runs = re.split(r"^\$ packer validate ", text, flags=re.M)[1:]
    full = [r for r in runs if not r.startswith("-syntax-only")]
    assert full, entry.dir
    body = full[-1].split("\n", 1)[1]
    body = body.split("\n# exit status", 1)[0]
    lines = [ln for ln in body.splitlines() if not ln.startswith(("  on ", "    ", "  (source code"))]
    return _items(lines, re.compile(r"^\s*\* "), re.compile(r"^Error: ?"))


def amibake_messages(output: str) -> list[str]:
    """The error messages of amibake's ``validate`` output (``Error: ...`` or a ``* `` list)."""
    lines = [ln for ln in output.splitlines() if not ln.startswith(("Warning", "The configuration is valid"))]
    return _items(lines, re.compile(r"^\* "), re.compile(r"^Error: ?"))


def reasons(messages: list[str]) -> list[Reason]:
    out: list[Reason] = []
    for m in messages:
        r = classify(m)
        if r not in out:
            out.append(r)
    return out


#: kinds by which amibake refuses what it does not implement or know
REFUSALS = {"unknown-option", "unknown-builder", "unknown-provisioner", "unknown-post-processor",
            "not-implemented", "missing-plugin", "unknown-function", "unsupported-block"}


def compare(packer: list[Reason], ours: list[Reason]) -> str:
    """"" when amibake rejects for Packer's reason, else what differs: Packer's first reason must
    be among amibake's, and amibake must refuse nothing (a type, an option, a function) that
    Packer does not refuse too."""
    problems = []
    if packer and packer[0] not in ours:
        problems.append(f"Packer's first reason {packer[0]} is not among amibake's")
    extra = [r for r in ours if r.kind in REFUSALS and r not in packer]
    if extra:
        problems.append("amibake alone refuses " + ", ".join(map(str, extra)))
    return "; ".join(problems)


def parse_reason(text: str) -> Reason:
    kind, _, key = text.strip().partition(" ")
    return Reason(kind, key)


# --- listed disagreements and the claims that back them ------------------------------------


class Listed(NamedTuple):
    """One row of a disagreement file: amibake's verdict, Packer's first reason ("-" where Packer's
    record has none to compare), amibake's reason, and claims a test checks (``check_claim``)."""

    verdict: str
    packer_reason: str
    amibake_reason: str
    claims: tuple[str, ...]
    reason: str


def read_listed(path: Path, kind: str | None = None) -> dict[str, Listed]:
    import csv

    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    out = {}
    for r in csv.DictReader(lines, delimiter="\t"):
        if kind is not None and r["kind"] != kind:
            continue
        out[r["dir"]] = Listed(
            r["amibake"], r["packer_reason"], r["amibake_reason"],
            tuple(c.strip() for c in r["claims"].split(";") if c.strip()), r["reason"],
        )
    return out


def _minimal_builder(**extra: object) -> dict[str, object]:
    return {"type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-12345678",
            "instance_type": "t3.micro", "ssh_username": "u", "ami_name": "minimal-ami", **extra}


def check_claim(entry: Entry, claim: str, validate: Callable[[list[str], Path], tuple[int, str]],
                tmp: Path) -> str:
    """"" when ``claim`` holds, else why not. ``validate(args, cwd)`` runs ``amibake validate``.

    * ``no-builder:T`` / ``no-provisioner:T`` / ``no-post-processor:T``: amibake has no such plugin;
    * ``refused:K=V``: amibake refuses option K set to V by name ("... is not supported by amibake yet");
    * ``accepts:K``: amibake's amazon-ebs (or amazon-ebssurrogate) takes option K, which Packer 1.6.6
      did not know (the record's ``newer_than_1.6.6`` column names it);
    * ``datasource-refuses:TYPE.K``: amibake's data source TYPE refuses option K by name;
    * ``missing:PATH``: PATH (relative to the entry's directory) is not in the corpus copy;
    * ``plugin:P``: amibake does not implement the required plugin P;
    * ``unset:V``: variable V gets no value from the run (no -var, no var file names it);
    * ``undefined-vars``: a variable's default refers to variables nothing defines, and given them
      (``-var X=x`` each), amibake reports Packer's first reason;
    * ``newer:K``: Packer 1.6.6 stopped at K, a feature newer than itself (the record says so).
    """
    import json

    from amibake import registry
    from amibake.plugins.amazon.config import EbsConfig

    name, _, arg = claim.partition(":")
    if name in ("no-builder", "no-provisioner", "no-post-processor"):
        import amibake.plugins  # noqa: F401  (registers the plugins)

        kind = name.removeprefix("no-")
        return f"amibake has a {kind} {arg}" if registry.lookup(kind, arg) is not None else ""  # type: ignore[arg-type]
    if name == "refused":
        key, _, value = arg.partition("=")
        path = tmp / f"refused-{key}.json"
        path.write_text(json.dumps({"builders": [_minimal_builder(**{key: value})]}))
        code, out = validate([str(path)], tmp)
        said = f'"{key}" is not supported by amibake yet' in out or f'{key} "{value}" is not supported' in out
        return "" if code == 1 and said else f"amibake does not refuse {key}={value}: {out}"
    if name == "accepts":
        from amibake.plugins.amazon.config_surrogate import EbsSurrogateConfig

        if arg not in EbsConfig.model_fields and arg not in EbsSurrogateConfig.model_fields:
            return f"amibake's amazon-ebs and amazon-ebssurrogate have no option {arg}"
        return "" if arg in entry.newer else f"the record does not call {arg} newer than 1.6.6"
    if name == "missing":
        root = entry.path.resolve()
        target = (root / arg).resolve()
        inside = target == root or root in target.parents
        return f"{arg} exists in the corpus copy" if inside and target.exists() else ""
    if name == "plugin":
        from amibake.core import template_facts

        return f"amibake implements {arg}" if arg in template_facts().plugins else ""
    if name == "unset":
        given = [v.split("=", 1)[0] for v in entry.dummy_vars]
        word = re.compile(rf"\b{re.escape(arg)}\b")
        in_files = [f for f in entry.var_files if word.search((entry.path / f).read_text())]
        return f"{arg} is given a value" if arg in given or in_files else ""
    if name == "datasource-refuses":
        from amibake import registry
        from amibake.config.base import unsupported_options

        typ, _, key = arg.partition(".")
        spec = registry.lookup("datasource", typ)
        assert spec is not None, typ
        return "" if key in unsupported_options(spec.config_class()) else f"data source {typ} takes {key}"
    if name == "newer":
        return "" if arg in entry.newer else f"the record does not call {arg} newer than 1.6.6"
    if name == "undefined-vars":
        undefined = undefined_user_vars(entry)
        if not undefined:
            return "every variable the defaults refer to is defined"
        code, out = validate([*entry.args(), *(f"-var={v}=x" for v in undefined), entry.file], entry.path)
        first = reasons(packer_messages(entry))[0]
        ours = reasons(amibake_messages(out)) if code else []
        return "" if first in ours else f"given {sorted(undefined)}, amibake says {ours}, not {first}"
    return f"unknown claim {claim!r}"


def undefined_user_vars(entry: Entry) -> set[str]:
    """Names used as ``{{user `X`}}`` in the defaults of the entry's JSON template and var files that
    neither defines (nor a -var of the run)."""
    import json

    data = json.loads((entry.path / entry.file).read_text())
    values: dict[str, object] = dict(data.get("variables") or {})
    for f in entry.var_files:
        values.update(json.loads((entry.path / f).read_text()))
    defined = set(values) | {v.split("=", 1)[0] for v in entry.dummy_vars}
    used = {m for v in values.values() if isinstance(v, str) for m in re.findall(r"user\s*`([^`]+)`", v)}
    return used - defined
