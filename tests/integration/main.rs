//! Integration tests: a real tautan server in-process, real PostgreSQL and
//! MariaDB (loaded by `sql/load.sh`), real clients (tokio-postgres, psql,
//! the `tautan` binary).

mod clients;
mod common;
mod e2e;
mod grants;
mod links;
mod pulls;
mod pushdown;
mod readonly;
mod types;
