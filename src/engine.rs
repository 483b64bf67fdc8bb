//! The federation engine: links registered from the config, and sessions
//! that run one user's statements through check → plan → execute.
//!
//! A statement goes through [`Session::prepare`]:
//!
//! 1. parse (PostgreSQL dialect);
//! 2. [`crate::statement::classify`]: writes refused (25006), session commands
//!    answered without touching any source;
//! 3. every table reference (CTEs, subqueries, UNION, joins) resolved and
//!    checked against the user's grants ([`crate::check`]) — invisible
//!    tables are 42P01 — and every link referenced made sure to be up
//!    (08001 otherwise);
//! 4. planned by DataFusion against the user's filtered catalog tree, then
//!    optimized (filters, projections and limits pushed into each
//!    [`RemoteTable`](tautan_connector::RemoteTable) scan);
//! 5. column grants checked on the optimized plan ([`crate::check`], 42501);
//!
//! and only then [`Session::execute`] runs it, streaming batches.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use datafusion::common::ParamValues;
use datafusion::common::TableReference;
use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use tautan_connector::{LinkRef, ScanOptions};
use tautan_mysql::{MySqlConfig, MySqlLink};
use tautan_postgres::{PostgresConfig, PostgresLink};

use crate::auth::ScramVerifier;
use crate::catalog::{
    load_folder, LinkEntry, LinkSource, Registry, TableMap, UserCatalogList, MAT_SCHEMA,
    PUBLIC_SCHEMA, REF_SCHEMA,
};
use crate::check::GrantCheck;
use crate::config::{secret, FederationConfig, LinkConfig};
use crate::error::QueryError;
use crate::grants::{display_name, Access, Grants, Identity};
use crate::statement::{classify, StatementKind};

/// How often links that are down are contacted again in the background.
const HEALTH_INTERVAL: Duration = Duration::from_secs(15);

/// The session setting for how many parts a large full scan is split into
/// (PostgreSQL page ranges on one snapshot; 1 turns splitting off).
pub const SCAN_PARTS_SETTING: &str = "tautan.scan_parts";
/// Parts per scan unless the session says otherwise: one per core of the
/// machine tautan was sized for, as DataFusion's `target_partitions`.
const DEFAULT_SCAN_PARTS: usize = 2;
/// The most parts a session may ask for.
const MAX_SCAN_PARTS: usize = 16;

/// The running federation.
#[derive(Debug)]
pub struct Engine {
    /// The config it was built from.
    pub config: Arc<FederationConfig>,
    /// Links and reference data.
    pub registry: Arc<Registry>,
    /// The policy in force: grants, agreements, attributes, the pseudonym
    /// key. Replaced whole by [`Engine::reload_policy`].
    grants: std::sync::RwLock<Arc<Grants>>,
    /// Who can log in, and with what: replaced whole by
    /// [`Engine::reload_policy`], so a changed password or token counts
    /// from the next login.
    logins: std::sync::RwLock<Arc<crate::logins::Logins>>,
    /// The identity provider whose JWTs log users in (`[http.oidc]`).
    oidc: Option<Arc<crate::oidc::SingleSignOn>>,
    /// Memory shared by every session, and spill space.
    pub budget: crate::budget::Budget,
    /// Connection and statement limits.
    pub admission: Arc<crate::admission::Admission>,
    /// The audit log every statement is recorded in (off without `[audit]`).
    trail: crate::audit::Trail,
}

/// What a link is built from, for telling whether a reload changed it
/// ([`LinkEntry::declaration`]):
/// its section and the folder relative paths are resolved from.
fn link_declaration(cfg: &LinkConfig, config: &FederationConfig) -> String {
    format!("{cfg:?} @ {}", config.base_dir.display())
}

/// Opens the audit log `[audit]` names (off without the section). Refuses
/// to start without the custodian's key, or with a log that does not
/// verify as far as opening checks it (see [`crate::audit::AuditLog::open`]).
fn open_trail(config: &FederationConfig) -> Result<crate::audit::Trail, String> {
    let defaults = crate::audit::cli::Defaults::of(config);
    let Some(audit) = &defaults.audit else {
        return Ok(crate::audit::Trail::off());
    };
    if let (true, Some(key)) = (audit.create_key, &audit.key) {
        if !key.exists() {
            if let Some(parent) = key.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("[audit] create_key: {}: {e}", parent.display()))?;
            }
            let made = crate::audit::keys::generate()
                .and_then(|k| crate::audit::keys::write_keypair(key, &k));
            match made {
                Ok(public) => {
                    tracing::warn!(key = %key.display(), public = %public.display(), "made a new audit signing key (create_key = true)")
                }
                Err(e) => return Err(format!("[audit] create_key: {e}")),
            }
        }
    }
    let opened = defaults
        .options(None)
        .and_then(|options| crate::audit::AuditLog::open(&audit.dir, options));
    match opened {
        Ok(log) => {
            let recovery = log.recovery();
            tracing::info!(dir = %audit.dir.display(), last = recovery.last_seq, "audit log open");
            Ok(crate::audit::Trail::new(Arc::new(log)))
        }
        Err(e) => Err(format!(
            "[audit]: {e} (tautan does not run statements it cannot record)"
        )),
    }
}

/// The registry's entry for link `name` as `cfg` declares it (not yet
/// contacted).
fn link_entry(name: &str, cfg: &LinkConfig, config: &FederationConfig) -> Arc<LinkEntry> {
    Arc::new(
        LinkEntry::new(
            name.to_string(),
            cfg.kind(),
            cfg.description().map(String::from),
            build_link(name, cfg, config),
            cfg.connect_timeout(),
        )
        // Validated when the config was loaded.
        .with_labels(
            crate::policy::labels::Classification::from_config(&cfg.labels()).unwrap_or_default(),
        )
        .with_declaration(link_declaration(cfg, config)),
    )
}

