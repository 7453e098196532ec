"""What a failback tells people (decision D7): the notifier of the ``failback`` kind (status page
"under maintenance": both regions answer, nothing is down), alert topics of the writer's region
first, the re-protection's verification announcing "monitoring"."""

from __future__ import annotations

from caresync_dr.failback.context import FailbackContext
from caresync_dr.notify.hook import JOURNAL_FACT, NotifyOptions, OperationNotifier
from caresync_dr.notify.setup import site_topics
from caresync_dr.settings import Settings


def failback_notifications(ctx: FailbackContext, settings: Settings) -> OperationNotifier:
    d = ctx.direction
    inv = ctx.inventory
    options = NotifyOptions(
        kind="failback",
        topics=site_topics(settings, inv.alert_topic_arn, standby_first=d.active == "standby"),
        public_statuses={"verify-armed": "monitoring"},
        summary=(f"Re-protect the {d.protected} site: {d.target_identifier} in "
                 f"{ctx.region(d.protected)} replicating from {d.writer_identifier}."),
        timeline=f"s3://{inv.backup_bucket}/incidents/{{run_id}}.md")
    return OperationNotifier(settings, options, save=lambda state: ctx.fact(JOURNAL_FACT, state),
                             session=ctx.session)
