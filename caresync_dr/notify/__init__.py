"""Escalation and communication (issue 15 item 3, decision D7): the seed plan's escalation path
and communication plan as code. See docs/communication.md.

- :mod:`~caresync_dr.notify.notifier`: one incident's messages: opened, phases, escalation by
  elapsed time, resolved or failed; best effort, every delivery in the report.
- :mod:`~caresync_dr.notify.setup`: build it from the stack settings.
- Channels: :mod:`~caresync_dr.notify.chat` (Slack-compatible webhook),
  :mod:`~caresync_dr.notify.email` (SNS alert topic), :mod:`~caresync_dr.notify.statuspage`
  (Atlassian Statuspage), :mod:`~caresync_dr.notify.recording` (drills and tests).
- ``templates.toml``: every message, per event and audience, as data.
"""
