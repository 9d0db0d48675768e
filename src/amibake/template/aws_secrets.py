"""The ``aws_secretsmanager`` template function (legacy JSON ``{{ aws_secretsmanager `name` `key` }}``
in the variables section, and HCL2's ``aws_secretsmanager(name, key)``), as Packer 1.6.6 reads a
secret (``packer-plugin-sdk/template/funcs.go`` ``GetAWSSecret`` and
``template/interpolate/aws/secretsmanager``):

* one ``GetSecretValue`` call for ``SecretId=name``, ``VersionStage=AWSCURRENT``, through the standard
  credential chain (environment, shared files, SSO, container and instance roles) and the region of
  ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` or the profile; botocore honours ``AWS_ENDPOINT_URL`` and
  ``AWS_ENDPOINT_URL_SECRETS_MANAGER``;
* a secret without a ``SecretString`` is an error ("Secret is not string");
* a ``SecretString`` that is not JSON is the value; a JSON object of strings gives the value of
  ``key``, or with no key its only value ("Secret has multiple values and no key was set" when it
  has more than one); a missing key is ``No secret found for key "KEY"``.

Errors never carry the secret's value. The client comes from the AWS session layer
(:mod:`amibake.aws`), imported only when the function is called.
"""

from __future__ import annotations

import json
import os
from typing import Any


class AwsSecretError(Exception):
    """Reading the secret failed; the message names what failed, never the value."""


def get_aws_secret(name: str, key: str = "") -> str:
    if not name:
        raise AwsSecretError("At least one secret name must be provided")
    import botocore.session

    from amibake.aws.access import AwsAccess
    from amibake.aws.errors import AwsError, translated
    from amibake.aws.session import CLIENTS

    region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or botocore.session.Session().get_config_variable("region"))
    if not region:
        raise AwsSecretError(
            "MissingRegion: could not find region configuration (set AWS_REGION, "
            "AWS_DEFAULT_REGION or a profile's region)"
        )
    try:  # the session layer's client of its own: the standard chain, 3 retries, 10 s / 60 s timeouts
        with translated("GetSecretValue"):
            client = CLIENTS.detached("secretsmanager", AwsAccess(region=region), attempts=3)
            resp = client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except AwsError as exc:  # "code: message", or the message alone when AWS gave no answer
        raise AwsSecretError(str(exc)) from None
    secret = resp.get("SecretString")
    if secret is None:
        raise AwsSecretError("Secret is not string")
    return secret_value(str(secret), key)


def secret_value(secret: str, key: str) -> str:
    """Packer's ``getSecretValue``: the value of ``key`` in a JSON secret, or a plaintext secret."""
    try:
        data: Any = json.loads(secret)
    except ValueError:
        return secret  # plaintext secrets are returned as they are
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        # Go unmarshals into map[string]string; its error names the type, not the value
        raise AwsSecretError("the secret's JSON is not an object of string values")
    if not key and len(data) > 1:
        raise AwsSecretError("Secret has multiple values and no key was set")
    if not key and data:
        return str(next(iter(data.values())))
    if key in data:
        return str(data[key])
    raise AwsSecretError(f"No secret found for key {json.dumps(key)}")
