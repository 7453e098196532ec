"""caresync_dr.model_trim: a client built from a service model cut to the operations a command's
role grants serialises and parses those operations exactly as a whole-model client does, offers
nothing else, and a later process loads the cut model without loading the whole one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import pytest
from moto import mock_aws

from caresync_dr.aws import new_core_session
from caresync_dr.failover.context import client_operations
from caresync_dr.model_cache import ModelCache
from caresync_dr.model_trim import trimmed_model
from caresync_dr.operator_permissions import role_of

OPERATIONS = client_operations()


def _is_cut(data: Any) -> bool:
    return isinstance(data, dict) and set(data.get("operations", ())) == OPERATIONS["ec2"]


def _ec2(session: Any) -> Any:
    return session.create_client("ec2", region_name="us-west-2", aws_access_key_id="testing",
                                 aws_secret_access_key="testing")


def test_the_cut_is_the_roles_ec2_grants() -> None:
    role = role_of("failover")
    assert role is not None
    granted = {a.split(":", 1)[1] for a in role.actions() if a.startswith("ec2:")}
    assert OPERATIONS["ec2"] == granted and "DescribeLaunchTemplates" in granted


def test_the_cut_model_keeps_every_shape_its_operations_reach() -> None:
    whole = botocore.loaders.Loader().load_service_model("ec2", "service-2")
    cut = trimmed_model(whole, OPERATIONS["ec2"] | {"NoSuchOperation"})
    assert set(cut["operations"]) == OPERATIONS["ec2"]
    assert cut["metadata"] == whole["metadata"]
    assert len(cut["shapes"]) < len(whole["shapes"]) / 10
    for name, shape in cut["shapes"].items():
        assert shape == whole["shapes"][name]
        refs = [shape[r]["shape"] for r in ("member", "key", "value") if r in shape]
        refs += [m["shape"] for m in shape.get("members", {}).values()]
        assert set(refs) <= set(cut["shapes"]), name


def test_a_cut_client_answers_as_a_whole_one_and_offers_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        whole = boto3.client("ec2", region_name="us-west-2")
        vpc = whole.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        group = whole.create_security_group(GroupName="db", Description="db", VpcId=vpc)
        whole.authorize_security_group_ingress(
            GroupId=group["GroupId"], IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432,
                                                     "ToPort": 5432,
                                                     "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        template = whole.create_launch_template(
            LaunchTemplateName="app", LaunchTemplateData={"InstanceType": "t3.micro"})
        template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        cut = _ec2(new_core_session(ModelCache(tmp_path), OPERATIONS))
        assert sorted(cut.meta.service_model.operation_names) == sorted(OPERATIONS["ec2"])
        for method, kwargs in (("describe_launch_templates", {"LaunchTemplateIds": [template_id]}),
                               ("describe_security_groups", {"GroupIds": [group["GroupId"]]})):
            mine, theirs = getattr(cut, method)(**kwargs), getattr(whole, method)(**kwargs)
            mine.pop("ResponseMetadata"), theirs.pop("ResponseMetadata")
            assert mine == theirs
        cut.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        left = whole.describe_security_groups(GroupIds=[group["GroupId"]])
        assert left["SecurityGroups"][0]["IpPermissions"] == []
        assert cut.can_paginate("describe_security_groups")
        with pytest.raises(AttributeError):
            cut.run_instances      # noqa: B018 -- not the role's: no such method


def test_a_later_process_loads_the_cut_model_alone(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first = ModelCache(tmp_path)
    _ec2(new_core_session(first, OPERATIONS))
    first.flush()                                  # the first run keeps it, at its exit
    loaded: list[str] = []
    original = ModelCache.load

    def load(self: ModelCache, source: str, info: Any) -> Any:
        loaded.append(source)
        return original(self, source, info)

    monkeypatch.setattr(ModelCache, "load", load)
    client = _ec2(new_core_session(ModelCache(tmp_path), OPERATIONS))
    assert sorted(client.meta.service_model.operation_names) == sorted(OPERATIONS["ec2"])
    assert not [s for s in loaded if "/ec2/" in s and "service-2" in s], loaded


def test_a_kept_cut_that_is_not_a_model_is_not_used(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    """An intact entry holding any dict was taken as the cut model: botocore then failed with
    a traceback while building failover's EC2 client. It is cut afresh instead."""
    import caresync_dr.aws

    monkeypatch.setattr(caresync_dr.aws, "read_entry", lambda path: {"not": "a model"})
    client = _ec2(new_core_session(ModelCache(tmp_path), OPERATIONS))
    assert sorted(client.meta.service_model.operation_names) == sorted(OPERATIONS["ec2"])


def test_a_cut_kept_by_other_trimming_code_is_not_used(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """The kept cut was keyed by the model file and the operations only: a cut made by an
    older caresync_dr.model_trim (one that lost an operation or a shape) stayed in use after
    the trimming was fixed, until botocore itself changed. The trimming code is in the key."""
    import caresync_dr.model_trim
    from caresync_dr.model_cache import read_entry, write_entry

    cache = ModelCache(tmp_path)
    _ec2(new_core_session(cache, OPERATIONS))
    cache.flush()                                       # keeps the cut, at the run's exit
    kept = [path for path in sorted(
        cache.directory.glob(f"{cache.generation}/*.marshal"))  # type: ignore[union-attr]
        if _is_cut(read_entry(path))]
    assert len(kept) == 1
    older = read_entry(kept[0])
    assert isinstance(older, dict)
    older["operations"].pop("RevokeSecurityGroupIngress")
    assert write_entry(kept[0], older)
    changed = tmp_path / "model_trim.py"
    changed.write_text(Path(caresync_dr.model_trim.__file__).read_text() + "# fixed\n")
    monkeypatch.setattr(caresync_dr.model_trim, "__file__", str(changed))
    client = _ec2(new_core_session(ModelCache(tmp_path), OPERATIONS))
    assert sorted(client.meta.service_model.operation_names) == sorted(OPERATIONS["ec2"])


def test_a_service_granted_by_pattern_is_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cut kept only the role's exact action names and dropped a pattern grant: a role
    changed to ``ec2:Describe*`` (IAM then allows every Describe call, and the role checks of
    every test pass) would have built failover's EC2 client without DescribeSecurityGroups,
    an AttributeError mid-run. A service granted by pattern keeps its whole model."""
    import caresync_dr.operator_permissions as permissions

    class Role:
        def actions(self) -> frozenset[str]:
            return frozenset({"ec2:Describe*", "ec2:RevokeSecurityGroupIngress",
                              "rds:PromoteReadReplica"})

    monkeypatch.setattr(permissions, "role_of", lambda command: Role())
    cut = permissions.api_operations("failover", ("ec2", "rds"))
    assert "ec2" not in cut
    assert cut == {"rds": frozenset({"PromoteReadReplica"})}


def test_a_grant_spelled_in_another_case_keeps_its_operation() -> None:
    """IAM matches action names without regard to case (``ec2:describesecuritygroups`` grants
    DescribeSecurityGroups); the cut matched them exactly and dropped such a grant's
    operation: a client without a call the role allows."""
    whole = botocore.loaders.Loader().load_service_model("ec2", "service-2")
    cut = trimmed_model(whole, {"describesecuritygroups", "DESCRIBELAUNCHTEMPLATES"})
    assert set(cut["operations"]) == {"DescribeSecurityGroups", "DescribeLaunchTemplates"}
