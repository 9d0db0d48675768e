"""The communicator interface: how provisioners reach the machine being built.

Implementations are synchronous (builds run in threads); the SSH one bridges to a shared asyncio
loop internally. Paths on the remote side are strings (POSIX separators); local ones are paths.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from amibake.errors import CommunicatorError

LineSink = Callable[[str], None]


class DisconnectedError(CommunicatorError):
    """The connection dropped before the remote command reported an exit status.

    Packer reports this case as exit status 2300123 (``CmdDisconnect``); the shell provisioner's
    ``expect_disconnect`` turns it into success.
    """


class CommandTimeoutError(CommunicatorError):
    """A remote command ran longer than its ``timeout``; the session was closed."""


class Communicator(ABC):
    @abstractmethod
    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        """Run ``command`` through the remote shell and return its exit status.

        Output is streamed line by line as it arrives: each callback call gets one line without
        its line terminator (``\\n`` or ``\\r\\n``); a last line without a terminator is delivered
        at the end. Callbacks run in the calling thread. A command killed by signal N returns
        128 + N. Raises :class:`DisconnectedError` if the connection drops before an exit status
        arrives, :class:`CommandTimeoutError` after ``timeout`` seconds.
        """

    @abstractmethod
    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        """Write ``src`` to the remote file ``dst`` (created or truncated) with permissions ``mode``."""

    @abstractmethod
    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        """Upload the local directory ``src`` (as the user wrote it) into the remote ``dst``.

        Packer's trailing-slash rule: ``src="dir"`` uploads the directory itself (``dst/dir/...``),
        ``src="dir/"`` uploads its contents into ``dst``. ``exclude`` holds glob patterns matched
        against each path relative to ``src`` (POSIX separators) and against its base name; an
        excluded directory is skipped with everything under it. Symbolic links are followed.
        """

    @abstractmethod
    def download(self, src: str, dst: Path | BinaryIO) -> None:
        """Copy the remote file ``src`` to the local path or stream ``dst``."""

    @abstractmethod
    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        """Copy the remote directory ``src`` into the local directory ``dst`` as ``dst/<name of src>``
        (what Packer's ``scp -rf`` download does, with or without a trailing slash)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection. Safe to call twice."""

    def __enter__(self) -> Communicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
