"""The breach response and the credential rotation as operations of the engine.

The engine (:mod:`caresync_dr.operations`) owns the lock, the journal, the step runner, the
confirmation, the report and the incident timeline on every exit, ``--check``/``--dry-run``
without a single change, and the notification hook. This module says what is breach-specific:
the plan (the seed's order; see :func:`breach_plan`), where the bookkeeping lives (the standby
region when it answers, else the primary), and the report's incident, scope, HIPAA clock and
time to containment.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, TextIO

from caresync_dr.breach import steps as s
from caresync_dr.breach.context import BreachContext
from caresync_dr.names import (
    BREACH_JOURNAL_PARAMETER,
    BREACH_LOCK_PARAMETER,
    ROTATION_JOURNAL_PARAMETER,
    ROTATION_LOCK_PARAMETER,
)
from caresync_dr.operations import (
    ApiCallRecorder,
    Bookkeeping,
    Check,
    Ending,
    EngineOptions,
    Operation,
    OperationHooks,
    ReportTarget,
    Stage,
    StepFailedError,
    StepRecord,
    all_steps,
    guard,
)
from caresync_dr.operations.engine import UNFINISHED

log = logging.getLogger(__name__)


def bookkeeping(ctx: BreachContext, lock: str, journal: str) -> Bookkeeping:
    """Lock, journal and incident records where they survive: the standby region when it
    answers (failover's too), else the primary."""
    standby = ctx.regions[ctx.layout.standby.region]
    access = standby if standby.reachable else ctx.regions[ctx.layout.primary.region]
    return Bookkeeping(ssm=access.clients.ssm(), lock_parameter=lock,
                       journal_parameter=journal, journal_file=ctx.options.journal_file,
                       incident_bucket=access.site.backup_bucket,
                       incident_s3=access.clients.s3)


def adopt_secrets_home(ctx: BreachContext, recorded: Any) -> None:
    """An earlier run recorded that it promoted the standby's secret replicas: their copies
    are the authoritative ones, whatever the resolution saw now (the primary region back, the
    standby not answering its describe call). Rotations are re-pointed there, never to the
    primary's stale copies; if that region does not answer, the steps needing it fail and a
    later ``--resume`` finishes them."""
    resolved = ctx.resolved
    if not isinstance(recorded, str) or resolved is None or not resolved.rotations:
        return
    if all(r.secret_region == recorded for r in resolved.rotations):
        return
    log.warning("the journal records the secrets promoted in %s: rotating there, not in the "
                "primary region's stale copies", recorded)
    resolved.rotations = [dataclasses.replace(r, secret_region=recorded)
                          for r in resolved.rotations]
    resolved.secrets_to_promote = []


def _stage(*steps: s.Step) -> Stage[BreachContext] | None:
    return Stage(tuple(steps)) if steps else None


def breach_plan(ctx: BreachContext) -> tuple[Stage[BreachContext], ...]:
    """The seed's immediate actions, in order, with what can run side by side together:

    1. notify the security team; evidence snapshots; IAM revocations (the fastest containment
       of a leaked key); with the primary region down, the secrets' standby replicas promoted;
       trails logging with data events on every PHI bucket (more logging, before anything
       else changes);
    2. isolate the instances; pgAudit ``all`` for the compromised database roles;
    3. rotate the master user's password (the other rotations log in as it);
    4. rotate the other logins; roles without a secret lose LOGIN;
    5. replace the app instances (they read the rotated secret at boot);
    6. end every session opened with a revoked credential;
    7. verify the containment (its end is the time to containment);
    8. investigate the scope and write it as evidence; notify with the scope and the HIPAA
       clock (both best effort: they never undo a containment).

    IAM's control plane answers in us-east-1 only: when it does not answer, the IAM steps are
    best effort (their failure does not stop the database and instance containment), and the
    verification then fails until ``--resume`` finishes them.
    """
    r = ctx.resolution
    compromised = ctx.incident.compromised
    iam_later = bool(r.iam_problem)
    key_owners = sorted(set(r.key_owners.values()) - set(compromised.iam_users))
    first = [s.notify("opened"),
             *(s.evidence(i) for i in r.instances),
             *(s.deactivate_key(k, best_effort=iam_later) for k in compromised.access_keys),
             *(s.revoke_user_sessions(u, best_effort=iam_later) for u in key_owners),
             *(s.quarantine_user(u, best_effort=iam_later) for u in compromised.iam_users),
             *(s.revoke_role_sessions(role, best_effort=iam_later)
               for role in compromised.iam_roles),
             *([s.PromoteSecrets()] if r.secrets_to_promote else []),
             *(s.trail_logging(a.site.region) for a in ctx.reachable())]
    audited = audited_roles(ctx)
    second = [*(s.isolate(i) for i in r.instances),
              *([s.raise_audit(audited)] if audited else [])]
    master = [s.rotate_credential(x) for x in r.rotations if x.credential.master]
    others = [*(s.rotate_credential(x) for x in r.rotations if not x.credential.master),
              *(s.disable(role) for role in r.disable_login)]
    refresh = ([s.refresh_app(a.site.region) for a in ctx.reachable()]
               if r.rotations and ctx.options.refresh_app else [])
    stages = [_stage(*first), _stage(*second), _stage(*master), _stage(*others),
              _stage(*refresh),
              _stage(s.TerminateSessions()) if r.database.endpoints else None,
              _stage(s.VerifyContainment()),
              _stage(s.Investigate(), s.notify("resolved"))]
    return tuple(stage for stage in stages if stage is not None)


def audited_roles(ctx: BreachContext) -> tuple[str, ...]:
    """The compromised database roles, each with the other login of its alternating pair (the
    app moves to that login during the response; an attacker holding one login's password may
    hold the secret's other versions too)."""
    named = ctx.incident.compromised.db_roles
    pairs = [r.credential.logins for r in ctx.resolution.rotations
             if r.credential.alternating is not None]
    found = list(named)
    for logins in pairs:
        if set(logins) & set(named):
            found += [login for login in logins if login not in found]
    return tuple(found)


def rotation_plan(ctx: BreachContext) -> tuple[Stage[BreachContext], ...]:
    """The scheduled rotation: the same steps without the incident's containment. The app's
    credential alternates between its two logins (caresync_dr.db.rotation): the previous login
    keeps working until the refresh has replaced every instance, so no new connection of the
    app fails during the rotation; the other credentials are single logins, rotated as
    before."""
    r = ctx.resolution
    stages = [_stage(s.PromoteSecrets()) if r.secrets_to_promote else None,
              _stage(*(s.rotate_credential(x, retire_previous=False)
                       for x in r.rotations if x.credential.master)),
              _stage(*(s.rotate_credential(x, retire_previous=False)
                       for x in r.rotations if not x.credential.master)),
              _stage(*(s.refresh_app(a.site.region) for a in ctx.reachable()))
              if ctx.options.refresh_app else None,
              _stage(s.VerifyRotation())]
    return tuple(stage for stage in stages if stage is not None)


class BreachOperation(Operation[BreachContext]):
    name = "breach"
    done_outcome = "already contained"

    def __init__(self, ctx: BreachContext, options: EngineOptions, out: TextIO, stdin: TextIO,
                 *, report_target: ReportTarget | None = None,
                 hooks: OperationHooks | None = None,
                 recorder: ApiCallRecorder | None = None) -> None:
        books = bookkeeping(ctx, BREACH_LOCK_PARAMETER, BREACH_JOURNAL_PARAMETER)
        super().__init__(ctx, options, books, out=out, stdin=stdin, session=ctx.session,
                         hooks=hooks,
                         report=report_target, recorder=recorder)

    def plan(self) -> tuple[Stage[BreachContext], ...]:
        return breach_plan(self.ctx)

    def title(self) -> str:
        return f"breach response {self.ctx.incident.incident_id}"

    def question(self) -> str:
        return (f"This isolates {len(self.ctx.resolution.instances)} instance(s), revokes the "
                "named credentials, rotates the database passwords and ends their sessions.")

    def identity(self) -> dict[str, Any]:
        return {"stack": self.options.stack, "incident": self.ctx.incident.incident_id}

    def refuse_resume(self, previous: dict[str, Any]) -> str | None:
        if previous.get("incident") != self.ctx.incident.incident_id:
            return (f"the unfinished run {previous.get('runId')} is for incident "
                    f"{previous.get('incident')}; resume it with --incident "
                    f"{previous.get('incident')} and the same inputs")
        return None

    def adopt(self, previous: dict[str, Any]) -> None:
        facts = previous.get("facts") or {}
        if previous.get("incident") == self.ctx.incident.incident_id:
            # The rotation instants too: without them a rerun would take every session of a
            # rotated login for one opened with the old password, the refreshed app's as well.
            for key in facts:
                if key in ("revokedBefore", "containedAt", "timeToContainmentSeconds") or \
                        str(key).startswith("rotated:"):
                    self.ctx.facts[key] = facts[key]
            if self.options.resume and previous.get("status") in UNFINISHED:
                adopt_secrets_home(self.ctx, facts.get(s.SECRETS_HOME_FACT))

    def build_report(self, records: dict[str, StepRecord], ending: Ending) -> dict[str, Any]:
        document = super().build_report(records, ending)
        ctx = self.ctx
        document.update(
            incident=ctx.incident.as_report(),
            resolved=ctx.resolved.as_report() if ctx.resolved else None,
            regions={r: {"reachable": a.reachable, "reason": a.reason}
                     for r, a in ctx.regions.items()},
            hipaa=ctx.incident.clock.as_report(),
            containedAt=ctx.facts.get("containedAt"),
            timeToContainmentSeconds=ctx.facts.get("timeToContainmentSeconds"),
            scope=ctx.facts.get("scope"))
        return document


class RotationOperation(Operation[BreachContext]):
    name = "rotation"
    done_outcome = "already rotated"

    def __init__(self, ctx: BreachContext, options: EngineOptions, out: TextIO, stdin: TextIO,
                 *, report_target: ReportTarget | None = None,
                 hooks: OperationHooks | None = None,
                 recorder: ApiCallRecorder | None = None) -> None:
        books = bookkeeping(ctx, ROTATION_LOCK_PARAMETER, ROTATION_JOURNAL_PARAMETER)
        super().__init__(ctx, options, books, out=out, stdin=stdin, session=ctx.session,
                         hooks=hooks,
                         report=report_target, recorder=recorder)

    def plan(self) -> tuple[Stage[BreachContext], ...]:
        return rotation_plan(self.ctx)

    def checks(self, daily: bool) -> list[Check]:
        """The engine's rows, and for each alternating credential whether the login it would
        change is free (no session of an instance the last refresh left behind): a real run
        refuses before its first change when it is not, --check says so."""
        found = super().checks(daily)
        for step in all_steps(self.plan()):
            if not isinstance(step, s.RotateCredential) or \
                    step.rotation.credential.alternating is None:
                continue
            label = f"{step.name}: the login to change is free"

            def read(step: s.RotateCredential = step, label: str = label) -> Check:
                try:
                    verdict = step.check(self.ctx)
                except StepFailedError as exc:
                    return Check(label, False, str(exc))
                return Check(label, verdict.kind != "blocked", verdict.sentence)

            found.append(guard(label, True, read))
        return found

    def title(self) -> str:
        return f"database credential rotation {self.ctx.incident.incident_id}"