fn build_link(name: &str, cfg: &LinkConfig, base: &FederationConfig) -> LinkSource {
    let result: Result<LinkSource, String> = (|| match cfg {
        LinkConfig::Postgres {
            host,
            port,
            database,
            user,
            password,
            password_env,
            schemas,
            pool_size,
            ..
        } => {
            let password = secret(password, password_env)?;
            let link = PostgresLink::new(
                name,
                PostgresConfig {
                    host: host.clone(),
                    port: *port,
                    database: database.clone(),
                    user: user.clone(),
                    password,
                    schemas: schemas.clone(),
                    pool_size: *pool_size,
                    connect_timeout: cfg.connect_timeout(),
                    limits: cfg.limits(),
                },
            )
            .map_err(|e| e.to_string())?;
            Ok(LinkSource::Remote(Arc::new(link) as LinkRef))
        }
        LinkConfig::Mysql {
            host,
            port,
            user,
            password,
            password_env,
            databases,
            pool_size,
            ..
        } => {
            let password = secret(password, password_env)?;
            let link = MySqlLink::new(
                name,
                MySqlConfig {
                    host: host.clone(),
                    port: *port,
                    user: user.clone(),
                    password,
                    databases: databases.clone(),
                    pool_size: *pool_size,
                    connect_timeout: cfg.connect_timeout(),
                    limits: cfg.limits(),
                },
            )
            .map_err(|e| e.to_string())?;
            Ok(LinkSource::Remote(Arc::new(link) as LinkRef))
        }
        LinkConfig::Http {
            base_url,
            headers,
            headers_env,
            timeout_ms,
            retries,
            max_pages,
            max_bytes,
            requests_per_second,
            tables,
            ..
        } => {
            let mut all: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (header, var) in headers_env {
                let value = std::env::var(var).map_err(|_| {
                    format!("environment variable {var} (header {header}) is not set")
                })?;
                all.push((header.clone(), value));
            }
            let link = tautan_http::HttpLink::new(
                name,
                tautan_http::HttpLinkOptions {
                    base_url: base_url.clone(),
                    headers: all,
                    timeout: std::time::Duration::from_millis(*timeout_ms),
                    retries: *retries,
                    max_pages: *max_pages,
                    max_bytes: *max_bytes,
                    requests_per_second: *requests_per_second,
                },
            )
            .map_err(|e| e.message)?;
            Ok(LinkSource::Http {
                link: Arc::new(link),
                tables: tables.clone(),
            })
        }
        LinkConfig::Sqlserver {
            host,
            port,
            database,
            user,
            password,
            password_env,
            schemas,
            encrypt,
            trust_cert_ca,
            hostname_in_certificate,
            pool_size,
            ..
        } => {
            if let Some(problem) = cfg.sqlserver_problem() {
                return Err(problem);
            }
            let password = secret(password, password_env)?;
            let link = tautan_sqlserver::SqlServerLink::new(
                name,
                tautan_sqlserver::SqlServerConfig {
                    host: host.clone(),
                    port: *port,
                    database: database.clone(),
                    user: user.clone(),
                    password,
                    schemas: schemas.clone(),
                    encrypt: tautan_sqlserver::Encrypt::parse(encrypt)?,
                    trust_cert_ca: trust_cert_ca.as_deref().map(|p| base.resolve_path(p)),
                    hostname_in_certificate: hostname_in_certificate.clone(),
                    pool_size: *pool_size,
                    connect_timeout: cfg.connect_timeout(),
                    limits: cfg.limits(),
                },
            )
            .map_err(|e| e.to_string())?;
            Ok(LinkSource::Remote(Arc::new(link) as LinkRef))
        }
        LinkConfig::Files { path, .. } => Ok(LinkSource::Files(base.resolve_path(path))),
    })();
    result.unwrap_or_else(LinkSource::Broken)
}

impl Engine {
    /// Builds the engine from a config and contacts every link once. Links
    /// that fail are marked down; startup never fails because of a source.
    /// With `[audit]` in the config, the audit log is opened (and the
    /// engine does not start when it cannot be): every login and statement
    /// is recorded there.
    pub async fn start(config: FederationConfig) -> Result<Arc<Engine>, String> {
        let trail = open_trail(&config)?;
        Self::start_recording(config, trail).await
    }

    /// [`Engine::start`] without opening the audit log, for what runs no
    /// statement of a user's (`tautan check`, which must work while the
    /// server holds the log).
    pub async fn start_unrecorded(config: FederationConfig) -> Result<Arc<Engine>, String> {
        Self::start_recording(config, crate::audit::Trail::off()).await
    }

    /// [`Engine::start`] recording to `trail` whatever `[audit]` says (for
    /// embedders, and tests that need a log opened with their own options).
    pub async fn start_recording(
        config: FederationConfig,
        trail: crate::audit::Trail,
    ) -> Result<Arc<Engine>, String> {
        let links = config
            .links
            .iter()
            .map(|(name, link)| (name.clone(), link_entry(name, link.get_ref(), &config)))
            .collect();
        let reference = match &config.reference {
            Some(r) => {
                let path = config.resolve_path(&r.path);
                load_folder(&path)
                    .await
                    .map_err(|e| format!("reference data in {}: {e}", path.display()))?
            }
            None => TableMap::new(),
        };
        let registry = Arc::new(Registry::new(
            config.server.database.clone(),
            links,
            reference,
            Arc::new(crate::pulls::Pulls::from_config(&config)),
            trail.log().map(|l| l.dir().to_path_buf()),
        ));
        registry.refresh_all().await;

        let logins = std::sync::RwLock::new(Arc::new(crate::logins::Logins::from_config(&config)));
        let config = Arc::new(config);
        let grants = std::sync::RwLock::new(Arc::new(Grants::from_config(config.clone(), 1)?));
        let kinds = config
            .links
            .iter()
            .map(|(name, l)| (name.clone(), l.get_ref().kind().to_string()))
            .collect();
        let trail = trail.with_metrics(Arc::new(crate::metrics::Metrics::new(kinds)));
        let budget = crate::budget::Budget::new(&config.server)
            .map_err(|e| format!("[server] memory and spill settings: {e}"))?;
        let admission = Arc::new(crate::admission::Admission::new(&config));
        let oidc = match config.http.as_ref().and_then(|h| h.oidc.as_ref()) {
            Some(o) => {
                let sso = crate::oidc::SingleSignOn::start(o, &config.base_dir).await?;
                // Ends by itself when the engine (the last holder) is gone.
                let _ = sso.spawn_refresh();
                Some(sso)
            }
            None => None,
        };
        let engine = Arc::new(Engine {
            config,
            registry,
            grants,
            logins,
            oidc,
            budget,
            admission,
            trail,
        });
        engine.check_pull_owners().await?;
        Ok(engine)
    }

    /// Checks every pull's query against the grants of its owner role, so
    /// a pull cannot publish what its owner may not read. A pull whose
    /// link is down now is checked when it runs.
    async fn check_pull_owners(self: &Arc<Self>) -> Result<(), String> {
        for def in self.registry.pulls.defs() {
            let checked = self.pull_session(def).prepare_query(&def.config.sql).await;
            match checked {
                Ok(_) => {}
                Err(e) if e.code.starts_with("42") || e.code == "25006" || e.code == "0A000" => {
                    let message = format!(
                        "the query of pull `{}` fails for its owner role `{}`: {e}",
                        def.name, def.config.owner
                    );
                    return Err(self.config.pull_error(&def.name, message).to_string());
                }
                Err(e) => {
                    tracing::warn!(pull = %def.name, error = %e, "pull query not checked now (source unavailable); checked again when it runs")
                }
            }
        }
        Ok(())
    }

    /// Plans `SELECT * FROM t` (reading nothing) for every user and every
    /// table they read under a row filter or masks, so a filter naming a
    /// column the table lacks, or a mask that does not fit the column's
    /// type, is reported by `tautan check` rather than at a user's first
    /// query. Returns one line per problem.
    pub async fn check_policies(self: &Arc<Self>) -> Vec<String> {
        let mut tables: Vec<Vec<String>> = Vec::new();
        for (link, entry) in self.registry.links().iter() {
            for (schema, names) in entry.state().schemas.iter() {
                for table in names.keys() {
                    tables.push(vec![link.clone(), schema.clone(), table.clone()]);
                }
            }
        }
        if let Ok(reference) = self.registry.reference.read() {
            for table in reference.keys() {
                tables.push(vec![crate::catalog::REF_SCHEMA.to_string(), table.clone()]);
            }
        }
        let mut problems = Vec::new();
        for user in self.config.users.keys() {
            let access = self.grants().access(user);
            let policed: Vec<&Vec<String>> = tables
                .iter()
                .filter(|t| access.policy(t).is_some())
                .collect();
            if policed.is_empty() {
                continue;
            }
            let session = self.session(user);
            for name in policed {
                let quoted: Vec<String> = name
                    .iter()
                    .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
                    .collect();
                // Physical planning builds the scan (and parses the row
                // filter); nothing is executed.
                let sql = format!("SELECT * FROM {}", quoted.join("."));
                let planned = async {
                    let query = session.prepare_query(&sql).await?;
                    let df = session.dataframe(query.plan).await?;
                    df.create_physical_plan().await?;
                    Ok::<_, QueryError>(())
                };
                if let Err(e) = planned.await {
                    problems.push(format!(
                        "user {user}, table {}: {}",
                        display_name(name),
                        e.message
                    ));
                }
            }
        }
        problems
    }

