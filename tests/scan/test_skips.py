"""The reviewed skip file and the verdict on Checkov's results."""

from __future__ import annotations

import json

import pytest

from caresync_dr.scan import findings, skips
from caresync_dr.scan.findings import Result
from tests.ci_paths import ROOT

GOOD = '''
[[skip]]
check = "CKV_AWS_260"
resources = ["aws_security_group.a-sg", "aws_security_group.b-sg"]
reason = "Port 80 only answers with a redirect to HTTPS, e.g. for typed-in links."
'''


def failed(check: str, resource: str, state: str = "dr-steady") -> Result:
    return Result(state=state, check_id=check, resource=resource, passed=False)


def test_a_skip_names_check_resources_and_one_reason() -> None:
    [skip] = skips.parse(GOOD)
    assert skip.check == "CKV_AWS_260"
    assert skip.resources == ("aws_security_group.a-sg", "aws_security_group.b-sg")
    assert skip.covers(failed("CKV_AWS_260", "aws_security_group.b-sg"))
    assert not skip.covers(failed("CKV_AWS_260", "aws_security_group.c-sg"))
    assert not skip.covers(failed("CKV_AWS_24", "aws_security_group.a-sg"))


@pytest.mark.parametrize(("text", "problem"), [
    (GOOD.replace("CKV_AWS_260", "port-80"), "check must be a Checkov id"),
    (GOOD.replace('resources = ["aws_security_group.a-sg", "aws_security_group.b-sg"]',
                  "resources = []"), "non-empty list of Terraform addresses"),
    (GOOD.replace('"aws_security_group.b-sg"', '"aws_security_group.a-sg"'), "listed twice"),
    (GOOD.replace("links.", "links"), "one sentence"),
    (GOOD.replace("links.", "links. It is fine."), "one sentence"),
    (GOOD.replace('reason = "Port 80 only answers with a redirect to HTTPS, e.g. for typed-in '
                  'links."', 'reason = "  "'), "a reason is required"),
    (GOOD + '\n[[skip]]\ncheck = "CKV_AWS_260"\nresources = ["aws_security_group.a-sg"]\n'
     'reason = "Twice."\n', "skipped twice"),
    (GOOD.replace("reason", "because"), "unknown key"),
    ("[skip]\ncheck = 1\n", "array of tables"),
    ("not toml at all [", "not valid TOML"),
])
def test_a_malformed_skip_file_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(skips.SkipFileError, match=problem):
        skips.parse(text)


def test_the_verdict_separates_skipped_unexplained_and_stale() -> None:
    rules = skips.parse(GOOD)
    results = [failed("CKV_AWS_260", "aws_security_group.a-sg", "prod-steady"),
               failed("CKV_AWS_260", "aws_security_group.a-sg", "prod-bootstrap"),
               failed("CKV_AWS_18", "aws_s3_bucket.x"),
               Result("dr-steady", "CKV_AWS_260", "aws_security_group.b-sg", passed=True)]
    verdict = skips.judge(results, rules)
    assert [r.state for r, _ in verdict.skipped] == ["prod-steady", "prod-bootstrap"]
    assert verdict.unexplained == (failed("CKV_AWS_18", "aws_s3_bucket.x"),)
    # b-sg passes everywhere now: its skip must go.
    assert verdict.stale == (("CKV_AWS_260", "aws_security_group.b-sg"),)
    assert not verdict.ok


def test_the_committed_skip_file_is_valid() -> None:
    for skip in skips.load(ROOT / "policy" / "checkov-skips.toml"):
        assert skip.reason.endswith(".")


def test_checkovs_report_is_read_per_plan() -> None:
    entry = {"check_id": "CKV_AWS_18", "check_name": "access logging",
             "resource": "aws_s3_bucket.x", "file_path": "/dr-steady.json", "guideline": None}
    text = json.dumps([{"check_type": "terraform_plan",
                        "summary": {"checkov_version": "3.3.30"},
                        "results": {"passed_checks": [entry], "failed_checks": [
                            {**entry, "file_path": "/prod-steady.json"}]}}])
    report = findings.parse(text)
    assert report.version == "3.3.30"
    assert report.failed() == [Result("prod-steady", "CKV_AWS_18", "aws_s3_bucket.x", False,
                                      "access logging")]
    with pytest.raises(findings.ReportError, match="did not print JSON"):
        findings.parse("Traceback ...")


def test_the_checkov_doc_names_every_skipped_check() -> None:
    section = (ROOT / "docs" / "checkov.md").read_text()
    for skip in skips.load(ROOT / "policy" / "checkov-skips.toml"):
        assert f"`{skip.check}`" in section, skip.check
