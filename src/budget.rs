//! Budgets: no single statement may take the process, or other users,
//! down with it.
//!
//! - **Memory.** All sessions draw from one DataFusion memory pool of
//!   `[server] memory_limit_mb` ([`FairSpillPool`]: sorts, aggregates and
//!   joins that can spill to disk share it fairly and spill under
//!   `[server] spill_dir`); each session may hold at most
//!   `query_memory_mb` of it ([`SessionPool`]). What cannot spill fails
//!   with 53200 (`out of memory`), never an allocation that kills the
//!   process.
//! - **Values computed from a number in the query** (`repeat('x', 1e9)`,
//!   `lpad`, `rpad`, `range`, `generate_series`, `array_repeat`) allocate
//!   outside any pool: they are wrapped ([`bounded_functions`]) and refuse
//!   results larger than [`MAX_VALUE_BYTES`] / [`MAX_ARRAY_ELEMENTS`] with
//!   54000 (`program_limit_exceeded`), as PostgreSQL refuses
//!   `repeat('x', 2000000000)`.
//! - **Joins that outgrow the share.** DataFusion's hash join keeps its
//!   build side in memory and cannot spill. A statement whose hash join
//!   runs out of memory before its first row is planned once more with
//!   sort-merge joins, whose sorts spill ([`execute_spilling_joins`]);
//!   only what still cannot fit ends with 53200.
//! - **Time.** `statement_timeout` (session setting, per-user default,
//!   capped by `[server] statement_timeout_max_ms`) ends a statement with
//!   57014 and cancels what it started at the sources ([`statement_timeout`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::StreamExt;

use crate::config::ServerConfig;
use crate::error::QueryError;

/// Largest string or binary value a function may build from a number.
pub const MAX_VALUE_BYTES: usize = 64 * 1024 * 1024;

/// Largest array a function may build from a number.
pub const MAX_ARRAY_ELEMENTS: usize = 10_000_000;

/// The process-wide memory pool and spill space.
#[derive(Debug)]
pub struct Budget {
    runtime: Arc<RuntimeEnv>,
    per_session: usize,
}

impl Budget {
    /// The budget `[server]` describes.
    pub fn new(server: &ServerConfig) -> Result<Self> {
        let total = server
            .memory_limit_mb
            .saturating_mul(1024 * 1024)
            .max(64 << 20);
        let per_session = server
            .query_memory_mb
            .saturating_mul(1024 * 1024)
            .clamp(16 << 20, total);
        let disk = match &server.spill_dir {
            Some(dir) => DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
            None => DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
        };
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(total)))
            .with_disk_manager_builder(disk)
            .build_arc()?;
        Ok(Self {
            runtime,
            per_session,
        })
    }

    /// A runtime for one session: the shared pool, through the session's
    /// own share of it.
    pub fn session_runtime(&self) -> Arc<RuntimeEnv> {
        let shared = &self.runtime;
        Arc::new(RuntimeEnv {
            memory_pool: Arc::new(SessionPool {
                shared: shared.memory_pool.clone(),
                limit: self.per_session,
                used: AtomicUsize::new(0),
            }),
            disk_manager: shared.disk_manager.clone(),
            cache_manager: shared.cache_manager.clone(),
            object_store_registry: shared.object_store_registry.clone(),
        })
    }

    /// Bytes reserved by every session now.
    pub fn reserved(&self) -> usize {
        self.runtime.memory_pool.reserved()
    }
}

