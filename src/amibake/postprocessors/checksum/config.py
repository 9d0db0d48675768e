"""The ``checksum`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Str, StrList
from amibake.errors import Problem

CHECKSUM_TYPES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


class ChecksumConfig(PluginConfig):
    """checksum: write checksums of the artifact's files."""

    checksum_types: StrList = Field(
        default_factory=lambda: ["md5"],
        description="The checksum types to compute: md5, sha1, sha224, sha256, sha384, sha512.",
    )
    output: Str = Field(
        "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum",
        description="The file the checksums are written to (a template).",
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        return [
            ctx.problem(f"Unrecognized checksum type: {kind}", f"checksum_types[{i}]")
            for i, kind in enumerate(self.checksum_types)
            if kind not in CHECKSUM_TYPES
        ]
