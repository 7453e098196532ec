"""The AWS problems an operator meets first, each said in one line with what to do.

- No usable credentials (none found, an expired session token, a key AWS does not know): name
  the command's role (:func:`caresync_dr.operator_permissions.role_name_of`; e.g.
  ``caresync-dr-operator`` for failover, ``caresync-dr-incident-responder`` for breach.py) and
  the two ways to assume it.
- An endpoint that does not answer (connection refused, DNS failure, connect timeout): the
  request never reached AWS.

botocore is imported only when it was already loaded (a command that never imported it cannot
have raised one of its errors), so commands without AWS pay nothing for this module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from caresync_dr.names import OPERATOR_ROLE_NAME

# Error codes AWS answers for credentials it does not accept: STS/most services, then S3.
CREDENTIAL_ERROR_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
    "UnrecognizedClientException", "InvalidAccessKeyId", "TokenRefreshRequired",
    "RequestExpired",
})
CREDENTIAL_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                     "TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError",
                     "NoAuthTokenError", "ProfileNotFound")



def role_hint(role: str = OPERATOR_ROLE_NAME) -> str:
    """How to run as ``role`` (the command's role: :func:`caresync_dr.operator_permissions.
    role_name_of`), in one clause."""
    return (
        f"run as the role {role} (the dr stack's output roleArns[\"{role}\"]): "
        f"`aws sts assume-role --role-arn arn:aws:iam::ACCOUNT:role/{role} "
        "--role-session-name $USER --serial-number MFA_DEVICE_ARN --token-code CODE` and "
        "export the three keys it returns, or set AWS_PROFILE to a profile with role_arn = "
        f"arn:aws:iam::ACCOUNT:role/{role}, mfa_serial and a source_profile in ~/.aws/config"
    )


ROLE_HINT = role_hint()


@dataclass(frozen=True)
class AwsProblem:
    kind: Literal["credentials", "unreachable"]
    error: BaseException      # the botocore error found in the chain

    def sentence(self, said: str = "", role: str = OPERATOR_ROLE_NAME) -> str:
        """One sentence; the error's own text is left out when ``said`` already holds it;
        missing credentials name ``role``, the command's."""
        name = type(self.error).__name__
        what = name if str(self.error) in said else f"{name}: {self.error}"
        if self.kind == "credentials":
            return f"no usable AWS credentials ({what}): {role_hint(role)}"
        return f"AWS did not answer ({what})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def aws_problem(exc: BaseException) -> AwsProblem | None:
    """The credentials or connection problem behind ``exc`` (itself or what caused it)."""
    if "botocore" not in sys.modules:
        return None
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    for error in _chain(exc):
        if type(error).__name__ in CREDENTIAL_ERRORS:
            return AwsProblem("credentials", error)
        if isinstance(error, ClientError) and \
                error.response.get("Error", {}).get("Code") in CREDENTIAL_ERROR_CODES:
            return AwsProblem("credentials", error)
        if isinstance(error, BotoConnectionError):
            return AwsProblem("unreachable", error)
        if isinstance(error, HTTPClientError) and "Connection" in type(error).__name__:
            return AwsProblem("unreachable", error)
    return None


def is_aws_error(exc: BaseException) -> bool:
    """A botocore error (an AWS answer, or no answer): a failed call, not a bug."""
    if "botocore" not in sys.modules:
        return False
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, (BotoCoreError, ClientError))
