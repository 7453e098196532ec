"""The drill's result, for people: one screen at the end of a run, and where the reports go.

Every scenario's runner returns the common result shape documented in docs/drills.md ("The
result shape"); this module and :mod:`caresync_dr.drill.html_report` read only that shape, with
every key but ``scenario`` and ``ok`` optional, so a new scenario shows up here unchanged.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caresync_dr.drill.timeline import Timeline

WIDTH = 100
# Where `make drill` leaves its reports: inside the repository (gitignored), outside the temp
# dirs the drill removes. $CARESYNC_DRILL_REPORTS moves it.
REPORTS_ENV = "CARESYNC_DRILL_REPORTS"
REPORTS_DIR = "drill-reports"


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


def reports_dir(project_dir: Path) -> Path:
    """The fixed directory the drill's JSON and HTML reports are written to."""
    configured = os.environ.get(REPORTS_ENV)
    return Path(configured) if configured else project_dir / REPORTS_DIR


def report_paths(directory: Path, scenario: str) -> tuple[Path, Path]:
    """(JSON, HTML) of the latest run of ``scenario``: one fixed name per scenario."""
    return directory / f"{scenario}.json", directory / f"{scenario}.html"


def unmet_objectives(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in report.get("objectives") or [] if o.get("met") is False]


def verdict(report: dict[str, Any]) -> str:
    """PASS or FAIL, with every target that was not met stated beside it and what it means."""
    if report.get("error"):
        return f"FAIL: the drill could not finish ({report['error']})"
    checks = report.get("verifications") or []
    failed = [c for c in checks if not c.get("ok")]
    word = ("PASS: every check held" if report.get("ok")
            else f"FAIL: {len(failed)} of {len(checks)} checks failed")
    unmet = unmet_objectives(report)
    if not unmet:
        return word
    said = "; ".join(f"{o['name']} {o.get('measured')} (target {o.get('target')}): "
                     f"{o.get('meaning', 'not met')}" for o in unmet)
    return f"{word}, but {len(unmet)} target{'s' if len(unmet) > 1 else ''} NOT met: {said}"


def _seconds(value: object) -> str:
    return "-" if value is None else f"{value} s"


def _row(label: str, text: str) -> list[str]:
    # A path or URL is never broken (at its length or its hyphens): it is copied from here.
    wrapped = textwrap.wrap(text, WIDTH - 14, break_long_words=False,
                            break_on_hyphens=False) or [""]
    return [f"{label:<13} {wrapped[0]}", *(f"{'':<13} {more}" for more in wrapped[1:])]


def summary(report: dict[str, Any], paths: tuple[Path, Path] | None = None) -> str:
    """The one screen a drill ends with: scenario, what was broken, each check once, RTO,
    degraded service, RPO, writes lost, the verdict (unmet targets beside it), the reports."""
    lines = ["", "=" * WIDTH, f"DRILL {report['scenario']}: "
             f"{'PASS' if report.get('ok') else 'FAIL'}", "=" * WIDTH]
    if report.get("broken"):
        lines += _row("broken", str(report["broken"]))
    if report.get("seed_requires"):
        lines += _row("seed requires", str(report["seed_requires"]))
    checks = report.get("verifications") or []
    if checks:
        lines.append("checks")
        for c in checks:
            mark = "ok    " if c.get("ok") else "FAILED"
            text = f"{c['name']}: {c.get('detail', '')}"
            lines.append(f"  {mark} {text[:WIDTH - 10]}")
    elif report.get("steps"):
        lines.append("phases (the drill stopped before its checks)")
        lines += [f"  {'ok    ' if s.get('ok') else 'FAILED'} {s['name']}"
                  + (f": {s['detail']}"[:WIDTH - 12] if s.get("detail") else "")
                  for s in report["steps"]]
    if "rto_seconds" in report:
        probe = report.get("public_url_writable_seconds")
        lines += _row("RTO", f"{_seconds(report['rto_seconds'])} writable service ("
                             f"{report.get('rto_meaning', 'outage -> writable service')})"
                             + ("" if report.get("rto_source") is None else
                                f"; from {report['rto_source']}")
                             + ("" if probe is None or probe == report["rto_seconds"] else
                                f"; the drill's probe saw it at {probe} s"))
    if report.get("degraded_seconds") is not None:
        since = report.get("degraded_from_seconds")
        lines += _row("degraded", f"{report['degraded_seconds']} s of read-only service"
                                  + ("" if since is None else f" from +{since} s")
                                  + " before the RTO (not recovery; writes fail)")
    if report.get("critical_path_seconds") is not None:
        lines += _row("critical path", f"{report['critical_path_seconds']} s modelled; "
                                       f"RTO / critical path "
                                       f"{report.get('rto_to_critical_path_ratio')}")
    writes = report.get("writes") or {}
    if "rpo_seconds" in report:
        lines += _row("RPO", f"{report['rpo_seconds']} s")
    if writes:
        lost = writes.get("lost", report.get("rpo_transactions"))
        # An in-region recovery keeps its writer: there is no old primary to count against.
        of = ("" if "acknowledged_by_old_primary" not in writes else
              f" of {writes['acknowledged_by_old_primary']} acknowledged by the old primary")
        lines += _row("writes lost", f"{lost}{of}; {writes.get('acknowledged')} acknowledged, "
                                     f"{writes.get('failed')} failed in all")
    lines += in_region_lines(report.get("in_region") or {})
    lines += standby_region_lines(report.get("standby_region") or {})
    told = notification_summary(report)
    if told is not None:  # each message, one per line, is in the HTML and JSON reports
        lines += _row("notified", told)
    lines += _row("verdict", verdict(report))
    if paths is not None:
        lines += [*_row("reports", str(paths[0])), *_row("", str(paths[1]))]
    lines.append("=" * WIDTH)
    return "\n".join(lines)


