"""CareSync disaster recovery: the operator commands' logic, settings, names and drills."""

from caresync_dr import quiet_start

quiet_start.begin()
