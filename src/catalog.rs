//! The federation's catalog tree, and each user's filtered view of it.
//!
//! ```text
//! <link>.<schema>.<table>      one catalog per db link (Registry)
//! <database>.ref.<table>       custodian reference data
//! <database>.system.<table>    links, tables and grants, as this user sees them
//! <database>.mat.<table>       materialized pulls
//! <database>."<link>.<schema>".<table>   the same link tables, as clients browse them
//! ```
//!
//! PostgreSQL clients browse one database with schemas in it (psql `\dn`,
//! DBeaver's tree, JDBC `getSchemas`), so the catalog list *lists* only the
//! federation's database, whose schemas include one `"<link>.<schema>"` per
//! link schema. The link catalogs still *resolve*, so three-part names
//! `link.schema.table` keep working; both spellings name the same table
//! under the same grant.
//!
//! [`Registry`] owns the links and their state (up with a table list, or
//! down with a reason). [`UserCatalogList`] is what DataFusion plans
//! against: the same tree with every table the user may not read taken out,
//! so an ungranted table is indistinguishable from a missing one, also in
//! `information_schema` and `system.*`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemTable, SchemaProvider, TableProvider,
};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use tautan_connector::federation::LinkFederation;
use tautan_connector::{LinkRef, RemoteTable};

use crate::grants::{Access, TableAccess};

/// Tables of one schema, by name.
pub type TableMap = BTreeMap<String, Arc<dyn TableProvider>>;
/// Schemas of one catalog, by name.
pub type SchemaMap = BTreeMap<String, Arc<TableMap>>;

/// Schema of the federation's default catalog holding reference data.
pub const REF_SCHEMA: &str = "ref";
/// Schema of the federation's default catalog holding status tables.
pub const SYSTEM_SCHEMA: &str = "system";
/// Schema of the federation's default catalog holding materialized pulls.
pub const MAT_SCHEMA: &str = "mat";
/// The (empty) default schema for unqualified names.
pub const PUBLIC_SCHEMA: &str = "public";

/// Where a link's tables come from.
#[derive(Debug)]
pub enum LinkSource {
    /// A database reached through a connector.
    Remote(LinkRef),
    /// A folder of structured files.
    Files(PathBuf),
    /// Misconfigured (e.g. a secret missing from the environment): always
    /// down with this reason.
    Broken(String),
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    /// Not contacted yet.
    Pending,
    /// Introspected; tables listed.
    Up,
    /// Last contact failed.
    Down,
}

impl LinkStatus {
    /// The status as `system.links` shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkStatus::Pending => "pending",
            LinkStatus::Up => "up",
            LinkStatus::Down => "down",
        }
    }
}

/// What the registry knows of a link now.
#[derive(Debug, Clone)]
pub struct LinkState {
    /// Up or down.
    pub status: LinkStatus,
    /// Why it is down.
    pub error: Option<String>,
    /// SQLSTATE of the last failure.
    pub sqlstate: Option<String>,
    /// When it was last contacted.
    pub checked_at: Option<SystemTime>,
    /// Monotonic time of the last contact, for retry pacing.
    checked_instant: Option<Instant>,
    /// Its schemas and tables (kept from the last successful contact).
    pub schemas: Arc<SchemaMap>,
}

/// One registered link.
#[derive(Debug)]
pub struct LinkEntry {
    /// Name (= catalog).
    pub name: String,
    /// `postgres`, `mysql`, `files`.
    pub kind: &'static str,
    /// Description from the config.
    pub description: Option<String>,
    source: LinkSource,
    state: RwLock<LinkState>,
    refresh_lock: tokio::sync::Mutex<()>,
    timeout: Duration,
    /// The classification labels the config gives its tables and columns.
    labels: crate::policy::labels::Classification,
}

/// How soon a down link may be contacted again when a query needs it.
const RETRY_AFTER: Duration = Duration::from_millis(500);

impl LinkEntry {
    /// A link not contacted yet.
    pub fn new(
        name: String,
        kind: &'static str,
        description: Option<String>,
        source: LinkSource,
        timeout: Duration,
    ) -> Self {
        Self {
            name,
            kind,
            description,
            source,
            state: RwLock::new(LinkState {
                status: LinkStatus::Pending,
                error: None,
                sqlstate: None,
                checked_at: None,
                checked_instant: None,
                schemas: Arc::new(SchemaMap::new()),
            }),
            refresh_lock: tokio::sync::Mutex::new(()),
            timeout,
            labels: Default::default(),
        }
    }

    /// The link with the config's classification labels, written into
    /// each table's schema as it is introspected.
    pub fn with_labels(mut self, labels: crate::policy::labels::Classification) -> Self {
        self.labels = labels;
        self
    }

