"""The site's own EC2 Auto Scaling service-linked role, named in the site key's policy.

App volumes are encrypted with the site key, and Auto Scaling launches them through its
service-linked role, which the key policy must name (EC2 Auto Scaling user guide, "Required AWS
KMS key policy for use with encrypted volumes"). KMS refuses a key policy naming a role that
does not exist, and the default ``AWSServiceRoleForAutoScaling`` only appears with an account's
first Auto Scaling group, so each site creates its own role with a custom suffix
(``AWSServiceRoleForAutoScaling_caresync-<site>``) before its key, and its group uses that role
(``service_linked_role_arn``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.names import site_prefix
from components.kms_key import AUTOSCALING_SERVICE


def service_role_suffix(site: str) -> str:
    return site_prefix(site)


@dataclass(frozen=True)
class AutoScalingServiceRoleArgs:
    site: str


class AutoScalingServiceRole(pulumi.ComponentResource):
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: AutoScalingServiceRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:AutoScalingServiceRole", name, None, opts)
        role = aws.iam.ServiceLinkedRole(
            f"{name}-role", aws_service_name=AUTOSCALING_SERVICE,
            custom_suffix=service_role_suffix(args.site),
            description=f"CareSync {args.site} app: launches volumes encrypted with the site key",
            opts=pulumi.ResourceOptions(parent=self))
        self.arn = role.arn
        self.register_outputs({"arn": role.arn})
