"""Issue 10's figures for failover.py: bad inputs tried / refused cleanly, faults injected /
survived, kill points / recovered -- each counted by running the same catalogues the tests
assert (``tests/failover/hostile_inputs.py``, ``faults.py``), against the emulated sites.

- a bad input is *refused cleanly* when the run exits 2 with one error line naming the problem,
  no traceback, and no mutating AWS call;
- an injected fault (every call of a run, refused or answered with throttling after being
  applied, for two attempts or for the whole run) is *survived* when the run that met it wrote a
  report that tells the truth, the operator's later runs finish the failover, and no change
  reached AWS twice;
- a kill point (every journal write, lock transition and AWS change; before the request is sent
  and after AWS applied it with the answer lost) is *recovered* on the same terms.

Usage::

    venv/bin/python bench/failover_faults.py [--only inputs|faults|kills] [-v]

Prints one line per failure (with -v, per case) and the three figures. Exit 1 if any case
failed. About three minutes on two cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collections.abc import Callable

import botocore.retries.standard

from tests.failover import faults
from tests.failover import world as w
from tests.failover.hostile_inputs import ALL, refused_cleanly, try_input
from tests.failover.test_injected_faults import FAULTS
from tests.failover.test_kill_points import POINTS, SECOND_LEVEL
from tests.failover.test_region_failover import age_lock

ROOT = Path(__file__).resolve().parents[1]


def _quiet_emulation() -> None:
    """What tests/failover/conftest.py does for every test, for a script."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", MOTO_EC2_LOAD_DEFAULT_AMIS="false")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    # botocore's retry decisions and budgets stay; only the sleep between attempts shrinks.
    botocore.retries.standard.ExponentialBackoff.delay_amount = (  # type: ignore[method-assign]
        lambda self, context: 0.01)
    logging.getLogger().addHandler(logging.NullHandler())   # the tool's lines are collected
    default_hook = threading.excepthook

    def quiet_kills(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, faults.Killed):   # a killed renewal thread is the
            default_hook(args)                               # kill itself, not a bug

    threading.excepthook = quiet_kills


def bad_inputs(verbose: bool) -> tuple[int, int]:
    clean = 0
    with faults.emulated_world() as world:
        for case in ALL:
            with tempfile.TemporaryDirectory() as tmp:
                problems = refused_cleanly(case, try_input(case, world, Path(tmp)))
            clean += not problems
            if problems or verbose:
                print(f"  input {case.name}: {'; '.join(problems) or 'refused cleanly'}")
    return len(ALL), clean


def _age(world: w.World) -> Callable[[], None]:
    def an_hour_passes() -> None:
        if world.parameter(w.STANDBY, world.inventory.lock_parameter):
            age_lock(world, 3600)
    return an_hour_passes


def injected_faults(verbose: bool) -> tuple[int, int]:
    survived = 0
    for fault in FAULTS:
        with faults.emulated_world() as world, tempfile.TemporaryDirectory() as tmp:
            outcome = faults.survive(world, faults.make_invoke(world, Path(tmp), ROOT), fault,
                                     _age(world))
        survived += outcome.recovered
        if not outcome.recovered or verbose:
            print(f"  fault {fault}: {'; '.join(outcome.problems) or 'survived'} "
                  f"(exits {[int(a.code) for a in outcome.attempts]})")
    return len(FAULTS), survived


def kill_points(verbose: bool) -> tuple[int, int]:
    recovered = 0
    for point in POINTS:
        with faults.emulated_world() as world, tempfile.TemporaryDirectory() as tmp:
            outcome = faults.kill_and_recover(world, faults.make_invoke(world, Path(tmp), ROOT),
                                              point, _age(world))
        recovered += outcome.recovered
        if not outcome.recovered or verbose:
            print(f"  kill {point}: {'; '.join(outcome.problems) or 'recovered'} "
                  f"(exits {[int(a.code) for a in outcome.attempts]})")
    for name, scenario, moment in SECOND_LEVEL:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = scenario(Path(tmp), moment)
        recovered += outcome.recovered
        if not outcome.recovered or verbose:
            print(f"  kill at the {name} ({moment}): "
                  f"{'; '.join(outcome.problems) or 'recovered'}")
    return len(POINTS) + len(SECOND_LEVEL), recovered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("inputs", "faults", "kills"))
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per case")
    args = parser.parse_args(argv)
    _quiet_emulation()
    figures = []
    for name, what, count in (("inputs", "bad inputs tried / refused cleanly", bad_inputs),
                              ("faults", "faults injected / survived", injected_faults),
                              ("kills", "kill points / recovered", kill_points)):
        if args.only not in (None, name):
            continue
        started = time.monotonic()
        total, good = count(args.verbose)
        figures.append((what, total, good, time.monotonic() - started))
    print()
    for what, total, good, seconds in figures:
        print(f"{what:38} {total:4d} / {good:4d}   ({seconds:.0f} s)")
    return 0 if all(total == good for _, total, good, _ in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
