"""The ``manifest`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

from pydantic import Field

from amibake.config.base import PluginConfig
from amibake.config.weak import Bool, Str, StrMap


class ManifestConfig(PluginConfig):
    """manifest: write the artifacts of the builds to a JSON file."""

    output: Str = Field(
        "packer-manifest.json",
        description=("The manifest will be written to this file. This defaults to `packer-manifest.json`."),
    )
    strip_path: Bool = Field(
        False,
        description=("Write only filename without the path to the manifest file. This defaults to false."),
    )
    strip_time: Bool = Field(False, description="Don't write the `build_time` field from the output.")
    custom_data: StrMap = Field(
        default_factory=dict,
        description=(
            "Arbitrary data to add to the manifest. This is a template engine. Therefore, you may use "
            "user variables and template functions in this field."
        ),
    )
