"""The ``artifice`` post-processor (Packer's ``post-processor/artifice``): the build's artifact becomes
the local files named by ``files`` (glob patterns expanded, each directory's matches in lexical
order, as Go's ``filepath.Glob``), for the post-processors that follow (checksum, compress,
manifest...). As in Packer, the input artifact is kept unless ``keep_input_artifact`` says
otherwise, and the new artifact's ``destroy`` deletes the files.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from amibake.api import Artifact, BuildEnv
from amibake.errors import BuildError
from amibake.postprocessors.common import FileArtifact

BUILDER_ID = "packer.post-processor.artifice"


class ArtificePostProcessor:
    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        ui = self.env.ui
        if artifact.files:
            ui.say(f"Discarding files from artifact: {', '.join(artifact.files)}")
        files: list[str] = []
        for pattern in self.config.files:
            for path in sorted(glob.glob(pattern)):
                try:
                    os.stat(path)
                except OSError as exc:
                    raise BuildError(f"artifice: {path}: {exc.strerror}") from None
                files.append(path)
        result = FileArtifact(BUILDER_ID, files=files)
        ui.say(f"Using these artifact files: {', '.join(files)}")
        return result, True, False
