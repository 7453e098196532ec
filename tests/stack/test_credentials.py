"""Database credentials (decision D1): generated once, kept in Secrets Manager, replicated into
the standby region under the standby key, and read by each app from its own region only."""

from __future__ import annotations

import json
from pathlib import Path

from caresync_dr.db.secrets import PASSWORD_SPECIALS
from caresync_dr.offline.runtime import ProgramRun, of_type
from tests.stack.boot import run_boot
from tests.stack.checks import one, policy

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"
SECRET_VALUE = {"engine": "postgres", "username": "caresync_app", "password": "pw-7",
                "dbname": "caresync"}


def test_prod_keeps_both_secrets_under_its_key(prod_bootstrap: ProgramRun) -> None:
    secrets = {s.inputs["name"]: s for s in of_type(prod_bootstrap.resources, SECRET)}
    assert set(secrets) == {"caresync/db/master", "caresync/db/app"}
    for secret in secrets.values():
        assert secret.inputs["kmsKeyId"] == prod_bootstrap.outputs["kmsKeyArn"]
        assert "replicas" not in secret.inputs, "step 1 cannot know the standby key yet"
    values = [json.loads(v.inputs["secretString"]) for v in of_type(prod_bootstrap.resources,
                                                                   VERSION)]
    assert sorted(v["username"] for v in values) == ["caresync_admin", "caresync_app"]
    for value in values:
        assert set(value) == {"engine", "username", "password", "dbname"}, \
            "the host is per region (SSM), never in the secret"
    for version in of_type(prod_bootstrap.resources, VERSION):
        assert version.ignore_changes == ("secretString",), "a rotation must not be undone"


def test_step_3_replicates_the_secrets_with_the_standby_key(prod_linked: ProgramRun,
                                                           dr: ProgramRun) -> None:
    for secret in of_type(prod_linked.resources, SECRET):
        assert secret.inputs["replicas"] == [{"region": "us-west-2",
                                              "kmsKeyId": dr.outputs["kmsKeyArn"]}]
    assert of_type(dr.resources, SECRET) == [], "the dr stack owns no second copy"


def test_passwords_avoid_what_rds_refuses(prod_bootstrap: ProgramRun) -> None:
    for password in of_type(prod_bootstrap.resources, PASSWORD):
        assert password.inputs["length"] >= 32 and password.inputs["special"] is True
        assert password.inputs["overrideSpecial"] == PASSWORD_SPECIALS
        # RDS master passwords cannot contain /, ", @ or a space; the env file, no quotes.
        assert not set(PASSWORD_SPECIALS) & set('/"@ \'$\\`')
        assert set(password.outputs["result"]) - set(PASSWORD_SPECIALS) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def test_the_app_may_read_only_its_regions_copy_of_its_secret(any_stack: ProgramRun) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    region = "us-east-1" if site == "primary" else "us-west-2"
    role_policy = one(any_stack, "aws:iam/rolePolicy:RolePolicy",
                      f"{site}-app-instance-read-endpoint")
    statements = {s["Sid"]: s for s in policy(role_policy)["Statement"]}
    assert statements["ReadAppCredentialsInThisRegion"]["Resource"] == (
        f"arn:aws:secretsmanager:{region}:111122223333:secret:caresync/db/app-??????")
    decrypt = statements["DecryptAppCredentials"]
    assert decrypt["Resource"] == any_stack.outputs["kmsKeyArn"]
    assert decrypt["Condition"] == {"StringEquals": {
        "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}
    assert "caresync/db/master" not in json.dumps(policy(role_policy))


def test_nothing_the_standby_app_uses_names_the_primary_region(dr: ProgramRun) -> None:
    app = [r for r in dr.resources if "caresync:dr:AppTier" in r.urn and r.custom]
    assert app
    for resource in app:
        text = json.dumps(resource.inputs)
        if resource.type == "aws:ec2/launchTemplate:LaunchTemplate":
            import base64

            text += base64.b64decode(resource.inputs["userData"]).decode()
        assert "us-east-1" not in text and "caresync-primary" not in text, resource.urn


def test_each_app_boots_from_its_own_region(prod_linked: ProgramRun, dr: ProgramRun,
                                            tmp_path: Path) -> None:
    for run, region, host in ((prod_linked, "us-east-1", "primary"),
                              (dr, "us-west-2", "standby")):
        template = one(run, "aws:ec2/launchTemplate:LaunchTemplate", f"{host}-app-launch-template")
        work = tmp_path / host
        work.mkdir()
        boot = run_boot(template.inputs["userData"], work, serves=region, secret=SECRET_VALUE,
                        endpoint=f"caresync-{host}-db.example:5432")
        assert boot.returncode == 0, boot.stderr
        assert boot.env_file == {
            "DATABASE_HOST": f"caresync-{host}-db.example", "DATABASE_PORT": "5432",
            "DATABASE_NAME": "caresync", "DATABASE_USER": "caresync_app",
            "DATABASE_PASSWORD": "pw-7", "DATABASE_SSLMODE": "verify-full"}
        assert boot.env_mode == 0o600, "the password file is readable by root only"
        assert [c[:2] for c in boot.calls] == [["secretsmanager", "get-secret-value"],
                                               ["ssm", "get-parameter"]]
        assert all(c[c.index("--region") + 1] == region for c in boot.calls)


def test_before_step_3_the_standby_app_waits_and_does_not_start(dr: ProgramRun,
                                                                tmp_path: Path) -> None:
    template = one(dr, "aws:ec2/launchTemplate:LaunchTemplate", "standby-app-launch-template")
    boot = run_boot(template.inputs["userData"], tmp_path, serves="us-west-2", secret=None)
    assert boot.returncode != 0
    assert "replicates it at bootstrap step 3" in boot.stderr
    assert "no database credentials in us-west-2; the app is not started" in boot.stderr
    assert boot.env_file == {}
    assert len(boot.calls) == 60, "it retries before giving up"
