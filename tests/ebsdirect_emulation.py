"""EMULATION of the EBS direct APIs' checks (test code only): an HTTP proxy in front of the moto server
(or of the recording :class:`tests.awsproxy.AwsProxy`) that gives the stack what moto 5.2's EBS lacks.

Built from AWS's published behaviour (the EBS direct API reference for StartSnapshot,
PutSnapshotBlock, CompleteSnapshot, ListSnapshotBlocks, GetSnapshotBlock and its error shapes in the
published service model; the EBS user guide "Use checksums" and "Write snapshots"), not from amibake:

* **Block size.** AWS answers ``BlockSize`` 524288 (512 KiB); moto answers 512. StartSnapshot,
  ListSnapshotBlocks and ListChangedBlocks answers are rewritten to 524288. moto stores each
  PutSnapshotBlock body whole under its index, whatever its length, and GetSnapshotBlock gives that
  body back, so moto's store is kept: an index here is a 512 KiB block index, and nothing needs
  splitting into moto's 512-byte units (which only its ``BlockSize`` field claims).
* **PutSnapshotBlock** (``PUT /snapshots/{id}/blocks/{index}``) is refused with a ValidationException
  (HTTP 400) when: the body is not exactly 524288 bytes or differs from ``x-amz-Data-Length``
  (``INVALID_BLOCK``); the index is outside the volume (``VolumeSize`` GiB / 512 KiB blocks,
  ``INVALID_PARAMETER_VALUE``); ``x-amz-Checksum-Algorithm`` is not ``SHA256`` or ``x-amz-Checksum``
  is not the base64 SHA-256 of the body (``INVALID_BLOCK``: "The data in the block does not match
  the checksum"); the snapshot is not ``pending`` (completed, unknown: ``INVALID_SNAPSHOT_ID``).
* **CompleteSnapshot** checks ``x-amz-ChangedBlocksCount`` against the blocks written, and with
  ``x-amz-Checksum-Aggregation-Method: LINEAR`` the aggregate: "the checksum of the concatenation of
  the checksums of the blocks, in order of block index", i.e. SHA-256 over the blocks' (decoded)
  SHA-256 digests in index order, base64. A mismatch fails the snapshot: the answer is ``Status``
  ``error`` and the snapshot is left in error (moto's is never completed).
* **Snapshot state**: DescribeSnapshots (EC2) shows a snapshot started here ``pending`` (progress 0%)
  until CompleteSnapshot succeeded, and ``error`` after a failed one, as AWS does; moto's shows
  ``completed`` from StartSnapshot on.
* **StartSnapshot idempotency**: a repeated ``ClientToken`` answers the first call's snapshot again
  (moto ignores client tokens); ``VolumeSize`` must be 1..65536 GiB and ``Timeout`` 10..4320 minutes.
  moto's StartSnapshot also creates an EC2 *volume* to hang its snapshot on, which AWS does not: the
  emulation deletes it right away, so the stack holds what AWS would.
* **Faults**: ``faults={"PutSnapshotBlock": ["throttle", "500", ...]}`` answers the next calls of an
  action, one per entry, with ``throttle`` (HTTP 400 RequestThrottledException, ``ACCOUNT_THROTTLED``),
  ``429`` (ThrottlingException), ``500`` (InternalServerException) or ``503`` (ServiceUnavailable),
  without forwarding them; ``None`` entries let a call through.

Every EBS request is kept (``requests``: action, snapshot, index, headers, JSON body, status); bodies
of blocks are not kept. EC2 and other services pass through untouched.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

BLOCK_SIZE = 524288
GIB = 1 << 30
FAULT_KINDS = ("throttle", "429", "500", "503")
#: (HTTP status, body, headers) of one answer
Answer = tuple[int, bytes, list[tuple[str, str]]]

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "content-length", "content-encoding"}
_PATHS = (
    ("PUT", re.compile(r"^/snapshots/(?P<id>[^/]+)/blocks/(?P<index>\d+)$"), "PutSnapshotBlock"),
    ("GET", re.compile(r"^/snapshots/(?P<id>[^/]+)/blocks/(?P<index>\d+)$"), "GetSnapshotBlock"),
    ("GET", re.compile(r"^/snapshots/(?P<id>[^/]+)/blocks$"), "ListSnapshotBlocks"),
    ("GET", re.compile(r"^/snapshots/(?P<id>[^/]+)/changedblocks$"), "ListChangedBlocks"),
    ("POST", re.compile(r"^/snapshots/completion/(?P<id>[^/]+)$"), "CompleteSnapshot"),
    ("POST", re.compile(r"^/snapshots$"), "StartSnapshot"),
)


@dataclass
class EbsRequest:
    action: str
    snapshot_id: str
    index: int | None
    headers: dict[str, str]
    body: dict[str, Any] | None
    status: int = 0


@dataclass
class Snapshot:
    snapshot_id: str
    volume_size: int
    status: str = "pending"
    #: block index -> SHA-256 digest of the block accepted last at that index
    digests: dict[int, bytes] = field(default_factory=dict)


class EbsDirectEmulation:
    """The proxy (loopback only). ``upstream``: the moto server's URL or a proxy in front of it."""

    def __init__(self, upstream: str, *, faults: Mapping[str, Sequence[str | None]] | None = None,
                 region: str = "us-east-1") -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        bad = {k for v in (faults or {}).values() for k in v if k is not None and k not in FAULT_KINDS}
        if bad:
            raise ValueError(f"unknown fault kinds {sorted(bad)}; known: {', '.join(FAULT_KINDS)}")
        self.upstream = upstream
        self.region = region
        self._up = (parts.hostname, parts.port or 80)
        self._faults: dict[str, list[str | None]] = {k: list(v) for k, v in (faults or {}).items()}
        self._lock = threading.Lock()
        self.snapshots: dict[str, Snapshot] = {}
        self._tokens: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.requests: list[EbsRequest] = []
        #: faults answered, by kind
        self.faults_sent: Counter[str] = Counter()
        #: refusals by reason (INVALID_BLOCK...)
        self.refused: Counter[str] = Counter()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        if self._server is None:
            owner = self

            class Handler(_Handler):
                emulation = owner

            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="ebsdirect-emulation", daemon=True)
            self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulation is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> EbsDirectEmulation:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sent(self, action: str) -> list[EbsRequest]:
        with self._lock:
            return [r for r in self.requests if r.action == action]

    def _next_fault(self, action: str) -> str | None:
        with self._lock:
            pending = self._faults.get(action)
            if not pending:
                return None
            kind = pending.pop(0)
            if kind:
                self.faults_sent[kind] += 1
            return kind

    def snapshot_states(self, xml: bytes) -> bytes:
        """DescribeSnapshots as AWS answers it: a snapshot started here is ``pending`` until
        CompleteSnapshot succeeded (``error`` when it failed); moto shows ``completed`` at once."""
        with self._lock:
            states = {sid: s.status for sid, s in self.snapshots.items() if s.status != "completed"}
        if not states:
            return xml
        parts = xml.split(b"<item>")
        for i, part in enumerate(parts):
            m = re.search(rb"<snapshotId>([^<]+)</snapshotId>", part)
            state = states.get(m.group(1).decode()) if m else None
            if state:
                part = part.replace(b"<status>completed</status>", f"<status>{state}</status>".encode(), 1)
                parts[i] = part.replace(b"<progress>100%</progress>", b"<progress>0%</progress>", 1)
        return b"<item>".join(parts)

    def _delete_side_volume(self, snapshot_id: str, key: str) -> None:
        """moto's StartSnapshot made an EC2 volume for its snapshot; AWS makes none."""
        ec2 = boto3.client("ec2", endpoint_url=self.upstream, region_name=self.region,
                           aws_access_key_id=key or "testing", aws_secret_access_key="testing")
        for snap in ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]:
            vid = snap.get("VolumeId", "")
            if vid:
                ec2.delete_volume(VolumeId=vid)


