"""The drill pays moto's first-use costs before its outage (caresync_dr.emulation.warmup):
after priming, the caches moto fills on a service's first paginated response and first error
hold that service, with the answers moto itself would have computed."""

from __future__ import annotations

from moto.core import utils

from caresync_dr.emulation.warmup import prime_moto


def test_priming_fills_the_caches_a_first_request_would() -> None:
    services = ["rds", "ssm", "resource-groups"]   # one without paginators, one hyphenated
    prime_moto(services)
    before = (utils.get_pagination_model.cache_info().hits,
              utils.service_name_from_moto_package_name.cache_info().hits,
              utils.get_service_model.cache_info().hits)
    assert "DescribeDBInstances" in utils.get_pagination_model("rds")
    assert utils.service_name_from_moto_package_name("resourcegroups") == "resource-groups"
    assert utils.service_name_from_moto_package_name("ssm") == "ssm"
    assert utils.get_service_model("ssm").service_name == "ssm"
    after = (utils.get_pagination_model.cache_info().hits,
             utils.service_name_from_moto_package_name.cache_info().hits,
             utils.get_service_model.cache_info().hits)
    assert after == (before[0] + 1, before[1] + 2, before[2] + 1), "a lookup missed the cache"


def test_priming_leaves_moto_as_it_was() -> None:
    original = (vars(utils)["create_loader"], vars(utils)["Session"])
    prime_moto(["sts"])
    assert (vars(utils)["create_loader"], vars(utils)["Session"]) == original
