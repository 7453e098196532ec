"""An instance's security groups as EC2 has them, where moto 5.2 keeps two lists.

In EC2 an instance's security groups *are* its primary network interface's groups, and both
``ModifyInstanceAttribute(Groups=...)`` and ``ModifyNetworkInterfaceAttribute(Groups=...)``
replace the set ("The new set of groups you specify replaces the current set": API reference,
ModifyNetworkInterfaceAttribute). moto keeps the instance's list and the interface's list apart
and reports the interface's groups as the *union* of both, so quarantining an instance by
replacing its groups looks, in moto, like adding the quarantine group to the old ones: the
instance would still appear reachable. While armed, a change of either list is a change of both
(for the primary interface, device index 0), and an interface reports exactly its own groups.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.elastic_network_interfaces import NetworkInterface, NetworkInterfaceBackend
from moto.ec2.models.instances import InstanceBackend

_MOTO_GROUP_SET = NetworkInterface.group_set
_MOTO_MODIFY_ENI = NetworkInterfaceBackend.modify_network_interface_attribute
_MOTO_MODIFY_INSTANCE = InstanceBackend.modify_instance_security_groups


def _group_set(self: NetworkInterface) -> Any:
    return self._group_set


def _modify_eni(self: NetworkInterfaceBackend, eni_id: str, group_ids: list[str],
                source_dest_check: bool | None = None, description: str | None = None) -> None:
    _MOTO_MODIFY_ENI(self, eni_id, group_ids, source_dest_check, description)
    eni = self.get_network_interface(eni_id)
    if group_ids and eni.instance is not None and eni.device_index == 0:
        eni.instance.security_groups = list(eni._group_set)


def _modify_instance(self: InstanceBackend, instance_id: str,
                     new_group_id_list: list[str]) -> Any:
    instance = _MOTO_MODIFY_INSTANCE(self, instance_id, new_group_id_list)
    for eni in instance.nics.values():
        if eni.device_index == 0:
            eni._group_set = list(instance.security_groups)
    return instance


class SecurityGroupReplacement:
    """Arm while a test or drill replaces an instance's security groups."""

    def __init__(self) -> None:
        self.armed = False

    def arm(self) -> SecurityGroupReplacement:
        if not self.armed:
            NetworkInterface.group_set = property(_group_set)  # type: ignore[assignment,method-assign]
            NetworkInterfaceBackend.modify_network_interface_attribute = (  # type: ignore[method-assign]
                _modify_eni)
            InstanceBackend.modify_instance_security_groups = (  # type: ignore[method-assign]
                _modify_instance)
            self.armed = True
        return self

    def disarm(self) -> None:
        if self.armed:
            NetworkInterface.group_set = _MOTO_GROUP_SET  # type: ignore[method-assign]
            NetworkInterfaceBackend.modify_network_interface_attribute = (  # type: ignore[method-assign]
                _MOTO_MODIFY_ENI)
            InstanceBackend.modify_instance_security_groups = (  # type: ignore[method-assign]
                _MOTO_MODIFY_INSTANCE)
            self.armed = False

    def __enter__(self) -> SecurityGroupReplacement:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()
