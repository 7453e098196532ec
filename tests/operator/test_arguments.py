"""The shared argument types: what they accept, what they refuse, and that a refusal never
repeats a database URL (it may hold a password)."""

from __future__ import annotations

import argparse

import pytest

from caresync_dr import arguments


@pytest.mark.parametrize("text", ["-1", "0", "nan", "inf", "-inf", "1e999", "ten", "86401"])
def test_seconds_refuses_what_cannot_be_a_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        arguments.seconds()(text)


@pytest.mark.parametrize(("text", "value"), [("0.5", 0.5), ("30", 30.0), ("86400", 86400.0)])
def test_seconds_accepts_durations(text: str, value: float) -> None:
    assert arguments.seconds()(text) == value


def test_integer_bounds() -> None:
    convert = arguments.integer(minimum=1, maximum=22)
    assert convert("3") == 3
    for text in ("0", "23", "-1", "2.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            convert(text)


@pytest.mark.parametrize("text", ["garbage", "http://", "ftp://example.org/x", "",
                                  "postgresql://u:s3cret@h:99999/db", "x=y s3cret"])
def test_database_url_refusals_never_repeat_the_url(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        arguments.database_url(text)
    message = str(refused.value)
    assert "s3cret" not in message and (not text or text not in message)
    assert "DATABASE_URL" in message


@pytest.mark.parametrize("text", ["postgresql://u:pw@db.example.org:5432/caresync",
                                  "postgresql:///caresync?host=/tmp",
                                  "host=/var/run/postgresql dbname=caresync"])
def test_database_url_accepts_what_libpq_accepts(text: str) -> None:
    assert arguments.database_url(text) == text


@pytest.mark.parametrize("text", ["garbage", "http://", "ftp://example.org/x", "http://h:0x"])
def test_http_url_refusals(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        arguments.http_url(text)
