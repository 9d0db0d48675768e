"""The gateway's Session Manager calls: StartSession (a port-forwarding session to an instance),
ResumeSession and TerminateSession, through the shared clients and retry policy like every other
call. The SSM endpoint is the session's (``custom_endpoint_ec2``, else botocore's:
``AWS_ENDPOINT_URL_SSM``, ``AWS_ENDPOINT_URL``, AWS's)."""

from __future__ import annotations

from typing import Any

from amibake.plugins.amazon.ec2_base import GatewayBase

#: the SSM document of a port-forwarding session (Packer's)
PORT_FORWARDING_DOCUMENT = "AWS-StartPortForwardingSession"


class SsmCalls(GatewayBase):
    """StartSession, ResumeSession, TerminateSession."""

    def start_port_session(self, instance_id: str, remote_port: int, local_port: int) -> dict[str, Any]:
        """Packer's StartSessionInput: the document, ``portNumber`` and ``localPortNumber``, the target."""
        return dict(self._call(
            "start_session", service="ssm", DocumentName=PORT_FORWARDING_DOCUMENT, Target=instance_id,
            Parameters={"portNumber": [str(remote_port)], "localPortNumber": [str(local_port)]},
        ))

    def resume_session(self, session_id: str) -> dict[str, Any]:
        return dict(self._call("resume_session", service="ssm", SessionId=session_id))

    def terminate_session(self, session_id: str) -> None:
        self._call("terminate_session", service="ssm", SessionId=session_id)


class SsmGateway(SsmCalls):
    """The Session Manager calls of one build (its access settings, retry policy and region)."""
