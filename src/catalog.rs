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
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
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
    /// A web service's endpoints.
    Http {
        /// The client, its limits and secrets.
        link: Arc<tautan_http::HttpLink>,
        /// One table per endpoint.
        tables: Vec<tautan_http::Endpoint>,
    },
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
    /// What it was built from ([`LinkEntry::with_declaration`]): a reload
    /// rebuilds the link when this changes.
    declaration: String,
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
            declaration: String::new(),
        }
    }

    /// The link with the config's classification labels, written into
    /// each table's schema as it is introspected.
    pub fn with_labels(mut self, labels: crate::policy::labels::Classification) -> Self {
        self.labels = labels;
        self
    }

    /// The link built from `declaration` (its config section, as text).
    pub fn with_declaration(mut self, declaration: String) -> Self {
        self.declaration = declaration;
        self
    }

    /// What the link was built from.
    pub fn declaration(&self) -> &str {
        &self.declaration
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

    /// The web service and its endpoints, for a link of kind `http`.
    pub fn http(&self) -> Option<(&Arc<tautan_http::HttpLink>, &[tautan_http::Endpoint])> {
        match &self.source {
            LinkSource::Http { link, tables } => Some((link, tables)),
            _ => None,
        }
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
            LinkSource::Http { link, tables } => {
                // Reachable, and answering what is declared: the first
                // endpoint's first page is read (undeclared columns are
                // read from a first page anyway).
                if let Some(first) = tables.iter().find(|t| !t.columns.is_empty()) {
                    tautan_http::table::probe(link, first)
                        .await
                        .map_err(|e| (e.to_string(), e.client_sqlstate().to_string()))?;
                }
                let mut map = TableMap::new();
                for endpoint in tables {
                    let schema = tautan_http::table::infer_schema(link, endpoint)
                        .await
                        .map_err(|e| (e.to_string(), e.client_sqlstate().to_string()))?;
                    let schema = self.labels.labeled(PUBLIC_SCHEMA, &endpoint.name, &schema);
                    let table = tautan_http::HttpTable::new(link.clone(), endpoint.clone(), schema);
                    map.insert(
                        endpoint.name.clone(),
                        Arc::new(table) as Arc<dyn TableProvider>,
                    );
                }
                let mut schemas = SchemaMap::new();
                schemas.insert(PUBLIC_SCHEMA.to_string(), Arc::new(map));
                Ok(schemas)
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

/// Links by name.
pub type LinkMap = BTreeMap<String, Arc<LinkEntry>>;

/// Every link and the reference data.
#[derive(Debug)]
pub struct Registry {
    /// The default catalog's name (the federation as a database).
    pub database: String,
    /// Links by name: replaced whole when a reload adds, changes or
    /// removes links ([`Registry::replace_links`]); a statement keeps the
    /// entries it planned with.
    links: RwLock<Arc<LinkMap>>,
    /// Reference tables (`ref.*`).
    pub reference: RwLock<Arc<TableMap>>,
    /// Materialized pulls (`mat.*`).
    pub pulls: Arc<crate::pulls::Pulls>,
    /// The audit log's folder (`system.audit`), when the log is on.
    pub audit_dir: Option<std::path::PathBuf>,
}

impl Registry {
    /// A registry of `links`, the reference data and the pulls.
    pub fn new(
        database: String,
        links: LinkMap,
        reference: TableMap,
        pulls: Arc<crate::pulls::Pulls>,
        audit_dir: Option<PathBuf>,
    ) -> Self {
        Registry {
            database,
            links: RwLock::new(Arc::new(links)),
            reference: RwLock::new(Arc::new(reference)),
            pulls,
            audit_dir,
        }
    }

    /// Contacts every link concurrently; a link that fails is marked down
    /// and startup goes on.
    pub async fn refresh_all(&self) {
        let links = self.links();
        let tasks = links.values().map(|l| l.refresh());
        futures::future::join_all(tasks).await;
    }

    /// Every link now.
    pub fn links(&self) -> Arc<LinkMap> {
        match self.links.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The link named `name`.
    pub fn link(&self, name: &str) -> Option<Arc<LinkEntry>> {
        self.links().get(name).cloned()
    }

    /// Serves `links` from now on (statements already planned keep the
    /// entries they hold).
    pub fn replace_links(&self, links: LinkMap) {
        match self.links.write() {
            Ok(mut l) => *l = Arc::new(links),
            Err(p) => *p.into_inner() = Arc::new(links),
        }
    }

    /// The reference data tables (`ref.*`), as last loaded.
    pub fn reference(&self) -> Arc<TableMap> {
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
                if self.links().contains_key(link) {
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
        Some(Arc::new(LinkCatalog { link, access }))
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
                link,
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
        for link in self.registry.links().keys() {
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
            SYSTEM_SCHEMA => Some(Arc::new(crate::system::SystemSchema::new(
                self.registry.clone(),
                self.access.clone(),
            ))),
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