    /// The session a pull runs in: the grants of its owner role.
    pub fn pull_session(self: &Arc<Self>, def: &crate::pulls::PullDef) -> Session {
        let access = self.grants().for_roles(
            &format!("pull:{}", def.name),
            std::slice::from_ref(&def.config.owner),
        );
        let session = self.session_with(access);
        session.set_origin(crate::audit::Origin::new(
            format!("pull:{}", def.name),
            None,
        ));
        session
    }

    /// The access of someone holding `roles` (for tools and pulls).
    pub fn access_for_roles(&self, user: &str, roles: &[String]) -> Access {
        self.grants().for_roles(user, roles)
    }

    /// Every agreement with its standing, in the policy in force.
    pub fn agreements(&self) -> Arc<Vec<crate::policy::agreement::Agreement>> {
        self.grants().agreements().clone()
    }

    /// The policy in force now.
    pub fn grants(&self) -> Arc<Grants> {
        match self.grants.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the config file and the agreements again and, when they are
    /// valid, makes them the policy in force: grants, users' roles,
    /// attributes, passwords and tokens, agreements, the pseudonym key —
    /// and the links: added, changed (rebuilt) and removed ones, unchanged
    /// ones kept with their pools. Sessions take the new policy and links
    /// at their next statement; a statement runs to its end under the ones
    /// it started with. `[server]`, `[http]`, `[audit]`, `[reference]` and
    /// the pulls stay as they were started (a restart changes those). An
    /// invalid config keeps everything in force; the error says why.
    pub fn reload_policy(&self) -> Result<crate::grants::PolicyVersion, String> {
        let number = self.grants().version().number + 1;
        let config = FederationConfig::load(&self.config.path).map_err(|e| e.to_string())?;
        let logins = Arc::new(crate::logins::Logins::from_config(&config));
        let links = self.reconcile_links(&config);
        let grants = Grants::from_config(Arc::new(config), number)?;
        let version = grants.version().clone();
        if let Some((links, changes)) = links {
            self.registry.replace_links(links);
            for change in changes {
                tracing::info!(link = %change.0, change = change.1, "link reloaded");
            }
        }
        match self.grants.write() {
            Ok(mut g) => *g = Arc::new(grants),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(grants),
        }
        match self.logins.write() {
            Ok(mut l) => *l = logins,
            Err(poisoned) => *poisoned.into_inner() = logins,
        }
        tracing::info!(version = number, "policy reloaded");
        Ok(version)
    }

    /// The links `config` declares: the entries of unchanged links kept
    /// (their pools, state and sessions go on), added and changed ones new
    /// (contacted when first used, or by the health checks), removed ones
    /// gone; with what changed. `None` when nothing did.
    fn reconcile_links(
        &self,
        config: &FederationConfig,
    ) -> Option<(crate::catalog::LinkMap, Vec<(String, &'static str)>)> {
        let current = self.registry.links();
        let mut links = crate::catalog::LinkMap::new();
        let mut changes = Vec::new();
        for (name, link) in &config.links {
            let cfg = link.get_ref();
            let entry = match current.get(name) {
                Some(entry) if entry.declaration() == link_declaration(cfg, config) => {
                    entry.clone()
                }
                was => {
                    changes.push((
                        name.clone(),
                        if was.is_some() { "changed" } else { "added" },
                    ));
                    link_entry(name, cfg, config)
                }
            };
            links.insert(name.clone(), entry);
        }
        for name in current.keys().filter(|n| !config.links.contains_key(*n)) {
            changes.push((name.clone(), "removed"));
        }
        (!changes.is_empty()).then_some((links, changes))
    }

    /// Reloads the policy whenever the config file or a file of the
    /// agreements folder changes (checked every `every`), and on SIGHUP.
    pub fn spawn_policy_reload(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let fingerprint = |e: &Engine| {
                let mut paths = vec![e.config.path.clone()];
                if let Some(dir) = &e.config.policy.agreements_dir {
                    paths.push(e.config.base_dir.join(dir));
                }
                crate::policy::watch::fingerprint(&paths)
            };
            let mut seen = match engine.upgrade() {
                Some(e) => fingerprint(&e),
                None => return,
            };
            let mut hangup = crate::policy::watch::hangups();
            loop {
                let signalled = tokio::select! {
                    _ = tokio::time::sleep(every) => false,
                    _ = hangup.recv() => true,
                };
                let Some(e) = engine.upgrade() else { return };
                let now = fingerprint(&e);
                if signalled || now != seen {
                    seen = now;
                    // Reading and verifying every agreement is file I/O and
                    // signature checks: off the async workers.
                    let reloaded = tokio::task::spawn_blocking(move || e.reload_policy()).await;
                    match reloaded {
                        Ok(Ok(_)) => {}
                        Ok(Err(why)) => {
                            tracing::warn!(error = %why, "policy not reloaded; the previous one stays in force")
                        }
                        Err(e) => tracing::warn!(error = %e, "policy reload did not finish"),
                    }
                }
            }
        })
    }

    /// Loads `path` and starts the engine.
    pub async fn from_file(path: &Path) -> Result<Arc<Engine>, String> {
        let config = FederationConfig::load(path).map_err(|e| e.to_string())?;
        Self::start(config).await
    }

    /// The audit log's handle (off without `[audit]`), and the metrics.
    pub fn trail(&self) -> &crate::audit::Trail {
        &self.trail
    }

    /// The state operations watch, read now: links, pools, pulls, the
    /// audit log (for `/metrics`).
    pub fn metrics_snapshot(&self) -> crate::metrics::Snapshot {
        let links = self
            .registry
            .links()
            .iter()
            .map(|(name, entry)| crate::metrics::LinkGauge {
                name: name.clone(),
                kind: entry.kind.to_string(),
                up: entry.state().status == crate::catalog::LinkStatus::Up,
                pool: entry
                    .remote()
                    .and_then(|l| l.health())
                    .map(|h| (h.in_use(), h.queued())),
            })
            .collect();
        let now_us = crate::pulls::store::now_us();
        let pulls = self
            .registry
            .pulls
            .names()
            .into_iter()
            .map(|name| {
                let dir = self.registry.pulls.dir(&name);
                let age = dir
                    .current()
                    .map(|c| (now_us - c.created_us).max(0) as f64 / 1e6);
                let failing = dir
                    .status()
                    .is_some_and(|s| s.state == crate::pulls::store::RunState::Failed);
                (name, age, failing)
            })
            .collect();
        let audit = self.trail.log().map(|log| {
            let age = log
                .last_checkpoint_ts()
                .and_then(|ts| {
                    datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(&ts)
                        .ok()
                })
                .map(|ns| (now_us - ns / 1000).max(0) as f64 / 1e6);
            (age, log.durable_seq())
        });
        crate::metrics::Snapshot {
            links,
            pulls,
            audit,
        }
    }

