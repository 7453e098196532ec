"""caresync_dr.model_cache: botocore's data files kept parsed. What a cached load returns is
exactly what botocore's own loader parses; a damaged, stale or unsafe entry is never used."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.loaders
import pytest

from caresync_dr.aws import PlainJSONFileLoader, new_session
from caresync_dr.model_cache import ENV_CACHE_DIR, ModelCache, default_directory

DATA = Path(botocore.loaders.__file__).parent / "data"


def _source(service: str = "ec2") -> str:
    """The service's newest model, the one its clients load."""
    return str(sorted(DATA.joinpath(service).glob("*/service-2.json.gz"))[-1])


def test_a_kept_model_is_the_model_botocore_parses(tmp_path: Path) -> None:
    """First process: parsed from JSON, kept at exit (flush); the next process loads the kept
    copy: botocore's own loader's data, and a client works with it."""
    default = botocore.loaders.Loader()
    first = ModelCache(tmp_path / "cache")
    session = new_session(first)
    loader = session._session.get_component("data_loader")
    for service, paged in (("ec2", "describe_launch_templates"), ("s3", "list_objects_v2")):
        assert loader.load_service_model(service, "service-2") == \
            default.load_service_model(service, "service-2")
        assert session.client(service, region_name="us-west-2",  # type: ignore[call-overload]
                              aws_access_key_id="x",
                              aws_secret_access_key="y").can_paginate(paged)
    assert first.flush() >= 2
    assert first.flush() == 0             # each miss is written once
    second = ModelCache(tmp_path / "cache")
    files = PlainJSONFileLoader(second)
    source = _source()
    stem = source[: -len(".json.gz")]
    assert second.load(source, os.stat(source)) is not None
    assert files.load_file(stem) == default.file_loader.load_file(stem)
    kept = new_session(second)
    client = kept.client("ec2", region_name="us-west-2", aws_access_key_id="x",
                         aws_secret_access_key="y")
    assert client.can_paginate("describe_launch_templates")
    assert second.flush() == 0            # nothing missed: nothing written


def test_a_damaged_entry_is_not_used(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    source = _source("rds")
    info = os.stat(source)
    assert cache.load(source, info) is None
    assert cache.flush() == 1
    entry = cache.entry(source, info)
    assert entry is not None
    raw = bytearray(entry.read_bytes())
    raw[len(raw) // 2] ^= 0xFF            # one flipped byte
    entry.write_bytes(bytes(raw))
    assert ModelCache(tmp_path).load(source, info) is None
    entry.write_bytes(bytes(raw[: len(raw) // 3]))   # torn
    assert ModelCache(tmp_path).load(source, info) is None
    files = PlainJSONFileLoader(ModelCache(tmp_path))
    stem = source[: -len(".json.gz")]
    assert files.load_file(stem) == botocore.loaders.Loader().file_loader.load_file(stem)


def test_a_changed_source_misses_and_is_not_written_from_stale_data(tmp_path: Path) -> None:
    source = tmp_path / "model.json"
    source.write_text('{"version": 1}')
    cache = ModelCache(tmp_path / "cache")
    files = PlainJSONFileLoader(cache)
    assert files.load_file(str(tmp_path / "model")) == {"version": 1}
    assert cache.flush() == 1
    source.write_text('{"version": 22}')   # another size: another entry
    assert files.load_file(str(tmp_path / "model")) == {"version": 22}
    source.write_text('{"version": 333}')  # changed again before the flush: not written
    assert cache.flush() == 0
    again = PlainJSONFileLoader(ModelCache(tmp_path / "cache"))
    assert again.load_file(str(tmp_path / "model")) == {"version": 333}


def test_only_a_private_directory_is_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    cache = ModelCache(shared)
    source = _source("elbv2")
    assert cache.load(source, os.stat(source)) is None
    assert cache.flush() == 0 and not list(shared.iterdir())
    fresh = ModelCache(tmp_path / "new" / "cache")
    assert fresh.usable()
    assert (tmp_path / "new" / "cache").stat().st_mode & 0o777 == 0o700


def test_where_the_cache_is(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_directory({ENV_CACHE_DIR: "off", "HOME": "/h"}) is None
    assert default_directory({ENV_CACHE_DIR: "/c"}) == Path("/c")
    assert default_directory({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == \
        Path("/x/caresync-dr/botocore-models")
    assert default_directory({"HOME": "/h"}) == Path("/h/.cache/caresync-dr/botocore-models")
    assert default_directory({}) is None
    monkeypatch.setenv(ENV_CACHE_DIR, "off")
    assert ModelCache(default_directory()).entry(_source(), os.stat(_source())) is None
