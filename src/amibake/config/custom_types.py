"""Packer SDK's small shared option types (``template/config/custom_types.go``): the singular
``tag { key = ..., value = ... }`` blocks and ``{filters = {...}}`` filter blocks."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from amibake.config.base import ConfigModel
from amibake.config.weak import AsList, AsStruct, Str, StrMap


class KeyValue(ConfigModel):
    """One ``key``/``value`` pair of a singular tag block (``tag``, ``run_tag`` ...)."""

    key: Str = Field("", description="The tag key.")
    value: Str = Field("", description="The tag value.")


class NameValue(ConfigModel):
    """One ``name``/``value`` pair (``run_volume_tag`` of amazon-ebs, filter blocks)."""

    name: Str = Field("", description="The name.")
    value: Str = Field("", description="The value.")


KeyValues = Annotated[list[Annotated[KeyValue, AsStruct]], AsList]
NameValues = Annotated[list[Annotated[NameValue, AsStruct]], AsList]


def merged_tags(tags: dict[str, str], singular: list[KeyValue] | list[NameValue]) -> dict[str, str]:
    """``tags`` with the singular blocks copied on, as Packer's ``CopyOn`` does (blocks win)."""
    out = dict(tags)
    for item in singular:
        out[item.key if isinstance(item, KeyValue) else item.name] = item.value
    return out


class NameValueFilter(ConfigModel):
    """A filter block: ``filters`` map plus repeatable ``filter { name, value }`` blocks."""

    filters: StrMap = Field(
        default_factory=dict,
        description="Filters used to select a resource. Any filter described in the docs for the "
        "matching EC2 Describe* API is valid.",
    )
    filter: NameValues = Field(
        default_factory=list,
        description="Same as `filters` but as repeatable blocks containing a `name` and a `value`.",
    )

    def all_filters(self) -> dict[str, str]:
        return merged_tags(self.filters, self.filter)

    def empty(self) -> bool:
        return not self.all_filters()
