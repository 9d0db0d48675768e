"""``aws_secretsmanager``'s reading of a secret string, as Packer 1.6.6's ``getSecretValue``
(``packer-plugin-sdk/template/interpolate/aws/secretsmanager``); the calls are tested on the stack
(``tests/stack/test_aws_secretsmanager_function.py``)."""

from __future__ import annotations

import json

import pytest

from amibake.template.aws_secrets import AwsSecretError, get_aws_secret, secret_value


@pytest.mark.parametrize(
    ("secret", "key", "value"),
    [
        ("plain text", "", "plain text"),
        ("plain text", "ignored", "plain text"),  # a plaintext secret is its value, whatever the key
        (json.dumps({"only": "v1"}), "", "v1"),
        (json.dumps({"a": "v1", "b": "v2"}), "b", "v2"),
    ],
)
def test_secret_value(secret: str, key: str, value: str) -> None:
    assert secret_value(secret, key) == value


@pytest.mark.parametrize(
    ("secret", "key", "message"),
    [
        (json.dumps({"a": "v1", "b": "v2"}), "", "Secret has multiple values and no key was set"),
        (json.dumps({"a": "v1"}), "c", 'No secret found for key "c"'),
        (json.dumps({}), "", 'No secret found for key ""'),
        (json.dumps({"a": 1}), "a", "not an object of string values"),
        (json.dumps(["v1"]), "", "not an object of string values"),
    ],
)
def test_secret_value_errors_never_show_the_value(secret: str, key: str, message: str) -> None:
    with pytest.raises(AwsSecretError) as e:
        secret_value(secret, key)
    assert message in str(e.value)
    assert "v1" not in str(e.value) and "v2" not in str(e.value)


def test_empty_name_is_refused_before_any_call() -> None:
    with pytest.raises(AwsSecretError, match="At least one secret name must be provided"):
        get_aws_secret("")
