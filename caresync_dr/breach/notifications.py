"""What a breach response tells people (decision D7): the engine's notifier, configured here.

A data breach engages every escalation tier at once (``breach``), its clock counts from the
discovery time (the HIPAA clock's start), and the ops alert topics are tried primary first, the
standby second (either region may be the one that answers). The security topics get the
response's own ``notify`` steps (the scope and the HIPAA clock); this is the escalation path.
"""

from __future__ import annotations

from caresync_dr.breach.context import BreachContext
from caresync_dr.notify.hook import JOURNAL_FACT, NotifyOptions, OperationNotifier
from caresync_dr.notify.setup import alert_topic_arn, site_topics


def breach_notifications(ctx: BreachContext) -> OperationNotifier:
    settings = ctx.layout.settings
    primary = ctx.layout.primary
    options = NotifyOptions(
        kind="data-breach",
        topics=site_topics(settings, alert_topic_arn("aws", primary.region, primary.account,
                                                     "primary"), standby_first=False),
        breach=True, incident_started=ctx.incident.discovered_at,
        summary=f"Breach response {ctx.incident.incident_id}: contain, revoke, more logging, "
                "investigate.",
        timeline=f"s3://{ctx.layout.standby.backup_bucket}/incidents/{{run_id}}.md")
    return OperationNotifier(settings, options, save=lambda state: ctx.fact(JOURNAL_FACT, state),
                             session=ctx.session)
