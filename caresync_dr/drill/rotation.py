"""The scheduled credential rotation drill: ``rotate_db_credentials.py`` runs as the monthly timer
runs it, on the emulated AWS and the real PostgreSQL, while the app serves and keeps opening
connections with the credentials its instances read at boot.

What it measures is what the rotation used to break: an app instance reads ``caresync/db/app``
once, at boot (components/app_tier.py), so from the rotation until the instance refresh has
replaced it, every *new* connection it opens uses the password it booted with. A connection
prober stands in for every instance's connection pool: every few milliseconds it opens a new
connection to each site's database with that site's boot credentials (:meth:`World.app_conninfo`,
which follows the refresh when the instances boot anew) and counts the refusals. With the
alternating-users rotation (caresync_dr/db/rotation.py) there are none: the secret moves to the
other login and the previous one keeps working until the next rotation.

The result's ``rto_seconds`` is None: nothing is down, nothing recovers. ``failed_connections``
(expected 0) and ``failed_writes`` are the figures; ``connections_opened`` says how many tries
they come from.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.db.secrets import APP_SECRET_NAME, MASTER_SECRET_NAME
from caresync_dr.db.sessions import login_refused
from caresync_dr.drill.boot import read_secret
from caresync_dr.emulation.secret_rotation import SecretRotationShim

if TYPE_CHECKING:
    from caresync_dr.drill.in_region import InRegionRun
    from caresync_dr.drill.world import World

ROTATION_ID = "rotation-drill"
PROBE_INTERVAL = 0.01   # seconds between two rounds of new connections (one per site)


@dataclass
class ConnectionProbe:
    """Every site's app opening a new connection each round, with its boot credentials."""

    world: World
    opened: int = 0
    failures: list[tuple[float, str, str]] = field(default_factory=list)  # (t, site, error)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _round(self) -> None:
        for site in ("primary", "standby"):
            conninfo = self.world.app_conninfo(site)
            if conninfo is None:
                continue
            try:
                psycopg.connect(conninfo, connect_timeout=2).close()
                self.opened += 1
            except psycopg.Error as exc:
                self.failures.append((time.monotonic(), site,
                                      str(exc).strip().splitlines()[-1][:160]))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._round()
            self._stop.wait(PROBE_INTERVAL)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="app-connections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def rotation_flow(run_: InRegionRun) -> dict[str, Any]:
    """Rotate on schedule while the app serves; the drill's common result shape."""
    from caresync_dr.drill.breach import (
        PGENV,
        _stand_in,
        install_master_user,
        serve_endpoints_locally,
    )
    from caresync_dr.drill.in_region import _present, _result, _verification, run_command

    world, options, timeline, load = run_.world, run_.options, run_.timeline, run_.load
    primary_region = world.inventory.primary.region
    with timeline.step("the operator side: RDS endpoints and master user") as step:
        world.shims.append(SecretRotationShim().arm())
        written = serve_endpoints_locally(world)
        master, _ = install_master_user(world)
        step.detail = f"{', '.join(written)}; master user {master}"
    booted_secret = read_secret(world.emulator, primary_region, APP_SECRET_NAME)
    master_before = read_secret(world.emulator, primary_region, MASTER_SECRET_NAME)
    replaced: list[tuple[float, str]] = []
    world.on_replaced.append(lambda site, _version: replaced.append((time.monotonic(), site)))
    probe = ConnectionProbe(world)
    probe.start()
    started = time.monotonic()
    timeline.outage_at, timeline.outage_wall = started, time.time()
    timeline.event("the monthly timer fires: rotate_db_credentials.py", at=started)
    try:
        with timeline.step("rotate_db_credentials.py") as step:
            command = run_command(run_, "rotate_db_credentials.py", [
                "--rotation-id", ROTATION_ID, "--db-sslmode", "disable", "--yes"],
                extra_env=PGENV)
            step.ok, step.detail = command.exit_code == 0, f"exit {command.exit_code}"
        with timeline.step("both sites' instances replaced (they boot with the new secret)"
                           ) as step:
            deadline = time.monotonic() + options.serve_timeout
            while time.monotonic() < deadline and {s for _, s in replaced} != {
                    "primary", "standby"}:
                time.sleep(0.05)
            time.sleep(0.3)     # a few rounds of connections on the new credentials
            step.ok = {s for _, s in replaced} == {"primary", "standby"}
            step.detail = ", ".join(f"{s} after {t - started:.2f} s" for t, s in replaced)
    finally:
        probe.stop()
        load.stop()
    end = time.monotonic()
    report = command.report or {}
    endpoint = _stand_in(world)
    rotated = read_secret(world.emulator, primary_region, APP_SECRET_NAME)
    master_after = read_secret(world.emulator, primary_region, MASTER_SECRET_NAME)
    booted = world.config_at_boot.get("primary")
    on_rotated = booted is not None and (booted.user, booted.password) == (
        rotated["username"], rotated["password"])
    previous_works = not login_refused(endpoint, booted_secret["username"],
                                       booted_secret["password"])
    master_refused = login_refused(endpoint, master_before["username"],
                                   master_before["password"])
    acks = load.snapshot()
    during = [a for a in acks if started <= a.acked_at <= end]
    present = _present(world.databases.primary, world.databases.app_database)
    lost = [a for a in acks if a.database == "primary" and a.seq not in present]
    down = run_.watch.seconds_in("down", started, end)
    first_failure = probe.failures[0] if probe.failures else None
    verifications = [
        _verification("rotate_db_credentials.py rotated and verified",
                      command.exit_code == 0 and report.get("outcome") == "completed",
                      f"exit {command.exit_code}, outcome {report.get('outcome')}: "
                      f"{report.get('message')}"),
        _verification("no new app connection refused during the rotation", not probe.failures,
                      f"{len(probe.failures)} of {probe.opened + len(probe.failures)} new "
                      "connections with the boot credentials failed"
                      + (f"; first at +{first_failure[0] - started:.2f} s ({first_failure[1]}): "
                         f"{first_failure[2]}" if first_failure else "")),
        _verification("the app's instances boot with the rotated secret, on the other login",
                      on_rotated and rotated["username"] != booted_secret["username"]
                      and rotated["username"] in APP_ROLE.logins,
                      f"{booted_secret['username']} -> {rotated['username']}; the primary's "
                      f"instances log in as {booted.user if booted else 'nothing'}"),
        _verification("the app's previous login still works until the next rotation",
                      previous_works, f"{booted_secret['username']} with its boot password: "
                      f"{'logs in' if previous_works else 'REFUSED'}"),
        _verification("the old master password is refused by the server",
                      master_refused and master_after["password"] != master_before["password"],
                      f"{master_before['username']}: "
                      f"{'refused' if master_refused else 'LOGS IN'}"),
        _verification("no acknowledged write lost, none failed", not lost and not load.failures,
                      f"{len(acks)} acknowledged ({len(during)} during the rotation), "
                      f"{len(lost)} missing, {load.failures} failed"),
    ]
    result = _result("credential-rotation", timeline, load, verifications, None,
                     rpo_seconds=0.0, rpo_transactions=len(lost), survivor="primary",
                     section={"command": command.argv[1:], "exit_code": command.exit_code,
                              "command_seconds": command.seconds,
                              "connections_opened": probe.opened,
                              "failed_connections": len(probe.failures),
                              "first_failed_connection": first_failure[2]
                              if first_failure else None,
                              "writes_during_rotation": len(during),
                              "failed_writes": load.failures,
                              "no_service_seconds": down,
                              "instances_replaced_after_seconds": {
                                  s: round(t - started, 3) for t, s in replaced},
                              "report": report}, watch=run_.watch)
    result["rto_meaning"] = ("none: a scheduled rotation is no outage; the figure is "
                             "failed_connections (0 expected)")
    return result
