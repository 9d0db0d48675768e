"""How the source instance is launched and reached (the amazon plugin's ``RunConfig``), with the
communicator options it embeds."""

import ipaddress
import re
from typing import Annotated, ClassVar

from pydantic import Field

from amibake.config.base import CheckContext, ConfigModel
from amibake.config.communicator import CommunicatorConfig
from amibake.config.custom_types import KeyValues, NameValueFilter, merged_tags
from amibake.config.durations import Duration
from amibake.config.weak import AsList, AsStruct, Bool, Int, Str, StrList, StrMap, Trilean
from amibake.errors import Problem

SSH_INTERFACES = ("public_ip", "private_ip", "public_dns", "private_dns", "ipv6", "session_manager")
SPOT_ALLOCATION_STRATEGIES = (
    "lowest-price",
    "diversified",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "price-capacity-optimized",
)
_BURSTABLE = re.compile(r"^t(:?2|3a?|4g)\.")


class PolicyStatement(ConfigModel):
    """One statement of a policy document."""

    Effect: Str = Field("", description="`Allow` or `Deny`.")
    Action: StrList = Field(default_factory=list, description="The actions, e.g. `logs:*`.")
    Resource: StrList = Field(default_factory=list, description="The resources, e.g. `*`.")


class PolicyDocument(ConfigModel):
    """An IAM policy document (``temporary_iam_instance_profile_policy_document``)."""

    Version: Str = Field("", description="The policy language version, e.g. `2012-10-17`.")
    Statement: Annotated[list[Annotated[PolicyStatement, AsStruct]], AsList] = Field(
        default_factory=list, description="The statements."
    )


class SubnetFilterOptions(NameValueFilter):
    """``subnet_filter { ... }``."""

    most_free: Bool = Field(False, description="The subnet with the most free IPv4 addresses is used.")
    random: Bool = Field(False, description="A random subnet among the matching ones is used.")


class AmiFilterOptions(ConfigModel):
    """``source_ami_filter { ... }``: how to find the source AMI."""

    filters: StrMap = Field(
        default_factory=dict,
        description=(
            "Filters used to select an AMI. Any filter described in the docs for DescribeImages is valid."
        ),
    )
    owners: StrList = Field(
        default_factory=list,
        description=(
            'Filters the images by their owner. You may specify one or more AWS account IDs, "self" '
            "(which will use the account whose credentials you are using to run Packer), or an AWS "
            "owner alias: for example, `amazon`, `aws-marketplace`, or `microsoft`. This option is "
            "required for security reasons."
        ),
    )
    most_recent: Bool = Field(
        False,
        description=(
            "Selects the newest created image when true. This is most useful for selecting a daily "
            "distro build."
        ),
    )
    include_deprecated: Bool = Field(
        False,
        description=(
            "Include deprecated AMIs in the filtered response. Defaults to false. If you are the AMI "
            "owner, deprecated AMIs appear in the response regardless of what is specified for "
            "`include_deprecated`."
        ),
    )

    def empty(self) -> bool:
        return not self.owners and not self.filters


class Placement(ConfigModel):
    """``placement { ... }``."""

    host_resource_group_arn: Str = Field(
        "",
        description=("The ARN of the host resource group in which to launch the instances."),
    )
    host_id: Str = Field("", description="The ID of the host used when Packer launches an EC2 instance.")
    tenancy: Str = Field(
        "",
        description=(
            "Tenancy used when Packer launches the EC2 instance, allowing it to be launched on "
            'dedicated hardware. The default is "default", meaning shared tenancy. Allowed values are '
            '"default", "dedicated" and "host".'
        ),
    )


class MetadataOptions(ConfigModel):
    """``metadata_options { ... }``: the instance metadata service of the build instance."""

    http_endpoint: Str = Field(
        "enabled",
        description=(
            "A string to enable or disable the IMDS endpoint for an instance. Defaults to enabled. "
            'Accepts either "enabled" or "disabled"'
        ),
    )
    http_tokens: Str = Field(
        "optional",
        description=(
            "A string to either set the use of IMDSv2 for the instance to optional or required. "
            'Defaults to "optional". Accepts either "optional" or "required"'
        ),
    )
    http_put_response_hop_limit: Int = Field(
        1,
        description=(
            "A numerical value to set an upper limit for the amount of hops allowed when communicating "
            "with IMDS endpoints. Defaults to 1."
        ),
    )
    instance_metadata_tags: Str = Field(
        "disabled",
        description=(
            "A string to enable or disable access to instance tags from the instance metadata. Defaults "
            "to disabled. Access to instance metadata tags is available for commercial regions. For "
            "non-commercial regions please check availability before enabling. Accepts either "
            '"enabled" or "disabled"'
        ),
    )


