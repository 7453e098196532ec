"""Moved to :mod:`caresync_dr.emulation.server` (one emulation layer, decision D3).

Kept so that existing imports of ``caresync_dr.drill.emulator`` keep working.
"""

from caresync_dr.emulation.network import GLOBAL_CONTROL_PLANES, Outage, request_scope
from caresync_dr.emulation.server import ACCOUNT_ID, AwsRequest, CallLog, Emulator, reset_backends

__all__ = ["ACCOUNT_ID", "GLOBAL_CONTROL_PLANES", "AwsRequest", "CallLog", "Emulator", "Outage",
           "request_scope", "reset_backends"]
