"""The drill's HTML report: the one-screen summary, every check, and the timeline as a chart.

One self-contained file (no scripts, no network): the chart is drawn by matplotlib and embedded
as inline SVG -- write rate and failed writes per second over time, with the phase markers
(outage, detection, promotion, traffic switch, degraded and writable service, first good write)
as vertical lines. It reads the common result shape of docs/drills.md only.
"""

from __future__ import annotations

import html
import io
from typing import Any

from caresync_dr.drill.report import notification_lines, verdict

CHART_ID = "timeline-chart"
MARKER_COLOURS = {"outage": "#b00020", "detection": "#e07000", "promotion": "#6a1b9a",
                  "traffic switch": "#1565c0", "degraded service": "#9e9d24",
                  "writable service (RTO)": "#2e7d32", "first good write": "#00838f"}


def chart_svg(report: dict[str, Any]) -> str:
    """The timeline chart as an SVG document (text kept as text, so it is searchable)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file-like object only
    from matplotlib import pyplot as plt

    series = report.get("series") or {}
    t = series.get("t") or []
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "caresync-drill"}):
        fig, ax = plt.subplots(figsize=(10, 5))
        try:
            width = float(series.get("bin_seconds") or 0.25)
            ax.step(t, series.get("acknowledged_per_second") or [], where="post",
                    color="#2e7d32", label="writes acknowledged / s")
            ax.step(t, series.get("failed_per_second") or [], where="post", color="#c62828",
                    label="writes failed / s")
            top = max([*(series.get("acknowledged_per_second") or []),
                       *(series.get("failed_per_second") or []), 1.0])
            for marker in report.get("markers") or []:
                colour = MARKER_COLOURS.get(str(marker.get("label")), "#555555")
                ax.axvline(float(marker["t"]), color=colour, linestyle="--", linewidth=1.2,
                           label=f"{marker['label']} {float(marker['t']):+.2f} s")
            ax.set_xlabel(f"seconds from the outage (bins of {width:g} s)")
            ax.set_ylabel("writes per second")
            ax.set_ylim(0, top * 1.15)
            ax.set_title(f"{report.get('scenario')}: write rate, errors and phases")
            # Markers can lie milliseconds apart: named in the legend, not on the plot.
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            out = io.StringIO()
            fig.savefig(out, format="svg")
        finally:
            plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]  # inline: drop the XML prolog and DOCTYPE


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    return f"<table class='summary'>{body}</table>"


def render(report: dict[str, Any]) -> str:
    """The whole HTML document."""
    e = html.escape
    ok = bool(report.get("ok"))
    writes = report.get("writes") or {}
    rows = [("scenario", str(report.get("scenario"))),
            ("what was broken", str(report.get("broken") or report.get("error") or "-")),
            ("the seed requires", str(report.get("seed_requires") or "-")),
            ("RTO (writable service)", f"{report.get('rto_seconds')} s"),
            ("degraded (read-only) service from", f"{report.get('degraded_seconds')} s"),
            ("critical path (modelled)", f"{report.get('critical_path_seconds')} s; ratio "
                                         f"{report.get('rto_to_critical_path_ratio')}"),
            ("RPO", f"{report.get('rpo_seconds')} s"),
            ("writes lost", f"{writes.get('lost', report.get('rpo_transactions'))}"),
            ("writes", f"{writes.get('acknowledged')} acknowledged, "
                       f"{writes.get('failed')} failed"),
            ("verdict", verdict(report))]
    checks = "".join(
        f"<tr class='{'ok' if c.get('ok') else 'failed'}'><td>{'ok' if c.get('ok') else 'FAILED'}"
        f"</td><td>{e(str(c.get('name')))}</td><td>{e(str(c.get('detail', '')))}</td></tr>"
        for c in report.get("verifications") or [])
    events = "".join(f"<tr><td>{float(ev['t']):+.3f}</td><td>{e(str(ev['event']))}</td></tr>"
                     for ev in report.get("timeline") or [])
    told = notification_lines(report)
    notified = ("" if not told else
                f"<h2>Notifications</h2>\n<pre id='notifications'>{e(chr(10).join(told[1:]))}"
                "</pre>\n")
    chart = (chart_svg(report) if report.get("series") or report.get("markers")
             else "<p>No timeline: the drill stopped before the outage.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Drill {e(str(report.get('scenario')))}: {'PASS' if ok else 'FAIL'}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
h1.pass {{ color: #2e7d32; }} h1.fail {{ color: #c62828; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ text-align: left; padding: 2px 10px; border-bottom: 1px solid #ddd;
          vertical-align: top; }}
tr.failed td {{ color: #c62828; font-weight: bold; }}
figure {{ margin: 0 0 1.5em 0; }}
</style></head>
<body>
<h1 id="verdict" class="{'pass' if ok else 'fail'}">Drill {e(str(report.get('scenario')))}:
{'PASS' if ok else 'FAIL'}</h1>
{_table(rows)}
<h2>Timeline</h2>
<figure id="{CHART_ID}">{chart}</figure>
<h2>Checks</h2>
<table id="checks"><tr><th></th><th>check</th><th>evidence</th></tr>{checks}</table>
{notified}<h2>Events (seconds from the outage)</h2>
<table id="events">{events}</table>
</body></html>
"""
