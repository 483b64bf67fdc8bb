//! What operations watch: Prometheus metrics of links, statements, pulls
//! and the audit log, served at `/metrics` by [`crate::server::ops`].
//!
//! Counters and histograms are updated as things happen (a statement ends,
//! a link's answer ends, a record is appended); gauges of state (links up,
//! pool use, pull freshness, checkpoint age) are read when scraped. Source
//! query latency follows OpenTelemetry's database naming where it fits:
//! `db_client_operation_duration_seconds` with `db_system_name` and
//! `db_namespace` (the link).
//!
//! Labels carry configured names only (users, links, pulls, SQLSTATEs),
//! never a value from a query, so the series stay few.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use tautan_connector::sent::LinkRun;

/// Label pairs.
type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// One state read at scrape time (see [`Metrics::render`]).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Per link: kind, up, connections in use, statements queued, pool size.
    pub links: Vec<LinkGauge>,
    /// Per pull: seconds since its snapshot was made (None: no snapshot),
    /// and whether its last run failed.
    pub pulls: Vec<(String, Option<f64>, bool)>,
    /// Seconds since the audit log's latest signed checkpoint (None: log
    /// off or no checkpoint yet), and its durable record count.
    pub audit: Option<(Option<f64>, u64)>,
}

/// A link's state at scrape time.
#[derive(Debug, Clone, Default)]
pub struct LinkGauge {
    /// The link's name.
    pub name: String,
    /// `postgres`, `mysql`, `files`.
    pub kind: String,
    /// Whether its last contact succeeded.
    pub up: bool,
    /// Connections in use and statements waiting for one (pooled links).
    pub pool: Option<(usize, usize)>,
}

/// The metrics of one engine.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    statements: Family<Labels, Counter>,
    denials: Family<Labels, Counter>,
    logins: Family<Labels, Counter>,
    link_duration: Histograms,
    link_statements: Family<Labels, Counter>,
    link_rows: Family<Labels, Counter>,
    link_bytes: Family<Labels, Counter>,
    audit_append: Histogram,
    link_up: Family<Labels, Gauge>,
    pool_in_use: Family<Labels, Gauge>,
    pool_queued: Family<Labels, Gauge>,
    pull_age: Family<Labels, FloatGauge>,
    pull_failing: Family<Labels, Gauge>,
    audit_checkpoint_age: FloatGauge,
    audit_records: Gauge,
    /// Link name → `db_system_name` (OpenTelemetry's names).
    systems: BTreeMap<String, &'static str>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(BTreeMap::new())
    }
}