    /// A snapshot of the state.
    pub fn state(&self) -> LinkState {
        match self.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_state(&self, f: impl FnOnce(&mut LinkState)) {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }

    /// The connector, for `tautan check`.
    pub fn remote(&self) -> Option<&LinkRef> {
        match &self.source {
            LinkSource::Remote(l) => Some(l),
            _ => None,
        }
    }

    /// Contacts the source and lists its tables. On failure the link is
    /// marked down with the reason; its last table list is kept.
    pub async fn refresh(&self) -> LinkStatus {
        let _one_at_a_time = self.refresh_lock.lock().await;
        self.refresh_now().await
    }

    /// [`Self::refresh`], with `refresh_lock` already held.
    async fn refresh_now(&self) -> LinkStatus {
        let result = tokio::time::timeout(self.timeout * 2, self.load()).await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err((
                format!(
                    "link \"{}\" is unavailable: no answer within {:?}",
                    self.name,
                    self.timeout * 2
                ),
                "08001".to_string(),
            )),
        };
        let now = SystemTime::now();
        match result {
            Ok(schemas) => {
                let tables: usize = schemas.values().map(|t| t.len()).sum();
                tracing::info!(link = %self.name, kind = self.kind, tables, "link up");
                self.set_state(|s| {
                    s.status = LinkStatus::Up;
                    s.error = None;
                    s.sqlstate = None;
                    s.checked_at = Some(now);
                    s.checked_instant = Some(Instant::now());
                    s.schemas = Arc::new(schemas);
                });
                LinkStatus::Up
            }
            Err((error, sqlstate)) => {
                tracing::warn!(link = %self.name, kind = self.kind, %error, "link down");
                self.set_state(|s| {
                    s.status = LinkStatus::Down;
                    s.error = Some(error);
                    s.sqlstate = Some(sqlstate);
                    s.checked_at = Some(now);
                    s.checked_instant = Some(Instant::now());
                });
                LinkStatus::Down
            }
        }
    }

    /// Makes sure a query can use the link: a link that is down is
    /// contacted again (at most every half second) before giving up. One
    /// attempt at a time: queries that arrive while one is under way take
    /// its answer instead of each trying (and waiting) in turn.
    pub async fn ensure_up(&self) -> std::result::Result<(), (String, String)> {
        let state = self.state();
        if state.status == LinkStatus::Up && self.failure_since_check(&state).is_none() {
            return Ok(());
        }
        let recent = state
            .checked_instant
            .is_some_and(|t| t.elapsed() < RETRY_AFTER);
        if !recent {
            let asked = Instant::now();
            let _one_at_a_time = self.refresh_lock.lock().await;
            let answered_meanwhile = self.state().checked_instant.is_some_and(|t| t >= asked);
            let status = if answered_meanwhile {
                self.state().status
            } else {
                self.refresh_now().await
            };
            if status == LinkStatus::Up {
                return Ok(());
            }
        } else if state.status == LinkStatus::Up {
            // Checked moments ago and up: the failure is older news.
            return Ok(());
        }
        let state = self.state();
        Err((
            state
                .error
                .unwrap_or_else(|| format!("link \"{}\" is unavailable", self.name)),
            state.sqlstate.unwrap_or_else(|| "08001".into()),
        ))
    }

    /// The last failure a statement met at the source after the link was
    /// last checked (the link is then *degraded*: the next query checks
    /// it again first, once for everyone waiting).
    pub fn failure_since_check(
        &self,
        state: &LinkState,
    ) -> Option<tautan_connector::health::Failure> {
        self.remote()
            .and_then(|r| r.health())
            .and_then(|h| h.last_failure())
            .filter(|f| state.checked_at.is_none_or(|c| f.at > c))
    }

