"""What the amazon builders other than amazon-ebs refuse of the options they share with it, for
amazon-ebs's reasons (config.py ``EbsConfig.unsupported``): one declaration, in a module of its own so
that validating one builder's template builds no other builder's model."""

from collections.abc import Mapping

SOCKS = "SSH through a SOCKS proxy is not implemented yet"

#: the options amazon-ebs refuses that the other amazon builders share, for the same reasons
SHARED_UNSUPPORTED: Mapping[str, str] = {
    "vault_aws_engine": "credentials from Vault's AWS secrets engine are not implemented yet",
    "decode_authorization_messages": "decoding authorization failures through STS is not implemented yet",
    "ssh_proxy_host": SOCKS,
    "ssh_proxy_port": SOCKS,
    "ssh_proxy_username": SOCKS,
    "ssh_proxy_password": SOCKS,
    "temporary_security_group_source_public_ip": (
        "looking up this machine's public IP (checkip.amazonaws.com) is not implemented yet; "
        "set temporary_security_group_source_cidrs"),
    "block_duration_minutes": "spot blocks are retired by AWS; CreateFleet takes no block duration",
    "spot_price_auto_product": "deprecated and ignored by Packer; remove it",
}
