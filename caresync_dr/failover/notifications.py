"""What a failover tells people (decision D7): the notifier, configured for this run.

The engine calls it (:mod:`caresync_dr.notify.hook`); this module only decides the failover's
words and places: the kind of incident (a regional failover marks the status page components
``major_outage``, a database failover ``partial_outage``), the alert topics in the order to try
them (a regional failover: the standby region's first, since the primary may be the one that
failed; a database failover inside the healthy primary region: the primary's first), that a
verified service moves the status page to "monitoring", and that escalation counts from the
operator's ``--outage-started`` when given.
"""

from __future__ import annotations

from caresync_dr.failover.context import FailoverContext
from caresync_dr.notify.hook import JOURNAL_FACT, NotifyOptions, OperationNotifier
from caresync_dr.notify.setup import site_topics
from caresync_dr.settings import Settings


def failover_notifications(ctx: FailoverContext, settings: Settings) -> OperationNotifier:
    scope = ctx.options.scope
    inv = ctx.inventory
    options = NotifyOptions(
        kind="region-failover" if scope == "region" else "database-failover",
        topics=site_topics(settings, inv.alert_topic_arn,
                           standby_first=scope == "region" and not ctx.reversed),
        # Reversed (after a failback) the standby region is the one that may have failed.
        secret_regions=((settings.primary_region, settings.standby_region) if ctx.reversed
                        else None),
        public_statuses={"verify": "monitoring"},
        incident_started=ctx.options.outage_started,
        summary=(f"Promote {ctx.target_database} in {ctx.target.region}"
                 + (" and move traffic to it." if scope == "region" else
                    " and repoint the app at it.")),
        timeline=f"s3://{ctx.incident_bucket or inv.backup_bucket}/incidents/{{run_id}}.md")
    return OperationNotifier(settings, options, save=lambda state: ctx.fact(JOURNAL_FACT, state),
                             session=ctx.session)
