"""Plain SQL backups (the seed's ``pg_dump | gzip``) are untrusted input: load them with psql,
but without psql's powers and without reaching anything but the scratch database.

psql executes backslash meta-commands wherever they appear outside quotes and comments:
``\\connect caresync`` followed by ``DELETE`` changed the live database before the swap, and
``\\!`` ran a shell command (issue 10 item 2). So:

1. :class:`SqlScanner` reads the stream as psql's lexer does (quotes, E'' strings, quoted
   identifiers, dollar quotes, nested comments, COPY data up to ``\\.``) and refuses, with the
   line number, any meta-command (pg_dump 15.14+'s own ``\\restrict``/``\\unrestrict`` lines are
   dropped), any transaction control (the load is one transaction, see 3), and statements that
   act outside the database: databases, roles, tablespaces, ``ALTER SYSTEM``, session
   authorization, server-side ``COPY`` files and programs, ``LOAD``, ``DO``, and extensions
   that open connections or files (dblink, postgres_fdw, file_fdw, adminpack).
2. psql runs in restricted mode (``\\restrict`` with a random key, first line of its input), so
   a meta-command the scanner missed is refused by psql itself.
3. The whole load is one transaction (``--single-transaction``, ``ON_ERROR_STOP``) into the
   scratch database, and its last statement compares the cluster-wide catalogs (other databases,
   roles, memberships, settings, tablespaces) with a digest taken before the load: any change
   aborts the transaction, so nothing outside the scratch database survives it.
"""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

from caresync_dr.backup.errors import BackupError, IntegrityError
from caresync_dr.backup.tools import client_command, pg_tool, start_tool, text

log = logging.getLogger(__name__)

_TOKEN = re.compile(rb"--|/\*|'|\"|\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$|\\|;|\(|\)"
                    rb"|(?<![A-Za-z0-9_$\x80-\xff])[EeUu]&?'")
_WORD = re.compile(rb"[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*")
_PSQL_RESTRICT = re.compile(rb"\\(?:un)?restrict\s+[A-Za-z0-9]+\s*$")
HEAD_BYTES = 512

# First words of statements that act outside the scratch database or end its transaction.
FORBIDDEN = [
    (re.compile(p), why) for p, why in (
        (r"^(BEGIN|START TRANSACTION|COMMIT|END|ABORT|PREPARE TRANSACTION)\b",
         "transaction control (the load must stay one transaction)"),
        (r"^ROLLBACK\b(?!\s+(TO|AND))", "transaction control (the load must stay one "
                                        "transaction)"),
        (r"^ALTER (SYSTEM|DATABASE|ROLE|USER|GROUP|TABLESPACE)\b",
         "a change outside this database"),
        (r"^(CREATE|DROP) (DATABASE|ROLE|USER|GROUP|TABLESPACE|SUBSCRIPTION)\b",
         "a change outside this database"),
        (r"^(SET|RESET) (SESSION AUTHORIZATION|ROLE)\b|^SET SESSION ROLE\b",
         "a change of the session's identity"),
        (r"^(COMMENT ON|SECURITY LABEL( FOR \S+)? ON) (DATABASE|ROLE|TABLESPACE)\b",
         "a change outside this database"),
        (r"^(GRANT|REVOKE)\b.*\bON DATABASE\b", "a change outside this database"),
        (r"^(LOAD|DO|CHECKPOINT)\b", "code or server actions a dump never contains"),
        (r"^COPY\b.*\b(PROGRAM|TO\s+'|FROM\s+')", "server-side files or programs"),
        (r"^CREATE EXTENSION( IF NOT EXISTS)? \"?(DBLINK|POSTGRES_FDW|FILE_FDW|ADMINPACK)\b",
         "an extension that reaches other databases or the server's files"),
    )]
_COPY_FROM_STDIN = re.compile(r"^COPY\b.*\bFROM\s+STDIN\b")
_ROUTINE = re.compile(r"^CREATE( OR REPLACE)? (FUNCTION|PROCEDURE)\b")


class UnsafeSqlError(IntegrityError):
    """The plain SQL backup holds something a restore must not run."""


