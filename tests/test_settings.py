from pathlib import Path

import pytest

from caresync_dr.settings import SettingsError, load_settings, settings_from_stack_file

ROOT = Path(__file__).resolve().parents[1]


def test_committed_stacks_are_valid() -> None:
    prod = settings_from_stack_file("prod", ROOT)
    dr = settings_from_stack_file("dr", ROOT)
    assert (prod.site, prod.region) == ("primary", "us-east-1")
    assert (dr.site, dr.region) == ("standby", "us-west-2")
    assert prod.rto_minutes == dr.rto_minutes == 60
    assert prod.rpo_minutes == dr.rpo_minutes == 15
    assert prod.backup_interval_hours == 6 and prod.backup_retention_days == 30


def _dr_values(**overrides: object) -> dict[str, object]:
    from caresync_dr.settings import read_stack_file

    values, _ = read_stack_file("dr", ROOT)
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"standbyRegion": "us-east-1"}, "standbyRegion", "must differ from primaryRegion"),
        ({"site": "tertiary"}, "site", "must be one of primary, standby"),
        ({"rtoMinutes": "0"}, "rtoMinutes", "between 1 and"),
        ({"rpoMinutes": "-5"}, "rpoMinutes", "between 1 and"),
        ({"backupRetentionDays": "36"}, "backupRetentionDays", "1 to 35 days"),
        ({"backupRetentionDays": "0"}, "backupRetentionDays", "1 to 35 days"),
        ({"healthCheckIntervalSeconds": "15"}, "healthCheckIntervalSeconds", "only 10 or 30"),
        ({"backupIntervalHours": "5"}, "backupIntervalHours", "must divide a day evenly"),
        ({"backupIntervalHours": "0"}, "backupIntervalHours", "one of 1, 2, 3, 4, 6, 8, 12, 24"),
        ({"healthCheckFailureThreshold": "11"}, "healthCheckFailureThreshold", "1 to 10"),
        ({"primaryStack": None}, "primaryStack", "needs the reference to the primary stack"),
        ({"primaryStack": "acme/caresync/prod"}, "primaryStack",
         "must be <org>/caresync-dr/prod"),
        ({"primaryStack": "acme/caresync-dr/dr"}, "primaryStack",
         "must be <org>/caresync-dr/prod"),
        ({"primaryStack": "prod"}, "primaryStack", "must be <org>/caresync-dr/prod"),
        ({"primaryStack": "acme/caresync-dr/staging"}, "primaryStack",
         "must be <org>/caresync-dr/prod"),
        ({"rtoMinuts": "60"}, "rtoMinuts", "unknown setting"),
        ({"appCapacity": '{"min": 3, "desired": 2, "max": 6}'}, "appCapacity", "min <= desired"),
        ({"standbyWarmCapacity": "7"}, "standbyWarmCapacity", "between 0 (pilot light)"),
        ({"alertEmails": "[]"}, "alertEmails", "non-empty list"),
        ({"certificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/abc"},
         "certificateArn", "from its own region (us-west-2)"),
        ({"vaultLockMode": "strict"}, "vaultLockMode", "governance, compliance"),
        ({"activeSite": "both"}, "activeSite", "must be one of primary, standby"),
        ({"dbGeneration": "0"}, "dbGeneration", "between 1 and 99"),
        ({"dbRetiring": '{"generation": 1}'}, "dbRetiring", "exactly generation and role"),
        ({"dbRetiring": '{"generation": 1, "role": "writer"}'}, "dbRetiring",
         "earlier generation than dbGeneration (1)"),
        ({"dbRetiring": '{"generation": 1, "role": "primary"}'}, "dbRetiring.role",
         "writer, replica"),
        ({"dbEngineVersion": "13"}, "dbEngineVersion", "14.1"),
        ({"dbEngineVersion": "15.4"}, "dbEngineVersion", "major version only"),
        ({"dbLogRetentionDays": "100"}, "dbLogRetentionDays", "PutRetentionPolicy"),
        ({"activeSite": "standby", "dbReadReplicas": "0"}, "dbReadReplicas",
         "active site needs at least one"),
    ],
)
def test_invalid_setting_names_key_value_and_rule(overrides: dict[str, object], key: str,
                                                  fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings("dr", _dr_values(**overrides), "us-west-2")
    assert err.value.key == key
    assert f"caresync-dr:{key}" in str(err.value)
    assert fragment in str(err.value)


def test_aws_region_must_match_the_site() -> None:
    with pytest.raises(SettingsError, match="aws:region is eu-west-1"):
        load_settings("dr", _dr_values(), "eu-west-1")


def test_standby_capacity_is_warm_but_can_scale_to_production() -> None:
    dr = load_settings("dr", _dr_values(standbyWarmCapacity="0"), "us-west-2")
    assert dr.site_capacity.desired == 0 and dr.site_capacity.min == 0
    assert dr.site_capacity.max == dr.app_capacity.max


def test_stack_references_accept_any_organization() -> None:
    dr = load_settings("dr", _dr_values(primaryStack="acme-health/caresync-dr/prod"),
                       "us-west-2")
    assert dr.primary_stack == "acme-health/caresync-dr/prod"


def test_the_primary_stack_reference_must_name_the_dr_stack() -> None:
    from caresync_dr.settings import read_stack_file

    values, _ = read_stack_file("prod", ROOT)
    values["standbyStack"] = "acme/caresync-dr/prod"
    with pytest.raises(SettingsError) as err:
        load_settings("prod", values, "us-east-1")
    assert err.value.key == "standbyStack"
    assert "must be <org>/caresync-dr/dr" in str(err.value)
    assert "acme/caresync-dr/prod" in str(err.value)


def _prod_values(**overrides: object) -> dict[str, object]:
    from caresync_dr.settings import read_stack_file

    values, _ = read_stack_file("prod", ROOT)
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def test_the_primary_site_cannot_replicate_with_its_bootstrap_generation() -> None:
    """Generation 1 of the primary was created as the writer; RDS cannot make it a replica."""
    with pytest.raises(SettingsError) as err:
        load_settings("prod", _prod_values(activeSite="standby"), "us-east-1")
    assert err.value.key == "dbGeneration" and "cannot elect new source" in str(err.value)
    prod = load_settings("prod", _prod_values(activeSite="standby", dbGeneration="2"),
                         "us-east-1")
    assert not prod.is_writer and prod.site_capacity.desired == prod.standby_warm_capacity


def test_the_replica_site_needs_the_writers_stack() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings("prod", _prod_values(activeSite="standby", dbGeneration="2",
                                           standbyStack=None), "us-east-1")
    assert err.value.key == "standbyStack"


def test_retiring_generation_parses_from_yaml_or_json() -> None:
    retiring = {"generation": 1, "role": "writer"}
    for raw in (retiring, '{"generation": 1, "role": "writer"}'):
        prod = load_settings("prod", _prod_values(activeSite="standby", dbGeneration="2",
                                                  dbRetiring=raw), "us-east-1")
        assert prod.db_retiring is not None
        assert (prod.db_retiring.generation, prod.db_retiring.role) == (1, "writer")


def test_both_committed_stacks_agree_on_the_active_site() -> None:
    prod = settings_from_stack_file("prod", ROOT)
    dr = settings_from_stack_file("dr", ROOT)
    assert prod.active_site == dr.active_site