def _error(code: str, message: str, status: int, reason: str = "") -> Answer:
    body: dict[str, Any] = {"__type": code, "message": message}
    if reason:
        body["Reason"] = reason
    return status, json.dumps(body).encode(), [("x-amzn-ErrorType", code),
                                               ("Content-Type", "application/json")]


_FAULT_ANSWERS = {
    "throttle": ("RequestThrottledException", "Request throttled", 400, "ACCOUNT_THROTTLED"),
    "429": ("ThrottlingException", "Rate exceeded", 429, ""),
    "500": ("InternalServerException", "An internal error has occurred", 500, ""),
    "503": ("ServiceUnavailable", "Service unavailable", 503, ""),
}


class _Handler(BaseHTTPRequestHandler):
    emulation: EbsDirectEmulation
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            del self.headers["Transfer-Encoding"]
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        em = self.emulation
        body = self._read_body()
        auth = self.headers.get("Authorization", "")
        m = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", auth)
        service = m.group(3) if m else ""
        path = urllib.parse.urlsplit(self.path).path
        action, sid, index = "", "", None
        if service == "ebs":
            for method, pattern, name in _PATHS:
                pm = pattern.match(path)
                if pm and method == self.command:
                    action, sid = name, urllib.parse.unquote(pm.groupdict().get("id", "") or "")
                    index = int(pm.group("index")) if "index" in pm.groupdict() else None
                    break
        if not action:
            status, data, headers = self._forward(body)
            if service == "ec2" and status == 200 and b"Action=DescribeSnapshots" in body:
                data = em.snapshot_states(data)
            self._answer(status, data, headers)
            return
        json_body: dict[str, Any] | None = None
        if action == "StartSnapshot":
            try:
                json_body = json.loads(body or b"{}")
            except ValueError:
                json_body = None
        req = EbsRequest(action, sid, index, {k.lower(): v for k, v in self.headers.items()}, json_body)
        with em._lock:
            em.requests.append(req)
        fault = em._next_fault(action)
        if fault:
            answer = _error(*_FAULT_ANSWERS[fault])
        else:
            answer = getattr(self, f"_{action}")(req, body, m.group(1) if m else "")
        req.status = answer[0]
        self._answer(*answer)

    # -- the actions ----------------------------------------------------------------------

    def _StartSnapshot(self, req: EbsRequest, body: bytes, key: str) -> Answer:
        em = self.emulation
        p = req.body or {}
        size = p.get("VolumeSize")
        if not isinstance(size, int) or not 1 <= size <= 65536:
            return _error("ValidationException", f"Invalid volume size {size}", 400, "INVALID_VOLUME_SIZE")
        timeout = p.get("Timeout")
        if timeout is not None and not (isinstance(timeout, int) and 10 <= timeout <= 4320):
            return _error("ValidationException", f"Invalid timeout {timeout}", 400, "INVALID_PARAMETER_VALUE")
        token = str(p.get("ClientToken", ""))
        if token:
            with em._lock:
                first = em._tokens.get(token)
            if first is not None:
                others = {k: v for k, v in p.items() if k != "ClientToken"}
                if first[0] != others:
                    return _error("ValidationException", "The client token was used with other parameters",
                                  400, "INVALID_PARAMETER_VALUE")
                return 201, first[1], [("Content-Type", "application/json")]
        status, data, headers = self._forward(body)
        if status not in (200, 201):
            return status, data, headers
        answer = json.loads(data)
        answer["BlockSize"] = BLOCK_SIZE
        snap = Snapshot(str(answer["SnapshotId"]), int(answer.get("VolumeSize") or size))
        out = json.dumps(answer).encode()
        with em._lock:
            em.snapshots[snap.snapshot_id] = snap
            if token:
                em._tokens[token] = ({k: v for k, v in p.items() if k != "ClientToken"}, out)
        em._delete_side_volume(snap.snapshot_id, key)
        return 201, out, [("Content-Type", "application/json")]

    def _PutSnapshotBlock(self, req: EbsRequest, body: bytes, key: str) -> Answer:
        em = self.emulation
        with em._lock:
            snap = em.snapshots.get(req.snapshot_id)
        h = req.headers
        assert req.index is not None
        problem: tuple[str, str] | None = None
        if snap is None or snap.status != "pending":
            problem = ("INVALID_SNAPSHOT_ID", f"The snapshot {req.snapshot_id} is not pending")
        elif len(body) != BLOCK_SIZE or h.get("x-amz-data-length", "") != str(len(body)):
            problem = ("INVALID_BLOCK", f"The block must be {BLOCK_SIZE} bytes, and x-amz-Data-Length its "
                                        f"length (got {len(body)}, header {h.get('x-amz-data-length')})")
        elif not 0 <= req.index < snap.volume_size * GIB // BLOCK_SIZE:
            problem = ("INVALID_PARAMETER_VALUE", f"Block index {req.index} is outside the volume")
        elif h.get("x-amz-checksum-algorithm", "") != "SHA256":
            problem = ("INVALID_BLOCK", "The checksum algorithm must be SHA256")
        elif h.get("x-amz-checksum", "") != base64.b64encode(hashlib.sha256(body).digest()).decode():
            problem = ("INVALID_BLOCK", "The data in the block does not match the checksum")
        if problem is not None:
            with em._lock:
                em.refused[problem[0]] += 1
            return _error("ValidationException", problem[1], 400, problem[0])
        status, data, headers = self._forward(body)
        if status in (200, 201) and snap is not None:
            with em._lock:
                snap.digests[req.index] = hashlib.sha256(body).digest()
        return status, data, headers

    def _CompleteSnapshot(self, req: EbsRequest, body: bytes, key: str) -> Answer:
        em = self.emulation
        with em._lock:
            snap = em.snapshots.get(req.snapshot_id)
        if snap is None or snap.status != "pending":
            return _error("ValidationException", f"The snapshot {req.snapshot_id} is not pending", 400,
                          "INVALID_SNAPSHOT_ID")
        h = req.headers
        good = h.get("x-amz-changedblockscount", "") == str(len(snap.digests))
        checksum = h.get("x-amz-checksum", "")
        if checksum or h.get("x-amz-checksum-aggregation-method"):
            whole = hashlib.sha256(b"".join(snap.digests[i] for i in sorted(snap.digests))).digest()
            good = good and h.get("x-amz-checksum-algorithm") == "SHA256" \
                and h.get("x-amz-checksum-aggregation-method") == "LINEAR" \
                and checksum == base64.b64encode(whole).decode()
        if not good:
            with em._lock:
                snap.status = "error"
                em.refused["COMPLETE_MISMATCH"] += 1
            return 202, json.dumps({"Status": "error"}).encode(), [("Content-Type", "application/json")]
        status, data, headers = self._forward(body)
        if status in (200, 202):
            with em._lock:
                snap.status = "completed"
        return status, data, headers

    def _rewrite_block_size(self, body: bytes) -> Answer:
        status, data, headers = self._forward(body)
        if status == 200:
            answer = json.loads(data)
            answer["BlockSize"] = BLOCK_SIZE
            data = json.dumps(answer).encode()
        return status, data, headers

    def _ListSnapshotBlocks(self, req: EbsRequest, body: bytes, key: str) -> Answer:
        return self._rewrite_block_size(body)

    def _ListChangedBlocks(self, req: EbsRequest, body: bytes, key: str) -> Answer:
        return self._rewrite_block_size(body)

    def _GetSnapshotBlock(self, req: EbsRequest, body: bytes, key: str) -> Answer:
        return self._forward(body)

    # -- plumbing -------------------------------------------------------------------------

    def _forward(self, body: bytes) -> Answer:
        host, port = self.emulation._up
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            if (resp.getheader("Content-Encoding") or "").lower() == "gzip":
                import gzip

                data = gzip.decompress(data)
            return resp.status, data, out
        except OSError as exc:
            return _error("ProxyError", f"upstream unreachable: {exc}", 502)
        finally:
            conn.close()

    def _answer(self, status: int, data: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length",):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
