"""Regional and in-region database failover: plan, steps, runner, reports.

``scripts/failover.py`` is the command-line front; :func:`caresync_dr.failover.command.run` is
what it calls, and what tests and the drill call too.
"""