    /// Re-contacts links that are down, forever, every few seconds.
    pub fn spawn_health_checks(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let registry = self.registry.clone();
        let trail = self.trail.clone();
        tokio::spawn(async move {
            // Each link's status as last recorded (the startup record holds
            // the first); a change is recorded at the next tick.
            let mut recorded: BTreeMap<String, crate::catalog::LinkStatus> = registry
                .links()
                .iter()
                .map(|(name, l)| (name.clone(), l.state().status))
                .collect();
            loop {
                tokio::time::sleep(HEALTH_INTERVAL).await;
                // (The links now: a reload may have added or removed some.)
                let links = registry.links();
                for link in links.values() {
                    if link.state().status != crate::catalog::LinkStatus::Up {
                        link.refresh().await;
                    }
                }
                for (name, link) in links.iter() {
                    let state = link.state();
                    if recorded.get(name) != Some(&state.status) {
                        trail
                            .link_changed(name, state.status.as_str(), state.error.as_deref())
                            .await;
                        recorded.insert(name.clone(), state.status);
                    }
                }
            }
        })
    }

    /// The verifier of `user`, if the user exists and can log in.
    pub fn verifier(&self, user: &str) -> Option<ScramVerifier> {
        self.logins().verifier(user)
    }

    /// The user an API token belongs to (the token as the client sent it).
    pub fn token_user(&self, token: &str) -> Option<String> {
        self.logins().token_user(token)
    }

    /// Who can log in now.
    fn logins(&self) -> Arc<crate::logins::Logins> {
        match self.logins.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether single sign-on tokens log users in (`[http.oidc]`): then a
    /// PostgreSQL login over TLS takes the password in clear, so that it can
    /// be a token.
    pub fn single_sign_on(&self) -> bool {
        self.oidc.is_some()
    }

    /// Who a single sign-on token (a JWT of `[http.oidc]`) says its bearer
    /// is, once it is verified and the user exists here (or, with
    /// `users_from_claims`, its claims give a role); why not otherwise.
    pub async fn jwt_identity(&self, token: &str) -> Result<Identity, String> {
        let oidc = self
            .oidc
            .as_ref()
            .ok_or_else(|| "single sign-on is not configured ([http.oidc])".to_string())?;
        let identity = oidc.identity(token).await?;
        if self.logins().knows(&identity.user)
            || (oidc.users_from_claims() && !identity.roles.is_empty())
        {
            Ok(identity)
        } else {
            Err(format!(
                "`{}` is not a user of this federation",
                identity.user
            ))
        }
    }

    /// A session for a single sign-on login ([`Grants::for_identity`]).
    pub fn session_as(self: &Arc<Self>, identity: &Identity) -> Session {
        self.session_with(self.grants().for_identity(identity))
    }

    /// What a login as `user` is checked against: the user's verifier, or
    /// for a user that does not exist (or cannot log in) a mock one with a
    /// stable salt ([`ScramVerifier::mock`]). `true` when it is real.
    pub fn login_verifier(&self, user: &str) -> (ScramVerifier, bool) {
        self.logins().login_verifier(user)
    }

    /// A session for an authenticated user.
    pub fn session(self: &Arc<Self>, user: &str) -> Session {
        self.session_with(self.grants().access(user))
    }

    /// A session reading with `access`.
    pub fn session_with(self: &Arc<Self>, access: Access) -> Session {
        let access = Arc::new(crate::grants::AccessCell::new(access));
        let user = access.get().user.clone();
        let scan = Arc::new(ScanOptions::new(DEFAULT_SCAN_PARTS));
        let mut config = SessionConfig::new();
        // `timestamptz` values DataFusion makes itself (`now()`,
        // `TIMESTAMPTZ '…'`, `::timestamptz`) carry a zone, as columns of
        // that type from links do, so they are written in the session's
        // TimeZone like them.
        config.options_mut().execution.time_zone = Some("+00:00".to_string());
        // `0.1` is a `numeric`, as in PostgreSQL ([`crate::numeric`]).
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let config = config
            .with_extension(scan.clone())
            .with_default_catalog_and_schema(&self.registry.database, PUBLIC_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            // information_schema is tautan's (crate::pg_catalog), over
            // DataFusion's, registered in the catalog per session.
            .with_information_schema(false)
            .with_target_partitions(2);
        let defaults = self.session_defaults(&user);
        let settings: Settings = Arc::new(Mutex::new(defaults.clone()));
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.budget.session_runtime())
            .with_catalog_list(Arc::new(UserCatalogList::new(
                self.registry.clone(),
                access.clone(),
            )))
            .with_default_features()
            .with_analyzer_rules(analyzer_rules(settings.clone()))
            .with_optimizer_rules(crate::pushdown::optimizer_rules(settings.clone()))
            .with_query_planner(crate::pushdown::query_planner())
            .with_physical_optimizer_rule(Arc::new(crate::executor::YieldingJoins))
            .with_physical_optimizer_rule(Arc::new(crate::overflow::CheckedArithmetic))
            // Last: what each link is sent is written down for the audit log.
            .with_physical_optimizer_rule(Arc::new(tautan_connector::sent::RecordSentStatements))
            .build();
        let mut ctx = SessionContext::new_with_state(state);
        if let Err(e) = datafusion::execution::FunctionRegistry::register_expr_planner(
            &mut ctx,
            Arc::new(crate::pg_input::UnknownLiteralPlanner),
        ) {
            tracing::warn!(error = %e, "PostgreSQL literal reading not available in this session");
        }
        let set: crate::pg_catalog::SetSetting = {
            let (settings, scan) = (settings.clone(), scan.clone());
            Arc::new(move |name: &str, value: &str| apply_setting(&settings, &scan, name, value))
        };
        if let Err(e) =
            crate::pg_catalog::install(&ctx, &self.registry.database, &user, settings.clone(), set)
        {
            tracing::warn!(error = %e, "pg_catalog not available in this session");
        }
        crate::privileges::install(&ctx, self.registry.clone(), access.clone());
        // tautan's versions of DataFusion's functions, registered last:
        // `pg_catalog::install` rebuilds the session state
        // (`SessionStateBuilder::new_from_existing`), which registers every
        // function again in hash order, so a function registered before it
        // could lose its name to a DataFusion function that has it as an
        // alias (DataFusion's `to_char` answered in about half the
        // sessions).
        // PostgreSQL's exact `sum` for integers, in place of DataFusion's.
        ctx.register_udaf(crate::aggregates::ExactSum::udaf());
        ctx.register_udf(crate::age::Age::udf());
        ctx.register_udf(crate::math::Acosh::udf());
        ctx.register_udf(crate::math::Sign::udf());
        ctx.register_udf(crate::to_char::ToChar::udf());
        ctx.register_udf(crate::unbounded_numeric::UnboundedNumeric::udf());
        for udf in crate::budget::bounded_functions(&ctx.state()) {
            ctx.register_udf(udf);
        }
        for udf in crate::math::whole_decimal_functions(&ctx.state()) {
            ctx.register_udf(udf);
        }
        if let Ok(inner) = datafusion::execution::FunctionRegistry::udf(&ctx.state(), "date_part") {
            ctx.register_udf(crate::date_part::DatePart::udf(inner.as_ref().clone()));
        }
        let (cancel, _) = tokio::sync::watch::channel(0u64);
        Session {
            engine: self.clone(),
            access,
            ctx,
            settings,
            defaults,
            scan,
            cursors: tokio::sync::Mutex::new(BTreeMap::new()),
            cancel,
            user,
            origin: Mutex::new(crate::audit::Origin::new("local", None)),
            logged_in: std::sync::atomic::AtomicBool::new(false),
            statements: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Engine {
    /// The settings a session of `user` starts with (and RESET returns
    /// to): the federation's, with the user's own statement timeout.
    fn session_defaults(&self, user: &str) -> BTreeMap<String, String> {
        let mut defaults = default_settings();
        let own = self
            .config
            .users
            .get(user)
            .map(|u| u.get_ref().statement_timeout_ms)
            .filter(|ms| *ms > 0);
        if let Some(ms) = own {
            defaults.insert("statement_timeout".into(), ms.to_string());
        }
        defaults
    }

    /// Longest any statement may run (`[server] statement_timeout_max_ms`).
    fn statement_timeout_max(&self) -> Option<std::time::Duration> {
        let ms = self.config.server.statement_timeout_max_ms;
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }
}

/// DataFusion's analyzer rules, with PostgreSQL's reading of quoted
/// literals ([`crate::pg_input::UnknownLiterals`]) and numeric comparison
/// of `x = ANY(a)` ([`crate::any_array::ComparableElements`]) before type
/// coercion, and overflow checks of constant arithmetic last.
fn analyzer_rules(
    settings: Settings,
) -> Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> {
    let mut rules = datafusion::optimizer::Analyzer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "type_coercion")
        .unwrap_or(0);
    // First: `x::numeric` placeholders become plain casts
    // ([`crate::unbounded_numeric`]) before any other rule sees them.
    rules.insert(0, Arc::new(crate::unbounded_numeric::PlaceholdersAsCasts));
    let at = at + 1;
    rules.insert(at, Arc::new(crate::pg_input::UnknownLiterals));
    rules.insert(at + 1, Arc::new(crate::any_array::ComparableElements));
    rules.insert(at + 2, Arc::new(crate::math::RealAsDouble));
    rules.insert(at + 3, Arc::new(crate::age::TimestampDifferences));
    rules.insert(at + 4, Arc::new(crate::numeric::FloatOverNumeric));
    // After type coercion: constant arithmetic that overflows is an error,
    // not a wrapped value folded in ([`crate::overflow`]).
    rules.push(Arc::new(crate::overflow::CheckedConstants));
    // Casts to text as PostgreSQL writes values
    // ([`crate::pg_text`]): after type coercion, which adds the implicit
    // ones.
    rules.push(Arc::new(crate::pg_text::TextCasts::new(settings)));
    rules
}

/// The settings a session starts with, and `RESET` returns to.
fn default_settings() -> BTreeMap<String, String> {
    [
        ("application_name", ""),
        ("bytea_output", "hex"),
        ("default_transaction_isolation", "read committed"),
        ("default_table_access_method", "heap"),
        // No JIT compilation (asyncpg reads and sets this around its type
        // introspection).
        ("jit", "off"),
        ("lc_collate", "C"),
        ("lc_ctype", "C"),
        ("max_identifier_length", "63"),
        ("server_version_num", crate::SERVER_VERSION_NUM),
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("row_security", "on"),
        ("transaction_isolation", "read committed"),
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("extra_float_digits", "1"),
        ("integer_datetimes", "on"),
        ("intervalstyle", "postgres"),
        ("search_path", "public"),
        ("server_encoding", "UTF8"),
        ("server_version", crate::SERVER_VERSION),
        ("standard_conforming_strings", "on"),
        ("timezone", "UTC"),
        ("transaction_read_only", "on"),
        ("default_transaction_read_only", "on"),
        ("transaction isolation level", "read committed"),
        (crate::pushdown::SETTING, "on"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        SCAN_PARTS_SETTING.to_string(),
        DEFAULT_SCAN_PARTS.to_string(),
    )])
    .collect()
}

/// `SET name = value` on a session's settings: refused for settings that
/// would make the session writable, checked for tautan's own.
fn apply_setting(
    settings: &Settings,
    scan: &ScanOptions,
    name: &str,
    value: &str,
) -> Result<(), QueryError> {
    let name = name.to_ascii_lowercase();
    if (name == "transaction_read_only" || name == "default_transaction_read_only")
        && matches!(value.to_ascii_lowercase().as_str(), "off" | "false" | "0")
    {
        return Err(QueryError::read_only("SET transaction_read_only = off"));
    }
    if name == SCAN_PARTS_SETTING {
        let parts = value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_SCAN_PARTS).contains(n))
                .ok_or_else(|| {
                    QueryError::new(
                        "22023",
                        format!(
                            "invalid value for parameter \"{SCAN_PARTS_SETTING}\": \"{value}\" (1 to {MAX_SCAN_PARTS})"
                        ),
                    )
                })?;
        scan.set_parts(parts);
    }
    let mut settings = settings.lock().unwrap_or_else(|p| p.into_inner());
    settings.insert(name, value.to_string());
    Ok(())
}

