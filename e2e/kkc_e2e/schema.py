"""The schema of the site's databases as MariaDB reports it (tables, columns, indexes and
the migration tools' version rows), so that a Job's second run can be shown to change
nothing: a schema Job run again must find every migration applied."""

from __future__ import annotations

import os
import subprocess

SYSTEM = "('information_schema', 'mysql', 'performance_schema', 'sys')"
COLUMNS = (
    "SELECT 'column', table_schema, table_name, column_name, column_type, is_nullable, "
    "IFNULL(column_default, 'NULL') FROM information_schema.columns "
    f"WHERE table_schema NOT IN {SYSTEM} ORDER BY 2, 3, ordinal_position"
)
INDEXES = (
    "SELECT 'index', table_schema, table_name, index_name, seq_in_index, column_name, "
    f"non_unique FROM information_schema.statistics WHERE table_schema NOT IN {SYSTEM} "
    "ORDER BY 2, 3, 4, 5"
)
VERSION_TABLES = (
    "SELECT table_schema, table_name FROM information_schema.tables "
    f"WHERE table_schema NOT IN {SYSTEM} AND table_name IN ('alembic_version', "
    "'migrate_version') ORDER BY 1, 2"
)


def _query(sql: str, password: str) -> list[str] | None:
    done = subprocess.run(
        ["mariadb", "-h127.0.0.1", "-P3306", "-uroot", "--batch", "--skip-column-names"],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "MYSQL_PWD": password},  # never on a command line
    )
    return done.stdout.splitlines() if done.returncode == 0 else None


def snapshot(password: str) -> list[str] | None:
    """Every column, index and version row of the non-system databases, one line each;
    None when MariaDB does not answer."""
    tables = _query(VERSION_TABLES, password)
    if tables is None:
        return None
    column = {"alembic_version": "version_num", "migrate_version": "version"}
    versions = [
        f"SELECT 'version', '{db}', '{table}', {column[table]} FROM `{db}`.`{table}`;"
        for db, table in (line.split("\t") for line in tables)
    ]
    return _query(f"{COLUMNS};\n{INDEXES};\n" + "\n".join(versions), password)


def difference(before: list[str], after: list[str]) -> str:
    """'' when the two snapshots agree, else what changed (the first lines of each
    side), for the check's detail."""
    kept_before, kept_after = set(before), set(after)
    gone = [line for line in before if line not in kept_after]
    new = [line for line in after if line not in kept_before]
    if not gone and not new:
        return ""
    show = [f"- {line}" for line in gone[:3]] + [f"+ {line}" for line in new[:3]]
    return f"{len(gone)} lines gone, {len(new)} new: " + "; ".join(
        s.replace("\t", " ") for s in show
    )