class SqlScanner:
    """Feed the SQL as it comes; :meth:`feed` returns what may be passed on to psql."""

    def __init__(self) -> None:
        self.line = 1
        self._carry = b""
        self._state = "normal"
        self._dollar = b""
        self._depth = 0          # comment nesting
        self._parens = 0
        self._begins = 0         # BEGIN ... END of SQL-standard routine bodies
        self._escapes = False    # E'' string
        self._standard_strings = True
        self._head = bytearray()
        self._in_statement = False

    def feed(self, data: bytes) -> bytes:
        buf = self._carry + data
        cut = buf.rfind(b"\n") + 1  # whole lines only: no token is split between feeds
        self._carry = buf[cut:]
        return self._lines(buf[:cut]) if cut else b""

    def close(self) -> bytes:
        tail = self._lines(self._carry) if self._carry else b""
        self._carry = b""
        if self._state == "copy":
            self._refuse("the file ends inside COPY data (no \\. line)")
        if self._state != "normal":
            self._refuse(f"the file ends inside a {self._state}")
        if self._in_statement and self._head.strip():
            self._refuse("the file ends inside a statement (no closing semicolon)")
        return tail

    # -- lexing -----------------------------------------------------------------------------

    def _refuse(self, why: str) -> None:
        raise UnsafeSqlError(f"plain SQL backup refused at line {self.line}: {why}")

    def _lines(self, text: bytes) -> bytes:
        out = bytearray()
        pos = 0
        while pos < len(text):
            if self._state == "copy":
                pos = self._copy_data(text, pos, out)
                continue
            end = text.find(b"\n", pos)
            end = len(text) if end < 0 else end + 1
            line = text[pos:end]
            if self._state == "normal" and line.lstrip().startswith(b"\\") and \
                    _PSQL_RESTRICT.match(line.strip()):
                pass  # pg_dump's own \restrict/\unrestrict: replaced by ours
            else:
                self._line(line)
                out += line
            self.line += 1
            pos = end
        return bytes(out)

    def _copy_data(self, text: bytes, pos: int, out: bytearray) -> int:
        """COPY data runs to a line that is exactly ``\\.`` (``text`` holds whole lines)."""
        if text.startswith((b"\\.\n", b"\\.\r\n"), pos):
            end = text.index(b"\n", pos) + 1
        else:
            found = [i for i in (text.find(b"\n\\.\n", pos), text.find(b"\n\\.\r\n", pos))
                     if i >= 0]
            if not found:
                self.line += text.count(b"\n", pos)
                out += text[pos:]
                return len(text)
            end = text.index(b"\n", min(found) + 1) + 1
        self.line += text.count(b"\n", pos, end)
        out += text[pos:end]
        self._state = "normal"
        return end

    def _line(self, line: bytes) -> None:
        pos = 0
        while pos < len(line):
            state = self._state
            if state == "normal":
                pos = self._normal(line, pos)
            elif state == "comment":
                pos = self._block_comment(line, pos)
            elif state == "string":
                pos = self._string(line, pos, b"'")
            elif state == "identifier":
                pos = self._string(line, pos, b'"')
            elif state == "dollar quote":
                found = line.find(self._dollar, pos)
                if found < 0:
                    return
                pos = found + len(self._dollar)
                self._state = "normal"
            else:  # "copy": the rest of the COPY statement's line is blank; data follows
                return

    def _normal(self, line: bytes, pos: int) -> int:
        match = _TOKEN.search(line, pos)
        end = match.start() if match else len(line)
        self._text(line[pos:end])
        if match is None:
            return len(line)
        token = match.group()
        after = match.end()
        if token == b"--":
            self._text(b" ")
            return len(line)  # the rest of the line is a comment
        if token == b"/*":
            self._state, self._depth = "comment", 1
        elif token == b"\\":
            command = line[match.start():].split()[0].decode(errors="replace")
            self._refuse(f"psql meta-command {command} (a backup must not run psql commands)")
        elif token == b";":
            if self._parens == 0 and self._begins == 0:
                self._statement_end(line, after)
            else:
                self._text(b";")
        elif token in (b"(", b")"):
            self._parens = max(0, self._parens + (1 if token == b"(" else -1))
            self._text(token)
        elif token == b'"':
            self._state = "identifier"
            self._text(b'"x"')
        elif token.startswith(b"$"):
            self._state, self._dollar = "dollar quote", token
            self._text(b"$x$")
        else:  # ' or E' / U&'
            self._escapes = token[:1] in (b"E", b"e") or not self._standard_strings
            self._state = "string"
            self._text(b"'x'")
        return after

    def _string(self, line: bytes, pos: int, quote: bytes) -> int:
        while True:
            found = line.find(quote, pos)
            backslash = line.find(b"\\", pos) if self._escapes and quote == b"'" else -1
            if 0 <= backslash < (found if found >= 0 else len(line)):
                pos = backslash + 2
                continue
            if found < 0:
                return len(line)
            if line[found + 1:found + 2] == quote:
                pos = found + 2
                continue
            self._state = "normal"
            return found + 1

    def _block_comment(self, line: bytes, pos: int) -> int:
        while self._depth:
            opening, closing = line.find(b"/*", pos), line.find(b"*/", pos)
            if closing < 0 and opening < 0:
                return len(line)
            if 0 <= opening < closing or closing < 0:
                self._depth += 1
                pos = opening + 2
            else:
                self._depth -= 1
                pos = closing + 2
        self._state = "normal"
        self._text(b" ")
        return pos

    def _text(self, text: bytes) -> None:
        if not text:
            return
        if text.strip():
            self._in_statement = True
        if len(self._head) < HEAD_BYTES:
            self._head += text[:HEAD_BYTES]
        if _ROUTINE.match(self._words()):
            for word in _WORD.findall(text.upper()):
                if word in (b"BEGIN", b"CASE"):
                    self._begins += 1
                elif word == b"END" and self._begins:
                    self._begins -= 1

    def _words(self) -> str:
        return " ".join(self._head.decode("utf-8", "replace").upper().split())

    def _statement_end(self, line: bytes, after: int) -> None:
        words = self._words()
        self._head.clear()
        self._in_statement = False
        self._parens = self._begins = 0
        for pattern, why in FORBIDDEN:
            if pattern.search(words):
                self._refuse(f"{why}: {words[:80]}")
        if re.match(r"^SET STANDARD_CONFORMING_STRINGS\s*(=|TO)\s*'?OFF", words):
            self._standard_strings = False
        elif re.match(r"^SET STANDARD_CONFORMING_STRINGS\s*(=|TO)\s*'?ON", words):
            self._standard_strings = True
        if _COPY_FROM_STDIN.search(words):
            if line[after:].strip():
                self._refuse("text after a COPY ... FROM stdin statement on its line")
            self._state = "copy"


