"""Point-in-time restore of a site's writer (issue 14, seed scenario 1 "restore, verify").

Modules, one job each: ``window`` (the restore time and the restorable windows RDS reports),
``probes`` (reads only), ``actions`` (changes only), ``request`` (the restore as RDS is asked
for it), ``verify`` (the restored database answers the operator's checks).
"""
