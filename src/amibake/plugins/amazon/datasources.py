"""The amazon plugin's data sources: ``amazon-ami``, ``amazon-parameterstore``,
``amazon-secretsmanager`` (packer-plugin-amazon ``datasource/*``), executed through the AWS session
layer (:mod:`amibake.aws`, by way of :mod:`amibake.plugins.amazon.datasource_aws`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from amibake.datasources.errors import DatasourceError
from amibake.plugins.amazon.datasource_aws import AwsCallError, call, client
from amibake.plugins.amazon.datasource_configs import (
    AmiDatasourceConfig,
    ParameterStoreConfig,
    SecretsManagerConfig,
)


@dataclass
class Outputs:
    """A data source's outputs and the values among them that must never be printed."""

    values: dict[str, Any]
    secrets: list[str] = field(default_factory=list)


def _creation_time(image: Mapping[str, Any]) -> int:
    """Unix seconds of ``CreationDate`` (RFC 3339); 0 when unparseable, like Go's zero time."""
    text = str(image.get("CreationDate") or "")
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return -62135596800  # time.Time{}.Unix()
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp())


def most_recent(images: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The image with the latest ``CreationDate``; of equals, the last one (Go's sort is an
    insertion sort for so few images, which keeps equals in order)."""
    best = images[0]
    for img in images[1:]:
        if _creation_time(img) >= _creation_time(best):
            best = img
    return best


def ami_params(cfg: AmiDatasourceConfig) -> dict[str, Any]:
    """DescribeImages parameters (AmiFilterOptions.GetFilteredImage): one value per filter."""
    params: dict[str, Any] = {}
    if cfg.filters:
        params["Filters"] = [{"Name": k, "Values": [v]} for k, v in cfg.filters.items()]
    if cfg.owners:
        params["Owners"] = list(cfg.owners)
    params["IncludeDeprecated"] = cfg.include_deprecated
    return params


def pick_image(
    images: Sequence[Mapping[str, Any]], cfg: AmiDatasourceConfig, params: Mapping[str, Any]
) -> Mapping[str, Any]:
    if not images:
        raise DatasourceError(f"No AMI was found matching filters: {json.dumps(params, sort_keys=True)}")
    if len(images) > 1 and not cfg.most_recent:
        raise DatasourceError(
            "Your query returned more than one result. Please try a more specific search, "
            "or set most_recent to true."
        )
    return most_recent(images) if cfg.most_recent else images[0]


def image_outputs(image: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(image.get("ImageId") or ""),
        "name": str(image.get("Name") or ""),
        "creation_date": str(image.get("CreationDate") or ""),
        "owner": str(image.get("OwnerId") or ""),
        "owner_name": str(image.get("ImageOwnerAlias") or ""),
        "tags": {str(t.get("Key", "")): str(t.get("Value", "")) for t in image.get("Tags") or ()},
    }


def amazon_ami(cfg: AmiDatasourceConfig) -> Outputs:
    ec2 = client(cfg, "ec2")
    params = ami_params(cfg)
    try:
        resp = call(ec2.describe_images, **params)
    except AwsCallError as exc:
        raise DatasourceError(f"Error querying AMI: {exc}") from exc
    return Outputs(image_outputs(pick_image(resp.get("Images") or [], cfg, params)))


def amazon_parameterstore(cfg: ParameterStoreConfig) -> Outputs:
    ssm = client(cfg, "ssm")
    try:
        resp = call(ssm.get_parameter, Name=cfg.name, WithDecryption=cfg.with_decryption)
    except AwsCallError as exc:
        if exc.code == "ParameterNotFound":
            raise DatasourceError(f"The parameter name {json.dumps(cfg.name)} not found") from exc
        if exc.code == "ParameterVersionNotFound":
            raise DatasourceError(f"The parameter version {json.dumps(cfg.name)} not found") from exc
        raise DatasourceError(f"error to get parameter value: {exc}") from exc
    param = resp.get("Parameter") or {}
    value = str(param.get("Value") or "")
    secret = cfg.with_decryption and param.get("Type") == "SecureString"
    return Outputs(
        {"value": value, "version": str(param.get("Version", 0)), "arn": str(param.get("ARN") or "")},
        [value] if secret else [],
    )


def secret_value(secret_string: str, key: str) -> str:
    """``getSecretValue``: a plain secret as is; for a JSON object the value at ``key`` (the first
    value when no key is given), "" when the key is absent."""
    try:
        data = json.loads(secret_string)
    except ValueError:
        return secret_string
    if data is None:
        return ""
    if not isinstance(data, dict):
        go = {str: "string", list: "array", bool: "bool"}.get(type(data), "number")
        raise DatasourceError(
            f'error to get secret value: "json: cannot unmarshal {go} into Go value of type '
            f'map[string]interface {{}}"'
        )
    if not key:
        if not data:
            return ""
        key = next(iter(data))
    if key not in data:
        return ""
    v = data[key]
    if isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(round(v))
    kind = {bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}.get(type(v), "<nil>")
    raise DatasourceError(f'error to get secret value: "Unsupported secret value type: {kind}"')


def _leaves(secret_string: str) -> list[str]:
    """Every string or number inside a JSON secret (each must be redacted on its own)."""
    try:
        data = json.loads(secret_string)
    except ValueError:
        return []
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            out.append(v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(str(v))

    walk(data)
    return out


def amazon_secretsmanager(cfg: SecretsManagerConfig) -> Outputs:
    sm = client(cfg, "secretsmanager")
    params: dict[str, Any] = {"SecretId": cfg.name}
    if cfg.version_id:
        params["VersionId"] = version = cfg.version_id
    else:
        params["VersionStage"] = version = cfg.stage
    try:
        resp = call(sm.get_secret_value, **params)
    except AwsCallError as exc:
        if exc.code == "ResourceNotFoundException" or (
            exc.code == "InvalidRequestException" and "because it was deleted" in exc.aws_message
        ):
            raise DatasourceError(
                f"Secrets Manager Secret {json.dumps(cfg.name)} Version {json.dumps(version)} not found"
            ) from exc
        raise DatasourceError(f"error reading Secrets Manager Secret Version: {exc}") from exc
    secret_string = str(resp.get("SecretString") or "")
    binary = resp.get("SecretBinary") or b""
    secret_binary = binary.decode("utf-8", "replace") if isinstance(binary, bytes) else str(binary)
    value = secret_value(secret_string, cfg.key)
    return Outputs(
        {
            "value": value,
            "secret_string": secret_string,
            "secret_binary": secret_binary,
            "version_id": str(resp.get("VersionId") or ""),
        },
        [s for s in [value, secret_string, secret_binary, *_leaves(secret_string)] if s],
    )


def execute_ami(cfg: Any) -> tuple[dict[str, Any], list[str]]:
    """``amazon-ami``: (outputs, sensitive values)."""
    out = amazon_ami(cfg)
    return out.values, out.secrets


def execute_parameterstore(cfg: Any) -> tuple[dict[str, Any], list[str]]:
    """``amazon-parameterstore``: (outputs, sensitive values)."""
    out = amazon_parameterstore(cfg)
    return out.values, out.secrets


def execute_secretsmanager(cfg: Any) -> tuple[dict[str, Any], list[str]]:
    """``amazon-secretsmanager``: (outputs, sensitive values)."""
    out = amazon_secretsmanager(cfg)
    return out.values, out.secrets