/// One session's share of the shared pool: its reservations count against
/// both its own limit and the shared pool.
#[derive(Debug)]
pub struct SessionPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl std::fmt::Display for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session share {} of {} bytes",
            self.used.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for SessionPool {
    fn name(&self) -> &str {
        "tautan_session"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.shared.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.shared.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let before = self.used.fetch_add(additional, Ordering::Relaxed);
        if before.saturating_add(additional) > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the statement needs more than its share of memory ({} MiB; \
                 [server] query_memory_mb): {} wanted {additional} more bytes",
                self.limit >> 20,
                reservation.consumer().name()
            )));
        }
        self.shared
            .try_grow(reservation, additional)
            .inspect_err(|_| {
                self.used.fetch_sub(additional, Ordering::Relaxed);
            })
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// Runs a query plan under `state`; when its plan has a hash join and the
/// statement runs out of memory before its first row, it is planned again
/// with sort-merge joins (which spill to disk) and run once more.
///
/// Nothing has reached the client when the retry happens, so the answer is
/// whole either way; the sources are read a second time. A statement that
/// fails after rows were sent keeps its error.
pub async fn execute_spilling_joins(
    state: SessionState,
    plan: LogicalPlan,
) -> Result<SendableRecordBatchStream> {
    let physical = state.create_physical_plan(&plan).await?;
    execute_planned(state, plan, physical)
}

/// [`execute_spilling_joins`] of a plan already made physical from `plan`
/// (by `state`): for a caller that plans while something else finishes.
pub fn execute_planned(
    state: SessionState,
    plan: LogicalPlan,
    physical: Arc<dyn ExecutionPlan>,
) -> Result<SendableRecordBatchStream> {
    let retry = state.config().options().optimizer.prefer_hash_join && has_hash_join(&physical);
    let mut stream = execute_stream(physical, Arc::new(TaskContext::from(&state)))?;
    if !retry {
        return Ok(stream);
    }
    let schema = stream.schema();
    let decided = futures::stream::once(async move {
        let first = stream.next().await;
        match first {
            Some(Err(e)) if out_of_memory(&e) => {
                drop(stream);
                tracing::info!(error = %e, "a hash join ran out of memory; planning again with sort-merge joins");
                let mut state = state;
                state.config_mut().options_mut().optimizer.prefer_hash_join = false;
                let again = async {
                    let physical = state.create_physical_plan(&plan).await?;
                    execute_stream(physical, Arc::new(TaskContext::from(&state)))
                };
                match again.await {
                    Ok(stream) => stream.boxed(),
                    Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                }
            }
            first => futures::stream::iter(first).chain(stream).boxed(),
        }
    })
    .flatten();
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, decided)))
}

/// Whether `plan` joins by hash anywhere.
fn has_hash_join(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.name() == "HashJoinExec" || plan.children().into_iter().any(has_hash_join)
}

/// Whether `e` is (caused by) running out of the memory budget.
fn out_of_memory(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}

/// `statement_timeout` as PostgreSQL reads it (`0` = none; a bare number
/// is milliseconds; `ms`, `s`, `min`, `h`, `d` units), capped by `max`.
pub fn statement_timeout(setting: Option<&str>, max: Option<Duration>) -> Option<Duration> {
    let asked = setting.and_then(parse_duration).filter(|d| !d.is_zero());
    match (asked, max) {
        (Some(a), Some(m)) => Some(a.min(m)),
        (a, m) => a.or(m),
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim().trim_matches('\'').trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1e3,
        "min" => n * 60e3,
        "h" => n * 3_600e3,
        "d" => n * 86_400e3,
        "us" => n / 1e3,
        _ => return None,
    };
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_micros((ms * 1e3) as u64))
}

/// DataFusion's functions that build a value whose size comes from an
/// argument, wrapped to refuse sizes over the limits above.
pub fn bounded_functions(registry: &dyn datafusion::execution::FunctionRegistry) -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    for (name, kind) in [
        ("repeat", Bound::Repeat),
        ("lpad", Bound::Pad),
        ("rpad", Bound::Pad),
        ("range", Bound::Range),
        ("generate_series", Bound::Range),
        ("array_repeat", Bound::ArrayRepeat),
    ] {
        if let Ok(inner) = registry.udf(name) {
            out.push(ScalarUDF::new_from_impl(Bounded {
                inner: inner.as_ref().clone(),
                kind,
            }));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bound {
    /// `repeat(text, n)`: len(text) * n bytes.
    Repeat,
    /// `lpad(text, n[, fill])`: n characters.
    Pad,
    /// `range(start, stop[, step])`: (stop - start) / step elements.
    Range,
    /// `array_repeat(x, n)`: n elements.
    ArrayRepeat,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: ScalarUDF,
    kind: Bound,
}

fn too_large(what: &str) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::new(
        "54000",
        format!("requested {what} is too large"),
    )))
}

