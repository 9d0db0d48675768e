"""``communicator: none``: the build has no way to reach the machine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn

from amibake.communicator.base import Communicator, LineSink
from amibake.errors import CommunicatorError


class NoneCommunicator(Communicator):
    """Every operation fails with a message that names the cause (``communicator`` is ``none``)."""

    def _fail(self, what: str) -> NoReturn:
        raise CommunicatorError(
            f"cannot {what}: this build's communicator is \"none\" "
            "(set \"communicator\": \"ssh\" to run provisioners on the instance)"
        )

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        self._fail("run a remote command")

    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        self._fail(f"upload to {dst}")

    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        self._fail(f"upload to {dst}")

    def download(self, src: str, dst: Path | BinaryIO) -> None:
        self._fail(f"download {src}")

    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        self._fail(f"download {src}")

    def close(self) -> None:
        pass
