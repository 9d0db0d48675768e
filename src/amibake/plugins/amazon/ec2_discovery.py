"""The EC2 gateway's discovery calls, for ``amibake cleanup``: what carries a tag, and lookups by name."""

from __future__ import annotations

from typing import Any

from amibake.aws.errors import AwsError
from amibake.plugins.amazon.ec2_base import GatewayBase
from amibake.plugins.amazon.records import Tagged, tag_dict

#: (kind, Describe call, list key, id key, extra params) of the EC2 resources found by tag
_TAGGED_LISTS: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("security-group", "describe_security_groups", "SecurityGroups", "GroupId", {}),
    ("key-pair", "describe_key_pairs", "KeyPairs", "KeyName", {}),
    ("volume", "describe_volumes", "Volumes", "VolumeId", {}),
    ("launch-template", "describe_launch_templates", "LaunchTemplates", "LaunchTemplateId", {}),
    ("image", "describe_images", "Images", "ImageId", {"Owners": ["self"]}),
    ("snapshot", "describe_snapshots", "Snapshots", "SnapshotId", {"OwnerIds": ["self"]}),
)


class DiscoveryCalls(GatewayBase):
    """Find the resources a run left behind (by tag) and look resources up by name."""

    # -- discovery (amibake cleanup) ------------------------------------------------------

    def find_tagged(self, region: str, tag: str, value: str = "") -> list[Tagged]:
        """Every resource of this account in ``region`` carrying tag ``tag`` (``= value`` if given)."""
        flt = [{"Name": f"tag:{tag}", "Values": [value]}] if value else [{"Name": "tag-key", "Values": [tag]}]
        out: list[Tagged] = []
        resp = self._call("describe_instances", region, Filters=flt)
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                state = str((inst.get("State") or {}).get("Name", ""))
                if state != "terminated":
                    out.append(Tagged("instance", region, str(inst["InstanceId"]), tag_dict(inst.get("Tags")),
                                      state))
        for kind, op, key, id_key, extra in _TAGGED_LISTS:
            resp = self._call(op, region, Filters=flt, **extra)
            for item in resp.get(key, []):
                out.append(Tagged(kind, region, str(item.get(id_key, "")), tag_dict(item.get("Tags")),
                                  str(item.get("State", "") or "")))
        return out

    def find_tagged_iam(self, tag: str, value: str = "", name_prefix: str = "packer-") -> list[Tagged]:
        """Temporary IAM roles and instance profiles (named ``packer-...``) carrying ``tag``."""
        out: list[Tagged] = []
        roles = self._call("list_roles", service="iam").get("Roles", [])
        for role in roles:
            name = str(role.get("RoleName", ""))
            if not name.startswith(name_prefix):
                continue
            try:
                tags = tag_dict(self._call("list_role_tags", service="iam", RoleName=name).get("Tags"))
            except AwsError as exc:
                if exc.code == "NoSuchEntity":  # deleted between the listing and now
                    continue
                raise
            if tag in tags and (not value or tags[tag] == value):
                out.append(Tagged("iam-role", "", name, tags))
        profiles = self._call("list_instance_profiles", service="iam").get("InstanceProfiles", [])
        for prof in profiles:
            name = str(prof.get("InstanceProfileName", ""))
            if not name.startswith(name_prefix):
                continue
            try:
                tags = tag_dict(prof.get("Tags")) or tag_dict(self._call(
                    "list_instance_profile_tags", service="iam", InstanceProfileName=name).get("Tags"))
            except AwsError as exc:
                if exc.code == "NoSuchEntity":
                    continue
                raise
            if tag in tags and (not value or tags[tag] == value):
                out.append(Tagged("iam-instance-profile", "", name, tags))
        return out

    def security_group_by_name(self, name: str, region: str) -> list[str]:
        flt = [{"Name": "group-name", "Values": [name]}]
        resp = self._call("describe_security_groups", region, Filters=flt)
        return [str(g["GroupId"]) for g in resp.get("SecurityGroups", [])]

    def instances_by_token(self, token: str, region: str) -> list[str]:
        resp = self._call("describe_instances", region, Filters=[{"Name": "client-token", "Values": [token]}])
        return [str(i["InstanceId"]) for r in resp.get("Reservations", []) for i in r.get("Instances", [])
                if (i.get("State") or {}).get("Name") != "terminated"]

    def launch_templates_named(self, name: str, region: str) -> list[str]:
        try:
            resp = self._call("describe_launch_templates", region, LaunchTemplateNames=[name])
        except AwsError as exc:
            if "NotFound" in exc.code:
                return []
            raise
        return [str(t["LaunchTemplateId"]) for t in resp.get("LaunchTemplates", [])]