    async fn load(&self) -> std::result::Result<SchemaMap, (String, String)> {
        match &self.source {
            LinkSource::Broken(reason) => Err((
                format!("link \"{}\" is misconfigured: {reason}", self.name),
                "08001".into(),
            )),
            LinkSource::Remote(link) => {
                let defs = link
                    .introspect()
                    .await
                    .map_err(|e| (e.to_string(), e.client_sqlstate().to_string()))?;
                let mut schemas: BTreeMap<String, TableMap> = BTreeMap::new();
                let federation = LinkFederation::new(link.clone());
                for mut def in defs {
                    self.labels.apply(&mut def);
                    let name = def.name.clone();
                    let schema = def.schema.clone();
                    let table = federation.table(RemoteTable::new(link.clone(), def));
                    schemas.entry(schema).or_default().insert(name, table);
                }
                Ok(schemas.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
            }
            LinkSource::Files(path) => {
                let mut tables = load_folder(path)
                    .await
                    .map_err(|e| (format!("link \"{}\": {e}", self.name), "58030".into()))?;
                // Labels drive masks: a table that cannot carry them is
                // not served at all.
                if !self.labels.is_empty() {
                    for (name, provider) in tables.iter_mut() {
                        let schema = self.labels.labeled(PUBLIC_SCHEMA, name, &provider.schema());
                        *provider = tautan_files::with_schema(provider, schema).map_err(|e| {
                            (
                                format!("link \"{}\": table {name}: {e}", self.name),
                                "58030".to_string(),
                            )
                        })?;
                    }
                }
                let mut schemas = SchemaMap::new();
                schemas.insert(PUBLIC_SCHEMA.to_string(), Arc::new(tables));
                Ok(schemas)
            }
        }
    }
}

/// Reads every table of a folder through DataFusion's file readers.
pub async fn load_folder(path: &std::path::Path) -> Result<TableMap> {
    let ctx = SessionContext::new();
    let state = ctx.state();
    let found = tautan_files::scan_folder(&state, path).await?;
    Ok(found.into_iter().map(|t| (t.name, t.provider)).collect())
}

/// Every link and the reference data.
#[derive(Debug)]
pub struct Registry {
    /// The default catalog's name (the federation as a database).
    pub database: String,
    /// Links by name.
    pub links: BTreeMap<String, Arc<LinkEntry>>,
    /// Reference tables (`ref.*`).
    pub reference: RwLock<Arc<TableMap>>,
    /// Materialized pulls (`mat.*`).
    pub pulls: Arc<crate::pulls::Pulls>,
    /// The audit log's folder (`system.audit`), when the log is on.
    pub audit_dir: Option<std::path::PathBuf>,
}

impl Registry {
    /// Contacts every link concurrently; a link that fails is marked down
    /// and startup goes on.
    pub async fn refresh_all(&self) {
        let tasks = self.links.values().map(|l| l.refresh());
        futures::future::join_all(tasks).await;
    }

    /// The link named `name`.
    pub fn link(&self, name: &str) -> Option<&Arc<LinkEntry>> {
        self.links.get(name)
    }

