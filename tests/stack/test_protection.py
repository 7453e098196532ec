"""What `pulumi destroy` (or a bad refactor) must not delete: ResourceOptions(protect=True).

The site KMS key (every backup, snapshot and replica is encrypted with it), the AWS Backup
vaults, the writer databases and the cross-region replica (the DR copy) are protected, in Pulumi
and by RDS deletion protection; the in-region read replicas are neither (they hold no data of
their own, and lowering dbReadReplicas must be able to delete them).
"""

from __future__ import annotations

from caresync_dr.offline.runtime import ProgramRun, of_type
from tests.stack.checks import check

KEY = "aws:kms/key:Key"
VAULT = "aws:backup/vault:Vault"
INSTANCE = "aws:rds/instance:Instance"


def test_keys_vaults_and_writer_databases_are_protected(any_stack: ProgramRun) -> None:
    keys, vaults = of_type(any_stack.resources, KEY), of_type(any_stack.resources, VAULT)
    assert keys and vaults
    for resource in (*keys, *vaults):
        check(resource, resource.protect, "not protected: pulumi destroy would delete it")
    sites = [db for db in of_type(any_stack.resources, INSTANCE)
             if db.inputs["identifier"] == any_stack.outputs["dbIdentifier"]]
    assert len(sites) == 1
    check(sites[0], sites[0].protect, "the site's database is not protected")
    check(sites[0], sites[0].inputs["deletionProtection"] is True, "no RDS deletion protection")
    for identifier in any_stack.outputs["dbReplicaIdentifiers"]:
        (replica,) = [db for db in of_type(any_stack.resources, INSTANCE)
                      if db.inputs["identifier"] == identifier]
        check(replica, not replica.protect and replica.inputs["deletionProtection"] is False,
              "an in-region replica must stay deletable (dbReadReplicas may shrink)")


def test_protection_is_read_from_the_engine_request(prod_bootstrap: ProgramRun) -> None:
    # The mocks record protect per resource: unprotected ones must read False, or the test
    # above could not fail.
    replicas = [db for db in of_type(prod_bootstrap.resources, INSTANCE)
                if "replica" in db.name]
    assert replicas and not any(db.protect for db in replicas)
    assert not any(r.protect for r in of_type(prod_bootstrap.resources, "aws:s3/bucket:Bucket"))
