"""How a site's customer-managed KMS key is addressed without any stack output.

Each site's key has the alias ``alias/caresync-<site>`` in its own region
(``components/kms_key.py`` creates it). KMS accepts an alias wherever a key id is asked for
(``KeyId`` of SSM PutParameter, of KMS Encrypt), so tools that write encrypted data in a
region (failover.py repointing a SecureString endpoint parameter) need nothing but the site
name. IAM policies must still name the key's ARN: an alias ARN in ``Resource`` does not grant
use of the key it points to (KMS developer guide, "Using aliases to control access").
"""

from __future__ import annotations


def site_key_alias(site: str) -> str:
    """``alias/caresync-primary`` or ``alias/caresync-standby``."""
    return f"alias/caresync-{site}"
