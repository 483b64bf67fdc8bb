//! Parallel parts of one scan that read one snapshot.
//!
//! A large table is split into page ranges ([`page_ranges`]): PostgreSQL
//! answers `ctid >= '(a,0)' AND ctid < '(b,0)'` with a TID range scan that
//! reads only those pages. Each part runs on its own connection; for the
//! parts to see the same rows, one connection opens a `REPEATABLE READ`
//! transaction and exports its snapshot (`pg_export_snapshot()`), and every
//! part starts its own transaction with `SET TRANSACTION SNAPSHOT`. The
//! exporting transaction must stay open until the last part has imported
//! the snapshot; [`ExportedSnapshot`] counts the parts with [`Ticket`]s and
//! ends it then. The exporting connection and the parts take their slots at
//! the link's gate together, before any part takes a connection: two split
//! scans never each hold some slots while waiting for the other's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::sql::sqlparser::ast::{self, BinaryOperator, CastKind, Ident};
use deadpool_postgres::{Object, Pool};
use tautan_connector::health::{Gate, Slot};
use tautan_connector::{LinkError, SourceDialect};
use tokio::sync::OnceCell;

use crate::{pg_error, pool_error};

/// Tables smaller than this many pages (8 MiB at the default block size)
/// are read in one part: a second connection would cost more than it saves.
pub const MIN_SPLIT_PAGES: u64 = 1024;

/// Predicates splitting a table of about `pages` heap pages into `parts`
/// page ranges, or `None` when it is not worth splitting. The first range
/// has no lower bound and the last no upper bound, so the ranges cover the
/// table exactly once even when the page estimate is stale.
pub fn page_ranges(pages: u64, parts: usize) -> Option<Vec<ast::Expr>> {
    if parts < 2 || pages < MIN_SPLIT_PAGES {
        return None;
    }
    let parts = parts as u64;
    let bounds: Vec<u64> = (1..parts).map(|i| pages * i / parts).collect();
    let mut out = Vec::with_capacity(parts as usize);
    for i in 0..parts as usize {
        let lower = i.checked_sub(1).map(|j| bounds[j]);
        let upper = bounds.get(i).copied();
        let from = |page| ctid_compare(BinaryOperator::GtEq, page);
        let to = |page| ctid_compare(BinaryOperator::Lt, page);
        out.push(match (lower, upper) {
            (None, Some(u)) => to(u)?,
            (Some(l), Some(u)) => ast::Expr::BinaryOp {
                left: Box::new(from(l)?),
                op: BinaryOperator::And,
                right: Box::new(to(u)?),
            },
            (Some(l), None) => from(l)?,
            (None, None) => return None,
        });
    }
    Some(out)
}

/// `ctid <op> '(page,0)'::tid`
fn ctid_compare(op: BinaryOperator, page: u64) -> Option<ast::Expr> {
    let tid = ast::Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(ast::Expr::value(ast::Value::SingleQuotedString(format!(
            "({page},0)"
        )))),
        data_type: SourceDialect::Postgres.data_type("tid").ok()?,
        array: false,
        format: None,
    };
    Some(ast::Expr::BinaryOp {
        left: Box::new(ast::Expr::Identifier(Ident::new("ctid"))),
        op,
        right: Box::new(tid),
    })
}

/// The snapshot the parts of one scan share, exported on first use.
pub struct ExportedSnapshot {
    pool: Pool,
    link: String,
    /// Parts that have not yet imported the snapshot (or given up).
    waiting: AtomicUsize,
    id: OnceCell<String>,
    exporter: Mutex<Option<Exporter>>,
    /// The parts' slots, taken with the exporter's in one go.
    slots: Mutex<Vec<Slot>>,
    /// Whether those were taken before any part was read
    /// ([`Self::start_ahead`]); `None` until the first part asks.
    ahead: Mutex<Option<bool>>,
}

impl ExportedSnapshot {
    /// A snapshot to be shared by `parts` parts; nothing is contacted yet.
    pub fn new(pool: Pool, link: String, parts: usize) -> Self {
        Self {
            pool,
            link,
            waiting: AtomicUsize::new(parts),
            id: OnceCell::new(),
            exporter: Mutex::new(None),
            slots: Mutex::new(Vec::new()),
            ahead: Mutex::new(None),
        }
    }

