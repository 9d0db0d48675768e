"""Artifacts made of local files, as the checksum and compress post-processors return them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FileArtifact:
    """A list of local files under a post-processor's builder id.

    ``summary`` renders :meth:`string` (Packer's text differs per post-processor);
    :meth:`destroy` deletes the files (directories too).
    """

    builder_id: str
    files: list[str] = field(default_factory=list)
    id: str = ""
    summary: Callable[[FileArtifact], str] | None = None
    states: dict[str, Any] = field(default_factory=dict)

    def string(self) -> str:
        if self.summary is not None:
            return self.summary(self)
        return "Created artifact from files: " + ", ".join(self.files)

    def state(self, name: str) -> Any:
        return self.states.get(name)

    def destroy(self) -> None:
        remove_paths(self.files)


def remove_paths(paths: Iterable[str]) -> None:
    """Delete files and directories; missing ones are fine (Go's ``os.RemoveAll``)."""
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
