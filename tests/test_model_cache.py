"""caresync_dr.model_cache: botocore's data files kept parsed. What a cached load returns is
exactly what botocore's own loader parses; a damaged, stale or unsafe entry is never used."""

from __future__ import annotations

import json
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


def test_the_tests_never_write_the_users_home() -> None:
    """Every test process (and its subprocesses) kept models in ~/.cache/caresync-dr: the
    root conftest now points the cache at a directory of the test session's own."""
    where = default_directory()
    assert where is not None
    home = Path.home().resolve()
    assert home not in where.resolve().parents and where.resolve() != home


def test_other_botocore_versions_entries_are_removed(tmp_path: Path) -> None:
    """The cache never pruned: every botocore upgrade (and a reinstall) left all its entries
    behind (110 MB in ~/.cache here). A process that writes entries now removes every other
    generation's, and the flat layout's from before generations."""
    root = tmp_path / "cache"
    old = ModelCache(root, generation="botocore-1.0.0-py3.11.0-marshal4")
    source = _source("sns")
    assert old.load(source, os.stat(source)) is None
    assert old.flush() == 1
    old_entry = old.entry(source, os.stat(source))
    assert old_entry is not None and old_entry.exists()
    flat = root / ("0" * 32 + ".marshal")          # written before generations existed
    flat.write_bytes(b"old")
    foreign = root / "notes.txt"                   # not an entry: left alone
    foreign.write_text("mine")
    current = ModelCache(root)
    assert current.load(source, os.stat(source)) is None     # another generation: a miss
    assert current.flush() == 1
    assert not old_entry.parent.exists() and not flat.exists() and foreign.exists()
    kept = current.entry(source, os.stat(source))
    assert kept is not None and kept.exists()
    assert ModelCache(root).load(source, os.stat(source)) is not None


def test_a_generation_beyond_its_size_drops_its_oldest_entries(tmp_path: Path) -> None:
    sources = []
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"name": name, "padding": "x" * 4000}))
        sources.append(path)
    cache = ModelCache(tmp_path / "cache", max_bytes=9000)    # room for two entries
    files = PlainJSONFileLoader(cache)
    for path in sources[:2]:
        files.load_file(str(path.with_suffix("")))
    assert cache.flush() == 2
    entries = [cache.entry(str(p), os.stat(p)) or tmp_path / "off" for p in sources]
    os.utime(entries[0], ns=(1, 1))                # the oldest
    files.load_file(str(sources[2].with_suffix("")))
    assert cache.flush() == 1
    assert [e.exists() for e in entries] == [False, True, True]


def test_pruning_a_directory_shared_with_other_files_removes_only_entries(
        tmp_path: Path) -> None:
    """CARESYNC_DR_MODEL_CACHE may name a directory that holds other things (the operator's
    home, a project directory): pruning removed every ``*.marshal`` file in it and in every
    ``botocore-*`` directory beside it, whoever's they were. Only names this cache gives its
    entries (a 32-digit hex digest) and its generations are pruned."""
    root = tmp_path / "shared"
    root.mkdir(mode=0o700)
    theirs = root / "notes.marshal"
    theirs.write_bytes(b"someone else's data")
    tool = root / "botocore-helper"
    tool.mkdir()
    tool_file = tool / "state.marshal"
    tool_file.write_bytes(b"another tool's data")
    stale = root / "botocore-1.0.0-py3.11.0-marshal4"
    stale.mkdir()
    stale_entry = stale / ("a" * 32 + ".marshal")
    stale_entry.write_bytes(b"old")
    source = _source("sns")
    cache = ModelCache(root)
    assert cache.load(source, os.stat(source)) is None
    assert cache.flush() == 1
    assert theirs.exists() and tool_file.exists()
    assert not stale_entry.exists()


def test_an_entry_of_the_wrong_type_is_not_used(tmp_path: Path) -> None:
    """Every botocore data file is a JSON object: an intact entry holding anything else (an
    older or other program's data under the same name) made botocore fail with a traceback
    while building a client. It is a miss instead, and the file is parsed."""
    from caresync_dr.model_cache import write_entry

    cache = ModelCache(tmp_path)
    source = _source("sns")
    entry = cache.entry(source, os.stat(source))
    assert entry is not None
    write_entry(entry, ["not", "a", "model"])
    stem = source[: -len(".json.gz")]
    assert PlainJSONFileLoader(cache).load_file(stem) == \
        botocore.loaders.Loader().file_loader.load_file(stem)


def test_an_entry_that_is_not_a_regular_file_is_not_read(tmp_path: Path) -> None:
    """An entry path that is a FIFO (or a symlink to a device such as /dev/zero) made the
    model cache block for ever in its read, while building failover's first client. Only a
    regular file, not followed through a symlink, is read."""
    import threading

    from caresync_dr.model_cache import read_entry, write_entry

    fifo = tmp_path / ("f" * 32 + ".marshal")
    os.mkfifo(fifo)
    link = tmp_path / ("e" * 32 + ".marshal")
    link.symlink_to(tmp_path / "elsewhere")
    assert write_entry(tmp_path / "elsewhere", {"kept": "elsewhere"})
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.extend(
        [read_entry(fifo), read_entry(link)]), daemon=True)
    reader.start()
    reader.join(timeout=5)
    stuck = reader.is_alive()
    if stuck:           # let the blocked open and read end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
    assert not stuck
    assert results == [None, None]
