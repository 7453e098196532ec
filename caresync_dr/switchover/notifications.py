"""What a planned switchover tells people (decision D7): the notifier, configured for this run.

The engine calls it (:mod:`caresync_dr.notify.hook`); this module decides the words and places:
the incident kind ``switchover`` (a maintenance: the status page components go
``under_maintenance``, templates in ``caresync_dr/notify/templates.toml``), the alert topics
in the order to try them (the target site's region first: it is where the service goes), and
that a verified service moves the status page to "monitoring".
"""

from __future__ import annotations

from caresync_dr.notify.hook import JOURNAL_FACT, NotifyOptions, OperationNotifier
from caresync_dr.notify.setup import site_topics
from caresync_dr.settings import Settings
from caresync_dr.switchover.context import SwitchoverContext


def switchover_notifications(ctx: SwitchoverContext, settings: Settings) -> OperationNotifier:
    inv = ctx.inventory
    options = NotifyOptions(
        kind="switchover",
        topics=site_topics(settings, inv.alert_topic_arn,
                           standby_first=ctx.settings.to == "standby"),
        public_statuses={"verify": "monitoring"},
        summary=(f"Fence {ctx.source_database} in {ctx.source.region}, promote "
                 f"{ctx.target_database} in {ctx.target.region} once it has replayed every "
                 "write, and move traffic to it."),
        timeline=f"s3://{inv.backup_bucket}/incidents/{{run_id}}.md")
    return OperationNotifier(settings, options, save=lambda state: ctx.fact(JOURNAL_FACT, state),
                             session=ctx.session)
