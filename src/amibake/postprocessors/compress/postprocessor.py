"""The ``compress`` post-processor: archive and/or compress the artifact's files.

As Packer's: the archive (``tar``/``zip``) and the algorithm (``gz``, ``bgzf``, ``xz``, ``lz4``) come
from the extensions of ``output`` (default ``packer_{{.BuildName}}_{{.BuilderType}}``, which, having
no extension, means ``.tar.gz``) or of ``output`` + ``.`` + ``format``. Without an archive exactly one
input file is compressed. An artifact without files (an AMI) makes an empty tar or zip, or fails
("Can only have 1 input file ...") when there is no archive. The input artifact is not kept.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from amibake.api import Artifact, BuildEnv
from amibake.errors import BuildError
from amibake.postprocessors.common import FileArtifact

BUILDER_ID = "packer.post-processor.compress"
DEFAULT_OUTPUT = "packer_{{.BuildName}}_{{.BuilderType}}"
DEFAULT_LEVEL = 6  # Go's flate.DefaultCompression

_EXTENSION = re.compile(r"\.([a-z0-9]+)")
_ALGORITHMS = {"gz": "pgzip", "lz4": "lz4", "bgzf": "bgzf", "xz": "xz"}


@dataclass(frozen=True)
class Scheme:
    """What the output name asks for: ``archive`` ("tar", "zip" or "") and ``algorithm``
    ("pgzip", "bgzf", "xz", "lz4" or "")."""

    archive: str
    algorithm: str


def detect(output: str, fmt: str = "") -> Scheme:
    """Packer's ``detectFromFilename``."""
    found = _EXTENSION.findall(f"{output}.{fmt}" if fmt else output)
    if not found:
        return Scheme("tar", "pgzip")
    last = found[-1]
    archive = "tar" if len(found) > 1 and found[-2] == "tar" else ""
    if last in ("zip", "tar"):
        return Scheme(last, "")
    if last in _ALGORITHMS:
        return Scheme(archive, _ALGORITHMS[last])
    return Scheme("tar", "pgzip")


def compression_level(level: int | None) -> int:
    """Packer's clamping: above 9 -> 9; 0 and -1 (and unset) -> the default."""
    if level is None or level in (0, -1):
        return DEFAULT_LEVEL
    if level > 9:
        return 9
    if level < -1:
        raise BuildError("Invalid compression level. Expected an integer from -1 to 9.")
    return level


class BgzfWriter:
    """Blocked gzip (BGZF, as samtools/htslib and Packer's ``bgzf``): gzip members of at most
    64 KiB with a ``BC`` extra field, then an empty end-of-file member."""

    BLOCK_INPUT = 0xFF00
    EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

    def __init__(self, raw: BinaryIO, level: int) -> None:
        self.raw = raw
        self.level = level
        self.buf = bytearray()
        self.closed = False

    def write(self, data: bytes) -> int:
        self.buf += data
        while len(self.buf) >= self.BLOCK_INPUT:
            self._block(bytes(self.buf[: self.BLOCK_INPUT]))
            del self.buf[: self.BLOCK_INPUT]
        return len(data)

    def _block(self, data: bytes) -> None:
        comp = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        cdata = comp.compress(data) + comp.flush()
        bsize = 18 + len(cdata) + 8
        header = b"\x1f\x8b\x08\x04" + b"\x00\x00\x00\x00" + b"\x00\xff" + struct.pack(
            "<HBBHH", 6, 66, 67, 2, bsize - 1
        )
        self.raw.write(header + cdata + struct.pack("<II", zlib.crc32(data), len(data)))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.buf:
            self._block(bytes(self.buf))
            self.buf.clear()
        self.raw.write(self.EOF_BLOCK)


def _compressor(raw: BinaryIO, algorithm: str, level: int) -> Any:
    if algorithm == "pgzip":
        return gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0)
    if algorithm == "xz":
        return lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ)
    if algorithm == "bgzf":
        return BgzfWriter(raw, level)
    if algorithm == "lz4":
        raise BuildError("lz4 compression is not supported by amibake; use .gz, .bgzf or .xz")
    return None


def _tar(files: list[str], out: Any) -> None:
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for path in files:
            try:
                info = tar.gettarinfo(path, arcname=os.path.basename(path))
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            except OSError as exc:
                raise BuildError(f"Unable to read file {path}: {exc.strerror or exc}") from exc


def _zip(files: list[str], out: Any, level: int) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for path in files:
            try:
                zf.write(path, arcname=path.replace(os.sep, "/"))
            except OSError as exc:
                raise BuildError(f"Unable to read file {path}: {exc.strerror or exc}") from exc


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


class CompressPostProcessor:
    """Packer's ``compress`` post-processor."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        c, env, ui = self.config, self.env, self.env.ui
        output_template = c.output or DEFAULT_OUTPUT
        scheme = detect(output_template, getattr(c, "format", "") or "")
        level = compression_level(c.compression_level)
        data: dict[str, Any] = dict(artifact.state("generated_data") or {})
        data["BuildName"] = env.build_name
        data["BuilderType"] = env.builder_type
        target = env.render(output_template, data)
        files = list(artifact.files or [])
        result = FileArtifact(
            BUILDER_ID, files=[target], summary=lambda a: f"compressed artifacts in: {a.files[0]}"
        )

        parent = os.path.dirname(target)
        try:
            if parent:
                os.makedirs(parent, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise BuildError(f"Unable to create dir for archive {target}: {exc.strerror or exc}") from exc
        try:
            raw = open(target, "wb")  # noqa: SIM115 - closed below, after the compressor
        except OSError as exc:
            raise BuildError(f"Unable to create archive {target}: {exc.strerror or exc}") from exc
        with raw:
            compressor = _compressor(raw, scheme.algorithm, level)
            if scheme.algorithm == "xz":
                ui.say(f"Using xz compression with 1 core for {target} (library does not support MT)")
            elif compressor is not None:
                ui.say(f"Using {scheme.algorithm} compression with 1 cores for {target}")
            out = compressor if compressor is not None else raw
            compression = scheme.algorithm or "no compression"
            try:
                if scheme.archive == "tar":
                    ui.say(f"Tarring {target} with {compression}")
                    _tar(files, out)
                elif scheme.archive == "zip":
                    ui.say(f"Zipping {target}")
                    _zip(files, out, level)
                else:
                    if len(files) != 1:
                        raise BuildError(
                            "Can only have 1 input file when not using tar/zip. "
                            f"Found {len(files)} files: {_go_list(files)}"
                        )
                    ui.say(f"Archiving {files[0]} with {compression}")
                    try:
                        with open(files[0], "rb") as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                    except OSError as exc:
                        raise BuildError(f"Failed to compress {files[0]}: {exc.strerror or exc}") from exc
            finally:
                if compressor is not None:
                    compressor.close()
        ui.say(f"Archive {target} completed")
        return result, False, False
