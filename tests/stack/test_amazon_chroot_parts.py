"""amazon-chroot's parts on this machine: the chroot communicator in a real ``chroot`` (as root), and the
instance metadata lookup against a metadata endpoint served on loopback (IMDSv2 and the v1 fallback)."""

from __future__ import annotations

import http.server
import io
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from amibake.communicator.chroot import ChrootCommunicator, go_quote
from amibake.errors import CommunicatorError
from amibake.plugins.amazon import imds

#: the programs a minimal root filesystem holds: enough for the shell provisioner's commands
ROOTFS_PROGRAMS = ("sh", "cat", "chmod", "rm", "mkdir", "ls")


def require_root() -> None:
    """chroot and mount need root: skipped elsewhere, a failure under CI."""
    missing = [tool for tool in ("chroot", "mount", "umount", "losetup", "mkfs.ext4", "ldd")
               if shutil.which(tool) is None]
    reason = ("not root" if os.geteuid() != 0 else "") or (f"missing {', '.join(missing)}" if missing else "")
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"amazon-chroot tests need root and {', '.join(missing) or 'chroot'}: {reason}")
        pytest.skip(f"amazon-chroot tests: {reason}")


def make_rootfs(root: Path) -> Path:
    """A minimal root filesystem: /bin/sh and a few programs with the libraries ``ldd`` lists."""
    for sub in ("bin", "tmp", "etc", "proc", "sys", "dev"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    libs: set[str] = set()
    for prog in ROOTFS_PROGRAMS:
        found = shutil.which(prog)
        assert found, prog
        real = os.path.realpath(found)
        shutil.copy2(real, root / "bin" / prog)
        out = subprocess.run(["ldd", real], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            for part in line.split():
                if part.startswith("/"):
                    libs.add(part)
    for lib in libs:
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)
    (root / "tmp").chmod(0o1777)
    return root


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    require_root()
    return make_rootfs(tmp_path / "root")


# ---- the chroot communicator ----------------------------------------------------------------------


def test_go_quote_escapes_as_strconv_quote() -> None:
    assert go_quote('echo "a\\b"\n\t$X') == '"echo \\"a\\\\b\\"\\n\\t$X"'
    assert go_quote("\x01") == '"\\x01"'


def test_commands_run_inside_the_root(rootfs: Path) -> None:
    seen: list[str] = []
    comm = ChrootCommunicator(str(rootfs))
    status = comm.run("ls / > /tmp/listing; cat /tmp/listing; echo 'it''s' \"q\"", stdout=seen.append)
    assert status == 0
    # the listing is the chroot's root, written inside it
    assert (rootfs / "tmp" / "listing").read_text().split() == sorted(p.name for p in rootfs.iterdir()
                                                                     if p.name != "lost+found")
    assert seen[-1] == "its q"
    assert comm.run("exit 7") == 7
    assert comm.run("kill -TERM $$") == 128 + 15


def test_the_command_wrapper_wraps_every_local_command(rootfs: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrapped.log"
    comm = ChrootCommunicator(str(rootfs), wrap=lambda cmd: f"echo {go_quote(cmd)} >> {log}; {cmd}")
    assert comm.run("echo hi > /tmp/hi") == 0
    comm.upload("/tmp/up.txt", b"payload")
    lines = log.read_text().splitlines()
    assert lines[0] == f'chroot {rootfs} /bin/sh -c "echo hi > /tmp/hi"'
    assert lines[1].startswith("cp ") and lines[1].endswith(f" {rootfs}/tmp/up.txt")
    assert (rootfs / "tmp" / "hi").read_text() == "hi\n"


def test_uploads_and_downloads_stay_in_the_root(rootfs: Path, tmp_path: Path) -> None:
    comm = ChrootCommunicator(str(rootfs))
    comm.upload("/tmp/script.sh", b"#!/bin/sh\necho from-script\n", mode=0o755)
    out: list[str] = []
    assert comm.run("/tmp/script.sh", stdout=out.append) == 0 and out == ["from-script"]
    comm.upload("/../../tmp/escape.txt", io.BytesIO(b"inside"))  # ".." never leaves the root
    assert (rootfs / "tmp" / "escape.txt").read_bytes() == b"inside"
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("f")
    (src / ".hidden").write_text("h")
    comm.upload_dir("/tmp", str(src))
    assert (rootfs / "tmp" / "tree" / "sub" / "f.txt").read_text() == "f"
    comm.run("mkdir /tmp/contents")
    comm.upload_dir("/tmp/contents", str(src) + "/")
    assert (rootfs / "tmp" / "contents" / ".hidden").read_text() == "h"
    sink = io.BytesIO()
    comm.download("/tmp/escape.txt", sink)
    assert sink.getvalue() == b"inside"
    comm.download("/tmp/tree/sub/f.txt", tmp_path / "got.txt")
    assert (tmp_path / "got.txt").read_text() == "f"
    with pytest.raises(CommunicatorError, match="DownloadDir is not implemented for amazon-chroot"):
        comm.download_dir("/tmp", str(tmp_path))
    with pytest.raises(CommunicatorError, match="cannot exclude"):
        comm.upload_dir("/tmp", str(src), exclude=["*.txt"])
    with pytest.raises(CommunicatorError, match="cp "):
        comm.upload("/no/such/dir/file", b"x")


# ---- the instance metadata service ----------------------------------------------------------------


class _Metadata(http.server.BaseHTTPRequestHandler):
    token_status = 200
    seen: list[tuple[str, str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.seen.append(("PUT", self.path, self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")))
        if self.token_status != 200:
            self._answer(self.token_status, "")
        else:
            self._answer(200, "tok-123")

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("X-aws-ec2-metadata-token", "")))
        if self.path == "/latest/meta-data/instance-id":
            self._answer(200, "i-0123456789abcdef0\n")
        else:
            self._answer(404, "")


@pytest.fixture
def metadata() -> Iterator[tuple[str, type[_Metadata]]]:
    handler = type("Handler", (_Metadata,), {"seen": [], "token_status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_imds_v2_token_then_instance_id(metadata: tuple[str, type[_Metadata]]) -> None:
    url, handler = metadata
    client = imds.MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": url})
    assert client.instance_id() == "i-0123456789abcdef0"
    assert handler.seen == [("PUT", "/latest/api/token", "21600"),
                            ("GET", "/latest/meta-data/instance-id", "tok-123")]


def test_imds_falls_back_to_v1_as_botocore(metadata: tuple[str, type[_Metadata]]) -> None:
    url, handler = metadata
    handler.token_status = 403
    assert imds.MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": url + "/"}).instance_id() == \
        "i-0123456789abcdef0"
    assert handler.seen[-1] == ("GET", "/latest/meta-data/instance-id", "")
    with pytest.raises(imds.MetadataError, match="AWS_EC2_METADATA_V1_DISABLED"):
        imds.MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": url,
                             "AWS_EC2_METADATA_V1_DISABLED": "true"}).instance_id()
    handler.token_status = 400
    with pytest.raises(imds.MetadataError, match="HTTP 400"):
        imds.MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": url}).instance_id()


def test_imds_endpoint_selection_and_errors(metadata: tuple[str, type[_Metadata]]) -> None:
    url, _ = metadata
    assert imds.endpoint({}) == "http://169.254.169.254/"
    assert imds.endpoint({"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"}) == "http://[fd00:ec2::254]/"
    with pytest.raises(imds.MetadataError, match="ipv4 or ipv6"):
        imds.endpoint({"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "ipx"})
    with pytest.raises(imds.MetadataError, match="disabled"):
        imds.MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": url,
                             "AWS_EC2_METADATA_DISABLED": "true"}).instance_id()
    with pytest.raises(imds.MetadataError, match="has no placement/region"):
        imds.MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": url}).get("placement/region")
    closed = http.server.HTTPServer(("127.0.0.1", 0), _Metadata)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(imds.MetadataError, match="did not answer"):
        imds.MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}"}).instance_id()
