"""``templatefile(path, vars)``: renders a file as an HCL string template."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from amibake.template.hcl.evaluator import Context, FunctionError, evaluate
from amibake.template.hcl.parser import Parser


def render_template_file(
    text: str, filename: str, vars: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]
) -> Any:
    """Render ``text`` with only ``vars`` in scope (no var./local.), as Terraform and Packer do."""
    p = Parser(text, filename)
    parts = p.parse_template_parts(quoted=False, end=len(text))
    node = p._template_node(0, parts)
    for k in vars:
        if not isinstance(k, str) or not k.replace("_", "a").replace("-", "a").isalnum():
            raise FunctionError(f"invalid template variable name {k!r}")
    # templatefile cannot call itself
    funcs = {k: v for k, v in functions.items() if k != "templatefile"}
    return evaluate(node, Context(dict(vars), funcs, filename, text, "a template file"))
