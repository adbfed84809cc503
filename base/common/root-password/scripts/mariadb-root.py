"""Set a rotated MariaDB root password on the running server (idempotent).

Runs in the Job mariadb-root-password (kolla-toolbox image, stage db):
    /var/lib/kolla/venv/bin/python3 /scripts/mariadb-root.py

Environment:
    DB_HOST                 MariaDB host name (required)
    DB_PORT                 port (default 3306)
    NEW_ROOT_PASSWORD       the new root password (mariadb-secrets/root-password)
    PREVIOUS_ROOT_PASSWORD  the one the server has now (mariadb-secrets/
                            root-password-previous; may be absent on a re-run)
    DB_CONNECT_TIMEOUT      seconds to keep retrying an unreachable server (default 600)

MariaDB has one password per account, so the root password cannot be added
beside the old one: the Job signs in with the new password first (a re-run, or
a server that has it already) and otherwise with the previous one, then sets
the new password for every root account (root@'%', root@localhost, ...).
Refused by both is an error that says so. Only account names are printed, never
a password, and MySQL error messages of statements that carry one are not shown.
"""
import os
import sys
import time

import pymysql

ACCESS_DENIED = 1045


def fail(message):
    print(f"mariadb-root: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def log(message):
    print(f"mariadb-root: {message}", flush=True)


def try_connect(host, port, password):
    """A connection as root with ``password``, None if the server refuses it."""
    try:
        return pymysql.connect(host=host, port=port, user="root", password=password,
                               connect_timeout=10, autocommit=True, charset="utf8mb4")
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == ACCESS_DENIED:
            return None
        raise


def connect(host, port, candidates, deadline):
    """(connection, which) for the first password of ``candidates`` the server takes,
    retrying while the server cannot be reached."""
    attempt = 0
    while True:
        attempt += 1
        try:
            for which, password in candidates:
                conn = try_connect(host, port, password)
                if conn is not None:
                    return conn, which
            fail("the server refuses root with the new and with the previous password "
                 "(is mariadb-secrets/root-password-previous the password it has now?)")
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else "?"
            if time.monotonic() >= deadline:
                fail(f"could not connect to {host}:{port} (error {code}) "
                     f"after {attempt} attempts")
            log(f"waiting for {host}:{port} (error {code}, attempt {attempt})")
            time.sleep(min(5 * attempt, 15))


def main():
    host = os.environ.get("DB_HOST") or fail("environment variable DB_HOST is required")
    port = int(os.environ.get("DB_PORT", "3306"))
    new = os.environ.get("NEW_ROOT_PASSWORD") or fail("NEW_ROOT_PASSWORD is required")
    previous = os.environ.get("PREVIOUS_ROOT_PASSWORD", "")
    candidates = [("new", new)] + ([("previous", previous)] if previous else [])
    deadline = time.monotonic() + int(os.environ.get("DB_CONNECT_TIMEOUT", "600"))
    conn, which = connect(host, port, candidates, deadline)
    log(f"signed in as root with the {which} password")
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT user, host FROM mysql.user WHERE user = 'root'")
        for user, account_host in cursor.fetchall():
            try:
                cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, account_host, new))
            except pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args else "?"
                fail(f"setting the password of {user}@'{account_host}' failed "
                     f"(MySQL error {code})")
            log(f"{user}@'{account_host}' has the new password")
    if try_connect(host, port, new) is None:
        fail("the server still refuses the new password")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
