//! What the engine writes to the audit log, and when: a login or a refused
//! one, a statement's intent (durable before any link is contacted), its
//! completion (rows, bytes, duration, SQLSTATE, the SQL each link got), a
//! statement refused by policy, a logout.
//!
//! [`Trail`] is the engine's handle on the log (off when the config has no
//! `[audit]`). A statement is recorded through a [`Recording`]:
//! [`Trail::intent`] returns it once the intent is on disk, the caller
//! hands its stream to [`Recording::watch`], and the completion is written
//! when the stream ends — or, when the client stops reading first, when it
//! is dropped. When the log cannot be written, [`Trail::intent`] and
//! [`Trail::login`] fail with SQLSTATE 58030 and nothing runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use tautan_connector::sent::SentStatements;

use super::{AuditError, AuditLog, Entry, Kind, Pending, Seq};
use crate::error::QueryError;
use crate::metrics::Metrics;

/// Where a session comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The interface: `postgres`, `query` (CLI), `export` (CLI),
    /// `pull:<name>`, `local` (a session the engine made for itself).
    pub door: String,
    /// The client's address, when it has one.
    pub address: Option<String>,
}

impl Origin {
    /// A session reached through `door` from `address`.
    pub fn new(door: impl Into<String>, address: Option<String>) -> Self {
        Origin {
            door: door.into(),
            address,
        }
    }
}

/// Who is behind a statement, as the audit log names them.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// The login.
    pub user: String,
    /// Its roles under the policy the statement runs with.
    pub roles: Vec<String>,
    /// `application_name`, as the client set it.
    pub application: Option<String>,
    /// `tautan.purpose`, as the client set it.
    pub purpose: Option<String>,
    /// Where the session comes from.
    pub origin: Origin,
}

impl Who {
    fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("user".into(), json!(self.user));
        m.insert("roles".into(), json!(self.roles));
        m.insert("door".into(), json!(self.origin.door));
        if let Some(a) = &self.origin.address {
            m.insert("client".into(), json!(a));
        }
        if let Some(a) = &self.application {
            m.insert("application".into(), json!(a));
        }
        if let Some(p) = &self.purpose {
            m.insert("purpose".into(), json!(p));
        }
        m
    }
}

/// One table a statement reads, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRead {
    /// `catalog.schema.table` (a link's name first).
    pub table: String,
    /// The columns it reads there.
    pub columns: Vec<String>,
    /// The agreement(s) the table is read under, if any.
    pub agreements: Option<String>,
    /// Read under a row filter or masks.
    pub policed: bool,
}

/// What the log says about a checked statement, known before it runs.
#[derive(Debug, Clone, Default)]
pub struct StatementFacts {
    /// The statement as tautan read it (one statement of what was sent).
    pub sql: String,
    /// The tables and columns it reads.
    pub reads: Vec<TableRead>,
    /// The policy version it was checked under.
    pub policy_version: Option<u64>,
}

/// The engine's handle on the audit log, and on the metrics that count
/// the same events ([`crate::metrics`]; kept when the log is off).
#[derive(Debug, Clone, Default)]
pub struct Trail {
    log: Option<Arc<AuditLog>>,
    metrics: Arc<Metrics>,
}

impl Trail {
    /// A trail writing to `log`.
    pub fn new(log: Arc<AuditLog>) -> Self {
        Trail {
            log: Some(log),
            metrics: Arc::default(),
        }
    }

    /// No audit log (`[audit]` absent).
    pub fn off() -> Self {
        Trail::default()
    }

    /// This trail, counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether statements are recorded (what only the log needs — the
    /// statement's text, the columns it reads — is not computed otherwise).
    pub fn is_on(&self) -> bool {
        self.log.is_some()
    }

