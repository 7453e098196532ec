"""The pack as the Pulumi engine starts it: `python -m pulumi.policy <engine> <pack dir>` runs
policy/__main__.py, which serves the Analyzer gRPC API on 127.0.0.1 (port printed on stdout);
the engine's requests reach the same rules. No engine is needed until a policy logs."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.local import urn
from policy.rules import PACK_NAME, POLICIES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    engine = "127.0.0.1:1"   # never contacted: the rules do not log through the engine
    process = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", engine,
                                str(ROOT / "policy")],
                               cwd=ROOT / "policy", stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    port: list[str] = []
    reader = threading.Thread(target=lambda: port.append(
        process.stdout.readline().strip() if process.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout=60)
    try:
        if not port or not port[0].isdigit():
            process.kill()
            _, err = process.communicate(timeout=10)
            pytest.fail(f"the policy pack did not start: {err[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port[0]}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_pack_announces_every_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == PACK_NAME
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in POLICIES)


def test_engine_request_for_a_public_database_is_mandatory_violation(
        analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    properties = struct_pb2.Struct()
    properties.update({"storageEncrypted": True, "kmsKeyId": "arn:aws:kms:us-east-1:1:key/x",
                       "publiclyAccessible": True, "deletionProtection": True,
                       "backupRetentionPeriod": 30, "parameterGroupName": "pg",
                       "monitoringInterval": 60,
                       "monitoringRoleArn": "arn:aws:iam::1:role/rds-monitoring"})
    request = analyzer_pb2.AnalyzeRequest(
        type="aws:rds/instance:Instance", properties=properties, name="db",
        urn=urn("prod", "aws:rds/instance:Instance", "db"))
    response = analyzer.Analyze(request, timeout=30)
    fired = {(d.policyName, d.enforcementLevel) for d in response.diagnostics}
    assert fired == {("rds-not-public", analyzer_pb2.MANDATORY)}
