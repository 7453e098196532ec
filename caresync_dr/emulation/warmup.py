"""moto's first-use costs, paid before a measurement instead of inside it.

moto caches three things per process, filled the first time a service needs them:

- ``moto.core.utils.get_pagination_model(service)``: the first paginated response of a
  service (e.g. DescribeDBInstances) loads its paginator model through a new botocore loader,
  which lists every service directory first;
- ``moto.core.utils.get_service_model(service)``: the service's model, for serialising;
- ``moto.core.utils.service_name_from_moto_package_name(package)``: the first error a moto
  package raises (e.g. SSM's ParameterNotFound) builds a lookup of every botocore service name
  through a new botocore session.

Measured in a drill's emulator after its deployment: failover.py's first DescribeDBInstances
cost the server 23 ms of CPU (later ones 4 ms), and its first ParameterNotFound 18-19 ms,
both on the way to the promotion request. AWS has no such costs, so a drill or a benchmark
pays them before its outage (:func:`prime_moto`), and the figures measure the command.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from unittest import mock

from botocore.exceptions import DataNotFoundError, UnknownServiceError


class _ListedServices:
    """Stands in for ``botocore.session.Session`` while priming: moto constructs one (about
    10 ms: every built-in handler registered) per package only to call
    :meth:`get_available_services`; the list is the same for all of them."""

    def __init__(self, services: list[str]) -> None:
        self._services = services

    def get_available_services(self) -> list[str]:
        return list(self._services)


def prime_moto(services: Iterable[str]) -> float:
    """Fill moto's per-process caches for ``services`` (botocore service names, e.g. ``rds``,
    ``elbv2``): paginator model, service model, and the package-name lookup of its errors.
    Idempotent (each is cached for the life of the process); returns the seconds it took."""
    import botocore.loaders
    from moto.core import utils
    from moto.core.loaders import create_loader

    started = time.monotonic()
    shared = create_loader()     # one loader: the service directories are listed once
    listed = _ListedServices(botocore.loaders.create_loader()
                             .list_available_services("service-2"))
    with mock.patch.object(utils, "create_loader", lambda: shared), \
            mock.patch.object(utils, "Session", lambda: listed):
        for service in services:
            # A service without paginators has nothing to prime there.
            with contextlib.suppress(DataNotFoundError, UnknownServiceError):
                utils.get_pagination_model(service)
            utils.get_service_model(service)
            utils.service_name_from_moto_package_name(service.replace("-", ""))
    return time.monotonic() - started
