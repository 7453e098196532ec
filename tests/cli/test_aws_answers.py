"""An endpoint that answers a web page is not AWS (caresync_dr.cli.aws_answers); a stored
object that is a web page is still just an object."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from caresync_dr.cli.aws_answers import is_web_page, refuse_web_pages

PAGE = b"<!DOCTYPE html>\n<html><body>Sign in to the guest network</body></html>"


@pytest.mark.parametrize(("body", "page"), [
    (PAGE, True), (b"\xef\xbb\xbf  <HTML lang=en>", True), (b"\n<html>", True),
    (b"<?xml version='1.0'?><GetCallerIdentityResponse/>", False), (b'{"Parameter": {}}', False),
    (b"", False), (b"html", False)])
def test_a_web_page_is_told_from_an_aws_answer(body: bytes, page: bool) -> None:
    assert is_web_page(body) is page


@mock_aws
def test_an_html_object_in_s3_is_downloaded_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """GetObject streams the stored bytes, whatever they are: never sniffed."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    refuse_web_pages()
    refuse_web_pages()          # once only, however often a process runs commands
    s3 = boto3.Session(region_name="us-east-1").client("s3")
    s3.create_bucket(Bucket="caresync-incidents")
    s3.put_object(Bucket="caresync-incidents", Key="timeline.html", Body=PAGE)
    got = s3.get_object(Bucket="caresync-incidents", Key="timeline.html")
    assert got["Body"].read() == PAGE
    assert s3.list_objects_v2(Bucket="caresync-incidents")["KeyCount"] == 1
