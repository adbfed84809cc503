"""Create OpenStack databases and their user in MariaDB (idempotent).

Runs in a Job from the kolla-toolbox image:
    /var/lib/kolla/venv/bin/python3 /scripts/db-init.py

Environment:
    DB_HOST            MariaDB host name (required)
    DB_PORT            port (default 3306)
    DB_ROOT_USER       admin user (default root)
    DB_ROOT_PASSWORD   admin password (required)
    DB_NAME            database name, or a comma-separated list (required)
    DB_USER            service user (required)
    DB_PASSWORD        service user password (required)
    DB_CONNECT_TIMEOUT seconds to keep retrying the connection (default 600)

Every run creates what is missing, resets the user's password (so rotating
the Secret and re-running the Job rotates the password) and re-applies the
grants. Only names are printed, never a password, and MySQL error messages
of statements that carry a password are not shown (they may quote the SQL).
"""
import os
import re
import sys
import time

import pymysql

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


def fail(message):
    print(f"db-init: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None or value == "":
        fail(f"environment variable {name} is required")
    return value


def identifier(kind, value, max_len):
    # Database names cannot be bound as query parameters: validate strictly
    # so that backtick quoting below is always safe.
    if not IDENTIFIER.match(value) or len(value) > max_len:
        fail(f"invalid {kind} name {value!r}: must match {IDENTIFIER.pattern} "
             f"and be at most {max_len} characters")
    return value


def connect(host, port, user, password, deadline):
    attempt = 0
    while True:
        attempt += 1
        try:
            return pymysql.connect(host=host, port=port, user=user,
                                   password=password, connect_timeout=10,
                                   autocommit=True, charset="utf8mb4")
        except pymysql.err.OperationalError as exc:
            # args[0] is the MySQL/client error number; no message is shown.
            code = exc.args[0] if exc.args else "?"
            if time.monotonic() >= deadline:
                fail(f"could not connect to {host}:{port} as {user} "
                     f"(error {code}) after {attempt} attempts")
            print(f"db-init: waiting for {host}:{port} (error {code}, "
                  f"attempt {attempt})", flush=True)
            time.sleep(min(5 * attempt, 15))


def execute_secret(cursor, what, sql, params):
    """Run a statement whose parameters include a password."""
    try:
        cursor.execute(sql, params)
    except pymysql.MySQLError as exc:
        code = exc.args[0] if exc.args else "?"
        raise SystemExit(f"db-init: error: {what} failed (MySQL error {code})") from None


def main():
    host = env("DB_HOST")
    port = int(env("DB_PORT", "3306"))
    root_user = env("DB_ROOT_USER", "root")
    root_password = env("DB_ROOT_PASSWORD")
    databases = [identifier("database", name.strip(), 64)
                 for name in env("DB_NAME").split(",") if name.strip()]
    user = identifier("user", env("DB_USER"), 80)
    password = env("DB_PASSWORD")
    timeout = int(env("DB_CONNECT_TIMEOUT", "600"))
    if not databases:
        fail("DB_NAME lists no database")
    if user == root_user:
        fail("DB_USER must not be the admin user")

    conn = connect(host, port, root_user, root_password,
                   time.monotonic() + timeout)
    with conn, conn.cursor() as cursor:
        for database in databases:
            # Character set and collation follow the server configuration.
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            print(f"db-init: database {database} present", flush=True)
        # User and password are bound parameters (quoted by the driver).
        execute_secret(cursor, f"creating user {user}",
                       "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s",
                       (user, password))
        execute_secret(cursor, f"setting the password of user {user}",
                       "ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
        print(f"db-init: user {user}@'%' present, password set", flush=True)
        for database in databases:
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'%%'",
                           (user,))
            print(f"db-init: granted ALL on {database}.* to {user}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
