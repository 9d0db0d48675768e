"""Every HCL2 template of the corpus loads, or fails for the reason Packer would.

Variables and var files are the ones Packer 1.6.6 was run with (tests/corpus/packer-1.6.6/results.tsv).
Expected: ("ok", number of BuildBlocks) or the sorted set of problem kinds ("message-head key").
"""

from __future__ import annotations

import csv
import re
from typing import Any

import pytest

from amibake.errors import TemplateError
from amibake.template.hcl import load_hcl
from tests.corpus.corpus import CORPUS, PACKER_166

EXPECTED: dict[str, Any] = {
    "037": ['Unset variable "region" var.region'],
    "038": ("ok", 1),
    "039": [
        "Error in function call local.images_versions",
        "Error in function call local.jdk_infos",
        "Error in function call local.provisioning_env_vars",
        "Missing plugin packer.required_plugins.azure",
        "Missing plugin packer.required_plugins.docker",
        "Missing plugin packer.required_plugins.windows-update",
        'Unset variable "agent_os_type" var.agent_os_type',
        'Unset variable "agent_os_version" var.agent_os_version',
    ],
    "040": ["Missing plugin packer.required_plugins.azure"],
    "041": ("ok", 2),
    "043": ("ok", 2),
    "044": ("ok", 1),
    "045": ("ok", 1),
    "046": ("ok", 1),
    "047": ("ok", 1),
    "048": ["Missing plugin packer.required_plugins.oracle"],
    "049": ("ok", 1),
    "050": ("ok", 1),
    "051": ("ok", 1),
    "052": ("ok", 1),
    "053": ("ok", 2),
    "054": ("ok", 1),
    "055": ['Unset variable "aws_region" var.aws_region'],
    "056": [
        "Unknown source amazon-ebs.example-1 build.aws_example_builder.sources",
        "Unknown source amazon-ebs.example-2 build.aws_example_builder.sources",
    ],
    "057": ("ok", 2),
    "058": ("ok", 1),
    "059": ["Error in function call local.version_tags"],
    "060": ("ok", 1),
    "062": ("ok", 2),
    "063": ("ok", 1),
    "064": [
        "Missing plugin packer.required_plugins.digitalocean",
        "Missing plugin packer.required_plugins.hyperv",
        "Missing plugin packer.required_plugins.parallels",
        "Missing plugin packer.required_plugins.qemu",
        "Missing plugin packer.required_plugins.vagrant",
        "Missing plugin packer.required_plugins.virtualbox",
        "Missing plugin packer.required_plugins.vmware",
    ],
    "065": [
        'Unset variable "build_account_canonical_slug" var.build_account_canonical_slug',
        'Unset variable "region" var.region',
        "Unsupported Packer Core version packer.required_version",
    ],
    "066": [
        "Missing plugin packer.required_plugins.vagrant",
        'Unset variable "build_account_canonical_slug" var.build_account_canonical_slug',
        'Unset variable "region" var.region',
        "Unsupported Packer Core version packer.required_version",
    ],
    "068": ("ok", 1),
    "069": ("ok", 1),
}


def _rows() -> dict[str, dict[str, str]]:
    with open(PACKER_166 / "results.tsv") as fh:
        return {r["dir"][:3]: r for r in csv.DictReader(fh, delimiter="\t")}


def _load(num: str, extra_vars: dict[str, str] | None = None) -> Any:
    r = _rows()[num]
    d = CORPUS / "templates" / r["dir"]
    p = d if r["file"] == "." else d / r["file"]
    vf = [d / x for x in r["var_files"].split()]
    vs = dict(kv.split("=", 1) for kv in r["dummy_vars"].split())
    vs.update(extra_vars or {})
    return load_hcl(p, var_files=vf, vars=vs, env={})


@pytest.mark.parametrize("num", sorted(EXPECTED))
def test_corpus_template(num: str) -> None:
    want = EXPECTED[num]
    try:
        tpl = _load(num)
    except TemplateError as e:
        kinds = sorted({re.split(r"[:(]", p.message)[0] + (" " + p.key if p.key else "") for p in e.problems})
        assert kinds == want, e.render()
        for p in e.problems:
            assert p.pos is not None and p.pos.file, str(p)
        return
    assert want == ("ok", len(tpl.builds))
    for build in tpl.builds:
        assert len(build.sources) == 1
        src = build.sources[0]
        assert src.kind == "builder" and src.config
        assert src.key_path.startswith("source.")
        for key in src.config:
            assert key in src.key_pos, key


def test_every_hcl_entry_is_listed() -> None:
    hcl = {
        r[:3]
        for r, row in ((k, v) for k, v in _rows().items())
        if row["file"].endswith(".pkr.hcl") or row["file"] == "."
    }
    assert hcl == set(EXPECTED)


def test_ecs_loads_once_region_is_given() -> None:
    tpl = _load("037", {"region": "us-east-1"})
    names = [b.sources[0].name for b in tpl.builds]
    assert "amazon-ebs.al2" in names
    al2 = next(b for b in tpl.builds if b.sources[0].name == "amazon-ebs.al2")
    cfg = al2.sources[0].config
    assert isinstance(cfg["launch_block_device_mappings"], list)
    assert isinstance(cfg["source_ami_filter"], dict)
    # dynamic provisioner blocks expanded
    assert any(p.type == "file" for p in al2.provisioners)


def test_gocarrot_dynamic_sources_expand() -> None:
    with pytest.raises(TemplateError) as ei:
        _load("065", {"region": "us-east-1", "build_account_canonical_slug": "x"})
    assert all("required_version" in (p.key or "") for p in ei.value.problems)