/// Integer values of argument `i` (a scalar or a column), for checking.
fn integers(args: &[ColumnarValue], i: usize) -> Vec<Option<i64>> {
    let Some(arg) = args.get(i) else {
        return vec![];
    };
    match arg {
        ColumnarValue::Scalar(s) => vec![s.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(n) => n,
            _ => None,
        })],
        ColumnarValue::Array(a) => match datafusion::arrow::compute::cast(a, &DataType::Int64) {
            Ok(c) => c
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .iter()
                .collect(),
            Err(_) => vec![],
        },
    }
}

/// Longest string (bytes) of argument `i`.
fn longest(args: &[ColumnarValue], i: usize) -> usize {
    match args.get(i) {
        Some(ColumnarValue::Scalar(s)) => s.try_as_str().flatten().map(str::len).unwrap_or(0),
        Some(ColumnarValue::Array(a)) => match datafusion::arrow::compute::cast(a, &DataType::Utf8)
        {
            Ok(c) => c
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::len)
                .max()
                .unwrap_or(0),
            Err(_) => 0,
        },
        None => 0,
    }
}

impl Bounded {
    fn check(&self, args: &[ColumnarValue]) -> Result<()> {
        let max_n = |i| integers(args, i).into_iter().flatten().max().unwrap_or(0);
        match self.kind {
            Bound::Repeat => {
                let size = (longest(args, 0) as u128) * (max_n(1).max(0) as u128);
                if size > MAX_VALUE_BYTES as u128 {
                    return Err(too_large("string length"));
                }
            }
            Bound::Pad => {
                // A character is at most 4 bytes.
                if (max_n(1).max(0) as u128) * 4 > MAX_VALUE_BYTES as u128 {
                    return Err(too_large("string length"));
                }
            }
            Bound::ArrayRepeat => {
                if max_n(1).max(0) as u128 > MAX_ARRAY_ELEMENTS as u128 {
                    return Err(too_large("array size"));
                }
            }
            Bound::Range => {
                let (starts, stops) = match args.len() {
                    1 => (vec![Some(0)], integers(args, 0)),
                    _ => (integers(args, 0), integers(args, 1)),
                };
                let steps = if args.len() >= 3 {
                    integers(args, 2)
                } else {
                    vec![Some(1)]
                };
                let step = steps
                    .into_iter()
                    .flatten()
                    .map(|s| s.unsigned_abs().max(1))
                    .min()
                    .unwrap_or(1) as u128;
                let span = starts
                    .iter()
                    .flatten()
                    .flat_map(|a| {
                        stops
                            .iter()
                            .flatten()
                            .map(move |b| (*b as i128 - *a as i128).unsigned_abs())
                    })
                    .max()
                    .unwrap_or(0);
                if span / step > MAX_ARRAY_ELEMENTS as u128 {
                    return Err(too_large("series"));
                }
            }
        }
        Ok(())
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args.args)?;
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeouts_as_postgresql_reads_them() {
        let s = Duration::from_secs;
        assert_eq!(statement_timeout(Some("0"), None), None);
        assert_eq!(
            statement_timeout(Some("1500"), None),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(statement_timeout(Some("'2s'"), None), Some(s(2)));
        assert_eq!(statement_timeout(Some("1min"), Some(s(30))), Some(s(30)));
        assert_eq!(statement_timeout(Some("0"), Some(s(30))), Some(s(30)));
        assert_eq!(statement_timeout(Some("bogus"), None), None);
    }
}
