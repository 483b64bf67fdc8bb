//! tautan: a read-only database-link federation engine.
//!
//! Each agency database is a read-only *link*; the custodian's reference
//! files are the `ref` schema; data users query them all with SQL over the
//! PostgreSQL wire protocol, under per-table grants checked before planning.
//!
//! A query flows one way through the modules:
//!
//! | step | module |
//! |---|---|
//! | configuration (`federation.toml`) | [`config`] |
//! | login (SCRAM-SHA-256; HTTP Basic, API tokens, OpenID Connect JWTs) | [`auth`], [`oidc`], [`server::postgres`], [`server::http`] |
//! | parse, refuse writes, bound nesting | [`statement`], [`limits`] |
//! | grant check on every table name, then on every column read | [`check`], [`grants`] |
//! | the catalog tree the user may see (granted columns only) | [`catalog`], [`columns`] |
//! | row filters, masks, the leak-proof barrier | [`policy`] |
//! | what PostgreSQL clients browse (`pg_catalog`) | [`pg_catalog`], [`client_queries`] |
//! | PostgreSQL's reading of quoted literals (bool, bytea, interval), `ANY` with NULLs | [`pg_input`], [`any_array`] |
//! | planning (DataFusion's simplifier kept NULL-safe; checked arithmetic, exact sums and numerics) | [`engine`], [`simplify`], [`overflow`], [`aggregates`], [`math`], [`numeric`], [`unbounded_numeric`], [`to_char`], [`date_part`] |
//! | whole sub-plans sent to one link | [`pushdown`], `tautan_connector::federation` |
//! | scan pushdown (projection, filters, limit) | `tautan_connector::pushdown` |
//! | source SQL sealed and guarded before it leaves | `tautan_connector::sql` |
//! | reading sources | `connectors/*` crates |
//! | memory budget, bounded functions, statement timeout | [`budget`] |
//! | streaming rows to the client, cancel | [`server::postgres`], [`server::cancel`] |
//! | scheduled snapshots served as `mat.*` | [`pulls`], [`export`] |
//! | tamper-evident audit log of every login and statement, `system.audit` | [`audit`] |
//! | Prometheus metrics and health for operations | [`metrics`], [`server::ops`] |

pub mod admission;
pub mod age;
pub mod aggregates;
pub mod any_array;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod catalog;
pub mod check;
pub mod client_queries;
pub mod columns;
pub mod config;
pub mod date_part;
pub mod engine;
pub mod error;
pub mod executor;
pub mod export;
pub mod grants;
pub mod html;
pub mod limits;
pub mod logins;
pub mod math;
pub mod metrics;
pub mod numeric;
pub mod oidc;
pub mod oids;
pub mod overflow;
pub mod pg_catalog;
pub mod pg_functions;
pub mod pg_input;
pub mod pg_text;
pub mod policy;
pub mod privileges;
pub mod pulls;
pub mod pushdown;
pub mod rewrite;
pub mod server;
pub mod simplify;
pub mod statement;
pub mod system;
pub mod to_char;
pub mod unbounded_numeric;

/// PostgreSQL version tautan presents itself as (for clients that check).
pub const SERVER_VERSION: &str = "16.0";

/// [`SERVER_VERSION`] as `server_version_num` reports it.
pub const SERVER_VERSION_NUM: &str = "160000";
