"""The drill's human summary: timeline, verifications, what people were told, the figures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caresync_dr.drill.timeline import Timeline


def crash_report(scenario: str, error: str, timeline: Timeline | None = None) -> dict[str, Any]:
    """The report of a drill that could not finish: ok false, the error, what was recorded."""
    return {
        "scenario": scenario,
        "ok": False,
        "error": error,
        "verifications": [],
        "steps": [{"name": s.name, "seconds": s.seconds, "ok": s.ok, "detail": s.detail}
                  for s in (timeline.steps if timeline is not None else [])],
        "timeline": timeline.as_json() if timeline is not None else [],
    }


def summary(report: dict[str, Any]) -> str:
    if report.get("in_region") is not None:
        return in_region_summary(report)
    lines = ["", "timeline (seconds relative to the outage):"]
    lines += [f"  {e['t']:+8.3f}  {e['event']}" for e in report["timeline"]]
    lines += notification_lines(report)
    lines.append("")
    lines.append("verifications:")
    lines += [f"  {'PASS' if v['ok'] else 'FAIL'}  {v['name']}: {v['detail']}"
              for v in report["verifications"]]
    writes = report["writes"]
    targets = report["targets"]
    lines += [
        "",
        f"scenario             {report['scenario']}",
        f"RTO                  {report['rto_seconds']} s (outage -> public health URL served)",
        f"critical path        {report['critical_path_seconds']} s (modelled lower bound)",
        f"RTO / critical path  {report['rto_to_critical_path_ratio']} "
        f"(target <= {targets['ratio_at_most']}: {'met' if targets['ratio_met'] else 'NOT met'})",
        f"RPO                  {report['rpo_seconds']} s, {report['rpo_transactions']} "
        f"acknowledged writes missing on {writes['survivor']} "
        f"(target <= {targets['rpo_seconds_at_most']} s: "
        f"{'met' if targets['rpo_met'] else 'NOT met'})",
        f"writes               {writes['acknowledged']} acknowledged, {writes['failed']} failed",
        *standby_region_lines(report.get("standby_region") or {}),
        f"result               {'PASS' if report['ok'] else 'FAIL'}",
    ]
    return "\n".join(lines)


def notification_lines(report: dict[str, Any]) -> list[str]:
    """What the failover told people (its report's ``notifications``, docs/communication.md):
    each message's time, audience, event and title, and each channel's delivery result."""
    failover = (report.get("failover") or {}).get("report") or {}
    notes = failover.get("notifications") or {}
    messages = notes.get("messages") or []
    if not messages:
        return []
    lines = ["", f"notifications (incident {notes.get('incident', '?')}, tiers engaged: "
             + (", ".join(e.get("who", e.get("tier", "?"))
                          for e in notes.get("engagedTiers") or []) or "none") + "):"]
    for m in messages:
        status = m.get("incident_status")
        lines.append(f"  {m.get('at', '')[11:23]}  {m.get('audience', ''):<8} "
                     f"{m.get('event', ''):<9} {m.get('title', '')}"
                     + (f" (status page: {status})" if status else ""))
    results: dict[str, dict[str, int]] = {}
    for d in notes.get("deliveries") or []:
        counts = results.setdefault(d.get("channel", "?"), {})
        counts[d.get("status", "?")] = counts.get(d.get("status", "?"), 0) + 1
    for name, state in sorted((notes.get("channels") or {}).items()):
        counts = results.get(name, {})
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
        lines.append(f"  channel {name}: {state}; {shown}")
    return lines


def standby_region_lines(section: dict[str, Any]) -> list[str]:
    """The standby-region proof's figures, when the scenario has one."""
    lines = []
    app = section.get("app")
    if app:
        boots = app.get("boots") or []
        calls = sorted({c.split(" ", 1)[0] for b in boots for c in b.get("calls") or []})
        user = (app.get("health", {}).get("database") or {}).get("user")
        lines.append(f"standby app          {len(boots)} boot(s) after the outage, credentials "
                     f"from {', '.join(calls) or 'nowhere'}; logged in as {user}")
    backup = section.get("backup")
    if backup:
        test = backup.get("restore_test") or {}
        lines.append(f"restore              {test.get('backup')} from the standby bucket in "
                     f"{test.get('seconds')} s (restore_test.py, {test.get('result')}; "
                     f"endpoints {', '.join(test.get('endpoints') or []) or 'none'})")
    return lines


def in_region_summary(report: dict[str, Any]) -> str:
    """The in-region drills (caresync_dr.drill.in_region): time to writable service in the
    primary region, and what each scenario measures besides."""
    section = report["in_region"]
    lines = ["", "timeline (seconds relative to the outage or damage):"]
    lines += [f"  {e['t']:+8.3f}  {e['event']}" for e in report["timeline"]]
    lines += ["", "verifications:"]
    lines += [f"  {'PASS' if v['ok'] else 'FAIL'}  {v['name']}: {v['detail']}"
              for v in report["verifications"]]
    lines += ["", f"scenario             {report['scenario']}",
              f"writable service     {report['rto_seconds']} s after the outage, in the "
              "primary region"]
    if "degraded_read_only_seconds" in section:
        lines.append(f"degraded             {section['degraded_read_only_seconds']} s on the "
                     f"read-only standby, {section['no_service_seconds']} s no answer")
    if "broken_serving_seconds" in section:
        lines.append(f"broken release       served {section['broken_serving_seconds']} s "
                     "before Auto Scaling's rollback replaced it")
    if "lost_between_t_and_damage" in section:
        lost = section["lost_between_t_and_damage"]
        lines.append(f"RPO                  {lost['seconds']} s between T and the damage, "
                     f"{lost['transactions']} acknowledged writes (T "
                     f"{section['restore_time']}); {section['rows_destroyed']} destroyed rows "
                     "restored")
    writes = report["writes"]
    lines += [f"writes               {writes['acknowledged']} acknowledged, {writes['failed']} "
              "failed",
              f"result               {'PASS' if report['ok'] else 'FAIL'}"]
    return "\n".join(lines)