    /// The log, when there is one.
    pub fn log(&self) -> Option<&Arc<AuditLog>> {
        self.log.as_ref()
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    async fn append(&self, entry: Entry) -> Result<Option<Seq>, QueryError> {
        match &self.log {
            None => Ok(None),
            Some(log) => {
                let started = Instant::now();
                let appended = log.append(entry).await;
                self.metrics.audit_appended(started.elapsed().as_secs_f64());
                appended.map(Some).map_err(unwritable)
            }
        }
    }

    /// The server started (what it serves and under which policy).
    pub async fn startup(&self, fields: Value) -> Result<(), QueryError> {
        self.append(Entry::new(Kind::Startup, fields))
            .await
            .map(|_| ())
    }

    /// The server stops: a shutdown record, then a last checkpoint.
    pub async fn shutdown(&self) {
        let Some(log) = &self.log else { return };
        if let Err(e) = self.append(Entry::new(Kind::Shutdown, json!({}))).await {
            tracing::error!(error = %e, "the shutdown could not be recorded");
        }
        if let Err(e) = log.close().await {
            tracing::error!(error = %e, "the audit log could not be closed cleanly");
        }
    }

    /// A link's status changed (the yearly report's availability).
    pub async fn link_changed(&self, link: &str, status: &str, error: Option<&str>) {
        let mut fields = json!({ "link": link, "status": status });
        if let (Some(e), Value::Object(m)) = (error, &mut fields) {
            m.insert("error".into(), json!(e));
        }
        if let Err(e) = self.append(Entry::new(Kind::Link, fields)).await {
            tracing::error!(error = %e, "a link status change could not be recorded");
        }
    }

    /// A successful login; the login is refused when it cannot be written.
    pub async fn login(&self, who: &Who) -> Result<(), QueryError> {
        self.metrics.login("ok");
        self.append(Entry::new(Kind::Login, Value::Object(who.fields())))
            .await
            .map(|_| ())
    }

    /// A refused login: the user name as given, the address, why.
    pub async fn login_failed(&self, user: &str, origin: &Origin, reason: &str) {
        self.metrics.login(reason);
        let who = Who {
            user: user.to_string(),
            origin: origin.clone(),
            ..Who::default()
        };
        let mut fields = who.fields();
        fields.remove("roles");
        fields.insert("reason".into(), json!(reason));
        if let Err(e) = self
            .append(Entry::new(Kind::LoginFailed, Value::Object(fields)))
            .await
        {
            tracing::error!(error = %e, "a refused login could not be recorded");
        }
    }

    /// A session ended (handed to the writer: nothing waits for it).
    pub fn logout(&self, who: &Who, statements: u64) {
        let Some(log) = &self.log else {
            return;
        };
        let mut fields = who.fields();
        fields.insert("statements".into(), json!(statements));
        let entry = Entry::new(Kind::Logout, Value::Object(fields));
        if let Err(e) = log.enqueue(entry) {
            tracing::error!(error = %e, "a logout could not be recorded");
        }
    }

    /// A statement refused by policy (or as a write) before anything ran.
    pub async fn denied(&self, who: &Who, sql: &str, error: &QueryError) -> Result<(), QueryError> {
        self.metrics.denied(&who.user, &error.code);
        let mut fields = who.fields();
        fields.insert("sql".into(), json!(sql));
        fields.insert("decision".into(), json!("denied"));
        fields.insert("sqlstate".into(), json!(error.code));
        fields.insert("reason".into(), json!(error.message));
        self.append(Entry::new(Kind::Denied, Value::Object(fields)))
            .await
            .map(|_| ())
    }

    /// Writes the intent of a statement about to run and returns what
    /// records its completion. Resolves once the intent is durable; the
    /// statement must not contact a link before.
    pub async fn intent(
        &self,
        who: &Who,
        facts: &StatementFacts,
        params: Option<&ParamValues>,
    ) -> Result<Recording, QueryError> {
        self.submit_intent(who, facts, params)?.durable().await
    }

    /// Hands the intent of a statement about to run to the writer without
    /// waiting for it: the statement may plan meanwhile (planning contacts
    /// no source), and must have [`PendingIntent::durable`] resolve before
    /// it contacts a link or answers anything.
    pub fn submit_intent(
        &self,
        who: &Who,
        facts: &StatementFacts,
        params: Option<&ParamValues>,
    ) -> Result<PendingIntent, QueryError> {
        let recording = Recording {
            log: None,
            metrics: self.metrics.clone(),
            user: who.user.clone(),
            intent: 0,
            sent: Arc::new(SentStatements::default()),
            started: Instant::now(),
            rows: 0,
            bytes: 0,
            finished: AtomicBool::new(false),
        };
        let Some(log) = &self.log else {
            return Ok(PendingIntent {
                recording: Some(recording),
                pending: None,
            });
        };
        let mut fields = who.fields();
        fields.insert("sql".into(), json!(facts.sql));
        if let Some(p) = params {
            fields.insert("params".into(), params_json(p));
        }
        fields.insert("decision".into(), json!("allowed"));
        fields.insert(
            "reads".into(),
            Value::Array(facts.reads.iter().map(read_json).collect()),
        );
        let agreements: Vec<&str> = facts
            .reads
            .iter()
            .filter_map(|r| r.agreements.as_deref())
            .collect();
        if !agreements.is_empty() {
            fields.insert("agreements".into(), json!(agreements));
        }
        if let Some(v) = facts.policy_version {
            fields.insert("policy_version".into(), json!(v));
        }
        let pending = log
            .submit(Entry::new(Kind::Intent, Value::Object(fields)))
            .map_err(unwritable)?;
        Ok(PendingIntent {
            recording: Some(recording),
            pending: Some((log.clone(), pending, Instant::now())),
        })
    }
}

/// An intent handed to the writer, not yet known to be on disk
/// ([`Trail::submit_intent`]).
pub struct PendingIntent {
    /// `None` once [`PendingIntent::durable`] took it.
    recording: Option<Recording>,
    pending: Option<(Arc<AuditLog>, Pending, Instant)>,
}

impl std::fmt::Debug for PendingIntent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingIntent")
            .field("logged", &self.pending.is_some())
            .finish()
    }
}

