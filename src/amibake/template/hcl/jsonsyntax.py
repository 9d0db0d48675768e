"""``.pkr.json`` files are not supported yet: a clear error instead of a wrong reading."""

from __future__ import annotations

from amibake.template.hcl import ast as A
from amibake.template.hcl.diagnostics import HclError


def parse_json_body(text: str, filename: str) -> A.Body:
    raise HclError(
        "HCL2 JSON syntax (.pkr.json) is not supported by amibake yet; write the template as .pkr.hcl",
        filename,
        1,
        1,
    )
