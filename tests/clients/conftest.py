"""Where the tautan server under test listens, and who logs in.

run.sh starts a server and exports TAUTAN_PORT; to run against a server of
your own: TAUTAN_PORT=6432 python3 -m pytest -q tests/clients
"""

import os
import time

import pytest

HOST = os.environ.get("TAUTAN_HOST", "127.0.0.1")
PORT = int(os.environ.get("TAUTAN_PORT", "6432"))
DATABASE = "tautan"  # [server] database in federation.toml

# Demo logins: the comment at the top of federation.toml.
USERS = {
    "walidata": "walidata-demo",  # reads everything
    "analis_dinkes": "dinkes-demo",  # kesehatan.*, ref.*, population aggregates + 4 penduduk columns
    "dinsos": "dinsos-demo",  # dinsos.*, ref.*
}


class Login:
    """One user's connection parameters, in the shapes the clients want."""

    def __init__(self, user, password=None):
        self.host = HOST
        self.port = PORT
        self.database = DATABASE
        self.user = user
        self.password = USERS[user] if password is None else password

    def libpq(self, **extra):
        """A libpq conninfo string (psycopg2, psycopg 3)."""
        params = dict(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=self.password,
            sslmode="disable",
            connect_timeout=10,
            application_name="tautan-client-tests",
        )
        params.update(extra)
        quote = lambda v: str(v).replace("\\", "\\\\").replace("'", "\\'")
        return " ".join(f"{k}='{quote(v)}'" for k, v in params.items())

    def url(self, driver="postgresql+psycopg2"):
        """An SQLAlchemy URL."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}?sslmode=disable"

    def asyncpg_kwargs(self):
        return dict(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            ssl=False,
        )


@pytest.fixture(scope="session")
def host():
    return HOST


@pytest.fixture(scope="session")
def port():
    return PORT


@pytest.fixture(scope="session")
def walidata():
    return Login("walidata")


@pytest.fixture(scope="session")
def dinkes():
    return Login("analis_dinkes")


@pytest.fixture(scope="session")
def dinsos():
    return Login("dinsos")


@pytest.fixture(scope="session")
def wrong_password():
    return Login("walidata", password="not-the-password")


@pytest.fixture(scope="session", autouse=True)
def links_up(walidata):
    """Fails early, with a hint, when the agency databases behind the links
    are not there (sql/load.sh not run): every test would fail otherwise,
    each with a less obvious error. Does nothing if the check itself cannot
    run; the tests will say why."""
    import psycopg2

    needed = {"kesehatan", "kependudukan"}
    deadline = time.monotonic() + 20
    status = {}
    while True:
        try:
            conn = psycopg2.connect(walidata.libpq())
        except psycopg2.Error:
            return
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT name, status FROM system.links")
                status = dict(cur.fetchall())
        except psycopg2.Error:
            return
        finally:
            conn.close()
        down = {n: status.get(n) for n in needed if status.get(n) != "up"}
        if not down:
            return
        if time.monotonic() > deadline:
            pytest.exit(
                f"links not up: {down} (load the demo databases: bash sql/load.sh)",
                returncode=1,
            )
        time.sleep(1)