/// A recording of `intent` in `log`.
fn attach(mut recording: Recording, log: Arc<AuditLog>, intent: Seq) -> Recording {
    recording.intent = intent;
    recording.log = Some(log);
    recording.started = Instant::now();
    recording
}

impl PendingIntent {
    /// The list the statement's link nodes write what they send to (as
    /// [`Recording::sent`]; usable while the intent is on its way).
    pub fn sent(&self) -> Arc<SentStatements> {
        self.recording
            .as_ref()
            .map(Recording::sent)
            .unwrap_or_default()
    }

    /// Resolves once the intent is durable, with what records the
    /// statement's completion; 58030 when it cannot be written.
    pub async fn durable(mut self) -> Result<Recording, QueryError> {
        let recording = self
            .recording
            .take()
            .ok_or_else(|| QueryError::new("XX000", "the intent was already taken"))?;
        let Some((log, pending, submitted)) = self.pending.take() else {
            return Ok(recording);
        };
        let seq = pending.durable().await;
        recording
            .metrics
            .audit_appended(submitted.elapsed().as_secs_f64());
        Ok(attach(recording, log, seq.map_err(unwritable)?))
    }
}

impl Drop for PendingIntent {
    /// A statement given up before its intent was known durable (a panic
    /// while planning, a client gone): its completion follows the intent
    /// as `abandoned`, so the log holds no open intent for it.
    fn drop(&mut self) {
        let (Some(recording), Some((log, pending, _))) =
            (self.recording.take(), self.pending.take())
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Ok(seq) = pending.durable().await {
                drop(attach(recording, log, seq));
            }
        });
    }
}

/// 58030 (io_error): the log cannot be written, so nothing runs.
fn unwritable(e: AuditError) -> QueryError {
    let mut q = QueryError::new(
        "58030",
        format!("the audit log cannot be written, so statements are refused: {e}"),
    );
    q.hint = Some("the custodian must repair the audit log's disk and restart tautan".into());
    q
}

fn read_json(r: &TableRead) -> Value {
    let mut m = Map::new();
    m.insert("table".into(), json!(r.table));
    m.insert("columns".into(), json!(r.columns));
    if let Some(a) = &r.agreements {
        m.insert("agreements".into(), json!(a));
    }
    if r.policed {
        m.insert("policed".into(), json!(true));
    }
    Value::Object(m)
}

/// Parameter values as text (NULL as JSON null).
fn params_json(params: &ParamValues) -> Value {
    let text = |v: &datafusion::common::ScalarValue| {
        if v.is_null() {
            Value::Null
        } else {
            Value::String(v.to_string())
        }
    };
    match params {
        ParamValues::List(list) => Value::Array(list.iter().map(|p| text(&p.value)).collect()),
        ParamValues::Map(map) => {
            let sorted: std::collections::BTreeMap<_, _> = map.iter().collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, p)| (k.clone(), text(&p.value)))
                    .collect(),
            )
        }
    }
}