impl Metrics {
    /// Metrics for links of these kinds (`postgres`, `mysql`, `files`).
    pub fn new(link_kinds: BTreeMap<String, String>) -> Self {
        let mut registry = Registry::with_prefix("tautan");
        let statements = Family::<Labels, Counter>::default();
        registry.register(
            "statements",
            "Statements that ran, by user and outcome (ok, error, cancelled, abandoned)",
            statements.clone(),
        );
        let denials = Family::<Labels, Counter>::default();
        registry.register(
            "denials",
            "Statements refused before anything ran, by user and SQLSTATE (42501 grants, 25006 writes)",
            denials.clone(),
        );
        let logins = Family::<Labels, Counter>::default();
        registry.register(
            "logins",
            "Logins by outcome (ok, wrong_password, unknown_user, too_many_connections)",
            logins.clone(),
        );
        let link_statements = Family::<Labels, Counter>::default();
        registry.register(
            "link_statements",
            "Statements sent to each link, by how their answer ended (ok, error, dropped)",
            link_statements.clone(),
        );
        let link_rows = Family::<Labels, Counter>::default();
        registry.register("link_rows", "Rows read from each link", link_rows.clone());
        let link_bytes = Family::<Labels, Counter>::default();
        registry.register_with_unit(
            "link_read",
            "Arrow bytes read from each link",
            Unit::Bytes,
            link_bytes.clone(),
        );
        let audit_append = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register_with_unit(
            "audit_append_duration",
            "Time from asking for an audit record to it being on disk (fsync, group commit)",
            Unit::Seconds,
            audit_append.clone(),
        );
        let link_up = Family::<Labels, Gauge>::default();
        registry.register(
            "link_up",
            "1 when the link's last contact succeeded",
            link_up.clone(),
        );
        let pool_in_use = Family::<Labels, Gauge>::default();
        registry.register(
            "link_pool_connections_in_use",
            "Source connections in use per link",
            pool_in_use.clone(),
        );
        let pool_queued = Family::<Labels, Gauge>::default();
        registry.register(
            "link_pool_statements_queued",
            "Statements waiting for a source connection per link",
            pool_queued.clone(),
        );
        let pull_age = Family::<Labels, FloatGauge>::default();
        registry.register_with_unit(
            "pull_snapshot_age",
            "Age of each pull's current snapshot",
            Unit::Seconds,
            pull_age.clone(),
        );
        let pull_failing = Family::<Labels, Gauge>::default();
        registry.register(
            "pull_failing",
            "1 when the pull's last run failed (its previous snapshot stays in use)",
            pull_failing.clone(),
        );
        let audit_checkpoint_age = FloatGauge::default();
        registry.register_with_unit(
            "audit_checkpoint_age",
            "Time since the audit log's latest signed checkpoint",
            Unit::Seconds,
            audit_checkpoint_age.clone(),
        );
        let audit_records = Gauge::default();
        registry.register(
            "audit_records",
            "Records durable in the audit log",
            audit_records.clone(),
        );
        // OpenTelemetry's semantic conventions name this histogram
        // `db.client.operation.duration`; outside the `tautan_` prefix.
        let link_duration: Histograms =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "db_client_operation_duration",
            "Duration of statements sent to links (db_namespace is the link), until their last row",
            Unit::Seconds,
            link_duration.clone(),
        );
        let systems = link_kinds
            .into_iter()
            .map(|(name, kind)| {
                let system = match kind.as_str() {
                    "postgres" => "postgresql",
                    "mysql" => "mysql",
                    "sqlserver" => "microsoft.sql_server",
                    _ => "other_sql",
                };
                (name, system)
            })
            .collect();
        Metrics {
            registry,
            statements,
            denials,
            logins,
            link_duration,
            link_statements,
            link_rows,
            link_bytes,
            audit_append,
            link_up,
            pool_in_use,
            pool_queued,
            pull_age,
            pull_failing,
            audit_checkpoint_age,
            audit_records,
            systems,
        }
    }

    /// A statement ended (`outcome`: ok, error, cancelled, abandoned), with
    /// what each link returned for it.
    pub fn statement(&self, user: &str, outcome: &str, runs: &[LinkRun]) {
        self.statements
            .get_or_create(&vec![
                ("user", user.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        for run in runs {
            let link = vec![("link", run.link.clone())];
            self.link_rows.get_or_create(&link).inc_by(run.rows);
            self.link_bytes.get_or_create(&link).inc_by(run.bytes);
            self.link_statements
                .get_or_create(&vec![
                    ("link", run.link.clone()),
                    ("outcome", run.outcome.to_string()),
                ])
                .inc();
            let system = self.systems.get(&run.link).copied().unwrap_or("other_sql");
            self.link_duration
                .get_or_create(&vec![
                    ("db_system_name", system.to_string()),
                    ("db_namespace", run.link.clone()),
                ])
                .observe(run.seconds);
        }
    }

    /// A statement refused before it ran.
    pub fn denied(&self, user: &str, sqlstate: &str) {
        self.denials
            .get_or_create(&vec![
                ("user", user.to_string()),
                ("sqlstate", sqlstate.to_string()),
            ])
            .inc();
    }

    /// A login, or a refused one (`outcome`).
    pub fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&vec![("outcome", outcome.replace(' ', "_"))])
            .inc();
    }

    /// One audit append took `seconds`.
    pub fn audit_appended(&self, seconds: f64) {
        self.audit_append.observe(seconds);
    }

    /// The Prometheus text exposition, with the gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        for link in &now.links {
            let name = vec![("link", link.name.clone()), ("kind", link.kind.clone())];
            self.link_up.get_or_create(&name).set(i64::from(link.up));
            if let Some((in_use, queued)) = link.pool {
                let l = vec![("link", link.name.clone())];
                self.pool_in_use
                    .get_or_create(&l)
                    .set(i64::try_from(in_use).unwrap_or(i64::MAX));
                self.pool_queued
                    .get_or_create(&l)
                    .set(i64::try_from(queued).unwrap_or(i64::MAX));
            }
        }
        for (pull, age, failing) in &now.pulls {
            let l = vec![("pull", pull.clone())];
            match age {
                Some(age) => {
                    self.pull_age.get_or_create(&l).set(*age);
                }
                None => {
                    self.pull_age.remove(&l);
                }
            }
            self.pull_failing.get_or_create(&l).set(i64::from(*failing));
        }
        if let Some((age, records)) = now.audit {
            self.audit_checkpoint_age.set(age.unwrap_or(f64::NAN));
            self.audit_records
                .set(i64::try_from(records).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_counts_for_its_user_and_each_link() {
        let m = Metrics::new([("pg".to_string(), "postgres".to_string())].into());
        let run = LinkRun {
            link: "pg".into(),
            rows: 10,
            bytes: 80,
            seconds: 0.004,
            outcome: "ok",
        };
        m.statement("walidata", "ok", &[run.clone(), run]);
        m.denied("analis", "42501");
        let text = m.render(&Snapshot::default());
        assert!(
            text.contains("tautan_statements_total{user=\"walidata\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tautan_link_rows_total{link=\"pg\"} 20"),
            "{text}"
        );
        assert!(
            text.contains("tautan_denials_total{user=\"analis\",sqlstate=\"42501\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tautan_db_client_operation_duration_seconds_count{db_system_name=\"postgresql\",db_namespace=\"pg\"} 2"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