/// The session setting naming why the user reads (recorded with each
/// statement in the audit log; also a startup parameter).
pub const PURPOSE_SETTING: &str = "tautan.purpose";

/// A session's settings, shared with `current_setting()`.
pub type Settings = crate::pg_catalog::Settings;

/// An open cursor (`DECLARE`): a running query read `FETCH` by `FETCH`.
struct Cursor {
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    /// Rows read from the stream but not fetched yet.
    pending: Option<RecordBatch>,
}

/// One user's connection to the federation.
pub struct Session {
    engine: Arc<Engine>,
    /// What the user may read, under one policy version; replaced between
    /// statements when the policy is reloaded ([`Session::follow_policy`]).
    access: Arc<crate::grants::AccessCell>,
    /// The login (it does not change with the policy).
    user: String,
    ctx: SessionContext,
    settings: Settings,
    /// What RESET returns the settings to.
    defaults: BTreeMap<String, String>,
    /// Scan options DataFusion hands to table scans (`tautan.scan_parts`).
    scan: Arc<ScanOptions>,
    cursors: tokio::sync::Mutex<BTreeMap<String, Cursor>>,
    /// Bumped by [`Session::cancel`]; running streams watch it.
    cancel: tokio::sync::watch::Sender<u64>,
    /// Where the session comes from, for the audit log.
    origin: Mutex<crate::audit::Origin>,
    /// Whether a login was recorded (then a logout is too), and how many
    /// statements ran.
    logged_in: std::sync::atomic::AtomicBool,
    statements: std::sync::atomic::AtomicU64,
}

