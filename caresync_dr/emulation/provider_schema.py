"""What an update of each resource type does in the real provider: replace, or in place.

pulumi-aws does not ship its schema with the Python SDK (only ``pulumi-plugin.json``), and the
ForceNew flags live in the provider binary built from terraform-provider-aws. So they are
written down here, per resource type, with where they were read: ``read`` names the
terraform-provider-aws file whose ``Schema`` was read for this table; the others follow the
AWS API (an argument with no Update/Modify call replaces) and say so.

* ``replace_on``: arguments whose change replaces the resource (ForceNew / RequiresReplace).
* ``computed``: optional arguments the provider fills in when the program leaves them out
  (Optional + Computed): dropping one from the program is no change.
* ``name_keys``: the arguments that are the resource's physical name. A replacement that keeps
  them cannot create the new resource before deleting the old one (AlreadyExists), unless
  ``delete_before_replace`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TF = "terraform-provider-aws internal/service/"


@dataclass(frozen=True)
class TypeSchema:
    replace_on: frozenset[str]
    source: str
    computed: frozenset[str] = field(default_factory=frozenset)
    name_keys: tuple[str, ...] = ("name",)


def _schema(replace_on: str, source: str, computed: str = "",
            name_keys: tuple[str, ...] = ("name",)) -> TypeSchema:
    return TypeSchema(frozenset(replace_on.split()), source, frozenset(computed.split()),
                      name_keys)


SCHEMAS: dict[str, TypeSchema] = {
    # Read: Create/Update/Delete of the modern (SDK v2) resource. identifier is updatable
    # (ModifyDBInstance NewDBInstanceIdentifier); replicate_source_db, engine_version and
    # password have special update paths (caresync_dr.emulation.lifecycle).
    "aws:rds/instance:Instance": _schema(
        "availabilityZone backupTarget characterSetName customIamInstanceProfile dbName engine "
        "identifierPrefix kmsKeyId ncharCharacterSetName restoreToPointInTime "
        "snapshotIdentifier storageEncrypted timezone username",
        TF + "rds/instance.go",
        "allocatedStorage availabilityZone backupRetentionPeriod backupWindow caCertIdentifier "
        "dbName dbSubnetGroupName engine engineVersion identifier iops kmsKeyId licenseModel "
        "maintenanceWindow masterUserSecretKmsKeyId multiAz networkType optionGroupName "
        "parameterGroupName performanceInsightsKmsKeyId performanceInsightsRetentionPeriod "
        "port replicaMode storageThroughput storageType username vpcSecurityGroupIds",
        ("identifier",)),
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": _schema(
        "kmsKeyId preSignedUrl retentionPeriod sourceDbInstanceArn",
        TF + "rds/instance_automated_backups_replication.go (no Update)", "kmsKeyId",
        ("sourceDbInstanceArn",)),
    "aws:rds/parameterGroup:ParameterGroup": _schema(
        "description family name namePrefix", TF + "rds/parameter_group.go"),
    "aws:rds/subnetGroup:SubnetGroup": _schema(
        "name namePrefix", "RDS ModifyDBSubnetGroup changes description and subnets only"),
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": _schema(
        "backupVaultName changeableForDays maxRetentionDays minRetentionDays",
        TF + "backup/vault_lock_configuration.go (no Update)", name_keys=("backupVaultName",)),
    "aws:backup/vault:Vault": _schema(
        "name kmsKeyArn", "AWS Backup has no UpdateBackupVault (name and key are fixed)"),
    "aws:backup/plan:Plan": _schema("name", "AWS Backup UpdateBackupPlan changes the rules only"),
    "aws:backup/selection:Selection": _schema(
        "name planId iamRoleArn resources notResources conditions selectionTags",
        "AWS Backup has no UpdateBackupSelection"),
    "aws:backup/restoreTestingPlan:RestoreTestingPlan": _schema(
        "name", "AWS Backup UpdateRestoreTestingPlan keeps the name"),
    "aws:backup/restoreTestingSelection:RestoreTestingSelection": _schema(
        "name restoreTestingPlanName protectedResourceType",
        "AWS Backup UpdateRestoreTestingSelection keeps name, plan and resource type"),
    "aws:route53/healthCheck:HealthCheck": _schema(
        "type requestInterval measureLatency referenceName routingControlArn",
        TF + "route53/health_check.go", "enableSni failureThreshold", ()),
    "aws:route53/record:Record": _schema(
        "zoneId name type setIdentifier", "Route 53 ChangeResourceRecordSets UPSERT keys a "
        "record by zone, name, type and set identifier", name_keys=()),
    "aws:ssm/parameter:Parameter": _schema(
        "name dataType", TF + "ssm/parameter.go (tier Advanced -> Standard also replaces)",
        "tier"),
    "aws:secretsmanager/secret:Secret": _schema(
        "name namePrefix", "Secrets Manager UpdateSecret keeps the name; replicas change "
        "through ReplicateSecretToRegions/RemoveRegionsFromReplication"),
    "aws:secretsmanager/secretVersion:SecretVersion": _schema(
        "secretId secretString secretBinary", TF + "secretsmanager/secret_version.go "
        "(a new value is a new version)", name_keys=()),
    "random:index/randomPassword:RandomPassword": _schema(
        "length special upper lower numeric overrideSpecial minLower minUpper minNumeric "
        "minSpecial keepers", "pulumi-random RandomPassword (every argument RequiresReplace)",
        name_keys=()),
    "aws:kms/key:Key": _schema(
        "customerMasterKeySpec keyUsage multiRegion xksKeyId customKeyStoreId",
        "KMS has no call to change a key's spec, usage or region model", name_keys=()),
    "aws:kms/alias:Alias": _schema("name namePrefix", "KMS UpdateAlias changes the target only"),
    "aws:cloudwatch/logGroup:LogGroup": _schema(
        "name namePrefix logGroupClass", "CloudWatch Logs has no rename; key and retention "
        "change through AssociateKmsKey and PutRetentionPolicy"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _schema(
        "name", "CloudWatch PutMetricAlarm overwrites an alarm of the same name"),
    "aws:sns/topic:Topic": _schema("name namePrefix fifoTopic", "SNS has no rename"),
    "aws:sns/topicSubscription:TopicSubscription": _schema(
        "topic protocol endpoint", "SNS subscriptions are fixed to topic, protocol and endpoint",
        name_keys=()),
    "aws:cloudtrail/trail:Trail": _schema("name", "CloudTrail UpdateTrail keeps the name"),
    # Read: terraform-provider-aws guardduty/detector.go (every argument through UpdateDetector;
    # delete disables GuardDuty in the region) and detector_feature.go (detector_id, name
    # ForceNew; delete is a no-op).
    "aws:guardduty/detector:Detector": _schema(
        "", TF + "guardduty/detector.go (no ForceNew argument)", name_keys=()),
    "aws:guardduty/detectorFeature:DetectorFeature": _schema(
        "detectorId name", TF + "guardduty/detector_feature.go", name_keys=()),
    "aws:cloudwatch/eventRule:EventRule": _schema(
        "name namePrefix eventBusName", "EventBridge PutRule keys a rule by bus and name"),
    "aws:cloudwatch/eventTarget:EventTarget": _schema(
        "rule targetId eventBusName", "EventBridge PutTargets keys a target by rule and id",
        name_keys=("rule", "targetId")),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": _schema(
        "name logGroupName", "CloudWatch Logs PutMetricFilter keys a filter by group and name",
        name_keys=("logGroupName", "name")),
    "aws:sns/topicPolicy:TopicPolicy": _schema(
        "arn", "one policy per topic (SetTopicAttributes Policy)", name_keys=("arn",)),
    "aws:iam/role:Role": _schema("name namePrefix path", "IAM has no role rename"),
    "aws:iam/rolePolicy:RolePolicy": _schema("name role", "IAM PutRolePolicy per role and name"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _schema(
        "role policyArn", "an attachment is the pair", name_keys=()),
    "aws:iam/instanceProfile:InstanceProfile": _schema("name path", "IAM has no rename"),
    "aws:iam/serviceLinkedRole:ServiceLinkedRole": _schema(
        "awsServiceName customSuffix", "IAM CreateServiceLinkedRole; only the description "
        "changes", name_keys=("customSuffix",)),
    "aws:autoscaling/group:Group": _schema("name namePrefix", "Auto Scaling has no rename"),
    "aws:ec2/launchTemplate:LaunchTemplate": _schema(
        "name namePrefix", "EC2 launch templates are versioned: a change is a new version"),
    "aws:ec2/securityGroup:SecurityGroup": _schema(
        "name namePrefix description vpcId", "pulumi-aws aws.ec2.SecurityGroup docstring: "
        "'GroupDescription ... for which there is no Update API'"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _schema(
        "securityGroupId", "VPC security group rules move between groups only by re-creation",
        name_keys=()),
    "aws:ec2/vpc:Vpc": _schema("cidrBlock instanceTenancy", "EC2 cannot change a VPC's "
                               "primary CIDR", name_keys=()),
    "aws:ec2/subnet:Subnet": _schema("vpcId cidrBlock availabilityZone availabilityZoneId",
                                     "EC2 cannot move or resize a subnet", name_keys=()),
    "aws:ec2/internetGateway:InternetGateway": _schema("", "attach/detach in place",
                                                       name_keys=()),
    "aws:ec2/natGateway:NatGateway": _schema(
        "allocationId subnetId connectivityType privateIp", "EC2 has no NAT gateway update "
        "for these", name_keys=()),
    "aws:ec2/eip:Eip": _schema("domain", "an address keeps its domain", name_keys=()),
    "aws:ec2/routeTable:RouteTable": _schema("vpcId", "a route table belongs to one VPC",
                                             name_keys=()),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _schema(
        "subnetId gatewayId", "ReplaceRouteTableAssociation changes the table only",
        name_keys=()),
    "aws:ec2/flowLog:FlowLog": _schema(
        "vpcId logDestination logDestinationType trafficType maxAggregationInterval "
        "logFormat", "EC2 has no flow log update", name_keys=()),
    "aws:lb/loadBalancer:LoadBalancer": _schema(
        "name namePrefix internal loadBalancerType", "ELB has no rename or scheme change"),
    "aws:lb/targetGroup:TargetGroup": _schema(
        "name namePrefix port protocol vpcId targetType protocolVersion",
        "ELB ModifyTargetGroup changes the health check only"),
    "aws:lb/listener:Listener": _schema("loadBalancerArn", "a listener belongs to one load "
                                        "balancer", name_keys=()),
    "aws:s3/bucket:Bucket": _schema("bucket bucketPrefix objectLockEnabled",
                                    "S3 has no bucket rename", name_keys=("bucket",)),
    "aws:s3/bucketVersioning:BucketVersioning": _schema(
        "bucket expectedBucketOwner", "one configuration per bucket", name_keys=("bucket",)),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        _schema("bucket expectedBucketOwner", "one configuration per bucket",
                name_keys=("bucket",)),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _schema(
        "bucket expectedBucketOwner", "one configuration per bucket", name_keys=("bucket",)),
    "aws:s3/bucketPolicy:BucketPolicy": _schema("bucket", "one policy per bucket",
                                                name_keys=("bucket",)),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _schema(
        "bucket", "one configuration per bucket", name_keys=("bucket",)),
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": _schema(
        "bucket", "one configuration per bucket", name_keys=("bucket",)),
    "aws:s3/bucketObjectv2:BucketObjectv2": _schema("bucket key", "an object is its key",
                                                    name_keys=("bucket", "key")),
}
# Provider-only arguments: they change what the provider does later (on delete, on update),
# not the cloud resource; changing them calls no AWS API.
PROVIDER_ONLY = {
    "aws:rds/instance:Instance": frozenset({"applyImmediately", "skipFinalSnapshot",
                                            "finalSnapshotIdentifier",
                                            "deleteAutomatedBackups",
                                            "allowMajorVersionUpgrade"}),
}
# Types whose replacement or deletion loses data (or, for a key, everything encrypted with it).
DATA_TYPES = frozenset({"aws:rds/instance:Instance", "aws:s3/bucket:Bucket",
                        "aws:backup/vault:Vault", "aws:kms/key:Key",
                        "aws:secretsmanager/secret:Secret",
                        # deleting a detector disables GuardDuty and drops every finding
                        "aws:guardduty/detector:Detector"})


def schema_of(type_: str) -> TypeSchema:
    """The table entry; unknown types are treated as replaced by any change of their name."""
    return SCHEMAS.get(type_, TypeSchema(frozenset({"name"}), "not in the table: only a "
                                         "name change is assumed to replace"))
