"""caresync_dr.botocore_names: botocore's Python names of AWS operations kept between runs.
A process that follows one which built a client transforms none of that service's operation
names again; a damaged or foreign entry is never used; a botocore upgrade starts afresh. Each
process is a child, as a command is: the memo is botocore's, process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import botocore
import pytest

from caresync_dr import botocore_names
from caresync_dr.model_cache import ModelCache, write_entry

ROOT = Path(__file__).resolve().parents[1]

# A command's process: a session on ``cache``, an EC2 client; prints how many names were
# preloaded and how many botocore had to transform itself while building the client.
CHILD = """
import json, sys
import botocore
from caresync_dr import botocore_names
from caresync_dr.aws import new_core_session
from caresync_dr.model_cache import ModelCache

transformed = []
class Counting:
    def __init__(self, pattern):
        self.pattern = pattern
    def sub(self, *args):
        transformed.append(args[-1])
        return self.pattern.sub(*args)
botocore._first_cap_regex = Counting(botocore._first_cap_regex)
session = new_core_session(ModelCache(__import__("pathlib").Path(sys.argv[1])))
preloaded = len(botocore._xform_cache)
session.create_client("ec2", region_name="us-west-2", aws_access_key_id="x",
                      aws_secret_access_key="y")
print(json.dumps({"preloaded": preloaded, "transformed": len(transformed),
                  "names": len(botocore._xform_cache)}))
"""


def _command(cache: Path) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(cache)], cwd=ROOT, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_next_run_transforms_no_name_the_last_one_did(tmp_path: Path) -> None:
    first = _command(tmp_path)
    assert first["transformed"] > 500, first         # EC2's ~750 operations, the first time
    second = _command(tmp_path)
    assert second["transformed"] == 0, second
    assert second["preloaded"] >= first["names"]


def test_a_damaged_or_foreign_entry_is_not_used(tmp_path: Path) -> None:
    first = _command(tmp_path)
    cache = ModelCache(tmp_path)
    path = botocore_names._entry(cache)
    assert path is not None and path.is_file()
    # Not names: a list, a dict of other types.
    for foreign in ([1, 2, 3], {"DescribeInstances": "describe_instances"},
                    {("DescribeInstances", "_"): 7}):
        assert write_entry(path, foreign)
        again = _command(tmp_path)
        assert again["transformed"] > 500 and again["preloaded"] < first["names"], foreign
    path.write_bytes(path.read_bytes()[:-10])         # cut short: the CRC no longer matches
    assert _command(tmp_path)["transformed"] > 500


def test_an_upgraded_botocore_starts_afresh(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry is keyed by botocore's __init__.py as installed (its xform_name lives there):
    another file (an upgrade changes its size or time) finds another entry."""
    cache = ModelCache(tmp_path)
    here = botocore_names._entry(cache)
    other = tmp_path / "botocore-next" / "__init__.py"
    other.parent.mkdir()
    other.write_text("# another botocore\n")
    monkeypatch.setattr(botocore, "__file__", str(other))
    assert botocore_names._entry(cache) not in (None, here)


def test_nothing_is_written_when_nothing_was_added(tmp_path: Path) -> None:
    _command(tmp_path)
    path = botocore_names._entry(ModelCache(tmp_path))
    assert path is not None
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    _command(tmp_path)
    assert path.stat().st_mtime_ns == before - 10**9
