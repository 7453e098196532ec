"""How the failback applies the stack settings it wrote: ``pulumi up`` of one stack.

The program stays the only definition of the infrastructure: the failback command changes
settings and runs ``pulumi up``, it never creates a database or a replication rule by API call
(the next ``pulumi up`` would fight it). :class:`PulumiCli` is what an operator runs; drills and
tests pass another :class:`Deployer` (the drill's runs the real program under the mock runtime
against the emulator, ``caresync_dr/drill/round_trip.py``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from caresync_dr.cli.errors import FailedError


class DeployFailedError(FailedError):
    """``pulumi up`` failed or could not be started: the step stops, the run is resumable."""


class Deployer(Protocol):
    def command_line(self, stack: str) -> str:
        """What the step runs, in words an operator can run by hand."""
        ...

    def unavailable(self) -> str | None:
        """Why this deployer cannot run (read by the preflight), None when it can."""
        ...

    def up(self, stack: str, progress: Callable[[str], None]) -> None:
        """Converge ``stack`` to its settings; raises :class:`DeployFailedError`."""
        ...


@dataclass(frozen=True)
class PulumiCli:
    """``pulumi up --stack S --refresh --yes --policy-pack policy`` in the project directory.

    ``--refresh`` first: failover.py changed the live resources behind Pulumi's back (the
    promotion, the fenced security group, the app scaled to zero); without the refresh the
    provider would call PromoteReadReplica again and leave the fence in place
    (docs/lifecycles.md, post-failover reconcile)."""

    project_dir: Path
    executable: str = "pulumi"
    policy_pack: str = "policy"

    def argv(self, stack: str) -> list[str]:
        return [self.executable, "up", "--stack", stack, "--refresh", "--yes",
                "--policy-pack", self.policy_pack, "--cwd", str(self.project_dir)]

    def command_line(self, stack: str) -> str:
        return " ".join(self.argv(stack))

    def unavailable(self) -> str | None:
        if shutil.which(self.executable) is None:
            return (f"the Pulumi CLI ({self.executable}) is not on PATH: install it, log in to "
                    "the state backend, and run again")
        return None

    def up(self, stack: str, progress: Callable[[str], None]) -> None:
        try:
            proc = subprocess.Popen(self.argv(stack), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            raise DeployFailedError(f"cannot start {self.executable}: {exc}") from exc
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            progress(f"pulumi {stack} | {line.rstrip()}")
            tail = [*tail[-4:], line.rstrip()]
        code = proc.wait()
        if code != 0:
            raise DeployFailedError(f"`{self.command_line(stack)}` exited {code}: "
                                    f"{' / '.join(tail) or 'no output'}")
