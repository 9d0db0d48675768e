"""A TLS front for the local stack (test code only): HTTPS on a loopback port, plain TCP behind it.

The certificate is self-signed, made when the front starts (``cryptography``), for ``127.0.0.1``
and ``localhost``: a client that verifies certificates against its CA bundle rejects it, as it would
a real endpoint with an untrusted certificate; one that skips verification gets through to the
upstream (moto or the recording proxy), byte for byte.

Each accepted connection is handshaken and relayed in its own thread, so a client that refuses the
certificate never blocks the others. ``handshakes`` counts completed handshakes and ``refused``
records why the failed ones failed (the OpenSSL alert the client sent, e.g. ``unknown ca``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import select
import socket
import ssl
import tempfile
import threading
import urllib.parse
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A fresh P-256 key and a one-day self-signed certificate for 127.0.0.1/localhost, as PEM
    files in ``directory``: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amibake test TLS front")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
        ]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "front.crt", directory / "front.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class TlsFront:
    """``https://127.0.0.1:PORT`` -> ``upstream`` (an ``http://`` URL on loopback)."""

    def __init__(self, upstream: str, *, handshake_timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self._up = (parts.hostname, parts.port or 80)
        self._handshake_timeout = handshake_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="amibake-tlsfront-")
        self.cert, self._key = self_signed(Path(self._dir.name))
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(self.cert, self._key)
        self._lock = threading.Lock()
        #: completed TLS handshakes
        self.handshakes = 0
        #: why failed handshakes failed (the client's alert, as OpenSSL words it)
        self.refused: list[str] = []
        self._refusal = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        if self._sock is None:
            raise RuntimeError("the TLS front is not started")
        return f"https://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.settimeout(0.2)  # so that stop() is noticed
        self._sock = sock
        self._spawn(self._accept_loop)
        return self.url

    def stop(self) -> None:
        self._stopping.set()
        for t in list(self._threads):
            t.join(5)
        if self._sock is not None:
            self._sock.close()
        self._dir.cleanup()

    def __enter__(self) -> TlsFront:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_refused(self, timeout: float = 30.0) -> list[str]:
        """The refusals, once at least one was seen (the client may give up before this side's
        thread has read its alert); empty if none came within ``timeout``."""
        self._refusal.wait(timeout)
        with self._lock:
            return list(self.refused)

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="tlsfront")  # type: ignore[arg-type]
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(self._handshake_timeout)
        try:
            tls = self._ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            with self._lock:
                self.refused.append(getattr(exc, "reason", None) or str(exc))
            self._refusal.set()
            raw.close()
            return
        with self._lock:
            self.handshakes += 1
        try:
            up = socket.create_connection(self._up, timeout=10)
        except OSError:
            tls.close()
            return
        with contextlib.closing(tls), contextlib.closing(up):
            self._pump(tls, up)

    def _pump(self, tls: ssl.SSLSocket, up: socket.socket) -> None:
        tls.setblocking(False)
        up.setblocking(False)
        while not self._stopping.is_set():
            # bytes OpenSSL already decrypted are not visible to select(): drain them first
            ready = [tls] if tls.pending() else select.select([tls, up], [], [], 0.2)[0]
            for src in ready:
                dst = up if src is tls else tls
                try:
                    data = src.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (ssl.SSLError, OSError):
                    return
                if not data:
                    return
                try:
                    self._send_all(dst, data)
                except OSError:
                    return

    def _send_all(self, sock: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = sock.send(view)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                select.select([], [sock], [], 1.0)
                continue
            view = view[n:]