    /// Whether the parts may start before they are read: the slots of
    /// every part and of the exporter were taken at once, while the link
    /// had them to spare ([`Gate::try_enter_ahead_many`]). Asked by each
    /// part when executed; the first one takes them.
    pub fn start_ahead(&self, gate: &Gate) -> bool {
        let mut ahead = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(taken) = *ahead {
            return taken;
        }
        let parts = self.waiting.load(Ordering::Acquire);
        let taken = match gate.try_enter_ahead_many(parts + 1) {
            Some(slots) => {
                *self.slots.lock().unwrap_or_else(|p| p.into_inner()) = slots;
                true
            }
            None => false,
        };
        *ahead = Some(taken);
        taken
    }

    /// A slot taken for a part with the exporter's ([`Self::id`]), while
    /// any is left.
    pub fn part_slot(&self) -> Option<Slot> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Registers one part; dropping the ticket says the part has imported
    /// the snapshot (or will never need it).
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket(self.clone())
    }

    /// The snapshot id, exporting it on the first call. That call takes
    /// the slots of the exporting connection and of every part at `gate`
    /// at once; the parts pick theirs up with [`Self::part_slot`].
    pub async fn id(&self, gate: &Gate) -> Result<String, LinkError> {
        self.id
            .get_or_try_init(|| async {
                // Taken ahead, or now, all at once.
                let taken =
                    std::mem::take(&mut *self.slots.lock().unwrap_or_else(|p| p.into_inner()));
                let mut slots = if taken.is_empty() {
                    let parts = self.waiting.load(Ordering::Acquire);
                    gate.enter_many(parts + 1).await?
                } else {
                    taken
                };
                let slot = slots.pop();
                *self.slots.lock().unwrap_or_else(|p| p.into_inner()) = slots;
                let client = self
                    .pool
                    .get()
                    .await
                    .map_err(|e| pool_error(&self.link, e))?;
                let mut exporter = Exporter(Some(client), slot);
                let Some(c) = exporter.0.as_ref() else {
                    return Err(LinkError::new(
                        &self.link,
                        tautan_connector::LinkErrorKind::Unavailable,
                        "no connection to export a snapshot",
                    ));
                };
                c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .map_err(|e| pg_error(&self.link, e))?;
                let row = c
                    .query_one("SELECT pg_export_snapshot()", &[])
                    .await
                    .map_err(|e| pg_error(&self.link, e))?;
                let id: String = row.try_get(0).map_err(|e| pg_error(&self.link, e))?;
                // Only quote-free ids are ever spliced into SQL.
                if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                    return Err(LinkError::new(
                        &self.link,
                        tautan_connector::LinkErrorKind::Query,
                        format!("unexpected snapshot id {id:?}"),
                    ));
                }
                let mut held = self.exporter.lock().unwrap_or_else(|p| p.into_inner());
                *held = exporter
                    .0
                    .take()
                    .map(|c| Exporter(Some(c), exporter.1.take()));
                Ok(id)
            })
            .await
            .cloned()
    }

    fn part_done(&self) {
        if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Slots of parts that never started go back too.
            self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let exporter = self
                .exporter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(exporter) = exporter {
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(exporter.finish());
                    }
                    Err(_) => drop(exporter),
                }
            }
        }
    }
}

/// One part's claim on the exporting transaction.
pub struct Ticket(Arc<ExportedSnapshot>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.part_done();
    }
}

/// The connection holding the exported snapshot, and its slot at the
/// link's gate. Ended with `COMMIT` when every part has imported it; if
/// dropped otherwise, the connection is closed rather than returned to the
/// pool with a transaction open. The slot is given back after either.
struct Exporter(Option<Object>, Option<Slot>);

impl Exporter {
    async fn finish(mut self) {
        if let Some(client) = self.0.take() {
            if client.batch_execute("COMMIT").await.is_err() {
                drop(Object::take(client));
            }
        }
        self.1.take();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
        self.1.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_table_once() {
        assert_eq!(page_ranges(100, 2), None, "small tables are not split");
        assert_eq!(page_ranges(5000, 1), None);
        assert_eq!(
            page_ranges(3000, 3)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![
                "ctid < '(1000,0)'::tid",
                "ctid >= '(1000,0)'::tid AND ctid < '(2000,0)'::tid",
                "ctid >= '(2000,0)'::tid",
            ]
        );
    }
}
