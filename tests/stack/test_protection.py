"""What `pulumi destroy` (or a bad refactor) must not delete: ResourceOptions(protect=True).

The site KMS key (every backup, snapshot and replica is encrypted with it), the AWS Backup
vaults and the writer databases are protected; the in-region read replicas rely on RDS
deletion_protection only (they hold no data of their own, and dbReadReplicas may shrink).
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
    writers = [db for db in of_type(any_stack.resources, INSTANCE)
               if db.inputs["identifier"] == any_stack.outputs["dbIdentifier"]]
    assert len(writers) == 1
    check(writers[0], writers[0].protect, "the writer database is not protected")
    for db in of_type(any_stack.resources, INSTANCE):
        check(db, db.inputs["deletionProtection"] is True, "no RDS deletion protection")


def test_protection_is_read_from_the_engine_request(prod_bootstrap: ProgramRun) -> None:
    # The mocks record protect per resource: unprotected ones must read False, or the test
    # above could not fail.
    replicas = [db for db in of_type(prod_bootstrap.resources, INSTANCE)
                if "replica" in db.name]
    assert replicas and not any(db.protect for db in replicas)
    assert not any(r.protect for r in of_type(prod_bootstrap.resources, "aws:s3/bucket:Bucket"))
