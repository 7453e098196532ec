"""The local DR drill: the real stack and the real failover on an emulated AWS.

Modules, one job each:

- ``emulator``   moto's server on 127.0.0.1 plus the request gate (a region can go down)
- ``promotion``  replica promotion that takes time, detaches the replica, promotes real PostgreSQL
- ``scaling``    Auto Scaling instances that pass target health only after a delay
- ``resolver``   Route 53's data plane: which failover record answers, from health checks
- ``sites``      real PostgreSQL primary/standbys and one tiny app per site
- ``front``      the public health URL: proxies to whichever site the resolver answers
- ``load``       the steady write load that records every acknowledged write
- ``deploy``     both stacks deployed into the emulator through the Pulumi mock runtime
- ``scenarios``  what each scenario breaks and which failover it runs
- ``runner``     the drill itself: deploy, inject, fail over, verify, measure
"""
