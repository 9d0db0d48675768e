"""The EC2 gateway's IAM calls: the temporary instance profile, role and role policy a build makes, and
the lookups of what a profile or role holds."""

from __future__ import annotations

from typing import Any

from amibake.aws.errors import AwsError
from amibake.plugins.amazon.ec2_base import GatewayBase
from amibake.plugins.amazon.records import Tags, tag_dict, tag_list


class IamCalls(GatewayBase):
    """Create, adopt and delete the build's IAM instance profile, role and role policies."""

    # -- IAM ------------------------------------------------------------------------------

    def instance_profile_exists(self, name: str) -> bool:
        try:
            self._call("get_instance_profile", service="iam", InstanceProfileName=name)
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        return True

    def create_instance_profile(self, name: str, tags: Tags) -> None:
        self._intent("iam-instance-profile", "", name=name)
        self._call("create_instance_profile", service="iam", InstanceProfileName=name, Tags=tag_list(tags),
                   adopt=lambda: self._adopt_iam("get_instance_profile", "InstanceProfile",
                                                 f"instance profile {name!r}", tags,
                                                 InstanceProfileName=name),
                   duplicate_codes=("EntityAlreadyExists",))
        self._created("iam-instance-profile", "", name, name=name)
        self._pause("after-create-instance-profile")

    def _adopt_iam(self, op: str, key: str, what: str, tags: Tags, **params: Any) -> dict[str, Any] | None:
        try:
            found = self._call(op, service="iam", **params).get(key, {})
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        self._owned(what, tag_dict(found.get("Tags")), tags)
        return {key: found}

    def delete_instance_profile(self, name: str) -> None:
        self._call("delete_instance_profile", service="iam", InstanceProfileName=name)
        self._removed("iam-instance-profile", "", name)

    def create_role(self, name: str, trust_policy: str, tags: Tags) -> None:
        self._intent("iam-role", "", name=name)
        self._call(
            "create_role", service="iam", RoleName=name, AssumeRolePolicyDocument=trust_policy,
            Tags=tag_list(tags), duplicate_codes=("EntityAlreadyExists",),
            adopt=lambda: self._adopt_iam("get_role", "Role", f"IAM role {name!r}", tags, RoleName=name),
        )
        self._created("iam-role", "", name, name=name)
        self._pause("after-create-role")

    def delete_role(self, name: str) -> None:
        self._call("delete_role", service="iam", RoleName=name)
        self._removed("iam-role", "", name)

    def put_role_policy(self, role: str, policy_name: str, document: str) -> None:
        self._intent("iam-role-policy", "", name=role, policy=policy_name)
        self._call(
            "put_role_policy", service="iam", RoleName=role, PolicyName=policy_name, PolicyDocument=document,
            retry_codes=("NoSuchEntity",),
        )
        self._created("iam-role-policy", "", role, name=role, policy=policy_name)

    def delete_role_policy(self, role: str, policy_name: str) -> None:
        self._call("delete_role_policy", service="iam", RoleName=role, PolicyName=policy_name)
        self._removed("iam-role-policy", "", role)

    def add_role_to_instance_profile(self, profile: str, role: str) -> None:
        self._intent("iam-role-in-profile", "", name=profile, role=role)
        self._call("add_role_to_instance_profile", service="iam", InstanceProfileName=profile, RoleName=role,
                   retry_codes=("NoSuchEntity",), duplicate_codes=("LimitExceeded", "EntityAlreadyExists"),
                   adopt=lambda: {} if role in self.iam_profile_roles(profile) else None)
        self._created("iam-role-in-profile", "", profile, name=profile, role=role)

    def remove_role_from_instance_profile(self, profile: str, role: str) -> None:
        self._call(
            "remove_role_from_instance_profile", service="iam", InstanceProfileName=profile, RoleName=role
        )
        self._removed("iam-role-in-profile", "", profile)

    def iam_profile_roles(self, profile: str) -> list[str]:
        resp = self._call("get_instance_profile", service="iam", InstanceProfileName=profile)
        return [str(r["RoleName"]) for r in resp.get("InstanceProfile", {}).get("Roles", [])]

    def iam_role_policies(self, role: str) -> list[str]:
        resp = self._call("list_role_policies", service="iam", RoleName=role)
        return [str(p) for p in resp.get("PolicyNames", [])]

    def iam_role_profiles(self, role: str) -> list[str]:
        resp = self._call("list_instance_profiles_for_role", service="iam", RoleName=role)
        return [str(p["InstanceProfileName"]) for p in resp.get("InstanceProfiles", [])]
