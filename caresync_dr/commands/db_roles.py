"""Create the database's login roles (caresync_dr/db/roles.py) as the RDS master user: the
app's role and the backup, restore and restore-test roles, each with the password in its own
Secrets Manager secret. Idempotent: a second run changes nothing but re-sets the same passwords.

The writer is found, not assumed: each site in turn (the primary first) gives its region's
endpoint parameter and master secret; the first database that answers and is not in recovery
is the writer (replicas and a promoted standby get the roles through replication). A role
whose secret this deployment does not have is left out and named in the report.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import boto3
import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

from caresync_dr.breach.sites import STACKS, SiteLayout, layout_from
from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    FailedError,
    Invocation,
    RefusedError,
    UsageError,
    command_parser,
    run_main,
)
from caresync_dr.cli.aws_problems import aws_problem
from caresync_dr.db.roles import (
    OPERATOR_ROLES,
    OWNER_ROLE,
    ROLES,
    LoginRole,
    ensure_roles,
    owner_statements,
)
from caresync_dr.db.rotation import CURRENT, RotationError, SecretStore, master_connection
from caresync_dr.db.secrets import MASTER_SECRET_NAME
from caresync_dr.db.sessions import Endpoint, in_recovery, role_exists
from caresync_dr.operations import ApiCallRecorder
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
EXIT_CODES = [
    (ExitCode.OK, "every role with a secret exists as specified (or, --dry-run, would)"),
    (ExitCode.FAILED, "a statement failed: the transaction was rolled back, nothing changed"),
    (ExitCode.USAGE, "bad flags or stack files; nothing was changed"),
    (ExitCode.REFUSED, "no writable database answers (or no region answers); nothing changed"),
]


def build_parser() -> CommandParser:
    parser = command_parser(
        "db_roles.py", "Create or update the database login roles of caresync_dr/db/roles.py "
        "as the master user, each with its secret's password.", EXIT_CODES,
        notes="Deployment step 4 (docs/deploying.md); the roles: docs/database-roles.md.\n")
    parser.add_argument("--dry-run", action="store_true",
                        help="connect read-only, show which roles exist and what would run; "
                        "changes nothing")
    parser.add_argument("--db-sslmode", choices=SSL_MODES, default="require",
                        help="libpq sslmode (default require: RDS enforces TLS)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, metavar="DIR",
                        help="where Pulumi.prod.yaml and Pulumi.dr.yaml live")
    return parser


def _account(session: boto3.Session, project_dir: Path) -> tuple[str, list[str]]:
    """The account, and the regions (primary first) that answer STS."""
    account, answering, errors = "", [], []
    for stack in STACKS.values():
        try:
            region = settings_from_stack_file(stack, project_dir).region
        except (SettingsError, StackFileError) as exc:
            raise UsageError(str(exc)) from exc
        try:
            account = str(session.client("sts", region_name=region)
                          .get_caller_identity()["Account"])
            answering.append(region)
        except (ClientError, BotoCoreError) as exc:
            problem = aws_problem(exc)
            if problem is not None and problem.kind == "credentials":
                raise
            errors.append(f"{region}: {exc}")
    if not answering:
        raise RefusedError(f"no region of either site answers ({'; '.join(errors)}); nothing "
                           "was changed")
    return account, answering


def _writer(session: boto3.Session, sites: list[SiteLayout], dbname: str, sslmode: str
            ) -> tuple[SiteLayout, SecretStore, psycopg.Connection[Any], list[str]]:
    problems = []
    for site in sites:
        try:
            store = SecretStore(session.client("secretsmanager", region_name=site.region))
            value = session.client("ssm", region_name=site.region).get_parameter(
                Name=site.endpoint_parameter, WithDecryption=True)["Parameter"]["Value"]
            endpoint = Endpoint.parse(value, dbname, sslmode)
            conn, _ = master_connection(store, MASTER_SECRET_NAME, endpoint)
        except (ClientError, BotoCoreError, psycopg.Error, RotationError, ValueError) as exc:
            problems.append(f"{site.site} ({site.region}): {str(exc).strip()}")
            continue
        if in_recovery(conn):
            conn.close()
            problems.append(f"{site.site} ({site.region}): {endpoint} is a replica")
            continue
        return site, store, conn, problems
    raise RefusedError(f"no writable database answers ({'; '.join(problems)}); nothing was "
                       "changed")


def body(args: argparse.Namespace, run: Invocation) -> int:
    session = boto3.Session()
    recorder = ApiCallRecorder(block=True).install(session)   # this command changes no AWS
    try:
        account, answering = _account(session, args.project_dir)
        layout = layout_from(args.project_dir, account)
        sites = [s for s in layout.sites if s.region in answering]
        dbname = layout.settings.db_name
        site, store, conn, problems = _writer(session, sites, dbname, args.db_sslmode)
        passwords: dict[str, str] = {}
        roles: list[LoginRole] = []
        without_secret = []
        for role in (*ROLES, *OPERATOR_ROLES):
            version = store.version(role.secret_name, CURRENT)
            if version is None:
                without_secret.append(role.name)
                continue
            if version.username not in role.logins:
                conn.close()
                raise UsageError(f"{role.secret_name} names user {version.username}, not "
                                 f"one of {', '.join(role.logins)}; nothing was changed")
            roles.append(role)
            # An alternating role: the login the secret names gets its password; the other
            # keeps its own (the app's instances that booted earlier may still use it).
            passwords[version.username] = version.password
        run.data.update(site=site.site, region=site.region, database=dbname,
                        roles=[r.name for r in roles], withoutSecret=without_secret,
                        unreachable=problems, awsCalls=recorder.as_report())
        with conn:
            existing = {login: role_exists(conn, login) for r in roles for login in r.logins}
            run.data["existedBefore"] = existing
            if args.dry_run:
                # The session refuses every write: the dry run provably changes nothing.
                conn.execute("SET default_transaction_read_only = on")
                for role in roles:
                    for login in role.logins:
                        state = "exists; would be updated" if existing[login] else \
                            "would be created"
                        source = (f"password from {role.secret_name}" if login in passwords
                                  else "its password is left as it is" if existing[login]
                                  else "without a password: the next rotation sets one")
                        print(f"{login}: {state} ({source})")
                    if role.group is not None:
                        print(f"{role.group}: NOLOGIN, holds the privileges of "
                              f"{' and '.join(role.logins)}")
                for name in without_secret:
                    print(f"{name}: no secret in {site.region}; left out")
                run.message = "dry run: nothing was changed"
                print(run.message)
                return ExitCode.OK
            run.changing()
            # The backup and restore roles need the NOLOGIN owner of the database (roles.py);
            # until it exists, the master user owns (and creates) the tables.
            owner = owner_statements(dbname) if any(r in OPERATOR_ROLES for r in roles) else []
            creator = OWNER_ROLE if owner or role_exists(conn, OWNER_ROLE) else \
                layout.settings.db_username
            run.data["tableOwner"] = creator
            try:
                with conn.transaction():
                    for change in owner:
                        conn.execute(sql.Composed([change.statement]))
                    done = [c.what for c in owner] + ensure_roles(
                        conn, passwords, database=dbname, owner=creator, roles=roles)
            except psycopg.Error as exc:
                raise FailedError(f"{type(exc).__name__}: {str(exc).strip()}; the transaction "
                                  "was rolled back, nothing was changed") from exc
        run.data["done"] = done
        for name in without_secret:
            log.warning("%s has no secret in %s: left out", name, site.region)
        run.message = (f"{len(roles)} role(s) set on the writer in {site.region}: "
                       f"{', '.join(login for r in roles for login in r.logins)}")
        print(run.message)
        return ExitCode.OK
    finally:
        recorder.uninstall()


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="db_roles")
