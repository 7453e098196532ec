"""The inventory schema is strict by construction: every field carries a rule, and the rules are
AWS's (``caresync_dr/aws_names.py``). A field added later (a standby generation, a secret ARN)
cannot slip in unvalidated."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from caresync_dr import aws_names
from caresync_dr.inventory import DatabaseInventory, rule, unruled_fields


def test_every_field_of_the_schema_has_a_rule() -> None:
    assert unruled_fields() == []


def test_a_field_without_a_rule_is_named() -> None:
    @dataclass(frozen=True)
    class Grown:
        database: DatabaseInventory
        generation: int
        secret_arn: str = field(default="", metadata=rule(aws_names.region))

    assert unruled_fields(Grown) == ["generation"]


@pytest.mark.parametrize(("check", "good", "bad"), [
    (aws_names.rds_identifier, "caresync-dr-db", ["1db", "db-", "a--b", "d" * 64, "db_x"]),
    (aws_names.security_group_id, "sg-0123456789abcdef0", ["sg-xyz", "default", "sg-123"]),
    (aws_names.ssm_parameter_name, "/caresync-dr/failover/lock",
     ["lock", "/a b", "/aws/x", "/SSM-x/y", "/a" * 16]),
    (aws_names.s3_bucket_name, "caresync-dr-backups-1",
     ["ab", "Caps", "a..b", "10.0.0.1", "xn--a", "b-s3alias", "-ab"]),
    (aws_names.route53_health_check_id, "abcdef11-2222-3333-4444-555555fedcba",
     ["check-1", "ABCDEF11-2222-3333-4444-555555FEDCBA"]),
    (aws_names.dns_name, "app.caresync.health", ["app", "a b.c", "-a.b"]),
    (aws_names.region, "us-gov-west-1", ["mars-1", "US-EAST-1"]),
])
def test_aws_name_rules(check: aws_names.Check, good: str, bad: list[str]) -> None:
    assert check(good) is None
    for value in bad:
        assert check(value), value


def test_urls() -> None:
    assert aws_names.url("https://app.caresync.health/api/health", https_only=True) is None
    assert aws_names.url("http://app.caresync.health/h", https_only=True)
    assert aws_names.url("http://127.0.0.1:8080/h", https_only=True, loopback_http=True) is None
    assert aws_names.url("app.caresync.health/h", https_only=False)
    assert aws_names.url("https://x.example:99999/", https_only=False)


def test_arns_must_match_the_site() -> None:
    arn = "arn:aws:rds:us-east-1:111122223333:db:caresync-prod-db"
    assert aws_names.rds_instance_arn(arn, in_region="us-east-1",
                                      identifier="caresync-prod-db") is None
    assert "us-east-1" in str(aws_names.rds_instance_arn(arn, in_region="us-west-2",
                                                         identifier="caresync-prod-db"))
    topic = "arn:aws:sns:us-east-1:111122223333:alerts"
    assert aws_names.sns_topic_arn(topic, in_region="us-west-2")
