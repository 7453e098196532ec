"""Each invalid setting fails the program run (pulumi preview) with its message."""

from __future__ import annotations

import pytest

from caresync_dr.offline.runtime import run_program
from caresync_dr.settings import SettingsError


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "fragment"),
    [
        ("dr", {"standbyRegion": "us-east-1"}, "standbyRegion", "must differ from primaryRegion"),
        ("prod", {"site": "tertiary"}, "site", "must be one of primary, standby"),
        ("prod", {"rtoMinutes": "0"}, "rtoMinutes", "between 1 and"),
        ("dr", {"rpoMinutes": "-5"}, "rpoMinutes", "between 1 and"),
        ("prod", {"backupRetentionDays": "36"}, "backupRetentionDays", "1 to 35 days"),
        ("dr", {"healthCheckIntervalSeconds": "15"}, "healthCheckIntervalSeconds",
         "only 10 or 30"),
        ("dr", {"primaryStack": ""}, "primaryStack", "needs the reference to the primary stack"),
        ("dr", {"primaryStack": "organization/caresync/prod"}, "primaryStack",
         "must be <org>/caresync-dr/prod"),
        ("prod", {"standbyStack": "organization/caresync-dr/prod"}, "standbyStack",
         "must be <org>/caresync-dr/dr"),
        ("dr", {"rtoMinuts": "60"}, "rtoMinuts", "unknown setting"),
        ("prod", {"aws:region": "eu-west-1"}, "site", "aws:region is eu-west-1"),
        ("prod", {"dbReadReplicas": "0"}, "dbReadReplicas", "at least one in-region read replica"),
        ("dr", {"hostedZoneId": ""}, "hostedZoneId", "owns the failover records"),
        ("prod", {"vaultLockMode": "strict"}, "vaultLockMode", "governance, compliance"),
        ("prod", {"backupIntervalHours": "5"}, "backupIntervalHours", "divide a day evenly"),
        ("dr", {"standbyWarmCapacity": "7"}, "standbyWarmCapacity", "between 0 (pilot light)"),
        ("dr", {"certificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/abc"},
         "certificateArn", "from its own region (us-west-2)"),
    ],
)
def test_invalid_setting_fails_the_run(stack: str, overrides: dict[str, str], key: str,
                                       fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        run_program(stack, config_overrides=overrides)
    assert err.value.key == key
    assert f"caresync-dr:{key}" in str(err.value) and fragment in str(err.value)
