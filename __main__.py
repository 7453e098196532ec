"""The CareSync DR program: read validated settings, build this stack's site, export outputs."""

from typing import Any

import pulumi

from caresync_dr.settings import settings_from_pulumi
from components.site import build_site

settings = settings_from_pulumi()


async def main() -> dict[str, Any]:
    # Async only because the other stack's outputs decide which links exist (stack_links.py).
    return await build_site(settings)


pulumi.run(main)