    fn reference(&self) -> Arc<TableMap> {
        match self.reference.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl Registry {
    /// Maps a browsed schema name back to its link: `(database,
    /// "<link>.<schema>")` becomes `(link, schema)`; anything else is
    /// returned as it is.
    pub fn locate<'a>(&self, catalog: &'a str, schema: &'a str) -> (&'a str, &'a str) {
        if catalog == self.database {
            if let Some((link, inner)) = schema.split_once('.') {
                if self.links.contains_key(link) {
                    return (link, inner);
                }
            }
        }
        (catalog, schema)
    }

    /// Whether the table (as resolved: a link or the federation's
    /// database, either spelling) has a column of that name, whatever any
    /// user may read of it.
    pub fn has_column(&self, catalog: &str, schema: &str, table: &str, column: &str) -> bool {
        let (catalog, schema) = self.locate(catalog, schema);
        let provider = if let Some(link) = self.link(catalog) {
            link.state()
                .schemas
                .get(schema)
                .and_then(|t| t.get(table).cloned())
        } else if catalog == self.database && schema == REF_SCHEMA {
            self.reference().get(table).cloned()
        } else {
            None
        };
        provider.is_some_and(|p| p.schema().field_with_name(column).is_ok())
    }

    /// The grant name of a resolved table reference: `[schema, table]` in
    /// the federation's database, `[link, schema, table]` in a link.
    pub fn grant_name(&self, catalog: &str, schema: &str, table: &str) -> Vec<String> {
        let (catalog, schema) = self.locate(catalog, schema);
        if catalog == self.database {
            vec![schema.to_string(), table.to_string()]
        } else {
            vec![catalog.to_string(), schema.to_string(), table.to_string()]
        }
    }
}

/// A schema registered by DataFusion's own machinery (`pg_catalog`, set up
/// per session by [`crate::pg_catalog`]).
type SchemaSlot = Arc<RwLock<Option<Arc<dyn SchemaProvider>>>>;

fn slot_get(slot: &SchemaSlot) -> Option<Arc<dyn SchemaProvider>> {
    match slot.read() {
        Ok(s) => s.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// The catalog tree as one user may see it.
#[derive(Debug)]
pub struct UserCatalogList {
    registry: Arc<Registry>,
    /// The session's access, read as each catalog is looked up (so a
    /// reloaded policy reaches the session's next statement).
    access: Arc<crate::grants::AccessCell>,
    pg_catalog: SchemaSlot,
    information_schema: SchemaSlot,
}

impl UserCatalogList {
    /// `registry` filtered by `access`.
    pub fn new(registry: Arc<Registry>, access: Arc<crate::grants::AccessCell>) -> Self {
        Self {
            registry,
            access,
            pg_catalog: SchemaSlot::default(),
            information_schema: SchemaSlot::default(),
        }
    }

    fn default_catalog(&self) -> DefaultCatalog {
        DefaultCatalog {
            registry: self.registry.clone(),
            access: self.access.get(),
            pg_catalog: self.pg_catalog.clone(),
            information_schema: self.information_schema.clone(),
        }
    }
}

impl CatalogProviderList for UserCatalogList {
    fn register_catalog(
        &self,
        _name: String,
        _catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        None // the tree comes from federation.toml only
    }

    /// Only the federation's database is listed (see the module docs);
    /// link catalogs resolve by name.
    fn catalog_names(&self) -> Vec<String> {
        vec![self.registry.database.clone()]
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == self.registry.database {
            return Some(Arc::new(self.default_catalog()));
        }
        let link = self.registry.link(name)?;
        let access = self.access.get();
        if !access.may_see_prefix(&[name.to_string()]) {
            return None;
        }
        Some(Arc::new(LinkCatalog {
            link: link.clone(),
            access,
        }))
    }
}

/// One link, filtered.
#[derive(Debug)]
struct LinkCatalog {
    link: Arc<LinkEntry>,
    access: Arc<Access>,
}

impl CatalogProvider for LinkCatalog {
    fn schema_names(&self) -> Vec<String> {
        let state = self.link.state();
        state
            .schemas
            .iter()
            .filter(|(schema, tables)| {
                tables.keys().any(|t| {
                    self.access
                        .table(&[self.link.name.clone(), schema.to_string(), t.clone()])
                        != TableAccess::Invisible
                })
            })
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let state = self.link.state();
        let tables = state.schemas.get(name)?.clone();
        Some(Arc::new(FilteredSchema {
            prefix: vec![self.link.name.clone(), name.to_string()],
            tables,
            access: self.access.clone(),
        }))
    }
}

/// The federation's own catalog: `ref`, `system`, `mat`, `public`, and
/// every link schema the user may see as `"<link>.<schema>"`.
#[derive(Debug)]
struct DefaultCatalog {
    registry: Arc<Registry>,
    access: Arc<Access>,
    pg_catalog: SchemaSlot,
    /// `information_schema` ([`crate::pg_catalog::InformationSchema`]):
    /// resolved by name, not listed (DataFusion's own listing adds it).
    information_schema: SchemaSlot,
}

impl DefaultCatalog {
    /// The slot of a schema the session registers.
    fn slot(&self, name: &str) -> Option<&SchemaSlot> {
        match name {
            "pg_catalog" => Some(&self.pg_catalog),
            "information_schema" => Some(&self.information_schema),
            _ => None,
        }
    }
}

impl DefaultCatalog {
    fn link_catalog(&self, link: &str) -> Option<LinkCatalog> {
        let link = self.registry.link(link)?;
        self.access
            .may_see_prefix(std::slice::from_ref(&link.name))
            .then(|| LinkCatalog {
                link: link.clone(),
                access: self.access.clone(),
            })
    }
}

impl CatalogProvider for DefaultCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = vec![PUBLIC_SCHEMA.to_string(), SYSTEM_SCHEMA.to_string()];
        if slot_get(&self.pg_catalog).is_some() {
            names.push("pg_catalog".to_string());
        }
        if self.access.may_see_prefix(&[REF_SCHEMA.to_string()]) {
            names.push(REF_SCHEMA.to_string());
        }
        if self.access.may_see_prefix(&[MAT_SCHEMA.to_string()]) {
            names.push(MAT_SCHEMA.to_string());
        }
        for link in self.registry.links.keys() {
            if let Some(catalog) = self.link_catalog(link) {
                names.extend(
                    catalog
                        .schema_names()
                        .into_iter()
                        .map(|s| format!("{link}.{s}")),
                );
            }
        }
        names
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        if let Some(slot) = self.slot(name) {
            let mut slot = match slot.write() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            return Ok(slot.replace(schema));
        }
        datafusion::common::not_impl_err!("schemas come from federation.toml only")
    }

    /// Only `pg_catalog` and `information_schema` can go: they refer back to this catalog list (it
    /// is computed from it), so the session drops it when it ends, or the
    /// two would keep each other alive (~5 MB per session, never freed).
    fn deregister_schema(
        &self,
        name: &str,
        _cascade: bool,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        let Some(slot) = self.slot(name) else {
            return datafusion::common::not_impl_err!("schemas come from federation.toml only");
        };
        let mut slot = match slot.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        Ok(slot.take())
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some((link, inner)) = name.split_once('.') {
            return self.link_catalog(link)?.schema(inner);
        }
        match name {
            "pg_catalog" => slot_get(&self.pg_catalog),
            "information_schema" => slot_get(&self.information_schema),
            REF_SCHEMA => Some(Arc::new(FilteredSchema {
                prefix: vec![REF_SCHEMA.to_string()],
                tables: self.registry.reference(),
                access: self.access.clone(),
            })),
            SYSTEM_SCHEMA => Some(Arc::new(SystemSchema {
                registry: self.registry.clone(),
                access: self.access.clone(),
            })),
            MAT_SCHEMA => Some(Arc::new(MatSchema {
                pulls: self.registry.pulls.clone(),
                access: self.access.clone(),
            })),
            PUBLIC_SCHEMA => Some(Arc::new(FilteredSchema {
                prefix: vec![PUBLIC_SCHEMA.to_string()],
                tables: Arc::new(TableMap::new()),
                access: self.access.clone(),
            })),
            _ => None,
        }
    }
}

/// A schema showing only the tables the user may read.
#[derive(Debug)]
struct FilteredSchema {
    prefix: Vec<String>,
    tables: Arc<TableMap>,
    access: Arc<Access>,
}

impl FilteredSchema {
    fn visible(&self, table: &str) -> bool {
        let mut name = self.prefix.clone();
        name.push(table.to_string());
        self.access.table(&name) != TableAccess::Invisible
    }
}

#[async_trait]
impl SchemaProvider for FilteredSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables
            .keys()
            .filter(|t| self.visible(t))
            .cloned()
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let mut full = self.prefix.clone();
        full.push(name.to_string());
        let Some(table) = self.tables.get(name) else {
            return Ok(None);
        };
        let view = match self.access.table(&full) {
            TableAccess::Invisible => return Ok(None),
            TableAccess::All => table.clone(),
            // Only the granted columns exist for this user.
            TableAccess::Columns(granted) => crate::columns::granted_view(table, &granted),
        };
        // Under a row filter or masks, the user reads the table through
        // the policy and nothing else.
        Ok(Some(crate::policy::under(view, self.access.policy(&full))?))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.visible(name) && self.tables.contains_key(name)
    }
}

