"""The GitHub workflows: valid against GitHub's schema, clean under zizmor, and wired as
docs/ci.md describes (pinned actions, least permissions, OIDC, protected deploys, loud
schedules)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing from {BIN}: pip install -r requirements-dev.txt")
    return str(path)


def _load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    # PyYAML reads the bare key `on` as True (YAML 1.1).
    if True in document:
        document["on"] = document.pop(True)
    return document


def _files() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"pull-request.yml", "deploy.yml", "readiness.yml"}
    return files


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_workflows_match_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         *map(str, _files())], check=False, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_even_pedantic() -> None:
    result = subprocess.run(
        [_tool("zizmor"), "--offline", "--strict-collection", "--persona", "pedantic",
         "--format", "json", str(WORKFLOWS)], check=False, capture_output=True, text=True,
        timeout=120)
    findings = json.loads(result.stdout or "[]")
    summary = [(f["ident"], f["determinations"]["severity"]) for f in findings]
    assert findings == [], summary
    assert result.returncode == 0, result.stderr


def test_zizmor_would_catch_a_careless_edit(tmp_path: Path) -> None:
    # The audit is not vacuous: the same workflow with a tag-pinned action, a checkout that
    # keeps its token and a PR title in a shell script is flagged.
    text = (WORKFLOWS / "pull-request.yml").read_text()
    text = text.replace("@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2", "@v4")
    text = text.replace("persist-credentials: false", "fetch-depth: 1", 1)
    text = text.replace('run: bash .ci/run', 'run: echo "${{ github.event.pull_request.title }}"')
    target = tmp_path / ".github" / "workflows"
    target.mkdir(parents=True)
    (target / "pull-request.yml").write_text(text)
    result = subprocess.run([_tool("zizmor"), "--offline", "--strict-collection", "--format",
                             "json", str(target)],
                            check=False, capture_output=True, text=True,
        timeout=120)
    idents = {f["ident"] for f in json.loads(result.stdout)}
    assert {"unpinned-uses", "artipacked", "template-injection"} <= idents, idents
    assert result.returncode != 0


def test_every_action_is_pinned_to_a_commit() -> None:
    for path in _files():
        for step in _steps(_load(path.name)):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), \
                    f"{path.name}: {step['uses']} is not pinned to a commit SHA"


def test_permissions_are_granted_per_job_only() -> None:
    for path in _files():
        workflow = _load(path.name)
        assert workflow["permissions"] == {}, path.name
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}:{name} inherits permissions"
            assert "write-all" not in str(job["permissions"])


def test_no_long_lived_aws_keys_anywhere() -> None:
    for path in _files():
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_pull_request_previews_both_stacks_with_the_policy_pack() -> None:
    workflow = _load("pull-request.yml")
    assert list(workflow["on"]) == ["pull_request"]   # never pull_request_target
    preview = workflow["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["prod", "dr"]
    assert preview["permissions"] == {"contents": "read", "id-token": "write",
                                      "pull-requests": "write"}
    assert "head.repo.full_name == github.repository" in preview["if"]
    steps = {step.get("uses", "").split("@")[0]: step for step in preview["steps"]}
    assert "role-to-assume" in steps["aws-actions/configure-aws-credentials"]["with"]
    pulumi = steps["pulumi/actions"]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    offline = workflow["jobs"]["offline"]
    run = " ".join(step.get("run", "") for step in offline["steps"])
    assert "bash .ci/run" in run and "scripts/preview.py" in run
    assert "scripts/objectives.py" in run


def test_deploy_runs_prod_then_dr_behind_protected_environments() -> None:
    workflow = _load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    assert jobs["up-prod"]["needs"] == "offline" and jobs["up-dr"]["needs"] == "up-prod"
    for job, stack in (("up-prod", "prod"), ("up-dr", "dr")):
        assert jobs[job]["environment"] == stack
        [pulumi] = [s for s in jobs[job]["steps"] if s.get("uses", "").startswith("pulumi/")]
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"].endswith(f"/caresync-dr/{stack}")
        assert pulumi["with"]["policyPacks"] == "policy"
        # The release rolls out after the stack is up, by an instance refresh that Auto
        # Scaling rolls back by itself on the deploy alarms (issue 14; pulumi up never
        # switches the group's template version).
        steps = jobs[job]["steps"]
        rollout = [i for i, s in enumerate(steps)
                   if f"scripts/app.py deploy --stack {stack} --yes" in s.get("run", "")]
        assert rollout and rollout[0] > steps.index(pulumi), job
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_schedule_checks_daily_drills_weekly_and_fails_loudly() -> None:
    workflow = _load("readiness.yml")
    crons = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert crons == ["17 6 * * *", "43 7 * * 1", "29 4 * * *"]
    jobs = workflow["jobs"]
    check_runs = " ".join(s.get("run", "") for s in jobs["readiness-check"]["steps"])
    assert "scripts/failover.py --check --stack dr" in check_runs
    assert "scripts/drill.py" in " ".join(s.get("run", "") for s in jobs["drill"]["steps"])
    # Each scheduled job runs on its own cron only (and on a manual dispatch).
    for job, cron in (("readiness-check", "17 6 * * *"), ("restore-test-rds", "29 4 * * *"),
                      ("drill", "43 7 * * 1")):
        assert f"github.event.schedule == '{cron}'" in jobs[job]["if"], job
        assert jobs[job]["if"].count("github.event.schedule") == 1, job
    restore = jobs["restore-test-rds"]
    assert restore["permissions"] == {"contents": "read", "id-token": "write"}
    restore_runs = " ".join(s.get("run", "") for s in restore["steps"])
    assert "scripts/restore_check.py --skip-local" in restore_runs
    assert "--site primary" in restore_runs and "--db-security-group-id" in restore_runs
    # The flags are the script's own: its parser accepts them and places the copy in the site.
    from caresync_dr.commands import restore_check as restore_test

    [command] = [s["run"] for s in restore["steps"] if "restore_check.py" in s.get("run", "")]
    argv = shlex.split(command.replace("${DB_SECURITY_GROUP_ID}", "sg-0123456789abcdef0"))
    args = restore_test.parse_arguments(argv[argv.index("scripts/restore_check.py") + 1:])
    assert args.placement.subnet_group == "caresync-primary-db" and args.skip_local
    assert jobs["alert"]["if"] == "failure()"
    assert jobs["alert"]["needs"] == ["readiness-check", "restore-test-rds", "drill"]
    assert jobs["alert"]["permissions"] == {"issues": "write"}
