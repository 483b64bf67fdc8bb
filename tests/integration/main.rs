//! Integration tests: a real tautan server in-process, real PostgreSQL and
//! MariaDB (loaded by `sql/load.sh`), real clients (tokio-postgres, psql,
//! the `tautan` binary).

mod admission;
mod audit;
mod budget;
mod clients;
mod common;
mod differential;
mod e2e;
mod faults;
mod files;
mod flight;
mod fuzz;
mod grants;
mod http;
mod http_links;
mod injection;
mod limits;
mod links;
mod metadata;
mod policy;
mod pulls;
mod pushdown;
mod readonly;
mod recorded;
mod robustness;
mod soak;
mod sqlserver;
mod types;
mod wire;
