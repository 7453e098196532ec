"""The one emulation layer (decision D3): moto's documented gaps closed the way real AWS
behaves, shared by the drill (``caresync_dr.drill``) and the failover tests
(``tests/failover/world.py``). Development only: runtime modules never import this package
or moto (``tests/test_import_rules.py`` enforces it).

Modules, one gap each:

- ``server``       moto's server on 127.0.0.1 for every region, with the network gate and a log
                   of what watched clients called
- ``network``      a region or service that is gone (connection reset, any transport), throttling
- ``rds``          promotion that takes time and detaches the replica; replication StatusInfos
- ``autoscaling``  instance refreshes (moto has none); targets that warm up before they are healthy
- ``cloudwatch``   the ReplicaLag datapoints RDS publishes
- ``route53``      Route 53's data plane: failover answers computed from health checks
- ``s3``           S3 replication (moto stores the rules and copies nothing)
- ``secretsmanager``  each secret replica under the KMS key of its own region
- ``patching``     reversible patches of moto's classes (what ``arm``/``disarm`` use)

Also here, the checks of offline runs (branch stack): ``aws_rules`` (AWS's documented rules as
an oracle over the registered resources), ``lifecycle`` and ``provider_schema`` (what
``pulumi up`` does to live resources between two runs).

Each shim that changes moto's behaviour is armed (``arm()`` or ``with``) and disarmed, so it
applies to ``mock_aws`` and to the moto server alike and never outlives its user.
"""