class LicenseConfigurationRequest(ConfigModel):
    """A license configuration."""

    license_configuration_arn: Str = Field(
        "",
        description=("The Amazon Resource Name (ARN) of the license configuration."),
    )


class LicenseSpecification(ConfigModel):
    """One of ``license_specifications``."""

    license_configuration_request: Annotated[LicenseConfigurationRequest, AsStruct] = Field(
        default_factory=lambda: LicenseConfigurationRequest.model_validate({}),
        description=("Describes a license configuration."),
    )


class RunConfig(CommunicatorConfig):
    """The source instance and how to reach it."""

    #: where and how the temporary instance runs, and what it is tagged with. ``source_ami`` and
    #: ``source_ami_filter`` are out as written: the builder adds the id they resolve to as a
    #: component of its own. ``instance_type``, ``user_data`` and ``metadata_options`` stay in.
    not_image_shaping: ClassVar[frozenset[str]] = frozenset({
        "associate_public_ip_address", "availability_zone", "block_duration_minutes",
        "capacity_reservation_preference", "capacity_reservation_id", "capacity_reservation_group_arn",
        "disable_stop_instance", "ebs_optimized", "enable_nitro_enclave", "enable_t2_unlimited",
        "enable_unlimited_credits", "iam_instance_profile", "fleet_tags", "fleet_tag",
        "skip_profile_validation", "temporary_iam_instance_profile_policy_document", "shutdown_behavior",
        "security_group_filter", "run_tags", "run_tag", "security_group_id", "security_group_ids",
        "source_ami", "source_ami_filter", "spot_allocation_strategy", "spot_instance_types",
        "spot_price", "spot_price_auto_product", "spot_tags", "spot_tag", "subnet_filter", "subnet_id",
        "license_specifications", "placement", "tenancy", "temporary_security_group_source_cidrs",
        "temporary_security_group_source_public_ip", "vpc_filter", "vpc_id", "windows_password_timeout",
        "ssh_interface", "pause_before_ssm", "session_manager_port",
    })

    def local_inputs(self) -> list[tuple[str, str]]:
        return [("user_data_file", self.user_data_file)] if self.user_data_file else []

    associate_public_ip_address: Trilean = Field(
        None,
        description=(
            "If using a non-default VPC, public IP addresses are not provided by default. If this is "
            "true, your new instance will get a Public IP. default: unset Note: when specifying this "
            "attribute without a `subnet_[id|filter]` or `vpc_[id|filter]`, we will attempt to infer "
            "this information from the default VPC/Subnet. This operation may require some extra "
            "permissions to the IAM role that runs the build:"
        ),
    )
    availability_zone: Str = Field(
        "",
        description=(
            "Destination availability zone to launch instance in. Leave this empty to allow Amazon to "
            "auto-assign."
        ),
    )
    block_duration_minutes: Int = Field(
        0,
        description=(
            "Requires spot_price to be set. The required duration for the Spot Instances (also known as "
            "Spot blocks). This value must be a multiple of 60 (60, 120, 180, 240, 300, or 360). You "
            "can't specify an Availability Zone group or a launch group if you specify a duration. "
            "Note: This parameter is no longer available to new customers from July 1, 2021. See "
            "Amazon's documentation. Deprecated argument"
        ),
    )
    capacity_reservation_preference: Str = Field(
        "",
        description=(
            "Set the preference for using a capacity reservation if one exists. Either will be `open` "
            "or `none`. Defaults to `none`"
        ),
    )
    capacity_reservation_id: Str = Field(
        "",
        description=("Provide the specific EC2 Capacity Reservation ID that will be used by Packer."),
    )
    capacity_reservation_group_arn: Str = Field(
        "",
        description=("Provide the EC2 Capacity Reservation Group ARN that will be used by Packer."),
    )
    disable_stop_instance: Bool = Field(
        False,
        description=(
            "Packer normally stops the build instance after all provisioners have run. For Windows "
            "instances, it is sometimes desirable to run Sysprep which will stop the instance for you. "
            "If this is set to `true`, Packer *will not* stop the instance but will assume that you "
            "will send the stop signal yourself through your final provisioner. You can do this with a "
            "windows-shell provisioner. Note that Packer will still wait for the instance to be "
            "stopped, and failing to send the stop signal yourself, when you have set this flag to "
            "`true`, will cause a timeout."
        ),
    )
    ebs_optimized: Bool = Field(False, description="Mark instance as EBS Optimized. Default `false`.")
    enable_nitro_enclave: Bool = Field(
        False,
        description=(
            "Enable support for Nitro Enclaves on the instance. Note that the instance type must be "
            "able to support Nitro Enclaves. This option is not supported for spot instances."
        ),
    )
    enable_t2_unlimited: Bool = Field(
        False,
        description=(
            'Deprecated argument - please use "enable_unlimited_credits". Enabling T2 Unlimited '
            "allows the source instance to burst additional CPU beyond its available CPU Credits for as "
            "long as the demand exists. This is in contrast to the standard configuration that only "
            "allows an instance to consume up to its available CPU Credits. See the AWS documentation "
            "for T2 Unlimited and the **T2 Unlimited Pricing** section of the Amazon EC2 On-Demand "
            "Pricing document for more information. By default this option is disabled and Packer will "
            "set up a T2 Standard instance instead."
        ),
    )
    enable_unlimited_credits: Bool = Field(
        False,
        description=(
            "Enabling Unlimited credits allows the source instance to burst additional CPU beyond its "
            "available CPU Credits for as long as the demand exists. This is in contrast to the "
            "standard configuration that only allows an instance to consume up to its available CPU "
            "Credits. See the AWS documentation for T2 Unlimited and the **Unlimited Pricing** section "
            "of the Amazon EC2 On-Demand Pricing document for more information. By default this option "
            "is disabled and Packer will set up a Standard instance instead."
        ),
    )
    iam_instance_profile: Str = Field(
        "",
        description=("The name of an IAM instance profile to launch the EC2 instance with."),
    )
    fleet_tags: StrMap = Field(
        default_factory=dict,
        description=("Key/value pair tags to apply tags to the fleet that is issued."),
    )
    fleet_tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `fleet_tags` but defined as a singular repeatable block containing a `key` and a "
            "`value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )
    skip_profile_validation: Bool = Field(
        False,
        description=("Whether or not to check if the IAM instance profile exists. Defaults to false"),
    )
    temporary_iam_instance_profile_policy_document: Annotated[PolicyDocument | None, AsStruct] = Field(
        None,
        description=(
            "Temporary IAM instance profile policy document If IamInstanceProfile is specified it will "
            "be used instead."
        ),
    )
    shutdown_behavior: Str = Field(
        "stop",
        description=(
            "Automatically terminate instances on shutdown in case Packer exits ungracefully. Possible "
            "values are stop and terminate. Defaults to stop."
        ),
    )
    instance_type: Str = Field(
        "",
        description=("The EC2 instance type to use while building the AMI, such as t2.small."),
    )
    security_group_filter: Annotated[NameValueFilter, AsStruct] = Field(
        default_factory=lambda: NameValueFilter.model_validate({}),
        description=("Filters used to populate the `security_group_ids` field."),
    )
    run_tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags to apply to the generated key-pair, security group, iam profile and "
            "role, snapshot, network interfaces and instance that is *launched* to create the EBS "
            "volumes. The resulting AMI will also inherit these tags. This is a template engine, see "
            "Build template data for more information."
        ),
    )
    run_tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `run_tags` but defined as a singular repeatable block containing a `key` and a "
            "`value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )
    security_group_id: Str = Field(
        "",
        description=(
            "The ID (not the name) of the security group to assign to the instance. By default this is "
            "not set and Packer will automatically create a new temporary security group to allow SSH "
            "access. Note that if this is specified, you must be sure the security group allows access "
            "to the ssh_port given below."
        ),
    )
    security_group_ids: StrList = Field(
        default_factory=list,
        description=(
            "A list of security groups as described above. Note that if this is specified, you must "
            "omit the security_group_id."
        ),
    )
    source_ami: Str = Field(
        "",
        description=(
            "The source AMI whose root volume will be copied and provisioned on the currently running "
            "instance. This must be an EBS-backed AMI with a root volume snapshot that you have access "
            "to."
        ),
    )
    source_ami_filter: Annotated[AmiFilterOptions, AsStruct] = Field(
        default_factory=lambda: AmiFilterOptions.model_validate({}),
        description=("Filters used to populate the `source_ami` field."),
    )
    spot_allocation_strategy: Str = Field(
        "",
        description=(
            "One of `price-capacity-optimized`, `capacity-optimized`, `diversified` or `lowest-price`. "
            "The strategy that determines how to allocate the target Spot Instance capacity across the "
            "Spot Instance pools specified by the EC2 Fleet launch configuration. If this option is not "
            "set, Packer will use default option provided by the SDK (currently `lowest-price`). For "
            "more information, see [Amazon EC2 User Guide] "
            "(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-fleet-allocation-strategy.html)"
        ),
    )
    spot_instance_types: StrList = Field(
        default_factory=list,
        description=(
            "a list of acceptable instance types to run your build on. We will request a spot instance "
            'using the max price of spot_price and the allocation strategy of "lowest price". Your '
            "instance will be launched on an instance type of the lowest available price that you have "
            "in your list. This is used in place of instance_type. You may only set either "
            "spot_instance_types or instance_type, not both. This feature exists to help prevent "
            "situations where a Packer build fails because a particular availability zone does not have "
            "capacity for the specific instance_type requested in instance_type."
        ),
    )
    spot_price: Str = Field(
        "",
        description=(
            "With Spot Instances, you pay the Spot price that's in effect for the time period your "
            "instances are running. Spot Instance prices are set by Amazon EC2 and adjust gradually "
            "based on long-term trends in supply and demand for Spot Instance capacity. When this field "
            "is set, it represents the maximum hourly price you are willing to pay for a spot instance. "
            "If you do not set this value, it defaults to a maximum price equal to the on demand price "
            "of the instance. In the situation where the current Amazon-set spot price exceeds the "
            "value set in this field, Packer will not launch an instance and the build will error. In "
            "the situation where the Amazon-set spot price is less than the value set in this field, "
            "Packer will launch and you will pay the Amazon-set spot price, not this maximum value. For "
            "more information, see the Amazon docs on spot pricing."
        ),
    )
    spot_price_auto_product: Str = Field(
        "",
        description=(
            "Required if spot_price is set to auto. This tells Packer what sort of AMI you're launching "
            "to find the best spot price. This must be one of: Linux/UNIX, SUSE Linux, Windows, "
            "Linux/UNIX (Amazon VPC), SUSE Linux (Amazon VPC), Windows (Amazon VPC)"
        ),
    )
    spot_tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Requires spot_price to be set. Key/value pair tags to apply tags to the spot request that "
            "is issued."
        ),
    )
    spot_tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `spot_tags` but defined as a singular repeatable block containing a `key` and a "
            "`value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )
    subnet_filter: Annotated[SubnetFilterOptions, AsStruct] = Field(
        default_factory=lambda: SubnetFilterOptions.model_validate({}),
        description=("Filters used to populate the `subnet_id` field."),
    )
    subnet_id: Str = Field(
        "",
        description=(
            "If using VPC, the ID of the subnet, such as subnet-12345def, where Packer will launch the "
            "EC2 instance. This field is required if you are using an non-default VPC."
        ),
    )
    license_specifications: Annotated[list[Annotated[LicenseSpecification, AsStruct]], AsList] = Field(
        default_factory=list,
        description=("The license configurations."),
    )
    placement: Annotated[Placement, AsStruct] = Field(
        default_factory=lambda: Placement.model_validate({}),
        description=("Describes the placement of an instance."),
    )
    tenancy: Str = Field("", description="Deprecated: Use Placement Tenancy instead.")
    temporary_security_group_source_cidrs: StrList = Field(
        default_factory=list,
        description=(
            "A list of IPv4/IPv6 CIDR blocks to be authorized access to the instance, when packer is "
            "creating a temporary security group. The default is [`0.0.0.0/0`] (i.e., allow any IPv4 "
            'source) and if ssh_interface is set as "ipv6" the default is [`::/0`] (i.e., allow any '
            "IPv6 source). Use `temporary_security_group_source_public_ip` to allow current host's "
            "public IP instead of any IPv4 source. This is only used when `security_group_id` or "
            "`security_group_ids` is not specified."
        ),
    )
    temporary_security_group_source_public_ip: Bool = Field(
        False,
        description=(
            "When enabled, use public IP of the host (obtained from https://checkip.amazonaws.com) as "
            "CIDR block to be authorized access to the instance, when packer is creating a temporary "
            "security group. Defaults to `false`. This is only used when `security_group_id`, "
            "`security_group_ids`, and `temporary_security_group_source_cidrs` are not specified."
        ),
    )
    user_data: Str = Field(
        "",
        description=(
            "User data to apply when launching the instance. Note that you need to be careful about "
            "escaping characters due to the templates being JSON. It is often more convenient to use "
            "user_data_file, instead. Packer will not automatically wait for a user script to finish "
            "before shutting down the instance this must be handled in a provisioner."
        ),
    )
    user_data_file: Str = Field(
        "",
        description=("Path to a file that will be used for the user data when launching the instance."),
    )
    vpc_filter: Annotated[NameValueFilter, AsStruct] = Field(
        default_factory=lambda: NameValueFilter.model_validate({}),
        description=("Filters used to populate the `vpc_id` field."),
    )
    vpc_id: Str = Field(
        "",
        description=(
            "If launching into a VPC subnet, Packer needs the VPC ID in order to create a temporary "
            "security group within the VPC. Requires subnet_id to be set. If this field is left blank, "
            "Packer will try to get the VPC ID from the subnet_id."
        ),
    )
    windows_password_timeout: Duration = Field(
        1200.0,
        description=(
            "The timeout for waiting for a Windows password for Windows instances. Defaults to 20 "
            "minutes. Example value: 10m"
        ),
    )
    metadata_options: Annotated[MetadataOptions, AsStruct] = Field(
        default_factory=lambda: MetadataOptions.model_validate({}),
        description=("Metadata Settings"),
    )
    ssh_interface: Str = Field(
        "",
        description=(
            "One of `public_ip`, `private_ip`, `public_dns`, `private_dns`, `ipv6` or "
            "`session_manager`. If set, either the public IP address, private IP address, public DNS "
            "name or private DNS name will be used as the host for SSH. The default behaviour if inside "
            "a VPC is to use the public IP address if available, otherwise the private IP address will "
            "be used. If not in a VPC the public DNS name will be used. Also works for WinRM."
        ),
    )
    pause_before_ssm: Duration = Field(
        10.0,
        description=(
            "The time to wait before establishing the Session Manager session. The value of this should "
            "be a duration. Examples are `5s` and `1m30s` which will cause Packer to wait five seconds "
            "and one minute 30 seconds, respectively. If no set, defaults to 10 seconds. This option is "
            "useful when the remote port takes longer to become available."
        ),
    )
    session_manager_port: Int = Field(
        0,
        description=(
            "Which port to connect the local end of the session tunnel to. If left blank, Packer will "
            "choose a port for you from available ports. This option is only used when `ssh_interface` "
            "is set `session_manager`."
        ),
    )

    @property
    def all_run_tags(self) -> dict[str, str]:
        return merged_tags(self.run_tags, self.run_tag)

    @property
    def all_spot_tags(self) -> dict[str, str]:
        return merged_tags(self.spot_tags, self.spot_tag)

    @property
    def all_fleet_tags(self) -> dict[str, str]:
        return merged_tags(self.fleet_tags, self.fleet_tag)

    @property
    def all_security_group_ids(self) -> list[str]:
        """``security_group_ids``, or ``[security_group_id]``."""
        return list(self.security_group_ids) or ([self.security_group_id] if self.security_group_id else [])

    @property
    def source_cidrs(self) -> list[str]:
        """``temporary_security_group_source_cidrs`` with Packer's default (all of IPv4, or IPv6)."""
        if self.temporary_security_group_source_cidrs or self.temporary_security_group_source_public_ip:
            return list(self.temporary_security_group_source_cidrs)
        return ["::/0"] if self.ssh_interface == "ipv6" else ["0.0.0.0/0"]

    @property
    def effective_tenancy(self) -> str:
        return self.placement.tenancy or self.tenancy

    @property
    def enable_unlimited(self) -> bool:
        """``enable_unlimited_credits``, or the deprecated ``enable_t2_unlimited``."""
        return self.enable_unlimited_credits or self.enable_t2_unlimited

    def is_spot_instance(self) -> bool:
        return self.spot_price not in ("", "0")

    def check_run(self, ctx: CheckContext, *, source_ami_required: bool = True) -> list[Problem]:
        p = ctx.problem
        errs = self.check_communicator(ctx)
        if self.temporary_key_pair_type not in ("rsa", "ed25519"):
            errs.append(
                p(
                    "temporary_key_pair_type requires either rsa or ed25519 as its value",
                    "temporary_key_pair_type",
                )
            )
        meta = self.metadata_options
        if meta.http_endpoint not in ("enabled", "disabled"):
            errs.append(
                p(
                    "http_endpoint requires either disabled or enabled as its value",
                    "metadata_options.http_endpoint",
                )
            )
        if meta.http_tokens not in ("optional", "required"):
            errs.append(
                p(
                    "http_tokens requires either optional or required as its value",
                    "metadata_options.http_tokens",
                )
            )
        if not 1 <= meta.http_put_response_hop_limit <= 64:
            errs.append(
                p(
                    "http_put_response_hop_limit requires a number between 1 and 64",
                    "metadata_options.http_put_response_hop_limit",
                )
            )
        if meta.instance_metadata_tags not in ("enabled", "disabled"):
            errs.append(
                p(
                    "instance_metadata_tags requires either disabled or enabled as its value",
                    "metadata_options.instance_metadata_tags",
                )
            )
        if self.ssh_interface not in ("", *SSH_INTERFACES):
            errs.append(p(f"Unknown interface type: {self.ssh_interface}", "ssh_interface"))
        if self.ssh_interface == "session_manager":
            if self.communicator == "winrm":
                errs.append(
                    p(
                        'session_manager connectivity is not supported with the "winrm" communicator; '
                        'please use "ssh"',
                        "ssh_interface",
                    )
                )
            if not self.iam_instance_profile and self.temporary_iam_instance_profile_policy_document is None:
                errs.append(
                    p(
                        "no iam_instance_profile defined; session_manager connectivity requires a "
                        "valid instance profile with AmazonSSMManagedInstanceCore permissions. "
                        "Alternatively a "
                        "temporary_iam_instance_profile_policy_document can be used.",
                        "ssh_interface",
                    )
                )
        if self.ssh_keypair_name:
            if self.communicator == "winrm" and not self.winrm_password and not self.ssh_private_key_file:
                errs.append(
                    p(
                        "ssh_private_key_file must be provided to retrieve the winrm password when "
                        "using ssh_keypair_name.",
                        "ssh_keypair_name",
                    )
                )
            elif not self.ssh_private_key_file and not self.ssh_agent_auth:
                errs.append(
                    p(
                        "ssh_private_key_file must be provided or ssh_agent_auth enabled when "
                        "ssh_keypair_name is specified.",
                        "ssh_keypair_name",
                    )
                )
        if source_ami_required:
            if not self.source_ami and self.source_ami_filter.empty():
                errs.append(p("A source_ami or source_ami_filter must be specified", "source_ami"))
            if not self.source_ami and not self.source_ami_filter.owners:
                errs.append(
                    p(
                        "For security reasons, your source AMI filter must declare an owner.",
                        "source_ami_filter",
                    )
                )
        if not self.instance_type and not self.spot_instance_types:
            errs.append(p("either instance_type or spot_instance_types must be specified", "instance_type"))
        if self.instance_type and self.spot_instance_types:
            errs.append(
                p(
                    "either instance_type or spot_instance_types must be specified, not both",
                    "spot_instance_types",
                )
            )
        if self.all_fleet_tags and not self.is_spot_instance():
            errs.append(p("fleet_tags should not be set when not requesting a spot instance", "fleet_tags"))
        if self.block_duration_minutes % 60 != 0:
            errs.append(p("block_duration_minutes must be multiple of 60", "block_duration_minutes"))
        if self.all_spot_tags and not self.is_spot_instance():
            errs.append(p("spot_tags should not be set when not requesting a spot instance", "spot_tags"))
        if self.spot_allocation_strategy and self.spot_allocation_strategy not in SPOT_ALLOCATION_STRATEGIES:
            errs.append(
                p(
                    f'invalid spot allocation strategy "{self.spot_allocation_strategy}", valid values '
                    "are either lowest-price, diversified,capacity-optimized, "
                    "capacity-optimized-prioritized, price-capacity-optimized",
                    "spot_allocation_strategy",
                )
            )
        if self.user_data and self.user_data_file:
            errs.append(p("Only one of user_data or user_data_file can be specified.", "user_data_file"))
        elif self.user_data_file and ctx.stat_error(self.user_data_file):
            errs.append(p(f"user_data_file not found: {self.user_data_file}", "user_data_file"))
        if self.security_group_id and self.security_group_ids:
            errs.append(
                p(
                    "Only one of security_group_id or security_group_ids can be specified.",
                    "security_group_ids",
                )
            )
        for i, cidr in enumerate(self.temporary_security_group_source_cidrs):
            reason = _cidr_error(cidr)
            if reason:
                errs.append(
                    p(
                        f"Error parsing CIDR in temporary_security_group_source_cidrs: {reason}",
                        f"temporary_security_group_source_cidrs[{i}]",
                    )
                )
        if self.shutdown_behavior not in ("stop", "terminate"):
            errs.append(
                p("shutdown_behavior only accepts 'stop' or 'terminate' values.", "shutdown_behavior")
            )
        if self.enable_unlimited:
            if not _BURSTABLE.match(self.instance_type):
                errs.append(
                    p(
                        f"Error: Instance Type: {self.instance_type} is not within the supported types "
                        "for Unlimited credits. Supported instance types are T2, T3, and T4g",
                        "enable_unlimited_credits",
                    )
                )
            if self.spot_price and self.instance_type.startswith("t2."):
                errs.append(
                    p(
                        "Error: Unlimited credits cannot be used in conjunction with Spot Instances",
                        "enable_unlimited_credits",
                    )
                )
        if self.capacity_reservation_group_arn and self.capacity_reservation_id:
            errs.append(
                p(
                    "capacity_reservation_id and capacity_reservation_group_arn are mutually "
                    "exclusive, "
                    "only one should be used",
                    "capacity_reservation_id",
                )
            )
        if (
            self.capacity_reservation_id or self.capacity_reservation_group_arn
        ) and self.capacity_reservation_preference:
            errs.append(
                p(
                    "capacity_reservation_id, capacity_reservation_group_arn and "
                    "capacity_reservation_preference are mutually exclusive, only one should be set",
                    "capacity_reservation_preference",
                )
            )
        if self.capacity_reservation_preference not in ("", "none", "open"):
            errs.append(
                p(
                    "capacity_reservation_preference only accepts 'none' or 'open' values",
                    "capacity_reservation_preference",
                )
            )
        if self.placement.tenancy and self.tenancy:
            errs.append(
                p("Error: Please set only one of placement.tenancy and tenancy (deprecated)", "tenancy")
            )
        tenancy = self.effective_tenancy
        if tenancy not in ("", "default", "dedicated", "host"):
            errs.append(
                p(
                    f"Error: Unknown tenancy type {tenancy}",
                    "placement.tenancy" if self.placement.tenancy else "tenancy",
                )
            )
        if self.placement.host_id and self.placement.host_resource_group_arn:
            errs.append(
                p(
                    "The `host_id` and `host_resource_group_arn` settings cannot be specified at the "
                    "same time.",
                    "placement",
                )
            )
        if (
            self.placement.host_id or self.placement.host_resource_group_arn
        ) and self.placement.tenancy not in ("", "host"):
            errs.append(
                p(
                    "The tenancy should be `host` if either the `host_id` or `host_resource_group_arn` "
                    "attributes are specified.",
                    "placement.tenancy",
                )
            )
        if self.enable_nitro_enclave:
            if self.spot_price:
                errs.append(
                    p(
                        "Error: Nitro Enclave cannot be used in conjunction with Spot Instances",
                        "enable_nitro_enclave",
                    )
                )
            if self.instance_type.startswith("t"):
                errs.append(
                    p(
                        "Error: Nitro Enclaves cannot be used in conjunction with burstable instance "
                        f"types: {self.instance_type}",
                        "enable_nitro_enclave",
                    )
                )
        return errs

    def run_warnings(self) -> list[str]:
        out = []
        if self.spot_price_auto_product:
            out.append(
                "spot_price_auto_product is deprecated and no longer necessary for Packer builds. In "
                "future versions of Packer, inclusion of spot_price_auto_product will error your "
                "builds. Please take a look at our current documentation to understand how Packer "
                "requests Spot instances."
            )
        if self.enable_t2_unlimited:
            out.append(
                "enable_t2_unlimited is deprecated please use enable_unlimited_credits. In future "
                "versions of Packer, inclusion of enable_t2_unlimited will error your builds."
            )
        if self.tenancy:
            out.append("tenancy is deprecated; use placement.tenancy")
        return out


def _cidr_error(cidr: str) -> str | None:
    if "/" not in cidr:
        return f"invalid CIDR address: {cidr}"
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return f"invalid CIDR address: {cidr}"
    return None
