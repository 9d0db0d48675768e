"""The configuration of Packer core's ``http`` data source (strict, with did-you-mean); its
required option is checked in :meth:`HttpConfig.check`, with Packer's message."""

from __future__ import annotations

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Str, StrMap
from amibake.errors import Problem


class HttpConfig(PluginConfig):
    """``data "http"`` (Packer core's http data source)."""

    url: Str = Field("", description="The URL to request data from.")
    request_headers: StrMap = Field(default_factory=dict, description="Additional HTTP request headers.")

    def check(self, ctx: CheckContext) -> list[Problem]:
        if not self.url:
            return [ctx.problem("the `url` must be specified", "url")]
        return []
