"""StepGetPassword (packer-plugin-amazon builder/common/step_get_password.go): a Windows instance's
auto-generated Administrator password, for the WinRM communicator.

When the communicator is ``winrm`` and the template sets no ``winrm_password``, GetPasswordData is
polled (every 5 s, as Packer) until it answers non-empty data or ``windows_password_timeout`` runs
out; the data is decrypted with the build's private key (RSA PKCS#1 v1.5 over base64, as EC2 encrypts
it with the key pair's public key). The password then connects WinRM, is the build data ``Password``
and ``WinRMPassword`` (``{{build `Password`}}``), and is one of the run's secrets: blanked out of every
output, log and manifest from the moment it is known.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from amibake.errors import BuildError
from amibake.plugins.amazon.ec2 import AwsError
from amibake.plugins.amazon.state import BuildState
from amibake.steps.context import BuildCancelled, StepContext

#: Packer's pause before each GetPasswordData poll
POLL_INTERVAL = 5.0


def get_password_data(gateway: Any, instance_id: str) -> str:
    """GetPasswordData through the gateway's retried call: the base64 data, "" while not ready."""
    answer = gateway._call("get_password_data", None, InstanceId=instance_id)
    return str(answer.get("PasswordData") or "").strip()


def decrypt_password(password_data: str, private_key_pem: str) -> str:
    """The password EC2 encrypted with the key pair's public key (RSA PKCS#1 v1.5, base64)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if "ENCRYPTED" in private_key_pem and "DEK-Info" in private_key_pem:
        raise ValueError("encrypted private key isn't yet supported")
    try:
        encrypted = base64.b64decode(password_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the password data is not base64: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot read the private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key is not an RSA key (EC2 encrypts Windows passwords for RSA keys)")
    return key.decrypt(encrypted, padding.PKCS1v15()).decode("utf-8")


def get_password(st: BuildState, ctx: StepContext) -> None:
    """StepGetPassword: wait for the auto-generated password (winrm without ``winrm_password``)."""
    s = st.config
    ui = st.ui
    if s.communicator != "winrm":
        return
    if s.winrm_password:
        ui.say("Skipping waiting for password since WinRM password set...")
        return
    inst = st.instance
    assert inst is not None
    ui.say("Waiting for auto-generated password for instance...")
    ui.message("It is normal for this process to take up to 15 minutes,\nbut it usually takes around 5. "
               "Please wait.")
    deadline = time.monotonic() + s.windows_password_timeout
    while True:
        if time.monotonic() >= deadline:
            raise BuildError("Timeout waiting for password.")
        if ctx.cancel.wait(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic()))):
            raise BuildCancelled("cancelled while waiting for the Windows password")
        if time.monotonic() >= deadline:
            raise BuildError("Timeout waiting for password.")
        try:
            data = get_password_data(st.ec2, inst.id)
        except AwsError as exc:
            raise BuildError(f"Error waiting for password: Error retrieving auto-generated instance "
                             f"password: {exc}") from exc
        if not data:
            continue
        try:
            password = decrypt_password(data, st.private_key_pem)
        except ValueError as exc:
            raise BuildError(f"Error waiting for password: Error decrypting auto-generated instance "
                             f"password: {exc}") from exc
        break
    # a secret before anything can print it
    st.env.add_secret(password)
    st.password = password
    ui.message(" \nPassword retrieved!")
