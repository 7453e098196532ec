"""Planned switchover with no data loss (RPO 0), on the operation engine (issue 15 item 1).

Modules, one job each:

- ``fence``      the SQL: fence the writer as the RDS master user, read its final WAL position,
                 check a replica's replay, open a writer
- ``context``    the run's context: the failover's, turned to the chosen direction, plus the
                 two database links and the fence's settings
- ``databases``  the master user's link to each site (given URLs, or the site's own secret and
                 endpoint parameter); read-only links for --check and --dry-run
- ``steps``      fence, wait for replay (or roll back), open the new writer; promotion,
                 scale-up, traffic and verification are the failover's steps
- ``readiness``  both sites healthy: the --check table and the preflight
- ``operation``  the plan and the engine's hooks (title, identity, resume, report)
- ``report``     the report's ``switchover`` section and the write-unavailability window

The command is :mod:`caresync_dr.commands.switchover` (``main``/``run``); the drill scenario is
:mod:`caresync_dr.drill.switchover`.
"""
