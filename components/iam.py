"""Small IAM documents shared by the components."""

from __future__ import annotations

import json


def service_trust_policy(service: str) -> str:
    """A role trust policy that lets one AWS service (e.g. ``s3.amazonaws.com``) assume it."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
