"""A DB instance in security groups that admit nobody is unreachable; moto only records them.

Fencing a damaged writer in place moves it into the site's no-access group
(``ModifyDBInstance VpcSecurityGroupIds``, applied at once, no reboot): RDS keeps the instance
and its data, and nothing in the VPC can reach port 5432 any more. moto stores the new group
ids and changes nothing else. While armed, :class:`SecurityGroupFences` runs ``on_fenced(region,
identifier)`` after each such modification whose groups have no ingress rule at all (the drill
then makes the instance's stand-in refuse the app's logins), and ``on_unfenced`` when an
instance is moved back into a group with ingress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.ec2.models import ec2_backends
from moto.rds.models import RDSBackend

from caresync_dr.emulation.patching import ClassPatches, remember

remember(RDSBackend, "modify_db_instance")
_MOTO_MODIFY = RDSBackend.modify_db_instance


def admits_nobody(account_id: str, region: str, group_ids: list[str]) -> bool:
    ec2 = ec2_backends[account_id][region]
    groups = [ec2.get_security_group_from_id(g) for g in group_ids]
    return bool(groups) and all(g is not None and not g.ingress_rules for g in groups)


@dataclass
class SecurityGroupFences:
    on_fenced: Callable[[str, str], None] = lambda region, identifier: None
    on_unfenced: Callable[[str, str], None] = lambda region, identifier: None
    fenced: set[tuple[str, str]] = field(default_factory=set)
    _patches: ClassPatches = field(default_factory=ClassPatches)

    def arm(self) -> SecurityGroupFences:
        if self._patches.active:
            return self
        fences = self

        def modify_db_instance(backend: RDSBackend, db_instance_identifier: str,
                               db_kwargs: Any) -> Any:
            instance = _MOTO_MODIFY(backend, db_instance_identifier, db_kwargs)
            identifier = str(instance.db_instance_identifier)
            key = (backend.region_name, identifier)
            closed = admits_nobody(backend.account_id, backend.region_name,
                                   list(instance.vpc_security_group_ids))
            if closed and key not in fences.fenced:
                fences.fenced.add(key)
                fences.on_fenced(*key)
            elif not closed and key in fences.fenced:
                fences.fenced.discard(key)
                fences.on_unfenced(*key)
            return instance

        self._patches.set(RDSBackend, "modify_db_instance", modify_db_instance)
        return self

    def disarm(self) -> None:
        self._patches.restore()

    def __enter__(self) -> SecurityGroupFences:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()
