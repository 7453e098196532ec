"""Failback and re-protection (issue 15 item 2): after a failover, give the site that lost
the writer a new database generation replicating from the promoted writer, reverse backup
replication and copies, re-arm the traffic switch and health checks, and retire the fenced
generation; the planned switchover then returns home when the operator chooses.

The command is ``caresync-failback`` (``caresync_dr/commands/failback.py``); the steps run on
the operation engine (``caresync_dr/operations``). It is direction-generic: it re-protects
whichever site is not active, so after the switchback the same command re-protects the standby
site. The infrastructure is changed by ``pulumi up`` of the stack settings this command
writes (``activeSite``, ``dbGeneration``, ``dbRetiring``: docs/lifecycles.md), never by API
calls of its own that the program would then fight.
"""
