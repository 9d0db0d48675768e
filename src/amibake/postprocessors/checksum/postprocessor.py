"""The ``checksum`` post-processor: write checksums of the artifact's files.

As Packer's: for each of ``checksum_types`` (default md5) and each artifact file, a line
``<hex>\\t<file name>`` is appended to ``output`` (default
``packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum``). The new artifact lists the
input files and the checksum files it created. An artifact without files (an AMI) yields an
artifact without files, and no checksum file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

from amibake.api import Artifact, BuildEnv
from amibake.errors import BuildError
from amibake.postprocessors.common import FileArtifact

BUILDER_ID = "packer.post-processor.checksum"
DEFAULT_OUTPUT = "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum"

HASHES: dict[str, Callable[[], Any]] = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def file_digest(path: str, checksum_type: str) -> str:
    """The hex digest of a file's content."""
    h = HASHES[checksum_type]()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return str(h.hexdigest())


class ChecksumPostProcessor:
    """Packer's ``checksum`` post-processor."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        c, env = self.config, self.env
        types = list(c.checksum_types or ["md5"])
        for t in types:
            if t not in HASHES:
                raise BuildError(f"Unrecognized checksum type: {t}")
        files = list(artifact.files or [])
        data: dict[str, Any] = dict(artifact.state("generated_data") or {})
        data["BuildName"] = env.build_name
        data["BuilderType"] = env.builder_type
        result = FileArtifact(BUILDER_ID, files=list(files))
        for checksum_type in types:
            data["ChecksumType"] = checksum_type
            for name in files:
                target = env.render(c.output or DEFAULT_OUTPUT, data)
                if not os.path.exists(target):
                    result.files.append(target)
                parent = os.path.dirname(target)
                try:
                    if parent:
                        os.makedirs(parent, mode=0o755, exist_ok=True)
                except OSError as exc:
                    raise BuildError(f"unable to create dir: {exc.strerror or exc}") from exc
                try:
                    digest = file_digest(name, checksum_type)
                except OSError as exc:
                    raise BuildError(f"unable to open file {name}: {exc.strerror or exc}") from exc
                try:
                    with open(target, "a", encoding="utf-8") as out:
                        out.write(f"{digest}\t{os.path.basename(name)}\n")
                except OSError as exc:
                    raise BuildError(f"unable to create file {target}: {exc.strerror or exc}") from exc
        return result, True, True
