"""An endpoint that answers with a web page is not AWS: say so instead of parsing it.

botocore parses whatever a 2xx response holds into the operation's output shape: an HTML page
from a captive portal, a proxy's login page or a web site that ``AWS_ENDPOINT_URL`` names by
mistake becomes an empty result, and the caller then fails on a missing key ("unexpected error
KeyError: 'Parameter' (a bug)"). An AWS API answers XML or JSON (the AWS SDK protocols: query,
ec2 and rest-xml answer XML, json and rest-json answer JSON), never an HTML document; only an
operation with a streaming body (S3 GetObject) returns the stored bytes, which may be anything.

:func:`refuse_web_pages` registers a ``before-parse`` handler in botocore's built-in handler
list, so every botocore session created afterwards (each client of every command) raises
:class:`NotAwsAnswerError` for such an answer. It is an ``EndpointConnectionError``: code that
handles an unreachable region handles it the same way, and :mod:`caresync_dr.cli.aws_problems`
says "AWS did not answer" with the reason.
"""

from __future__ import annotations

from typing import Any

from botocore import handlers
from botocore.exceptions import EndpointConnectionError

EVENT = "before-parse"
# How much of the body is looked at: a page starts with its doctype or <html> tag.
SNIFF_BYTES = 512


class NotAwsAnswerError(EndpointConnectionError):
    """A 2xx answer that is an HTML page, not an AWS API response."""

    fmt = ("the {endpoint_url} endpoint answered HTTP {status} with a web page, not AWS "
           "(a proxy or captive portal, or AWS_ENDPOINT_URL names a web site)")


def is_web_page(body: bytes) -> bool:
    """``body`` starts (after white space and a byte-order mark) with an HTML document."""
    head = body[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html"))


def check_answer(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    """botocore ``before-parse`` handler (the query protocol's parser itself fails on a page
    with a KeyError): raise :class:`NotAwsAnswerError` for a web page. A streaming body is
    never looked at (it is not read yet, and may be anything)."""
    status = int(response_dict.get("status_code") or 0)
    if not 200 <= status < 300 or operation_model.has_streaming_output:
        return
    body = response_dict.get("body")
    if isinstance(body, bytes) and is_web_page(body):
        service = operation_model.service_model.endpoint_prefix
        raise NotAwsAnswerError(endpoint_url=str(service), status=status)


def refuse_web_pages() -> None:
    """Register :func:`check_answer` for every botocore session created from now on (once)."""
    if (EVENT, check_answer) not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append((EVENT, check_answer))
