"""The schema around the data: before it (tables, types, functions), and after it (indexes,
constraints, triggers, ACLs), restored by pg_restore from the archive's table of contents.

The table of contents holds no rows; it goes to an anonymous file (``pgrestore``). The schema
after the data can start early: an index or constraint whose tables have all been loaded is
restored while other tables are still loading (:meth:`SchemaSteps.ready`), the way
``pg_restore --jobs`` overlaps them; materialized-view refreshes and ACLs always come last (a
refresh may read tables its dependencies do not name, as pg_restore's own final pass assumes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import psycopg
from psycopg import sql

from caresync_dr.backup.archive import (
    SECTION_DATA,
    SECTION_NONE,
    SECTION_POST_DATA,
    SECTION_PRE_DATA,
    ArchiveHead,
    TocEntry,
)
from caresync_dr.backup.pgrestore import PgRestore, anonymous_file, write_all
from caresync_dr.backup.tools import text

log = logging.getLogger(__name__)
LAST = ("MATERIALIZED VIEW DATA", "ACL", "DEFAULT ACL")


def effective_sections(head: ArchiveHead) -> dict[int, int]:
    """Each entry's section as pg_restore treats it: an entry of no section (a comment, an ACL)
    belongs to the section of the entries before it (pg_backup_archiver.c)."""
    current = SECTION_PRE_DATA
    sections = {}
    for entry in head.entries:
        if entry.section != SECTION_NONE:
            current = entry.section
        sections[entry.dump_id] = current
    return sections


class SchemaSteps:
    def __init__(self, head: ArchiveHead, target_url: str, *, bin_dir: Path | None = None,
                 work_dir: Path | None = None, continue_on_error: bool = False,
                 extension_versions: dict[str, str] | None = None) -> None:
        self.head = head
        self.target_url = target_url
        self.extension_versions = extension_versions or {}
        self._fd = anonymous_file(work_dir)
        write_all(self._fd, head.raw)
        self.restore = PgRestore(self._fd, target_url, bin_dir, work_dir, continue_on_error,
                                 head=head)
        self.sections = effective_sections(head)
        self.by_id = head.by_id()
        self.done: set[int] = set()  # post-data entries already restored
        # TABLE entry -> its TABLE DATA entry
        self._data_of = {d: e.dump_id for e in head.entries if e.desc == "TABLE DATA"
                         for d in e.deps if self.by_id.get(d) and self.by_id[d].desc == "TABLE"}

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def failed(self) -> list[str]:
        return self.restore.failed

    # -- before the data ----------------------------------------------------------------------

    def pre_data(self) -> None:
        """pg_dump writes ``CREATE EXTENSION x`` without a version, which installs the target's
        default; an extension whose recorded version differs is created first at that version
        (after the schemas it may live in)."""
        pinned = self._pinned_extensions()
        if not pinned:
            self.restore.run("--section=pre-data", what="schema before the data")
            return
        schemas = [e.dump_id for e in self.head.entries if e.desc == "SCHEMA"]
        if schemas:
            self.restore.run("--section=pre-data", entries=schemas, what="schemas")
        with psycopg.connect(self.target_url, autocommit=True) as conn:
            for entry, version in pinned:
                # pg_dump's own statement (authenticated with the archive) plus the version
                statement = entry.defn.strip().rstrip(";")
                conn.execute(sql.SQL("{} VERSION {}").format(sql.SQL(statement),
                                                           sql.Literal(version)))
                log.info("extension %s created at the backup's version %s", entry.tag, version)
        rest = [e.dump_id for e in self.head.entries if e.desc != "SCHEMA"]
        self.restore.run("--section=pre-data", entries=rest, what="schema before the data")

    def _pinned_extensions(self) -> list[tuple[TocEntry, str]]:
        entries = [e for e in self.head.entries if e.desc == "EXTENSION"
                   and e.tag in self.extension_versions]
        if not entries:
            return []
        with psycopg.connect(self.target_url) as conn:
            defaults = {text(n): text(v) for n, v in conn.execute(
                "SELECT name, default_version FROM pg_available_extensions "
                "WHERE name = ANY(%s)", ([e.tag for e in entries],)).fetchall()}
        return [(e, self.extension_versions[e.tag]) for e in entries
                if defaults.get(e.tag) not in (None, self.extension_versions[e.tag])]

    # -- after the data -----------------------------------------------------------------------

    def other_data(self) -> None:
        """Data-section entries that are statements, not rows (sequence values)."""
        entries = [e.dump_id for e in self.head.entries
                   if e.section == SECTION_DATA and e.desc != "TABLE DATA"]
        if entries:
            self.restore.run("--section=data", entries=entries, what="sequence values")

    def ready(self, loaded: set[int]) -> list[int]:
        """Post-data entries that may run now: everything they depend on is schema before the
        data, table data in ``loaded`` (TABLE DATA dump ids), or another ready entry."""
        memo: dict[int, bool] = {}

        def satisfied(dump_id: int, seen: frozenset[int]) -> bool:
            if dump_id in memo:
                return memo[dump_id]
            entry = self.by_id.get(dump_id)
            if entry is None or dump_id in seen:
                return entry is None  # an entry pg_dump did not archive; a cycle: not ready
            seen = seen | {dump_id}
            if entry.desc == "TABLE":
                result = self._data_of.get(dump_id) in loaded | {None}
            elif entry.desc == "TABLE DATA":
                result = dump_id in loaded
            elif self.sections[dump_id] == SECTION_PRE_DATA:
                result = True  # all restored before any data
            elif self.sections[dump_id] == SECTION_POST_DATA and entry.desc not in LAST:
                result = dump_id in self.done or all(satisfied(d, seen) for d in entry.deps)
            else:
                result = False
            memo[dump_id] = result
            return result

        return [e.dump_id for e in self.head.entries
                if self.sections[e.dump_id] == SECTION_POST_DATA and e.desc not in LAST
                and e.dump_id not in self.done and satisfied(e.dump_id, frozenset())]

    def post_data(self, entries: Iterable[int] | None, jobs: int, what: str) -> None:
        """Restore ``entries`` (default: every post-data entry not yet restored)."""
        if entries is None:
            entries = [e.dump_id for e in self.head.entries
                       if self.sections[e.dump_id] == SECTION_POST_DATA
                       and e.dump_id not in self.done]
        chosen = list(entries)
        if not chosen:
            return
        options = ["--section=post-data"] + ([f"--jobs={jobs}"] if jobs > 1 else [])
        self.restore.run(*options, entries=chosen, what=what)
        self.done.update(chosen)
