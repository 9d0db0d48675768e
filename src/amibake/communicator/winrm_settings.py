"""How to reach a machine over WinRM: the WinRM communicator's input, from a template's ``winrm_*``
options in one place (:func:`winrm_settings`).

Light on purpose (no pywinrm import): builds make it before they connect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WinRMSettings:
    """The SDK's ``winrm.Config`` as Packer's StepConnectWinRM fills it."""

    host: str
    port: int = 5985
    username: str = ""
    password: str = field(default="", repr=False)
    #: total time to wait for WinRM to accept the connection and the connect check (``winrm_timeout``)
    timeout: float = 1800.0
    use_ssl: bool = False
    #: do not check the server's certificate chain and host name (``winrm_insecure``)
    insecure: bool = False
    #: bypass proxies from the environment for this host (``winrm_no_proxy``)
    no_proxy: bool = False
    #: NTLM authentication instead of Basic (``winrm_use_ntlm``); as Packer's, no message encryption
    use_ntlm: bool = False
    #: first pause between connection attempts; doubles up to 2 s
    retry_interval: float = 0.25

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.use_ssl else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/wsman"


def winrm_settings(config: Any, host: str, *, password: str = "") -> WinRMSettings:
    """What the WinRM communicator needs, from a :class:`~amibake.config.communicator.CommunicatorConfig`
    (the one mapping). ``host`` is the machine's address; ``password`` the one the build retrieved
    (Windows password from GetPasswordData) when the template sets none, as Packer's WinRMConfig."""
    return WinRMSettings(
        host=host,
        port=config.winrm_port,
        username=config.winrm_username,
        password=password or config.winrm_password,
        timeout=config.winrm_timeout,
        use_ssl=config.winrm_use_ssl,
        insecure=config.winrm_insecure,
        no_proxy=config.winrm_no_proxy,
        use_ntlm=bool(config.winrm_use_ntlm),
    )
