"""Patches of moto's classes come off, whoever else touched the attribute meanwhile."""

from __future__ import annotations

from caresync_dr.emulation.patching import ClassPatches, remember, restore_all


class Model:
    def method(self) -> str:
        return "moto"


remember(Model, "method", "added")


def test_restore_puts_back_what_was_there_and_removes_what_was_not() -> None:
    patches = ClassPatches()
    patches.set(Model, "method", lambda self: "shim")
    patches.set(Model, "added", lambda self: "new")
    assert Model().method() == "shim" and patches.active
    patches.restore()
    assert Model().method() == "moto" and not hasattr(Model, "added")
    patches.restore()  # twice: nothing more


def test_an_attribute_replaced_since_is_left_to_whoever_replaced_it() -> None:
    patches = ClassPatches()
    patches.set(Model, "method", lambda self: "shim")
    Model.method = lambda self: "someone else"  # type: ignore[method-assign]
    patches.restore()
    assert Model().method() == "someone else"
    restore_all()  # the safety net: moto's own, whoever changed it
    assert Model().method() == "moto"


def test_restore_all_undoes_shims_nobody_disarmed() -> None:
    def leak() -> None:
        ClassPatches().set(Model, "added", lambda self: "leaked")

    leak()
    assert hasattr(Model, "added")
    restore_all()
    assert not hasattr(Model, "added") and Model().method() == "moto"
