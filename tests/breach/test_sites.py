"""breach.py derives every name from the stack files; each must be what the program registers."""

from __future__ import annotations

from caresync_dr.breach.sites import layout_from
from caresync_dr.offline.runtime import of_type
from tests import offline_runs
from tests.ci_paths import ROOT

ACCOUNT = "111122223333"


def test_every_derived_name_is_the_programs() -> None:
    layout = layout_from(ROOT, ACCOUNT)
    runs = offline_runs.steady()
    for site, run in ((layout.primary, runs["prod"]), (layout.standby, runs["dr"])):
        outputs = run.outputs
        assert site.region == outputs["region"]
        assert site.backup_bucket == outputs["backupBucketName"]
        assert site.security_topic_arn == outputs["securityTopicArn"]
        assert site.trail_log_group == outputs["trailLogGroupName"]
        assert outputs["auditTrailArn"].endswith(f":trail/{site.trail_name}")
        assert site.endpoint_parameter == outputs["dbEndpointParameter"]
        assert site.db_identifier == outputs["dbIdentifier"]
        assert site.auto_scaling_group == outputs["autoScalingGroupName"]
        groups = {g.inputs["name"] for g in of_type(run.resources,
                                                    "aws:cloudwatch/logGroup:LogGroup")}
        assert site.db_log_group in groups
    assert layout.primary.trail_multi_region and not layout.standby.trail_multi_region
    assert layout.by_region("us-west-2") is layout.standby
