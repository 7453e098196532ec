"""The local DR drill: the real stack and the real failover on an emulated AWS.

Modules, one job each:

- ``emulator``   moto's server on 127.0.0.1 plus the request gate (a region can go down)
- ``promotion``  replica promotion that takes time, detaches the replica, promotes real PostgreSQL
- ``scaling``    Auto Scaling instances that pass target health only after a delay
- ``refresh``    Auto Scaling instance refreshes (moto has none); apps re-read their endpoint
- ``resolver``   Route 53's data plane: which failover record answers, from health checks
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