# Everything outside the scratch database a statement could change, readable by any role. Run
# in the scratch database (current_database()) before the load and as its last statement.
CLUSTER_DIGEST = """
SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM (
  SELECT format('db %s %s %s %s %s %s %s', d.oid, d.datname, d.datdba, d.datallowconn,
                d.datconnlimit, d.datacl, d.datistemplate)
    FROM pg_catalog.pg_database d WHERE d.datname <> current_database()
  UNION ALL
  SELECT format('role %s %s %s %s %s %s %s %s %s %s %s', oid, rolname, rolsuper, rolinherit,
                rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
                rolconnlimit, rolvaliduntil) FROM pg_catalog.pg_roles
  UNION ALL
  SELECT format('member %s %s %s %s', roleid, member, grantor, admin_option)
    FROM pg_catalog.pg_auth_members
  UNION ALL
  SELECT format('setting %s %s %s', s.setdatabase, s.setrole, s.setconfig)
    FROM pg_catalog.pg_db_role_setting s
   WHERE s.setdatabase NOT IN (SELECT oid FROM pg_catalog.pg_database
                                WHERE datname = current_database())
  UNION ALL
  SELECT format('tablespace %s %s %s %s %s', oid, spcname, spcowner, spcacl, spcoptions)
    FROM pg_catalog.pg_tablespace
  UNION ALL
  SELECT format('shared comment %s %s %s', objoid, classoid, description)
    FROM pg_catalog.pg_shdescription
   WHERE objoid NOT IN (SELECT oid FROM pg_catalog.pg_database
                         WHERE datname = current_database())
) AS s(x)
"""


GUARD_MESSAGE = "changed the cluster outside its own database"


def cluster_digest(target_url: str) -> str:
    with psycopg.connect(target_url, autocommit=True) as conn:
        row = conn.execute(CLUSTER_DIGEST).fetchone()
        assert row is not None
        return text(row[0])


def guard_statement(digest: str) -> bytes:
    """The load's last statement: abort the transaction if anything outside the scratch
    database changed."""
    tag = "caresync_guard_" + secrets.token_hex(8)
    return (f"\n;\nDO ${tag}$ BEGIN IF ({CLUSTER_DIGEST}) IS DISTINCT FROM '{digest}' THEN "
            f"RAISE EXCEPTION 'the plain SQL backup {GUARD_MESSAGE}'; "
            f"END IF; END ${tag}$;\n").encode()


def load_plain(chunks: Iterator[bytes], target_url: str, *, bin_dir: Path | None = None,
               pgoptions: str = "") -> None:
    """Load plain SQL into ``target_url`` (the empty scratch database) with psql, one
    transaction, as described above; :class:`UnsafeSqlError` or :class:`BackupError` (psql's
    message) on failure, with nothing committed."""
    digest = cluster_digest(target_url)
    dsn, env = client_command(target_url)
    if pgoptions:
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + pgoptions).strip()
    scanner = SqlScanner()
    argv = [pg_tool("psql", bin_dir), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "--single-transaction", "-f", "-", "--dbname", dsn]
    with tempfile.TemporaryFile() as errors:
        proc = start_tool(argv, env=env, stdin=subprocess.PIPE, stderr=errors)
        assert proc.stdin is not None
        try:
            try:
                proc.stdin.write(f"\\restrict {secrets.token_hex(16)}\n".encode())
                for chunk in chunks:
                    proc.stdin.write(scanner.feed(chunk))
                proc.stdin.write(scanner.close())
                proc.stdin.write(guard_statement(digest))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # psql stopped at an error: its message says which
            code = proc.wait()
        except BaseException:
            proc.kill()  # the transaction was never committed
            proc.wait()
            raise
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if code != 0:
        if GUARD_MESSAGE in message:
            raise UnsafeSqlError(f"plain SQL backup refused: it {GUARD_MESSAGE} (other "
                                 "databases, roles, settings or tablespaces); the load was "
                                 "rolled back")
        raise BackupError(f"psql failed (exit {code}), nothing was committed: "
                          f"{message[-2000:]}")
    log.info("plain SQL loaded (%d lines) in one transaction", scanner.line - 1)
