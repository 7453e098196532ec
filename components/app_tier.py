"""App tier: ALB (HTTPS, HTTP redirected), target group on /api/health, launch template, ASG.

Each instance boots from its own region only: the launch template's user data reads the
database host from the site's SSM parameter and the app's credentials from the site's copy of
the ``caresync/db/app`` secret, both in the region the instance runs in, so failover repoints
the parameter and starts an instance refresh instead of editing templates, and the standby app
authenticates while the primary region is down. The instance role may read exactly those two
things (and decrypt with the site key through Secrets Manager). Volumes are encrypted with the
site key; the group launches them through the site's own Auto Scaling service-linked role,
which the key policy names (``components/autoscaling_role.py``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.db.secrets import APP_SECRET_NAME, secret_arn_pattern
from caresync_dr.names import alb_name, app_name, site_prefix
from caresync_dr.settings import Capacity
from components.iam import service_trust_policy

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CONF_DIR = "/etc/caresync"
# The group's launch template version, which only instance refreshes change (see AppTier).
TEMPLATE_VERSION = "launchTemplate.version"
SECRET_WAIT_ATTEMPTS = 60  # x 10 s: longer than the ASG's health-check grace period
# Reads the secret's JSON from stdin (never a command line: ps would show it) and the endpoint
# (host:port) from argv; writes the app's environment file (systemd EnvironmentFile syntax).
# The password alphabet has no quotes (caresync_dr.db.secrets.PASSWORD_SPECIALS).
WRITE_ENV_PY = """import json, sys
secret = json.load(sys.stdin)
host, _, port = sys.argv[1].rpartition(":")
values = {"DATABASE_HOST": host, "DATABASE_PORT": port, "DATABASE_NAME": secret["dbname"],
          "DATABASE_USER": secret["username"], "DATABASE_PASSWORD": secret["password"],
          "DATABASE_SSLMODE": "verify-full"}
sys.stdout.write("".join(f"{key}='{value}'\\n" for key, value in values.items()))
"""


def boot_script(region: str, parameter_name: str, secret_id: str = APP_SECRET_NAME) -> str:
    """The boot script: host from SSM, credentials from Secrets Manager, both in ``region``,
    the instance's own. Until the secret exists in this region (bootstrap step 3 replicates
    it) it waits, saying why; without it the app is not started and the script fails."""
    return f"""#!/bin/bash
set -euo pipefail
# Everything comes from this instance's own region ({region}) at every boot: failover
# repoints the endpoint parameter and starts an instance refresh; nothing here names a
# database, and nothing reaches another region.
REGION={region}
CONF_DIR={CONF_DIR}
install -d -m 0750 "$CONF_DIR"
cat > "$CONF_DIR/write-env.py" <<'PY'
{WRITE_ENV_PY}PY
SECRET_JSON=""
for attempt in $(seq 1 {SECRET_WAIT_ATTEMPTS}); do
  if SECRET_JSON=$(aws secretsmanager get-secret-value --region "$REGION" \\
      --secret-id {secret_id} --query SecretString --output text); then
    break
  fi
  echo "caresync-boot: {secret_id} not readable in $REGION (attempt $attempt): the prod" \\
       "stack replicates it at bootstrap step 3" >&2
  SECRET_JSON=""
  sleep 10
done
if [ -z "$SECRET_JSON" ]; then
  echo "caresync-boot: no database credentials in $REGION; the app is not started" >&2
  exit 1
fi
# The parameter holds the endpoint as host:port (RDS's Endpoint form).
DB_ENDPOINT=$(aws ssm get-parameter --region "$REGION" --name {parameter_name} \\
  --with-decryption --query Parameter.Value --output text)
umask 077
printf '%s' "$SECRET_JSON" | python3 "$CONF_DIR/write-env.py" "$DB_ENDPOINT" \\
  > "$CONF_DIR/database.env.new"
