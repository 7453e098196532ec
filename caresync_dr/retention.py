"""Where objects live in a site's backup bucket, and how long each kind is kept.

Shared by the stack (the bucket lifecycle), the guardrails (policy/s3_rules.py) and the tests,
so the three cannot drift apart:

* ``backups/`` (``scripts/backup.py``'s default prefix, caresync_dr.backup.storage): expire after
  ``backupRetentionDays`` (30).
* ``incidents/`` (failover timelines and reports): HIPAA 45 CFR 164.316(b)(2)(i) requires
  documentation to be retained six years, so 2190 days.
"""

from __future__ import annotations

BACKUP_PREFIX = "backups/"
INCIDENT_PREFIX = "incidents/"
RECORDS_RETENTION_DAYS = 2190  # six years (HIPAA documentation and audit records)
