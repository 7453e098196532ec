"""The AWS problems an operator meets first, each said in one line with what to do.

- No usable credentials (none found, an expired session token, a key AWS does not know): name
  the operator role, ``caresync-dr-operator`` (the dr stack's ``operatorRoleArn`` output), and
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

from caresync_dr.operator_permissions import OPERATOR_ROLE_NAME

# Error codes AWS answers for credentials it does not accept: STS/most services, then S3.
CREDENTIAL_ERROR_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
    "UnrecognizedClientException", "InvalidAccessKeyId", "TokenRefreshRequired",
    "RequestExpired",
})
CREDENTIAL_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                     "TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError",
                     "NoAuthTokenError", "ProfileNotFound")

ROLE_HINT = (
    f"run as the operator role {OPERATOR_ROLE_NAME} (the dr stack's output operatorRoleArn): "
    f"`aws sts assume-role --role-arn arn:aws:iam::ACCOUNT:role/{OPERATOR_ROLE_NAME} "
    "--role-session-name $USER` and export the three keys it returns, or set AWS_PROFILE to a "
    f"profile with role_arn = arn:aws:iam::ACCOUNT:role/{OPERATOR_ROLE_NAME} and a "
    "source_profile in ~/.aws/config"
)


@dataclass(frozen=True)
class AwsProblem:
    kind: Literal["credentials", "unreachable"]
    error: BaseException      # the botocore error found in the chain

    def sentence(self, said: str = "") -> str:
        """One sentence; the error's own text is left out when ``said`` already holds it."""
        name = type(self.error).__name__
        what = name if str(self.error) in said else f"{name}: {self.error}"
        if self.kind == "credentials":
            return f"no usable AWS credentials ({what}): {ROLE_HINT}"
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
