"""The ``file`` provisioner: copy files and directories to (or from) the machine being built.

As Packer's ``provisioner/file``: ``source``/``sources``/``content`` go to ``destination``;
a directory source follows the trailing-slash rule (``dir/`` uploads its contents, ``dir`` the
directory itself, which the communicator implements); a file uploaded to a destination ending in
``/`` lands inside that directory. ``direction: download`` copies the other way.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake.api import BuildEnv
from amibake.errors import BuildError, CommunicatorError

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator


class FileProvisioner:
    """Packer's ``file`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def sources(self) -> list[str]:
        """``sources`` then ``source``, in Packer's order."""
        result = [str(s) for s in (self.config.sources or [])]
        if self.config.source:
            result.append(str(self.config.source))
        return result

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        sources = self.sources()
        temp: str | None = None
        if self.config.content:
            fd, temp = tempfile.mkstemp(prefix="pkr-file-content")
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(self.config.content)
            sources.append(temp)
        try:
            dst = self.env.render(str(self.config.destination), build_data)
            rendered = [self.env.render(s, build_data) for s in sources]
            if (self.config.direction or "upload") == "download":
                for src in rendered:
                    self._download(comm, src, dst)
            else:
                for src in rendered:
                    self._upload(comm, src, dst)
        finally:
            if temp is not None:
                try:
                    os.remove(temp)
                except OSError:
                    pass

    def _upload(self, comm: Communicator, src: str, dst: str) -> None:
        ui = self.env.ui
        ui.say(f"Uploading {src} => {dst}")
        try:
            st = os.stat(src)
        except OSError as exc:
            raise BuildError(f"Bad source '{src}': {exc.strerror or exc}") from exc
        try:
            if stat.S_ISDIR(st.st_mode):
                comm.upload_dir(dst, src)
                return
            filedst = dst + os.path.basename(src) if dst.endswith("/") else dst
            comm.upload(filedst, Path(src), mode=stat.S_IMODE(st.st_mode))
        except CommunicatorError as exc:
            if "Error restoring file" in str(exc):
                ui.error(
                    f"Upload failed: {exc}; this can occur when your file destination is a "
                    "folder without a trailing slash."
                )
            ui.error(f"Upload failed: {exc}")
            raise

    def _download(self, comm: Communicator, src: str, dst: str) -> None:
        ui = self.env.ui
        directory = dst
        if not dst.endswith("/"):
            directory = os.path.dirname(dst)
        elif not src.endswith("/") and not src.endswith("*"):
            dst = os.path.join(dst, os.path.basename(src))
        ui.say(f"Downloading {src} => {dst}")
        if directory:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        try:
            if src.endswith("/") or any(ch in src for ch in "*?["):
                comm.download_dir(src, dst)
            else:
                comm.download(src, Path(dst))
        except CommunicatorError as exc:
            ui.error(f"Download failed: {exc}")
            raise
