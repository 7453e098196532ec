"""The local DR drill: the real stack and the real failover on an emulated AWS.

moto's gaps (a region going down, promotion in time, replication status, instance refreshes,
target warm-up, Route 53's data plane, ReplicaLag) are closed by ``caresync_dr.emulation``, the
one emulation layer the failover tests use too; this package wires it to local stand-ins.

Modules, one job each:

- ``deploy``     both stacks deployed into the emulator through the Pulumi mock runtime
- ``databases``  real PostgreSQL primary and streaming standbys, killed the hard way
- ``app``        one tiny app per site serving ``/api/health`` from its database
- ``front``      the public health URL: proxies to whichever site the resolver answers
- ``localhttp``  what the local HTTP servers share
- ``load``       the steady write load that records every acknowledged write
- ``world``      all of the above wired together, emulated resource -> local stand-in
- ``scenarios``  what each scenario breaks and which failover it runs
- ``runner``     the drill itself: deploy, inject, fail over, wait for service
- ``verify``     the verifications and the RTO / RPO / critical-path measurements
- ``timeline``, ``report``  events relative to the outage; the printed summary
"""
