"""The app tier's in-region recovery: status, restart, deploy and rollback (issue 14).

Modules, one job each: ``rollout`` (names and the instance-refresh modes as data, with the AWS
rules they rest on), ``probes`` (reads only), ``actions`` (changes only).
"""
