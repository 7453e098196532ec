"""Stack rules check every resource they can, then surface the first unknown value."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policy.context import check_each


def test_every_item_is_checked_before_the_first_unknown_is_raised() -> None:
    seen: list[int] = []

    def check(item: int) -> None:
        seen.append(item)
        if item in (2, 4):
            raise UnknownValueError(UNKNOWN_STRING_VALUE, [f"item{item}"])

    with pytest.raises(UnknownValueError) as raised:
        check_each([1, 2, 3, 4, 5], check)
    assert seen == [1, 2, 3, 4, 5]
    assert raised.value.props == ["item2"]  # the first one met


def test_other_errors_are_not_swallowed() -> None:
    def check(item: int) -> None:
        raise KeyError(item)

    with pytest.raises(KeyError):
        check_each([1], check)


def test_nothing_unknown_returns_quietly() -> None:
    seen: list[str] = []
    check_each("abc", seen.append)
    assert seen == ["a", "b", "c"]