def notification_summary(report: dict[str, Any]) -> str | None:
    """The notifications in one sentence for the one-screen summary: the incident, the tiers
    engaged, how many messages each audience got and by which events, and each channel's
    results. None when the failover sent none. Every message is listed by
    :func:`notification_lines` (the HTML report)."""
    notes = ((report.get("failover") or {}).get("report") or {}).get("notifications") or {}
    messages = notes.get("messages") or []
    if not messages:
        return None
    audiences: dict[str, dict[str, int]] = {}
    for m in messages:
        events = audiences.setdefault(str(m.get("audience", "?")), {})
        events[str(m.get("event", "?"))] = events.get(str(m.get("event", "?")), 0) + 1
    said = "; ".join(
        f"{audience} {sum(events.values())} ("
        + ", ".join(event if n == 1 else f"{n} {event}" for event, n in events.items()) + ")"
        for audience, events in audiences.items())
    statuses = [str(m["incident_status"]) for m in messages if m.get("incident_status")]
    page = f"; status page {' -> '.join(statuses)}" if statuses else ""
    tiers = ", ".join(e.get("who", e.get("tier", "?"))
                      for e in notes.get("engagedTiers") or []) or "none"
    return (f"incident {notes.get('incident', '?')}, tiers engaged: {tiers}: {said}{page}; "
            + "; ".join(_channel_results(notes)))


def _channel_results(notes: dict[str, Any]) -> list[str]:
    """``chat: configured; 9 sent``, one per channel."""
    results: dict[str, dict[str, int]] = {}
    for d in notes.get("deliveries") or []:
        counts = results.setdefault(d.get("channel", "?"), {})
        counts[d.get("status", "?")] = counts.get(d.get("status", "?"), 0) + 1
    shown = []
    for name, state in sorted((notes.get("channels") or {}).items()):
        counts = results.get(name, {})
        sent = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
        shown.append(f"{name}: {state}; {sent}")
    return shown


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
    lines += [f"  channel {result}" for result in _channel_results(notes)]
    return lines


def standby_region_lines(section: dict[str, Any]) -> list[str]:
    """The standby-region proof's figures, when the scenario has one."""
    lines: list[str] = []
    app = section.get("app")
    if app:
        boots = app.get("boots") or []
        calls = sorted({c.split(" ", 1)[0] for b in boots for c in b.get("calls") or []})
        user = (app.get("health", {}).get("database") or {}).get("user")
        lines += _row("standby app", f"{len(boots)} boot(s) after the outage, credentials "
                                     f"from {', '.join(calls) or 'nowhere'}; logged in as "
                                     f"{user}")
    backup = section.get("backup")
    if backup:
        test = backup.get("restore_test") or {}
        lines += _row("restore", f"{test.get('backup')} from the standby bucket in "
                                 f"{test.get('seconds')} s (restore_check.py, "
                                 f"{test.get('result')}; endpoints "
                                 f"{', '.join(test.get('endpoints') or []) or 'none'})")
    return lines


def in_region_lines(section: dict[str, Any]) -> list[str]:
    """What the in-region scenarios (caresync_dr.drill.in_region) measure besides the RTO."""
    lines: list[str] = []
    if "no_service_seconds" in section:
        lines += _row("no answer", f"{section['no_service_seconds']} s with nothing answering")
    if "time_to_containment_seconds" in section:
        lines += _row("containment", f"{section['time_to_containment_seconds']} s from "
                                     "breach.py's launch to the last revocation verified; "
                                     "longest write gap "
                                     f"{section['longest_write_gap_seconds']} s")
    if "broken_serving_seconds" in section:
        lines += _row("bad release", f"served {section['broken_serving_seconds']} s before Auto "
                                     "Scaling's rollback replaced it")
    if "lost_between_t_and_damage" in section:
        lost = section["lost_between_t_and_damage"]
        lines += _row("PITR", f"{lost['seconds']} s between T and the damage, "
                              f"{lost['transactions']} acknowledged writes (T "
                              f"{section.get('restore_time')}); "
                              f"{section.get('rows_destroyed')} destroyed rows restored")
    return lines
