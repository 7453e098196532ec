"""Where each site's breach-relevant resources are, from the two stack files and the account id.

``breach.py`` needs neither the Pulumi CLI nor the state backend nor the failover inventory
(which lives in the standby region only): every name it touches comes from
:mod:`caresync_dr.names`, as the components' do, so it works with either region alone. Unit
tests check each name against what the program registers (tests/breach/test_sites.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from caresync_dr import names
from caresync_dr.retention import INCIDENT_PREFIX
from caresync_dr.settings import Settings, settings_from_stack_file

STACKS = names.STACK_OF_SITE


@dataclass(frozen=True)
class SiteLayout:
    """One site's names, in its own region."""

    site: str
    region: str
    account: str
    db_generation: int
    trail_multi_region: bool

    @property
    def backup_bucket(self) -> str:
        return names.backup_bucket_name(self.site, self.account)

    @property
    def security_topic_arn(self) -> str:
        return (f"arn:aws:sns:{self.region}:{self.account}:"
                f"{names.security_topic_name(self.site)}")

    @property
    def trail_name(self) -> str:
        return names.trail_name(self.site)

    @property
    def trail_log_group(self) -> str:
        return names.trail_log_group_name(self.site)

    @property
    def endpoint_parameter(self) -> str:
        return names.endpoint_parameter_name(self.site)

    @property
    def db_identifier(self) -> str:
        return names.db_identifier(self.site, self.db_generation)

    @property
    def db_log_group(self) -> str:
        return names.db_log_group_name(self.db_identifier)

    @property
    def key_alias(self) -> str:
        return names.site_key_alias(self.site)

    @property
    def incident_prefix(self) -> str:
        return INCIDENT_PREFIX

    @property
    def auto_scaling_group(self) -> str:
        return names.app_name(self.site)


@dataclass(frozen=True)
class Layout:
    """Both sites; ``primary`` holds the database secrets (D1), replicated to ``standby``."""

    primary: SiteLayout
    standby: SiteLayout
    settings: Settings        # the prod stack's (the secrets' owner): dbName, phiTables...

    @property
    def sites(self) -> tuple[SiteLayout, SiteLayout]:
        return (self.primary, self.standby)

    def by_region(self, region: str) -> SiteLayout:
        for site in self.sites:
            if site.region == region:
                return site
        raise KeyError(region)


def layout_from(project_dir: Path, account: str) -> Layout:
    """Both sites from ``Pulumi.prod.yaml`` and ``Pulumi.dr.yaml``. Raises the settings
    loader's ``SettingsError``/``StackFileError`` for a bad or missing file."""
    prod = settings_from_stack_file(STACKS["primary"], project_dir)
    dr = settings_from_stack_file(STACKS["standby"], project_dir)

    def site(settings: Settings) -> SiteLayout:
        return SiteLayout(site=settings.site, region=settings.region, account=account,
                          db_generation=settings.db_generation,
                          trail_multi_region=settings.is_primary)

    return Layout(primary=site(prod), standby=site(dr), settings=prod)