/// `mat.<pull>`: the current snapshot of each pull the user may read.
#[derive(Debug)]
struct MatSchema {
    pulls: Arc<crate::pulls::Pulls>,
    access: Arc<Access>,
}

impl MatSchema {
    fn visible(&self, name: &str) -> bool {
        self.pulls.get(name).is_some()
            && self
                .access
                .table(&[MAT_SCHEMA.to_string(), name.to_string()])
                != TableAccess::Invisible
    }
}

#[async_trait]
impl SchemaProvider for MatSchema {
    fn table_names(&self) -> Vec<String> {
        self.pulls
            .names()
            .into_iter()
            .filter(|n| self.visible(n) && self.pulls.dir(n).current().is_some())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if !self.visible(name) {
            return Ok(None);
        }
        let Some(table) = self.pulls.table(name).await? else {
            return Ok(None);
        };
        // A reader's own policy, never the owner's rights.
        let full = [MAT_SCHEMA.to_string(), name.to_string()];
        Ok(Some(crate::policy::under(
            table,
            self.access.policy(&full),
        )?))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.visible(name) && self.pulls.dir(name).current().is_some()
    }
}

/// `system.links`, `system.tables`, `system.grants`, computed per query for
/// the user asking.
#[derive(Debug)]
struct SystemSchema {
    registry: Arc<Registry>,
    access: Arc<Access>,
}

const SYSTEM_TABLES: &[&str] = &[
    "audit",
    "links",
    "tables",
    "columns",
    "grants",
    "pulls",
    "agreements",
    "policy",
];

/// A table the user may see, for `system.tables` and `system.columns`.
struct VisibleTable {
    catalog: String,
    schema: String,
    table: String,
    kind: &'static str,
    provider: Arc<dyn TableProvider>,
    access: TableAccess,
    policy: Option<crate::policy::TablePolicy>,
}