/// A session's `pg_catalog` is computed from its catalog list, which holds
/// it: the cycle is cut here, or neither would ever be freed.
impl Drop for Session {
    fn drop(&mut self) {
        if self.logged_in.load(std::sync::atomic::Ordering::Acquire) {
            let statements = self.statements.load(std::sync::atomic::Ordering::Acquire);
            self.engine.trail.logout(&self.who(), statements);
        }
        let database = &self.engine.registry.database;
        if let Some(catalog) = self.ctx.catalog(database) {
            let _ = catalog.deregister_schema("pg_catalog", false);
            let _ = catalog.deregister_schema("information_schema", false);
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("user", &self.user).finish()
    }
}

/// A checked, planned query (placeholders `$n` still in it) and what the
/// audit log records about it.
#[derive(Debug, Clone)]
pub struct Query {
    /// The plan.
    pub plan: LogicalPlan,
    /// Its text, the tables and columns it reads, the policy version.
    pub facts: Arc<crate::audit::StatementFacts>,
}

/// A statement ready to run.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// A checked, planned query.
    Query(Query),
    /// A session command's result: a command tag, and for SHOW a value.
    Command {
        /// The command tag (`SET`, `BEGIN`, ...).
        tag: String,
        /// `Some((name, value))` for SHOW.
        show: Option<(String, String)>,
    },
    /// `DECLARE name CURSOR FOR query`: opens the cursor when executed.
    Declare {
        /// Cursor name.
        name: String,
        /// The checked, planned query.
        query: Query,
    },
    /// `FETCH`: the next `count` rows (all when `None`) of a cursor.
    Fetch {
        /// Cursor name.
        name: String,
        /// How many rows.
        count: Option<u64>,
        /// The cursor's columns.
        schema: SchemaRef,
    },
    /// `CLOSE name` / `CLOSE ALL` (`None`).
    Close(Option<String>),
    /// `COPY ... TO STDOUT`: a checked, planned query answered as COPY data.
    CopyOut {
        /// The checked, planned query.
        query: Query,
        /// Format and its options.
        options: crate::statement::CopyOptions,
    },
    /// Nothing (an empty statement).
    Empty,
}

impl Session {
    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Takes the policy in force when it is newer than the one this
    /// session holds: called as each statement starts, so a statement runs
    /// under one policy version from start to end, and a reload reaches
    /// open sessions at their next statement.
    fn follow_policy(&self) {
        let grants = self.engine.grants();
        let current = self.access.get();
        if current.version.as_ref() == Some(grants.version()) {
            return;
        }
        // A single sign-on login keeps its token's claims under the new
        // policy; a configured user takes the new roles and attributes; a
        // pull or tool session keeps the roles it was opened with.
        let access = if let Some(identity) = &current.claims {
            grants.for_identity(identity)
        } else if self.engine.config.users.contains_key(&self.user) || grants.is_user(&self.user) {
            grants.access(&self.user)
        } else {
            grants.for_roles(&self.user, &current.roles)
        };
        tracing::debug!(user = %self.user, version = grants.version().number, "session follows the reloaded policy");
        self.access.set(access);
    }

    /// The policy version this session's statements run under now.
    pub fn policy_version(&self) -> Option<crate::grants::PolicyVersion> {
        self.access.get().version.clone()
    }

    /// Says where the session comes from (for the audit log).
    pub fn set_origin(&self, origin: crate::audit::Origin) {
        *self.origin.lock().unwrap_or_else(|p| p.into_inner()) = origin;
    }

