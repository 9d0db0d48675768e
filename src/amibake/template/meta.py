"""The options of a provisioner or post-processor that Packer's core consumes (the plugin never
sees them), declared once for the JSON loader, the HCL2 loader and ``hcl2_upgrade``."""

from __future__ import annotations

#: a provisioner's ``name``, ``only``/``except``, ``pause_before``, ``max_retries``, ``timeout`` and
#: ``override`` (its options per build)
PROVISIONER_META: tuple[str, ...] = (
    "name", "only", "except", "pause_before", "max_retries", "timeout", "override",
)  # fmt: skip
#: what HCL2 adds to :data:`PROVISIONER_META` (Packer's ``HCL2Provisioner``)
HCL2_PROVISIONER_META: tuple[str, ...] = (*PROVISIONER_META, "continue_on_error")
#: a post-processor's
POST_PROCESSOR_META: tuple[str, ...] = ("name", "only", "except", "keep_input_artifact")
