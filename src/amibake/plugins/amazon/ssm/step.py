"""Packer's StepCreateSSMTunnel (``ssh_interface = "session_manager"``), run by StepConnect just
before it connects: wait ``pause_before_ssm``, take the local port (``session_manager_port``, else a
free one), StartSession with the port-forwarding document (retried while the target is not
connected), open the tunnel. SSH then goes to ``localhost`` on that port.

The session's end is registered as an undo the moment StartSession answers: the tunnel closes, then
TerminateSession. A session is not journaled: the run journal has no kind for it and none is
needed, as a session ends by itself when its instance goes, which the journal does cover.
"""

from __future__ import annotations

import time
from typing import Any

from amibake.aws.errors import AwsError
from amibake.config.durations import format_duration
from amibake.errors import BuildError
from amibake.plugins.amazon.ec2_ssm import SsmGateway
from amibake.plugins.amazon.ssm.tunnel import SessionInfo, Tunnel, TunnelError, bind_local
from amibake.steps.context import BuildCancelled, StepContext

#: Packer's StartSession retry: while TargetNotConnected, linear from 200 ms, at most 60 s apart
RETRY_STEP = 0.2
RETRY_MAX = 60.0


def _info(answer: dict[str, Any], session_id: str = "") -> SessionInfo:
    return SessionInfo(str(answer.get("SessionId") or session_id), str(answer.get("TokenValue") or ""),
                       str(answer.get("StreamUrl") or ""))


def open_tunnel(st: Any, ctx: StepContext) -> int:
    """Start the session and its tunnel; the local port SSH connects to."""
    s = st.config
    ui = st.ui
    if s.pause_before_ssm > 0:
        ui.say(f"Waiting {format_duration(s.pause_before_ssm)} before establishing the SSM session...")
        if ctx.cancel.wait(s.pause_before_ssm):
            raise BuildCancelled("cancelled while pausing before the SSM session")
    try:
        sock = bind_local(int(s.session_manager_port or 0))
    except OSError as exc:
        raise BuildError(f"error finding an available port to initiate a session tunnel: {exc}") from exc
    inst = st.instance
    if inst is None:
        sock.close()
        raise BuildError("error encountered in obtaining target instance id for session tunnel")
    port = int(sock.getsockname()[1])
    gateway = SsmGateway(s.aws_access(), s.polling(), pause=ctx.pause)
    try:
        answer = _start(gateway, inst.id, s.ssh_port or 22, port, float(s.ssh_timeout or 300), ctx)
    except BaseException:
        sock.close()
        raise
    session = _info(answer)
    tunnel = Tunnel(sock, session, resume=lambda sid: _resume(gateway, sid))
    ctx.defer(f"SSM session {session.session_id}", lambda: _end(st, gateway, tunnel, session.session_id))
    ui.message(f'Starting portForwarding session "{session.session_id}".')
    try:
        tunnel.start(timeout=max(30.0, float(s.ssh_timeout or 0)), cancel=ctx.cancel)
    except TunnelError as exc:
        if ctx.cancel.is_set():
            raise BuildCancelled(str(exc)) from exc
        raise BuildError(f"ssm error: {exc}") from exc
    st.ssm_tunnel = tunnel
    return port


def _start(gateway: SsmGateway, instance_id: str, remote: int, local: int, limit: float,
           ctx: StepContext) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    attempt = 0
    while True:
        try:
            return gateway.start_port_session(instance_id, remote, local)
        except AwsError as exc:
            if exc.code != "TargetNotConnected" or time.monotonic() >= deadline:
                raise BuildError(f"ssm error: error encountered in starting session for instance "
                                 f'"{instance_id}": {exc}') from exc
        attempt += 1
        if ctx.cancel.wait(min(RETRY_MAX, RETRY_STEP * attempt)):
            raise BuildCancelled("cancelled while starting the SSM session")


def _resume(gateway: SsmGateway, session_id: str) -> SessionInfo | None:
    answer = gateway.resume_session(session_id)
    info = _info(answer, session_id)
    return info if info.token else None


def _end(st: Any, gateway: SsmGateway, tunnel: Tunnel, session_id: str) -> None:
    tunnel.close()
    try:
        gateway.terminate_session(session_id)
    except AwsError as exc:
        st.ui.error(f'Error terminating SSM Session "{session_id}". Please terminate the session manually: '
                    f"{exc}")