mv "$CONF_DIR/database.env.new" "$CONF_DIR/database.env"
unset SECRET_JSON
systemctl restart caresync
"""


def user_data(region: str, parameter_name: str, secret_id: str = APP_SECRET_NAME) -> str:
    """:func:`boot_script`, base64-encoded as the launch template takes it."""
    return base64.b64encode(boot_script(region, parameter_name, secret_id).encode()).decode()


def instance_policy(region: str, account_id: str, endpoint_parameter_arn: str,
                    key_arn: str, secret_name: str = APP_SECRET_NAME) -> str:
    """Least privilege for the app instance, all in its own region: read the endpoint
    parameter (a SecureString) and this region's copy of the app secret, and decrypt each with
    the site key only through its service and, for the parameter, only that parameter (SSM's
    encryption context is ``PARAMETER_ARN``: Systems Manager user guide, "How Parameter Store
    uses AWS KMS")."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadDatabaseHost", "Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": endpoint_parameter_arn},
        {"Sid": "DecryptDatabaseHost", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": key_arn, "Condition": {"StringEquals": {
             "kms:ViaService": f"ssm.{region}.amazonaws.com",
             "kms:EncryptionContext:PARAMETER_ARN": endpoint_parameter_arn}}},
        {"Sid": "ReadAppCredentialsInThisRegion", "Effect": "Allow",
         "Action": "secretsmanager:GetSecretValue",
         "Resource": secret_arn_pattern(region, account_id, secret_name)},
        {"Sid": "DecryptAppCredentials", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": key_arn,
         "Condition": {"StringEquals": {
             "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclass(frozen=True)
class AppTierArgs:
    site: str
    region: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    alb_security_group_id: pulumi.Input[str]
    app_security_group_id: pulumi.Input[str]
    certificate_arn: str
    ami_id: str
    instance_type: str
    app_port: int
    health_check_path: str
    capacity: Capacity
    endpoint_parameter_arn: pulumi.Input[str]
    endpoint_parameter_name: str
    account_id: pulumi.Input[str]
    # The site key: app volumes, the endpoint parameter (a SecureString) and the secret.
    kms_key_arn: pulumi.Input[str]
    autoscaling_role_arn: pulumi.Input[str]  # the site's Auto Scaling service-linked role
    access_log_bucket: pulumi.Input[str] | None = None  # the audit's SSE-S3 ALB log bucket
    access_log_prefix: str = "alb"
    access_log_ready: Sequence[pulumi.Resource] = ()  # the bucket policy ELB must see first


class AppTier(pulumi.ComponentResource):
    load_balancer: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    launch_template: aws.ec2.LaunchTemplate
    group: aws.autoscaling.Group

    def __init__(self, name: str, args: AppTierArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:AppTier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = site_prefix(args.site)
        role = aws.iam.Role(
            f"{name}-instance-role", name=f"{prefix}-app",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"), opts=child)
        aws.iam.RolePolicyAttachment(
            f"{name}-instance-ssm-core", role=role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore", opts=child)
        aws.iam.RolePolicy(
            f"{name}-instance-read-endpoint", role=role.id,
            policy=pulumi.Output.all(args.account_id, args.endpoint_parameter_arn,
                                     args.kms_key_arn).apply(
                lambda v: instance_policy(args.region, v[0], v[1], v[2])), opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-instance-profile", name=f"{prefix}-app",
                                          role=role.name, opts=child)

        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb", name=alb_name(args.site), load_balancer_type="application",
            internal=False, security_groups=[args.alb_security_group_id],
            subnets=list(args.public_subnet_ids), drop_invalid_header_fields=True,
            enable_deletion_protection=True,
            access_logs=None if args.access_log_bucket is None else
            aws.lb.LoadBalancerAccessLogsArgs(bucket=args.access_log_bucket, enabled=True,
                                              prefix=args.access_log_prefix),
            # ELB checks that it may write to the bucket when access logs are enabled.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.access_log_ready)))
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg", name=app_name(args.site), port=args.app_port, protocol="HTTP",
            vpc_id=args.vpc_id, target_type="instance", deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True, path=args.health_check_path, protocol="HTTP",
                matcher="200", interval=15, timeout=5, healthy_threshold=2,
                unhealthy_threshold=3), opts=child)
        aws.lb.Listener(
            f"{name}-https", load_balancer_arn=self.load_balancer.arn, port=443,
            protocol="HTTPS", ssl_policy=TLS_POLICY, certificate_arn=args.certificate_arn,
            default_actions=[aws.lb.ListenerDefaultActionArgs(
                type="forward", target_group_arn=self.target_group.arn)], opts=child)
        aws.lb.Listener(
            f"{name}-http-redirect", load_balancer_arn=self.load_balancer.arn, port=80,
            protocol="HTTP", default_actions=[aws.lb.ListenerDefaultActionArgs(
                type="redirect", redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                    protocol="HTTPS", port="443", status_code="HTTP_301"))], opts=child)

        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-launch-template", name=app_name(args.site), image_id=args.ami_id,
            instance_type=args.instance_type,
            vpc_security_group_ids=[args.app_security_group_id],
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required",
                http_put_response_hop_limit=1),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    encrypted="true", kms_key_id=args.kms_key_arn, volume_size=30,
                    volume_type="gp3", delete_on_termination="true"))],
            user_data=user_data(args.region, args.endpoint_parameter_name),
            update_default_version=True, opts=child)
        # The group runs one *numbered* template version: Auto Scaling can roll an instance
        # refresh back only then (not with $Latest or $Default). pulumi up creates it with the
        # template's version of the day and never switches it afterwards (ignore_changes):
        # the provider would save the new version on the group before refreshing, and an
        # automatic rollback would then "restore" the new one (terraform-provider-aws #34189).
        # Releases roll out with `python scripts/app.py deploy` (caresync_dr/app/rollout.py).
        self.group = aws.autoscaling.Group(
            f"{name}-asg", name=app_name(args.site), min_size=args.capacity.min,
            desired_capacity=args.capacity.desired, max_size=args.capacity.max,
            vpc_zone_identifiers=list(args.private_subnet_ids),
            target_group_arns=[self.target_group.arn], health_check_type="ELB",
            health_check_grace_period=300,
            service_linked_role_arn=args.autoscaling_role_arn,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=self.launch_template.id,
                version=self.launch_template.latest_version.apply(lambda v: str(int(v)))),
            # Instances carry the site's tags from launch (cost and incident attribution);
            # changing them updates the group in place and tags only instances launched after.
            tags=[aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                  for key, value in (("Name", f"{prefix}-app"), ("caresync:site", args.site))],
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=[TEMPLATE_VERSION]))
        self.register_outputs({"albDnsName": self.load_balancer.dns_name,
                               "autoScalingGroupName": self.group.name})