    /// Who runs this session's statements, as the audit log names them.
    pub fn who(&self) -> crate::audit::Who {
        crate::audit::Who {
            user: self.user.clone(),
            roles: self.access.get().roles.clone(),
            application: self.setting("application_name").filter(|a| !a.is_empty()),
            purpose: self.setting(PURPOSE_SETTING).filter(|p| !p.is_empty()),
            origin: self
                .origin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Records the login (after authentication, before the first
    /// statement); the session's end is then recorded too. Fails when the
    /// audit log cannot be written: the login must then be refused.
    pub async fn record_login(&self) -> Result<(), QueryError> {
        self.engine.trail.login(&self.who()).await?;
        self.logged_in
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The DataFusion state this session plans with.
    pub fn state(&self) -> SessionState {
        self.ctx.state()
    }

    /// Splits and parses SQL text (PostgreSQL dialect).
    pub fn parse(&self, sql: &str) -> Result<Vec<DFStatement>, QueryError> {
        crate::statement::parse(sql)
    }

    /// Checks and plans `sql`, which must be exactly one query (a pull's
    /// query, an export): nothing reaches a source here.
    pub async fn prepare_query(&self, sql: &str) -> Result<Query, QueryError> {
        let mut statements = self.parse(sql)?;
        let (Some(statement), true) = (statements.pop(), statements.is_empty()) else {
            return Err(QueryError::new("42601", "expected exactly one query"));
        };
        match self.prepare(statement).await? {
            Prepared::Query(query) => Ok(query),
            _ => Err(QueryError::new("42601", "expected a query")),
        }
    }

    /// A session setting's current value.
    pub fn setting(&self, name: &str) -> Option<String> {
        let settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        settings.get(&name.to_ascii_lowercase()).cloned()
    }

    /// `SET name = value` (also a startup parameter or a `-c` in the
    /// startup `options`): refused for settings that would make the
    /// session writable, checked for tautan's own.
    pub fn set(&self, name: &str, value: &str) -> Result<(), QueryError> {
        apply_setting(&self.settings, &self.scan, name, value)
    }

    /// `RESET name`, or `RESET ALL` with `None`.
    fn reset(&self, name: Option<&str>) {
        let defaults = self.defaults.clone();
        if name.is_none() || name == Some(SCAN_PARTS_SETTING) {
            self.scan.set_parts(DEFAULT_SCAN_PARTS);
        }
        let mut settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        match name {
            None => *settings = defaults,
            Some(name) => {
                match defaults.get(name) {
                    Some(v) => settings.insert(name.to_string(), v.clone()),
                    None => settings.remove(name),
                };
            }
        }
    }

    /// Stops what this session is running now: its streams end with 57014,
    /// and dropping them cancels the remote statements.
    pub fn cancel(&self) {
        self.cancel.send_modify(|generation| *generation += 1);
    }

    /// `stream`, ended with 57014 when [`Session::cancel`] is called or
    /// the statement timeout passes; ending it drops the stream, which
    /// cancels what it started at the sources.
    fn cancellable(&self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let schema = stream.schema();
        let mut watch = self.cancel.subscribe();
        watch.mark_unchanged();
        let timeout = crate::budget::statement_timeout(
            self.setting("statement_timeout").as_deref(),
            self.engine.statement_timeout_max(),
        );
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let guarded = futures::stream::unfold(Some((stream, watch)), move |state| async move {
            let (mut stream, mut watch) = state?;
            let expired = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                item = stream.next() => item.map(|item| (item, Some((stream, watch)))),
                _ = watch.changed() => {
                    tracing::info!("statement cancelled by the client");
                    let e = datafusion::error::DataFusionError::External(Box::new(QueryError::cancelled()));
                    Some((Err(e), None))
                }
                _ = expired => {
                    tracing::info!(timeout = ?timeout, "statement timeout");
                    let e = datafusion::error::DataFusionError::External(Box::new(QueryError::new(
                        "57014",
                        "canceling statement due to statement timeout",
                    )));
                    Some((Err(e), None))
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, guarded))
    }

    /// Opens cursor `name` on a prepared query (its parameters bound).
    pub async fn declare(
        &self,
        name: &str,
        query: Query,
        params: Option<ParamValues>,
    ) -> Result<(), QueryError> {
        let mut cursors = self.cursors.lock().await;
        if cursors.contains_key(name) {
            return Err(QueryError::new(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let schema = query.plan.schema().inner().clone();
        let stream = self.start(query, params).await?;
        cursors.insert(
            name.to_string(),
            Cursor {
                schema,
                stream,
                pending: None,
            },
        );
        Ok(())
    }

    /// The next `count` rows of cursor `name` (all that remain for `None`).
    pub async fn fetch(
        &self,
        name: &str,
        count: Option<u64>,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let mut cursors = self.cursors.lock().await;
        let cursor = cursors
            .get_mut(name)
            .ok_or_else(|| QueryError::no_cursor(name))?;
        let schema = cursor.schema.clone();
        let Some(count) = count else {
            // FETCH ALL: the rest of the cursor streams, it is not collected.
            let rest = std::mem::replace(
                &mut cursor.stream,
                Box::pin(RecordBatchStreamAdapter::new(
                    schema.clone(),
                    futures::stream::empty(),
                )),
            );
            let pending = futures::stream::iter(cursor.pending.take().map(Ok));
            let stream = Box::pin(RecordBatchStreamAdapter::new(schema, pending.chain(rest)));
            return Ok(self.cancellable(stream));
        };
        let mut wanted = usize::try_from(count).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut watch = self.cancel.subscribe();
        watch.mark_unchanged();
        while wanted > 0 {
            let batch = match cursor.pending.take() {
                Some(b) => b,
                None => {
                    let next = tokio::select! {
                        next = cursor.stream.next() => next,
                        _ = watch.changed() => return Err(QueryError::cancelled()),
                    };
                    match next {
                        Some(b) => b?,
                        None => break,
                    }
                }
            };
            if batch.num_rows() > wanted {
                out.push(batch.slice(0, wanted));
                cursor.pending = Some(batch.slice(wanted, batch.num_rows() - wanted));
                wanted = 0;
            } else {
                wanted -= batch.num_rows();
                out.push(batch);
            }
        }
        let batches = futures::stream::iter(out.into_iter().map(Ok));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    /// `CLOSE name`, or every cursor with `None` (also at COMMIT/ROLLBACK:
    /// cursors are WITHOUT HOLD).
    pub async fn close(&self, name: Option<&str>) -> Result<(), QueryError> {
        let mut cursors = self.cursors.lock().await;
        match name {
            None => cursors.clear(),
            Some(n) => {
                cursors.remove(n).ok_or_else(|| QueryError::no_cursor(n))?;
            }
        }
        Ok(())
    }

    /// Checks and plans one statement. Nothing reaches a source here.
    /// Planning runs on a stack segment of its own
    /// ([`crate::limits::OnPlanStack`]). A statement refused by the grants
    /// (42501) or as a write (25006) is recorded in the audit log as
    /// denied.
    pub async fn prepare(&self, statement: DFStatement) -> Result<Prepared, QueryError> {
        self.prepare_declared(statement, &[]).await
    }

    /// [`Session::prepare`] with the parameter types the client declared
    /// (the wire's Parse message; `None` where it left a type to the
    /// server): a parameter the statement leaves untyped (`SELECT $1`)
    /// takes its declared type, as in PostgreSQL.
    pub async fn prepare_declared(
        &self,
        statement: DFStatement,
        declared: &[Option<datafusion::arrow::datatypes::DataType>],
    ) -> Result<Prepared, QueryError> {
        self.follow_policy();
        // The text only the audit log keeps: not written out when it is off.
        let sql = if self.engine.trail.is_on() {
            statement.to_string()
        } else {
            String::new()
        };
        let prepared =
            crate::limits::OnPlanStack::new(self.prepare_here(statement, &sql, declared)).await;
        match prepared {
            Err(e) if e.code == "42501" || e.code == "25006" => {
                self.engine.trail.denied(&self.who(), &sql, &e).await?;
                Err(e)
            }
            other => other,
        }
    }

    async fn prepare_here(
        &self,
        statement: DFStatement,
        sql: &str,
        declared: &[Option<datafusion::arrow::datatypes::DataType>],
    ) -> Result<Prepared, QueryError> {
        match classify(&statement) {
            StatementKind::Write(what) => Err(QueryError::read_only(&what)),
            StatementKind::Unsupported(what) => {
                Err(QueryError::new("0A000", format!("{what} is not supported")))
            }
            StatementKind::Transaction(tag) => Ok(Prepared::Command {
                tag: tag.to_string(),
                show: None,
            }),
            StatementKind::Reset(name) => {
                self.reset(name.as_deref());
                let discard = matches!(&statement, DFStatement::Statement(s) if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Discard { .. }));
                if discard {
                    self.close(None).await?;
                }
                Ok(Prepared::Command {
                    tag: if discard { "DISCARD ALL" } else { "RESET" }.into(),
                    show: None,
                })
            }
            StatementKind::Declare { name } => {
                let query = crate::statement::take_query(statement)
                    .ok_or_else(|| QueryError::new("42601", "DECLARE needs a query"))?;
                let inner = DFStatement::Statement(Box::new(
                    datafusion::sql::sqlparser::ast::Statement::Query(query),
                ));
                match Box::pin(self.prepare_here(inner, sql, declared)).await? {
                    Prepared::Query(query) => Ok(Prepared::Declare { name, query }),
                    _ => Err(QueryError::new("42601", "DECLARE needs a query")),
                }
            }
            StatementKind::Fetch { name, count } => {
                let cursors = self.cursors.lock().await;
                let schema = cursors
                    .get(&name)
                    .ok_or_else(|| QueryError::no_cursor(&name))?
                    .schema
                    .clone();
                Ok(Prepared::Fetch {
                    name,
                    count,
                    schema,
                })
            }
            StatementKind::Close(name) => Ok(Prepared::Close(name)),
            StatementKind::CopyOut { options } => {
                let query = crate::statement::take_query(statement)
                    .ok_or_else(|| QueryError::new("42601", "COPY needs a query"))?;
                let inner = DFStatement::Statement(Box::new(
                    datafusion::sql::sqlparser::ast::Statement::Query(query),
                ));
                match Box::pin(self.prepare_here(inner, sql, declared)).await? {
                    Prepared::Query(query) => Ok(Prepared::CopyOut { query, options }),
                    _ => Err(QueryError::new("42601", "COPY needs a query")),
                }
            }
            StatementKind::Set { name, value } => {
                self.set(&name, &value)?;
                Ok(Prepared::Command {
                    tag: "SET".into(),
                    show: None,
                })
            }
            StatementKind::Show(name) => {
                let value = self.setting(&name).ok_or_else(|| {
                    QueryError::new(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                Ok(Prepared::Command {
                    tag: "SHOW".into(),
                    show: Some((name, value)),
                })
            }
            StatementKind::Query => {
                let state = self.ctx.state();
                let references = state.resolve_table_references(&statement)?;
                // `generate_series(1, 10)` is a relation to the resolver; a
                // call of one of DataFusion's table functions reads no data,
                // so it needs no grant.
                let calls = crate::statement::table_function_calls(&statement);
                let references: Vec<_> = references
                    .into_iter()
                    .filter(|r| {
                        !matches!(r, TableReference::Bare { table }
                            if calls.iter().any(|c| c == table.as_ref())
                                && state.table_functions().contains_key(table.as_ref()))
                    })
                    .collect();
                let access = self.access.get();
                let grants = GrantCheck::new(&self.engine.registry, &access);
                self.check_tables(grants, &references).await?;
                let plan = match state.statement_to_plan(statement).await {
                    Ok(plan) => crate::pg_input::declared_parameters(
                        crate::pg_input::typed_array_parameters(plan)?,
                        declared,
                    )?,
                    Err(e) => {
                        return Err(grants
                            .denied_column(&e, &references)
                            .unwrap_or_else(|| e.into()));
                    }
                };
                let optimized = state.optimize(&plan)?;
                grants.columns(&optimized)?;
                // Its row counts would describe rows a row filter hides
                // (a scan's output before the filter).
                if matches!(plan, LogicalPlan::Analyze(_))
                    && crate::policy::table::reads_policed(&optimized)
                {
                    return Err(QueryError::new(
                        "42501",
                        "EXPLAIN ANALYZE is not available for tables read under a row filter or \
                         masks: its row counts could describe hidden rows (EXPLAIN is)",
                    ));
                }
                let facts = crate::audit::StatementFacts {
                    sql: sql.to_string(),
                    reads: if self.engine.trail.is_on() {
                        grants.reads(&optimized)
                    } else {
                        Vec::new()
                    },
                    policy_version: access.version.as_ref().map(|v| v.number),
                };
                Ok(Prepared::Query(Query {
                    plan,
                    facts: Arc::new(facts),
                }))
            }
        }
    }

    /// The grant check on names ([`crate::check::GrantCheck::names`]),
    /// then: every link named is up, every `mat.*` table has a snapshot.
    async fn check_tables(
        &self,
        grants: GrantCheck<'_>,
        references: &[TableReference],
    ) -> Result<(), QueryError> {
        let named = grants.names(references)?;
        let database = self.engine.registry.database.as_str();
        for n in &named {
            if let Some(link) = self.engine.registry.link(&n.catalog) {
                link.ensure_up().await.map_err(QueryError::from)?;
            } else if n.catalog == database && n.schema == MAT_SCHEMA {
                let pulls = &self.engine.registry.pulls;
                if pulls.get(&n.table).is_none() {
                    return Err(QueryError::undefined_table(&n.written));
                }
                if pulls.dir(&n.table).current().is_none() {
                    return Err(QueryError::new(
                        "55000",
                        format!(
                            "materialized table \"mat.{}\" has no snapshot yet; its first pull has not finished (run `tautan pull {}`)",
                            n.table, n.table
                        ),
                    ));
                }
            } else if n.catalog != database || n.schema != REF_SCHEMA {
                return Err(QueryError::undefined_table(&n.written));
            }
        }
        Ok(())
    }

    /// A prepared query as a DataFrame (for pulls and exports, which add
    /// filters or write files).
    pub async fn dataframe(
        &self,
        plan: LogicalPlan,
    ) -> Result<datafusion::dataframe::DataFrame, QueryError> {
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// Runs a prepared query with parameter values; batches stream from the
    /// sources as the caller reads. Its intent is in the audit log before
    /// any source is contacted, its completion when the stream ends.
    pub async fn execute(
        &self,
        query: Query,
        params: Option<ParamValues>,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let stream = self.start(query, params).await?;
        Ok(self.cancellable(stream))
    }

    /// Writes the intent of `query` (durable before anything else happens)
    /// and returns what records its completion: for callers that run the
    /// plan themselves (pulls), which put [`Recording::sent`] in the state
    /// they run it with and hand the stream to [`Recording::watch`].
    ///
    /// [`Recording::sent`]: crate::audit::Recording::sent
    /// [`Recording::watch`]: crate::audit::Recording::watch
    pub async fn begin(
        &self,
        query: &Query,
        params: Option<&ParamValues>,
    ) -> Result<crate::audit::Recording, QueryError> {
        self.statements
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.engine
            .trail
            .intent(&self.who(), &query.facts, params)
            .await
    }

    /// The session's state for running one statement, with the list its
    /// link nodes write the statements they send to.
    pub fn state_recording(&self, recording: &crate::audit::Recording) -> SessionState {
        let mut state = self.ctx.state();
        state.config_mut().set_extension(recording.sent());
        state
    }

    /// Admits, records and starts `query`: the stream holds the statement
    /// slot and writes the completion as it ends.
    ///
    /// The intent goes to the audit writer first and the statement is
    /// planned while its group commit's fsync runs; it is executed (the
    /// first moment a link can be contacted) only once the intent is
    /// durable.
    async fn start(
        &self,
        query: Query,
        params: Option<ParamValues>,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let slot = self.engine.admission.statement(&self.user).await?;
        self.statements
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let intent = self
            .engine
            .trail
            .submit_intent(&self.who(), &query.facts, params.as_ref())?;
        let mut state = self.ctx.state();
        state.config_mut().set_extension(intent.sent());
        let plan = query.plan;
        // Planned and run on the statement runtime, physical planning on
        // a stack segment of its own, as in `prepare`.
        let stream = crate::executor::start(crate::limits::OnPlanStack::new(async move {
            let planned = async {
                let plan = match params {
                    Some(p) => plan.replace_params_with_values(&p)?,
                    None => plan,
                };
                let physical = state.create_physical_plan(&plan).await?;
                Ok::<_, QueryError>((plan, physical))
            }
            .await;
            let recording = intent.durable().await?;
            let started = planned.and_then(|(plan, physical)| {
                Ok(crate::budget::execute_planned(state, plan, physical)?)
            });
            match started {
                Ok(stream) => Ok(recording.watch(stream)),
                Err(e) => {
                    recording.finish(&e.code);
                    Err(e)
                }
            }
        }))
        .await?;
        Ok(holding(stream, slot))
    }

    /// Checks, plans and runs every statement of `sql`, collecting results
    /// (for the CLI and tests; the wire endpoint streams instead).
    pub async fn run(&self, sql: &str) -> Result<Vec<Outcome>, QueryError> {
        let mut out = Vec::new();
        for stmt in self.parse(sql)? {
            match self.prepare(stmt).await? {
                // The CLI shows COPY's rows as a table.
                Prepared::Query(query) | Prepared::CopyOut { query, .. } => {
                    let schema = query.plan.schema().inner().clone();
                    let stream = self.execute(query, None).await?;
                    let batches = datafusion::physical_plan::common::collect(stream).await?;
                    out.push(Outcome::Rows(schema, batches));
                }
                Prepared::Command { tag, show } => out.push(Outcome::Command(tag, show)),
                Prepared::Declare { name, query } => {
                    self.declare(&name, query, None).await?;
                    out.push(Outcome::Command("DECLARE CURSOR".into(), None));
                }
                Prepared::Fetch { name, count, .. } => {
                    let stream = self.fetch(&name, count).await?;
                    let schema = stream.schema();
                    let batches = datafusion::physical_plan::common::collect(stream).await?;
                    out.push(Outcome::Rows(schema, batches));
                }
                Prepared::Close(name) => {
                    self.close(name.as_deref()).await?;
                    out.push(Outcome::Command("CLOSE CURSOR".into(), None));
                }
                Prepared::Empty => {}
            }
        }
        Ok(out)
    }
}

/// `stream`, holding the statement's slot until it ends or is dropped.
fn holding(
    stream: SendableRecordBatchStream,
    slot: crate::admission::StatementSlot,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let held = stream.map(move |batch| {
        let _held = &slot;
        batch
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, held))
}

/// A collected result of [`Session::run`].
#[derive(Debug)]
pub enum Outcome {
    /// Rows.
    Rows(
        datafusion::arrow::datatypes::SchemaRef,
        Vec<datafusion::arrow::record_batch::RecordBatch>,
    ),
    /// A command tag, with a SHOW value.
    Command(String, Option<(String, String)>),
}
