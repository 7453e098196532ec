"""One drill's emulated AWS and world: started in two timed steps, and on every exit (errors
and Ctrl-C included) stopped in reverse order, servers and temp dirs kept only with --keep."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from caresync_dr.drill.timeline import Timeline
from caresync_dr.drill.world import World, build_world
from caresync_dr.emulation.patching import restore_all
from caresync_dr.emulation.server import Emulator, reset_backends
from caresync_dr.pg.archive import WalArchive

if TYPE_CHECKING:
    from caresync_dr.drill.runner import DrillOptions

DEPLOY_STEP = "deploy prod, dr and start the data path"


@dataclass
class Session:
    world: World
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def on_exit(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` when the session ends (last registered, first run)."""
        self.cleanups.append(undo)


@contextlib.contextmanager
def emulated_world(options: DrillOptions, timeline: Timeline, *, deploy_step: str = DEPLOY_STEP,
                   with_local_replica: bool = False, archive: WalArchive | None = None,
                   bake_scale: float = 1.0,
                   prepare: Callable[[World], None] | None = None) -> Iterator[Session]:
    """The emulator (moto as moto: every earlier patch restored), both stacks deployed and the
    data path running (:func:`~caresync_dr.drill.world.build_world`); ``prepare`` finishes the
    world within the deploy step."""
    cleanups: list[Callable[[], None]] = []
    emulator = Emulator()
    world: World | None = None
    try:
        with timeline.step("start emulated AWS"):
            restore_all()
            reset_backends()
            emulator.start()
            cleanups.append(emulator.stop)
            timeline.event(f"emulated AWS listening on {emulator.endpoint}")
        with timeline.step(deploy_step):
            world = build_world(emulator, project_dir=options.project_dir,
                                promote_seconds=options.promote_seconds,
                                scale_seconds=options.scale_seconds,
                                with_local_replica=with_local_replica,
                                on_cleanup=lambda stop: cleanups.append(
                                    lambda: stop(options.keep)),
                                archive=archive, bake_scale=bake_scale)
            if prepare is not None:
                prepare(world)
        yield Session(world, cleanups)
    finally:
        if world is not None:
            world.stop(keep=options.keep)
        for undo in reversed(cleanups):
            with contextlib.suppress(Exception):
                undo()
        reset_backends()