/// A running statement's record: counts what it returns and writes its
/// completion (and its metrics) once.
#[derive(Debug)]
pub struct Recording {
    log: Option<Arc<AuditLog>>,
    metrics: Arc<Metrics>,
    user: String,
    intent: Seq,
    sent: Arc<SentStatements>,
    started: Instant,
    rows: u64,
    bytes: u64,
    finished: AtomicBool,
}

impl Recording {
    /// The list the statement's link nodes write what they send to (put it
    /// in the session config the statement runs with).
    pub fn sent(&self) -> Arc<SentStatements> {
        self.sent.clone()
    }

    /// The intent's seq (0 when the log is off).
    pub fn intent_seq(&self) -> Seq {
        self.intent
    }

    fn count(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        self.bytes += tautan_connector::sent::arrow_bytes(batch);
    }

    /// Counts the statement's end in the metrics and returns its completion
    /// record (None when already done, or when the log is off).
    fn completion(&self, sqlstate: &str, ended: &str) -> Option<(Arc<AuditLog>, Entry)> {
        if self.finished.swap(true, Ordering::AcqRel) {
            return None;
        }
        let runs = self.sent.runs();
        let outcome = match (sqlstate, ended) {
            (_, "abandoned") => "abandoned",
            ("00000", _) => "ok",
            ("57014", _) => "cancelled",
            _ => "error",
        };
        self.metrics.statement(&self.user, outcome, &runs);
        let log = self.log.clone()?;
        let links: Vec<Value> = self
            .sent
            .list()
            .into_iter()
            .map(|s| json!({ "link": s.link, "sql": s.sql }))
            .collect();
        let reads: Vec<Value> = runs
            .iter()
            .map(|r| {
                json!({
                    "link": r.link,
                    "rows": r.rows,
                    "bytes": r.bytes,
                    "ms": millis(r.seconds),
                    "ended": r.outcome,
                })
            })
            .collect();
        let fields = json!({
            "rows": self.rows,
            "bytes": self.bytes,
            "duration_ms": millis(self.started.elapsed().as_secs_f64()),
            "sqlstate": sqlstate,
            "ended": ended,
            "links": links,
            "link_reads": reads,
        });
        Some((log, Entry::completion(self.intent, fields)))
    }

    /// Writes the completion now (for a statement that ends without a
    /// stream, e.g. one that failed to start).
    pub fn finish(self, sqlstate: &str) {
        let ended = if sqlstate == "00000" {
            "finished"
        } else {
            "failed"
        };
        self.finish_with(sqlstate, ended);
    }

    /// `stream`, counted; the completion is written when it ends (before
    /// the end is passed on), or when it is dropped unfinished.
    pub fn watch(self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let schema = stream.schema();
        let watched = futures::stream::unfold(Some((stream, self)), |state| async move {
            let (mut stream, mut rec) = state?;
            match stream.next().await {
                Some(Ok(batch)) => {
                    rec.count(&batch);
                    Some((Ok(batch), Some((stream, rec))))
                }
                Some(Err(e)) => {
                    let code = QueryError::from(&e).code;
                    drop(stream);
                    rec.finish_with(&code, "failed");
                    Some((Err(e), None))
                }
                None => {
                    drop(stream);
                    rec.finish_with("00000", "finished");
                    None
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, watched))
    }

    /// Hands the completion to the log. Not awaited: the intent was made
    /// durable before the statement ran; the completion is sealed in order
    /// and synced with the next group commit (a crash before that leaves the
    /// intent open, which `tautan audit verify` reports).
    fn finish_with(&self, sqlstate: &str, ended: &str) {
        if let Some((log, entry)) = self.completion(sqlstate, ended) {
            if let Err(e) = log.enqueue(entry) {
                tracing::error!(error = %e, "a completion could not be written");
            }
        }
    }
}

impl Drop for Recording {
    /// A statement whose reader stopped first (a closed portal, a client
    /// gone, a LIMIT met by the caller): its completion says so.
    fn drop(&mut self) {
        self.finish_with("57014", "abandoned");
    }
}

/// Seconds as milliseconds, to the microsecond.
fn millis(seconds: f64) -> f64 {
    (seconds * 1_000_000.0).round() / 1000.0
}