fn mem_table(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

impl SystemSchema {
    fn visible_links(&self) -> Vec<&Arc<LinkEntry>> {
        self.registry
            .links
            .iter()
            .filter(|(n, _)| self.access.may_see_prefix(&[n.to_string()]))
            .map(|(_, l)| l)
            .collect()
    }

    fn links(&self) -> Result<Arc<dyn TableProvider>> {
        let links = self.visible_links();
        let mut name = vec![];
        let mut kind = vec![];
        let mut status = vec![];
        let mut error = vec![];
        let mut tables = vec![];
        let mut checked = vec![];
        let mut description = vec![];
        let mut in_use = vec![];
        let mut queued = vec![];
        for l in links {
            let s = l.state();
            name.push(l.name.clone());
            kind.push(l.kind.to_string());
            let health = l.remote().and_then(|r| r.health());
            // A statement that found the source unreachable or stalled
            // since the link was last checked: degraded, with why.
            let failure = l.failure_since_check(&s);
            match (&failure, s.status) {
                (Some(f), LinkStatus::Up) => {
                    status.push("degraded".to_string());
                    error.push(Some(f.message.clone()));
                }
                _ => {
                    status.push(s.status.as_str().to_string());
                    error.push(s.error.clone());
                }
            }
            in_use.push(health.map(|h| h.in_use() as i64));
            queued.push(health.map(|h| h.queued() as i64));
            let n: usize = s
                .schemas
                .iter()
                .map(|(schema, t)| {
                    t.keys()
                        .filter(|t| {
                            self.access
                                .table(&[l.name.clone(), schema.clone(), t.to_string()])
                                != TableAccess::Invisible
                        })
                        .count()
                })
                .sum();
            tables.push(n as i64);
            checked.push(s.checked_at.and_then(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_micros() as i64)
            }));
            description.push(l.description.clone());
        }
        mem_table(
            vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("status", DataType::Utf8, false),
                Field::new("error", DataType::Utf8, true),
                Field::new("tables", DataType::Int64, false),
                Field::new(
                    "checked_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                    true,
                ),
                Field::new("description", DataType::Utf8, true),
                Field::new("connections_in_use", DataType::Int64, true),
                Field::new("queued", DataType::Int64, true),
            ],
            vec![
                Arc::new(StringArray::from(name)),
                Arc::new(StringArray::from(kind)),
                Arc::new(StringArray::from(status)),
                Arc::new(StringArray::from(error)),
                Arc::new(Int64Array::from(tables)),
                Arc::new(TimestampMicrosecondArray::from(checked).with_timezone("+00:00")),
                Arc::new(StringArray::from(description)),
                Arc::new(Int64Array::from(in_use)),
                Arc::new(Int64Array::from(queued)),
            ],
        )
    }

    /// Every table of a link or of the reference data the user may see,
    /// with what the user may read of it.
    fn visible_tables(&self) -> Vec<VisibleTable> {
        let mut out = Vec::new();
        let mut push = |catalog: &str,
                        schema: &str,
                        table: &str,
                        kind: &'static str,
                        provider: &Arc<dyn TableProvider>,
                        full: Vec<String>| {
            let access = self.access.table(&full);
            if access == TableAccess::Invisible {
                return;
            }
            out.push(VisibleTable {
                catalog: catalog.to_string(),
                schema: schema.to_string(),
                table: table.to_string(),
                kind,
                provider: provider.clone(),
                policy: self.access.policy(&full),
                access,
            });
        };
        for l in self.visible_links() {
            let s = l.state();
            for (sch, tables) in s.schemas.iter() {
                for (t, p) in tables.iter() {
                    push(
                        &l.name,
                        sch,
                        t,
                        l.kind,
                        p,
                        vec![l.name.clone(), sch.clone(), t.clone()],
                    );
                }
            }
        }
        let db = self.registry.database.clone();
        for (t, p) in self.registry.reference().iter() {
            push(
                &db,
                REF_SCHEMA,
                t,
                "reference",
                p,
                vec![REF_SCHEMA.to_string(), t.clone()],
            );
        }
        out
    }

    fn tables(&self) -> Result<Arc<dyn TableProvider>> {
        let visible = self.visible_tables();
        let text = |f: &dyn Fn(&VisibleTable) -> Option<String>| {
            Arc::new(StringArray::from(visible.iter().map(f).collect::<Vec<_>>())) as ArrayRef
        };
        mem_table(
            vec![
                Field::new("catalog", DataType::Utf8, false),
                Field::new("schema", DataType::Utf8, false),
                Field::new("table", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("columns", DataType::Int64, false),
                Field::new("access", DataType::Utf8, false),
                Field::new("labels", DataType::Utf8, true),
                Field::new("policy", DataType::Utf8, true),
            ],
            vec![
                text(&|t| Some(t.catalog.clone())),
                text(&|t| Some(t.schema.clone())),
                text(&|t| Some(t.table.clone())),
                text(&|t| Some(t.kind.to_string())),
                // The columns this user sees.
                Arc::new(Int64Array::from(
                    visible
                        .iter()
                        .map(|t| {
                            t.provider
                                .schema()
                                .fields()
                                .iter()
                                .filter(|f| t.access.allows_column(f.name()))
                                .count() as i64
                        })
                        .collect::<Vec<_>>(),
                )),
                text(&|t| {
                    Some(match &t.access {
                        TableAccess::Columns(c) => c.iter().cloned().collect::<Vec<_>>().join(", "),
                        _ => "all columns".to_string(),
                    })
                }),
                text(&|t| {
                    t.provider
                        .schema()
                        .metadata()
                        .get(crate::policy::labels::LABELS_KEY)
                        .cloned()
                }),
                // Under which grants or agreements, when a row filter or
                // masks apply (never the key).
                text(&|t| t.policy.as_ref().map(|p| p.origin.clone())),
            ],
        )
    }

    /// `system.columns`: every column the user may read, with its type,
    /// classification labels, the mask the user sees it through, and its
    /// description.
    fn columns(&self) -> Result<Arc<dyn TableProvider>> {
        let mut rows: Vec<[Option<String>; 8]> = Vec::new();
        for t in self.visible_tables() {
            let schema = t.provider.schema();
            for f in schema.fields() {
                if !t.access.allows_column(f.name()) {
                    continue;
                }
                let labels = crate::policy::labels::of_field(f);
                let mask = t.policy.as_ref().and_then(|p| p.mask_for(f));
                rows.push([
                    Some(t.catalog.clone()),
                    Some(t.schema.clone()),
                    Some(t.table.clone()),
                    Some(f.name().clone()),
                    Some(f.data_type().to_string()),
                    (!labels.is_empty()).then(|| labels.into_iter().collect::<Vec<_>>().join(", ")),
                    mask.map(|m| m.to_string()),
                    f.metadata()
                        .get(tautan_connector::types::COMMENT_KEY)
                        .cloned(),
                ]);
            }
        }
        let names = [
            "catalog",
            "schema",
            "table",
            "column",
            "data_type",
            "labels",
            "mask",
            "description",
        ];
        let fields = names
            .iter()
            .enumerate()
            .map(|(i, n)| Field::new(*n, DataType::Utf8, i >= 5))
            .collect();
        let columns = (0..names.len())
            .map(|i| {
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
                )) as ArrayRef
            })
            .collect();
        mem_table(fields, columns)
    }

    /// `system.policy`: the policy version this statement runs under.
    fn policy(&self) -> Result<Arc<dyn TableProvider>> {
        let version = self.access.version.as_ref();
        let loaded = version.map(|v| {
            chrono::DateTime::<chrono::Utc>::from(v.loaded_at)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        });
        let in_force = self
            .access
            .agreements
            .iter()
            .filter(|a| a.status == crate::policy::agreement::Status::Valid)
            .count();
        mem_table(
            vec![
                Field::new("version", DataType::Int64, true),
                Field::new("loaded_at", DataType::Utf8, true),
                Field::new("agreements", DataType::Int64, false),
                Field::new("agreements_in_force", DataType::Int64, false),
            ],
            vec![
                Arc::new(Int64Array::from(vec![version.map(|v| v.number as i64)])),
                Arc::new(StringArray::from(vec![loaded])),
                Arc::new(Int64Array::from(vec![self.access.agreements.len() as i64])),
                Arc::new(Int64Array::from(vec![in_force as i64])),
            ],
        )
    }

    /// `system.agreements`: the agreements naming the user (all of them
    /// for the custodian), with whether each grants anything now and why
    /// not.
    fn agreements(&self) -> Result<Arc<dyn TableProvider>> {
        let shown: Vec<&crate::policy::agreement::Agreement> = self
            .access
            .agreements
            .iter()
            .filter(|a| self.access.sees_agreement(a))
            .collect();
        let terms = |f: &dyn Fn(&crate::policy::agreement::Terms) -> Option<String>| {
            Arc::new(StringArray::from(
                shown
                    .iter()
                    .map(|a| a.file.as_ref().and_then(|file| f(&file.terms)))
                    .collect::<Vec<_>>(),
            )) as ArrayRef
        };
        mem_table(
            vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("producer", DataType::Utf8, true),
                Field::new("data_user", DataType::Utf8, true),
                Field::new("tables", DataType::Utf8, true),
                Field::new("purpose", DataType::Utf8, true),
                Field::new("valid_from", DataType::Utf8, true),
                Field::new("valid_until", DataType::Utf8, true),
                Field::new("status", DataType::Utf8, false),
                Field::new("reason", DataType::Utf8, true),
                Field::new("file", DataType::Utf8, false),
            ],
            vec![
                Arc::new(StringArray::from(
                    shown.iter().map(|a| a.id()).collect::<Vec<_>>(),
                )),
                terms(&|t| Some(t.producer.clone())),
                terms(&|t| {
                    t.user
                        .as_ref()
                        .map(|u| format!("user {u}"))
                        .or_else(|| t.role.as_ref().map(|r| format!("role {r}")))
                }),
                terms(&|t| Some(t.tables.join(", "))),
                terms(&|t| Some(t.purpose.clone())),
                terms(&|t| Some(t.valid_from.clone())),
                terms(&|t| Some(t.valid_until.clone())),
                Arc::new(StringArray::from(
                    shown
                        .iter()
                        .map(|a| a.status.name().to_string())
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    shown
                        .iter()
                        .map(|a| {
                            (a.status != crate::policy::agreement::Status::Valid)
                                .then(|| a.status.to_string())
                        })
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    shown
                        .iter()
                        .map(|a| {
                            a.path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        })
                        .collect::<Vec<_>>(),
                )),
            ],
        )
    }

    fn pulls(&self) -> Result<Arc<dyn TableProvider>> {
        let pulls = &self.registry.pulls;
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        let ts_array = |v: Vec<Option<i64>>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v).with_timezone("+00:00"))
        };
        let now = crate::pulls::store::now_us();
        let infos: Vec<_> = pulls
            .names()
            .iter()
            .filter(|n| {
                self.access.table(&[MAT_SCHEMA.to_string(), n.to_string()])
                    != TableAccess::Invisible
            })
            .filter_map(|n| pulls.info(n))
            .collect();
        let text = |f: &dyn Fn(&crate::pulls::PullInfo) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(infos.iter().map(f).collect::<Vec<_>>()))
        };
        let int = |f: &dyn Fn(&crate::pulls::PullInfo) -> Option<i64>| -> ArrayRef {
            Arc::new(Int64Array::from(infos.iter().map(f).collect::<Vec<_>>()))
        };
        let time = |f: &dyn Fn(&crate::pulls::PullInfo) -> Option<i64>| -> ArrayRef {
            ts_array(infos.iter().map(f).collect())
        };
        mem_table(
            vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("mode", DataType::Utf8, true),
                Field::new("schedule", DataType::Utf8, true),
                Field::new("timezone", DataType::Utf8, true),
                Field::new("next_run", ts(), true),
                Field::new("status", DataType::Utf8, true),
                Field::new("last_start", ts(), true),
                Field::new("last_end", ts(), true),
                Field::new("duration_ms", DataType::Int64, true),
                Field::new("attempts", DataType::Int64, true),
                Field::new("rows", DataType::Int64, true),
                Field::new("bytes", DataType::Int64, true),
                Field::new("last_error", DataType::Utf8, true),
                Field::new("snapshot", DataType::Int64, true),
                Field::new("snapshot_rows", DataType::Int64, true),
                Field::new("snapshot_bytes", DataType::Int64, true),
                Field::new("snapshot_created", ts(), true),
                Field::new("snapshot_age_s", DataType::Int64, true),
                Field::new("watermark", DataType::Utf8, true),
            ],
            vec![
                text(&|i| Some(i.def.name.clone())),
                text(&|i| Some(i.def.config.mode.as_str().to_string())),
                text(&|i| i.def.config.schedule.clone()),
                text(&|i| Some(i.def.config.timezone.clone())),
                time(&|i| i.next_run_us),
                text(&|i| {
                    Some(
                        i.status
                            .as_ref()
                            .map(|s| s.state.as_str())
                            .unwrap_or("never run")
                            .to_string(),
                    )
                }),
                time(&|i| i.status.as_ref().map(|s| s.started_us)),
                time(&|i| i.status.as_ref().and_then(|s| s.ended_us)),
                int(&|i| {
                    let s = i.status.as_ref()?;
                    Some((s.ended_us? - s.started_us) / 1000)
                }),
                int(&|i| i.status.as_ref().map(|s| i64::from(s.attempts))),
                int(&|i| i.status.as_ref().map(|s| s.rows as i64)),
                int(&|i| i.status.as_ref().map(|s| s.bytes as i64)),
                text(&|i| i.status.as_ref().and_then(|s| s.error.clone())),
                int(&|i| i.current.as_ref().map(|c| c.id as i64)),
                int(&|i| i.current.as_ref().map(|c| c.rows as i64)),
                int(&|i| i.current.as_ref().map(|c| c.bytes as i64)),
                time(&|i| i.current.as_ref().map(|c| c.created_us)),
                int(&|i| i.current.as_ref().map(|c| (now - c.created_us) / 1_000_000)),
                text(&|i| i.current.as_ref().and_then(|c| c.watermark.clone())),
            ],
        )
    }

    fn grants(&self) -> Result<Arc<dyn TableProvider>> {
        let rules = &self.access.rules;
        mem_table(
            vec![
                Field::new("user", DataType::Utf8, false),
                Field::new("role", DataType::Utf8, false),
                Field::new("tables", DataType::Utf8, false),
                Field::new("columns", DataType::Utf8, true),
                Field::new("row_filter", DataType::Utf8, true),
                Field::new("masks", DataType::Utf8, true),
            ],
            vec![
                Arc::new(StringArray::from(vec![
                    self.access.user.clone();
                    rules.len()
                ])),
                Arc::new(StringArray::from(
                    rules.iter().map(|r| r.role.clone()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| r.pattern.as_str().to_string())
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| {
                            r.columns
                                .as_ref()
                                .map(|c| c.iter().cloned().collect::<Vec<_>>().join(", "))
                        })
                        .collect::<Vec<_>>(),
                )),
                // The filter as the grant writes it ({attributes} unbound).
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| r.row_filter.clone())
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| {
                            (!r.masks.is_empty()).then(|| {
                                r.masks
                                    .iter()
                                    .map(|(c, m)| format!("{c}={m}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                        })
                        .collect::<Vec<_>>(),
                )),
            ],
        )
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        SYSTEM_TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name {
            "links" => self.links().map(Some),
            "tables" => self.tables().map(Some),
            "grants" => self.grants().map(Some),
            "pulls" => self.pulls().map(Some),
            "agreements" => self.agreements().map(Some),
            "columns" => self.columns().map(Some),
            "policy" => self.policy().map(Some),
            "audit" => Ok(Some(Arc::new(crate::audit::table::AuditTable::new(
                self.registry.audit_dir.clone(),
                &self.access,
            )))),
            _ => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        SYSTEM_TABLES.contains(&name)
    }
}
