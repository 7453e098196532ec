"""The failover inventory (dr stack): one JSON document in SSM, in the standby region.

The schema is :mod:`caresync_dr.inventory` (its docstring documents every field); this
component only renders it. The JSON is computed inside one ``Output.all(...).apply`` that
builds an :class:`~caresync_dr.inventory.Inventory` and returns ``to_json()``; no resource is
created inside the apply. The parameter is a SecureString encrypted with the standby site's key
(no secret is in it, but it maps every database, group and check of both sites, which IAM on
``ssm:GetParameter`` alone should not hand out), on the Standard tier while the document fits
its 4 KB and on the Advanced tier beyond (Advanced SecureStrings are envelope-encrypted: readers
need kms:Decrypt either way).

While the standby site writes (``activeSite`` standby, after a failback re-protected the
primary site), a regional failover promotes the primary site and the standby region is the one
that may fail: ``copy`` then writes the same document into the primary region (same name, the
primary site's key), so failover.py needs nothing from the standby region in that direction
either. The copy is its own parameter (a per-resource ``region``): it appears and disappears
with the direction and nothing protected depends on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.inventory import Inventory

STANDARD_TIER_LIMIT = 4096


@dataclass(frozen=True)
class FailoverInventoryArgs:
    parameter_name: str
    values: dict[str, pulumi.Input[Any]]  # every Output the document needs, by name
    render: Callable[[dict[str, Any]], Inventory]  # resolved values -> the inventory
    key_id: pulumi.Input[str] | None = None  # the standby key's alias name: SecureString
    copy: InventoryCopy | None = None  # the reversed direction's copy (activeSite standby)


@dataclass(frozen=True)
class InventoryCopy:
    region: str   # the primary region
    key_id: str   # the primary site key's alias name (an alias resolves in its own region)


class FailoverInventory(pulumi.ComponentResource):
    document: pulumi.Output[str]
    parameter: aws.ssm.Parameter
    copy: aws.ssm.Parameter | None

    def __init__(self, name: str, args: FailoverInventoryArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:FailoverInventory", name, None, opts)
        self.document = pulumi.Output.all(**args.values).apply(
            lambda resolved: args.render(resolved).to_json())
        # Standard (free) while it fits; SSM allows moving up to Advanced, never down.
        tier = self.document.apply(
            lambda doc: "Advanced" if len(doc.encode()) > STANDARD_TIER_LIMIT else "Standard")
        self.parameter = aws.ssm.Parameter(
            f"{name}-parameter", name=args.parameter_name,
            type="String" if args.key_id is None else "SecureString", key_id=args.key_id,
            tier=tier, value=self.document,
            description="CareSync failover inventory (schema: caresync_dr/inventory.py)",
            opts=pulumi.ResourceOptions(parent=self))
        self.copy = None
        outputs: dict[str, Any] = {"parameterName": self.parameter.name}
        if args.copy is not None:
            self.copy = aws.ssm.Parameter(
                f"{name}-primary-copy", name=args.parameter_name, region=args.copy.region,
                type="SecureString", key_id=args.copy.key_id, tier=tier, value=self.document,
                description="CareSync failover inventory, the reversed direction's copy "
                            "(schema: caresync_dr/inventory.py)",
                opts=pulumi.ResourceOptions(parent=self))
            outputs["copyRegion"] = args.copy.region
        self.register_outputs(outputs)
