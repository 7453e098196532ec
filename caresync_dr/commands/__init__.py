"""The operator commands: each module is one command's arguments, exit codes and report, a
``main(argv) -> int`` over the shared base of :mod:`caresync_dr.cli` (decision D5); the work
is done by the domain packages (backup, failover, drill, preview, scan). ``scripts/*`` and the
``caresync-*`` console entry points (``pyproject.toml``) are thin fronts over these mains.
failover.py's own module is :mod:`caresync_dr.failover.command`.
"""
