"""A fault-injecting, state-delaying HTTP proxy in front of the moto server (test code only).

amibake (or Packer, or boto3) is pointed at the proxy's URL instead of moto's. The proxy forwards
every request to moto and can:

* answer a fraction of EC2 calls with throttling (HTTP 503, ``RequestLimitExceeded``) or a server
  error (HTTP 500, ``InternalError``) *without* forwarding them, as AWS does when it sheds load;
* make resources read as not-yet-ready for a while: moto flips states at once (an instance is
  ``running`` on the first DescribeInstances, an AMI ``available`` on the first DescribeImages), so
  the proxy rewrites Describe* answers to ``pending`` / ``stopping`` / ``shutting-down`` until the
  configured number of seconds after it saw the resource created, stopped or terminated.

For benchmarks it records, per resource, when it became ready (``ready_at[id][state]``, monotonic
clock) and when a Describe answer first showed the client that state (``first_seen_ready``), so
polling lag is ``first_seen_ready[id][state] - ready_at[id][state]``.

Two behaviours of AWS the tests need and moto lacks:

* ``lose_answer={"CreateImage": "500"}``: the first call of each named action (any service) is
  forwarded to moto and carried out, then its answer is lost: the client gets HTTP 500
  ``InternalError`` (``"500"``) or the connection is closed with no answer at all (``"drop"``).
  That is the ambiguous failure a retried create call must survive without making a second one.
  ``"refuse"`` answers the first call 500 *without* forwarding it (nothing was done: a retry that
  looks for what it may have made must find nothing of its own);
* ``client_tokens=True``, an *emulation* of EC2's idempotent requests ("Ensuring idempotency in
  Amazon EC2 API requests"): a request carrying a ``ClientToken`` already answered successfully
  (same account, region and action) gets the first answer again and nothing is forwarded; the
  same token with other parameters is refused with ``IdempotentParameterMismatch``. moto ignores
  client tokens (a retried RunInstances launches a second instance).

``/moto-api/`` calls are forwarded untouched and never faulted. Loopback only.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import json
import random
import re
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DELAY_KINDS = ("instance_pending", "instance_stopping", "image_pending", "instance_shutting_down")

#: instance state name -> code, as EC2 reports them
_STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64,
                "stopped": 80}

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "content-length", "content-encoding"}

_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")
_IMAGE_ID = re.compile(r"<imageId>(ami-[0-9a-f]+)</imageId>")


#: AWS's documented answers to EC2 actions moto lacks (for ``AwsProxy(emulate=...)``)
EMULATED = {
    "EnableImageDeregistrationProtection": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<EnableImageDeregistrationProtectionResponse '
        'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>emulated</requestId>'
        "<return>true</return></EnableImageDeregistrationProtectionResponse>"
    ),
    "EnableImageDeprecation": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<EnableImageDeprecationResponse '
        'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>emulated</requestId>'
        "<return>true</return></EnableImageDeprecationResponse>"
    ),
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _error_xml(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


@dataclass(frozen=True)
class Request:
    """One request the proxy relayed: what a test asserts "the request sent" with."""

    service: str
    #: the query-protocol Action (``RunInstances``), or the JSON protocol's ``X-Amz-Target`` operation
    action: str
    #: flattened query parameters (``TagSpecification.1.Tag.1.Key``), first value of each
    params: dict[str, str]
    #: the access key id that signed the request (SigV4 ``Credential=``)
    access_key: str
    #: a JSON-protocol body, parsed (empty for query-protocol calls)
    json_body: Any = None
    #: the signing region
    region: str = ""
    #: the session token sent with the request (``X-Amz-Security-Token``)
    security_token: str = ""
    #: the HTTP status of the answer the client got (the proxy's own for an injected fault)
    status: int = 0
    #: the body of that answer (as the client got it: after any state rewrite)
    response: bytes = b""

    def values(self, prefix: str) -> list[str]:
        """Values of the flattened list parameter ``prefix`` (``SecurityGroupId`` -> .1, .2 ...)."""
        out = []
        i = 1
        while f"{prefix}.{i}" in self.params:
            out.append(self.params[f"{prefix}.{i}"])
            i += 1
        return out

    def tags(self, resource_type: str) -> dict[str, str]:
        """The tags of the TagSpecification for ``resource_type`` in this request."""
        i = 1
        while f"TagSpecification.{i}.ResourceType" in self.params:
            if self.params[f"TagSpecification.{i}.ResourceType"] == resource_type:
                out, j = {}, 1
                while f"TagSpecification.{i}.Tag.{j}.Key" in self.params:
                    out[self.params[f"TagSpecification.{i}.Tag.{j}.Key"]] = self.params.get(
                        f"TagSpecification.{i}.Tag.{j}.Value", "")
                    j += 1
                return out
            i += 1
        return {}


class AwsProxy:
    """A small threaded HTTP proxy in front of the moto server (loopback only)."""

    def __init__(
        self,
        upstream: str,
        *,
        throttle_rate: float = 0.0,
        error_rate: float = 0.0,
        seed: int = 0,
        delays: Mapping[str, float] | None = None,
        emulate: Mapping[str, str] | None = None,
        lose_answer: Mapping[str, str] | None = None,
        client_tokens: bool = False,
    ) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream
        #: EC2 actions moto does not implement, answered here with the given (successful) XML body:
        #: emulation of AWS's documented answer, so a test can check the request that was sent
        self.emulate: dict[str, str] = dict(emulate or {})
        bad = {k: v for k, v in (lose_answer or {}).items() if v not in ("500", "drop", "refuse")}
        if bad:
            raise ValueError(f"lose_answer takes '500', 'drop' or 'refuse' per action, got {bad}")
        #: action -> how its first answer is lost ("500" or "drop" after moto carried it out,
        #: "refuse": a 500 without forwarding)
        self.lose_answer: dict[str, str] = dict(lose_answer or {})
        #: the requests whose answer was lost (carried out by moto; the client saw a 500 or nothing)
        self.lost: list[Request] = []
        #: emulate EC2's client-token idempotency
        self.client_tokens = client_tokens
        #: (access key, region, action, token) -> (the other parameters, the first answer)
        self._tokens: dict[tuple[str, str, str, str], tuple[list[tuple[str, str]], bytes]] = {}
        #: the requests answered from a client token, without reaching moto
        self.replayed: list[Request] = []
        self._up_host = parts.hostname
        self._up_port = parts.port or 80
        if not 0.0 <= throttle_rate + error_rate <= 1.0:
            raise ValueError("throttle_rate + error_rate must be within [0, 1]")
        self.throttle_rate = throttle_rate
        self.error_rate = error_rate
        unknown = set(delays or {}) - set(DELAY_KINDS)
        if unknown:
            raise ValueError(f"unknown delay kinds {sorted(unknown)}; known: {', '.join(DELAY_KINDS)}")
        self.delays: dict[str, float] = {k: float((delays or {}).get(k, 0.0)) for k in DELAY_KINDS}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        #: EC2 Action counts seen (faulted ones included)
        self.calls: Counter[str] = Counter()
        #: every request relayed (EC2, IAM, STS... query-protocol and JSON-protocol calls alike) with its
        #: answer, in the order the answers went out (a client's sequential calls keep their order)
        self.requests: list[Request] = []
        #: faults injected, by kind ("throttle", "error")
        self.faults: Counter[str] = Counter()
        #: resource id -> event ("created", "stopped", "terminated") -> monotonic time the proxy saw it
        self.events: dict[str, dict[str, float]] = {}
        #: resource id -> ready state ("running", "stopped", "terminated", "available") -> monotonic time
        self.ready_at: dict[str, dict[str, float]] = {}
        #: resource id -> ready state -> monotonic time a Describe answer first showed it to the client
        self.first_seen_ready: dict[str, dict[str, float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving on a free loopback port; return the proxy URL."""
        if self._server is not None:
            return self.url
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="awsproxy", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> AwsProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions ------------------------------------------------------------------------

    def sent(self, action: str, service: str = "") -> list[Request]:
        """The requests of one action (and service, when given) relayed so far."""
        with self._lock:
            return [r for r in self.requests if r.action == action and (not service or r.service == service)]

    def _fault_for(self) -> str:
        with self._lock:
            x = self._rng.random()
        if x < self.throttle_rate:
            return "throttle"
        if x < self.throttle_rate + self.error_rate:
            return "error"
        return ""

    def _note(self, rid: str, event: str, ready_state: str, delay_kind: str) -> None:
        now = time.monotonic()
        with self._lock:
            ev = self.events.setdefault(rid, {})
            if event in ev:
                return
            ev[event] = now
            self.ready_at.setdefault(rid, {})[ready_state] = now + self.delays[delay_kind]

    def _hold(self, rid: str, event: str, delay_kind: str) -> bool:
        """True while ``rid`` should still read as not ready after ``event``."""
        delay = self.delays[delay_kind]
        with self._lock:
            at = self.events.get(rid, {}).get(event)
        if at is None:
            # not seen being created/stopped through the proxy: hold from the first sight
            if delay <= 0:
                return False
            self._note(rid, event, {"created": "running", "stopped": "stopped",
                                    "terminated": "terminated"}.get(event, "available"), delay_kind)
            return True
        return time.monotonic() < at + delay

    def _seen_ready(self, rid: str, state: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.first_seen_ready.setdefault(rid, {}).setdefault(state, now)

    # -- response handling ----------------------------------------------------------------

    def observe(self, action: str, body: bytes) -> bytes:
        """Record what a successful EC2 answer created; rewrite states that should not show yet."""
        text = body.decode("utf-8", "replace")
        if action in ("RunInstances", "CreateFleet", "RequestSpotInstances"):
            for iid in set(_INSTANCE_ID.findall(text)):
                self._note(iid, "created", "running", "instance_pending")
            return body
        if action in ("CreateImage", "CopyImage", "RegisterImage"):
            for ami in _IMAGE_ID.findall(text):
                self._note(ami, "created", "available", "image_pending")
            return body
        if action == "StopInstances":
            for iid in set(_INSTANCE_ID.findall(text)):
                self._note(iid, "stopped", "stopped", "instance_stopping")
            return self._rewrite(body, "currentState")
        if action == "TerminateInstances":
            for iid in set(_INSTANCE_ID.findall(text)):
                self._note(iid, "terminated", "terminated", "instance_shutting_down")
            return self._rewrite(body, "currentState")
        if action == "DescribeInstances":
            return self._rewrite(body, "instanceState")
        if action == "DescribeImages":
            return self._rewrite_images(body)
        return body

    def _instance_view(self, iid: str, state: str) -> str:
        """The state the client should see for instance ``iid`` whose real state is ``state``."""
        if state == "running" and self._hold(iid, "created", "instance_pending"):
            return "pending"
        if state == "stopped" and self._hold(iid, "stopped", "instance_stopping"):
            return "stopping"
        if state == "terminated" and self._hold(iid, "terminated", "instance_shutting_down"):
            return "shutting-down"
        return state

    def _rewrite(self, body: bytes, state_tag: str) -> bytes:
        if not any(self.delays.values()) and state_tag == "currentState":
            return body
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return body
        changed = False
        for parent in root.iter():
            iid = ""
            state_el = None
            for child in parent:
                tag = _local(child.tag)
                if tag == "instanceId":
                    iid = (child.text or "").strip()
                elif tag == state_tag:
                    state_el = child
            if not iid or state_el is None:
                continue
            name_el = code_el = None
            for child in state_el:
                if _local(child.tag) == "name":
                    name_el = child
                elif _local(child.tag) == "code":
                    code_el = child
            if name_el is None:
                continue
            real = (name_el.text or "").strip()
            shown = self._instance_view(iid, real)
            if shown != real:
                name_el.text = shown
                if code_el is not None:
                    code_el.text = str(_STATE_CODES[shown])
                changed = True
            elif state_tag == "instanceState" and real in ("running", "stopped", "terminated"):
                self._seen_ready(iid, real)
        return self._serialize(root) if changed else body

    def _rewrite_images(self, body: bytes) -> bytes:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return body
        changed = False
        for parent in root.iter():
            ami = ""
            state_el = None
            for child in parent:
                tag = _local(child.tag)
                if tag == "imageId":
                    ami = (child.text or "").strip()
                elif tag == "imageState":
                    state_el = child
            if not ami or state_el is None:
                continue
            real = (state_el.text or "").strip()
            if real == "available" and self._hold(ami, "created", "image_pending"):
                state_el.text = "pending"
                changed = True
            elif real == "available":
                self._seen_ready(ami, real)
        return self._serialize(root) if changed else body

    @staticmethod
    def _serialize(root: ET.Element) -> bytes:
        ns = _namespace(root.tag)
        if ns:
            out = ET.tostring(root, encoding="unicode", default_namespace=ns)
        else:
            out = ET.tostring(root, encoding="unicode")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + out).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: AwsProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _relay(self) -> None:
        proxy = self.owner
        body = self._read_body()
        action, service = "", ""
        request: Request | None = None
        is_moto_api = self.path.startswith("/moto-api")
        if not is_moto_api:
            query = urllib.parse.urlsplit(self.path).query
            ctype = self.headers.get("Content-Type", "")
            form = body.decode("utf-8", "replace") if "x-www-form-urlencoded" in ctype else ""
            params = urllib.parse.parse_qs(f"{form}&{query}", keep_blank_values=True)
            action = params.get("Action", [""])[0]
            auth = self.headers.get("Authorization", "")
            m = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", auth)
            service = m.group(3) if m else ("ec2" if action else "")
            target = self.headers.get("X-Amz-Target", "")
            json_body: Any = None
            if target and "json" in ctype:
                try:
                    json_body = json.loads(body or b"{}")
                except ValueError:
                    json_body = None
            request = Request(
                service=service, action=action or target.rsplit(".", 1)[-1],
                params={k: v[0] for k, v in params.items() if k},
                access_key=m.group(1) if m else "", json_body=json_body,
                region=m.group(2) if m else "",
                security_token=self.headers.get("X-Amz-Security-Token", ""),
            )
        ec2 = bool(action) and service == "ec2"
        if ec2 and action in proxy.emulate:
            answer = proxy.emulate[action].encode()
            self._record(request, 200, answer)
            self._answer(200, answer)
            return
        token_key: tuple[str, str, str, str] | None = None
        others: list[tuple[str, str]] = []
        if ec2 and request is not None and proxy.client_tokens and request.params.get("ClientToken"):
            token_key = (request.access_key, request.region, action, request.params["ClientToken"])
            others = sorted((k, v) for k, v in request.params.items() if k != "ClientToken")
            with proxy._lock:
                first = proxy._tokens.get(token_key)
            if first is not None:
                if first[0] != others:
                    data = _error_xml("IdempotentParameterMismatch",
                                      "The client token you have provided is associated with a resource "
                                      "that is already deleted or with different parameters.")
                    self._record(request, 400, data)
                    self._answer(400, data)
                    return
                with proxy._lock:
                    proxy.replayed.append(request)
                self._record(request, 200, first[1])
                self._answer(200, first[1])
                return
        if ec2:
            with proxy._lock:
                proxy.calls[action] += 1
            fault = proxy._fault_for()
            if fault:
                with proxy._lock:
                    proxy.faults[fault] += 1
                if fault == "throttle":
                    status, data = 503, _error_xml("RequestLimitExceeded", "Request limit exceeded.")
                else:
                    status, data = 500, _error_xml("InternalError", "An internal error has occurred.")
                self._record(request, status, data)
                self._answer(status, data)
                return
        if request is not None and proxy.lose_answer.get(request.action) == "refuse":
            with proxy._lock:
                refused = proxy.lose_answer.pop(request.action, "") == "refuse"
            if refused:
                data = _error_xml("InternalError", "An internal error has occurred.")
                self._record(request, 500, data)
                self._answer(500, data)
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn = http.client.HTTPConnection(proxy._up_host, proxy._up_port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            if (resp.getheader("Content-Encoding") or "").lower() == "gzip":
                data = gzip.decompress(data)
        except OSError as exc:
            data = _error_xml("ProxyError", f"upstream unreachable: {exc}")
            self._record(request, 502, data)
            self._answer(502, data)
            return
        finally:
            conn.close()
        if ec2 and status == 200:
            data = proxy.observe(action, data)
        if token_key is not None and status == 200:
            with proxy._lock:
                proxy._tokens.setdefault(token_key, (others, data))
        how = ""
        if request is not None and status == 200 and request.action in proxy.lose_answer:
            with proxy._lock:
                how = proxy.lose_answer.pop(request.action, "")
                if how:
                    proxy.lost.append(request)
        if how == "drop":
            # carried out, and the connection closed with no answer (a reset after forwarding)
            self._record(request, 0, b"")
            self.close_connection = True
            return
        if how == "500":
            data = _error_xml("InternalError", "An internal error has occurred.")
            self._record(request, 500, data)
            self._answer(500, data)
            return
        self._record(request, status, data)
        self._answer(status, data, out_headers)

    def _read_body(self) -> bytes:
        """The request body, by Content-Length or chunked transfer coding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            del self.headers["Transfer-Encoding"]
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, request: Request | None, status: int, data: bytes) -> None:
        """Keep a relayed request with the answer the client got (in the order answers went out)."""
        if request is None:
            return
        with self.owner._lock:
            self.owner.requests.append(dataclasses.replace(request, status=status, response=data))

    def _answer(self, status: int, data: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        sent_type = False
        for k, v in headers or []:
            sent_type = sent_type or k.lower() == "content-type"
            self.send_header(k, v)
        if not sent_type:
            self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _relay
