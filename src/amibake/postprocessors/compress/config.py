"""The ``compress`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

from pydantic import Field

from amibake.config.base import PluginConfig
from amibake.config.weak import Int, Str


class CompressConfig(PluginConfig):
    """compress: archive the artifact's files."""

    output: Str = Field("packer_{{.BuildName}}_{{.BuilderType}}", description="Fields from config file")
    format: Str = Field(
        "", description="The archive format (tar.gz, zip, lz4, bgzf, xz...); by default from `output`."
    )
    compression_level: Int = Field(
        0, description="The compression level, 1 (fastest) to 9 (best); 0 or -1 is the default (6)."
    )

    @property
    def effective_level(self) -> int:
        """``compression_level`` as Packer uses it: at most 9, 0 and -1 meaning 6."""
        level = min(self.compression_level, 9)
        return 6 if level in (0, -1) else level
