//! Protecting a source from tautan, and tautan from a source.
//!
//! - [`Gate`]: a link runs at most its pool size of statements at once;
//!   the rest wait in line for a bounded time and then get SQLSTATE 53300
//!   ("too many queries for link …") — busy, which is not the same as
//!   down (08001).
//! - [`Watchdog`]: a statement that gets no bytes from its source for a while
//!   is not assumed dead (a large aggregate may think for minutes): the
//!   source is pinged on a fresh connection, and only when that gets no
//!   answer either is the statement ended as stalled (08006), freeing its
//!   connection.
//! - [`LinkHealth`]: what the link's statements saw — connections in use,
//!   statements waiting, the last failure — for `system.links`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{LinkError, LinkErrorKind};

/// How a link protects its source and itself (per link in
/// `federation.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a statement waits in line when every connection of the
    /// link is busy (then 53300).
    pub queue_timeout: Duration,
    /// Longest a statement may run at the source (PostgreSQL
    /// `statement_timeout`, MariaDB `max_statement_time`); `None`: the
    /// source's own setting.
    pub statement_timeout: Option<Duration>,
    /// How long a statement may get no bytes before the source is pinged
    /// ([`Watchdog`]).
    pub stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_secs(15 * 60)),
            stall_timeout: Duration::from_secs(10),
        }
    }
}

/// The last failure a link's statement met at its source.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When it happened.
    pub at: SystemTime,
    /// What happened (the link error's text).
    pub message: String,
}

/// A link's running statements and recent failures.
#[derive(Debug, Default)]
pub struct LinkHealth {
    in_use: AtomicUsize,
    queued: AtomicUsize,
    last_failure: Mutex<Option<Failure>>,
    /// When a statement last finished well (microseconds since 1970; 0:
    /// never since the server started).
    last_success_us: AtomicU64,
}

impl LinkHealth {
    /// Statements holding a connection now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Statements waiting for a connection now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The last failure that says the source itself is in trouble
    /// (unreachable, lost connection, stalled), since the last statement
    /// that finished well.
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// When a statement last read from the source to its end (the
    /// freshness of what the link serves); `None` before the first.
    pub fn last_success(&self) -> Option<SystemTime> {
        match self.last_success_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(SystemTime::UNIX_EPOCH + Duration::from_micros(us)),
        }
    }

    /// Records how a statement ended: a source-side failure is kept until
    /// a statement finishes well.
    pub fn record(&self, outcome: Result<(), &LinkError>) {
        let mut last = self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(()) => {
                *last = None;
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(1);
                self.last_success_us.store(now.max(1), Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind,
                    LinkErrorKind::Unavailable | LinkErrorKind::ConnectionLost
                ) =>
            {
                *last = Some(Failure {
                    at: SystemTime::now(),
                    message: e.to_string(),
                });
            }
            Err(_) => {}
        }
    }
}

/// At most `size` statements of one link at once; the others wait their
/// turn for at most `queue_timeout`.
#[derive(Debug, Clone)]
pub struct Gate {
    link: String,
    slots: Arc<Semaphore>,
    size: usize,
    queue_timeout: Duration,
    health: Arc<LinkHealth>,
}

/// A statement's place at its link, held while it runs.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    health: Arc<LinkHealth>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.health.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gate {
    /// A gate of `size` slots for `link`.
    pub fn new(link: &str, size: usize, queue_timeout: Duration, health: Arc<LinkHealth>) -> Self {
        let size = size.max(1);
        Self {
            link: link.to_string(),
            slots: Arc::new(Semaphore::new(size)),
            size,
            queue_timeout,
            health,
        }
    }

    /// The health this gate counts into.
    pub fn health(&self) -> &Arc<LinkHealth> {
        &self.health
    }

    /// A slot at once for a scan that starts before anyone reads it, if
    /// more than a reserve stay free (a quarter of the slots, at least
    /// three: a split scan's parts and the connection holding their
    /// snapshot). A scan started early holds its connection until it is
    /// read; with every slot so held, the scan a query waits on could get
    /// none, and the query would wait on itself until the queue timeout.
    pub fn try_enter_ahead(&self) -> Option<Slot> {
        self.try_enter_ahead_many(1)
            .and_then(|mut slots| slots.pop())
    }

    /// [`Self::try_enter_ahead`] for `n` slots at once (a split scan's).
    pub fn try_enter_ahead_many(&self, n: usize) -> Option<Vec<Slot>> {
        let reserve = self.size.div_ceil(4).max(3);
        if n == 0 || self.slots.available_permits() < reserve + n + 1 {
            return None;
        }
        let permit = self
            .slots
            .clone()
            .try_acquire_many_owned(u32::try_from(n).ok()?)
            .ok()?;
        Some(self.handed_out(permit))
    }

    /// `permit` as one [`Slot`] per permit.
    fn handed_out(&self, mut permit: OwnedSemaphorePermit) -> Vec<Slot> {
        let mut slots = Vec::with_capacity(permit.num_permits());
        while permit.num_permits() > 1 {
            match permit.split(1) {
                Some(one) => slots.push(one),
                None => break,
            }
        }
        slots.push(permit);
        self.health.in_use.fetch_add(slots.len(), Ordering::Relaxed);
        slots
            .into_iter()
            .map(|permit| Slot {
                _permit: permit,
                health: self.health.clone(),
            })
            .collect()
    }

    /// Waits for a slot; 53300 after the queue timeout.
    pub async fn enter(&self) -> Result<Slot, LinkError> {
        let mut slots = self.enter_many(1).await?;
        slots.pop().ok_or_else(|| {
            LinkError::new(&self.link, LinkErrorKind::Config, "no slot was handed out")
        })
    }

    /// Waits for `n` slots at once (at most the gate's size): what the
    /// parts of a split scan and the connection holding their snapshot
    /// need together. Taken one by one, two such scans could each hold
    /// some and wait for the rest of the other's. 53300 after the queue
    /// timeout.
    pub async fn enter_many(&self, n: usize) -> Result<Vec<Slot>, LinkError> {
        let n = n.clamp(1, self.size);
        let wanted = u32::try_from(n).unwrap_or(1);
        self.health.queued.fetch_add(1, Ordering::Relaxed);
        let waited = tokio::time::timeout(
            self.queue_timeout,
            self.slots.clone().acquire_many_owned(wanted),
        )
        .await;
        self.health.queued.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok(Ok(permit)) => Ok(self.handed_out(permit)),
            Ok(Err(_)) => Err(LinkError::new(
                &self.link,
                LinkErrorKind::Config,
                "link closed",
            )),
            Err(_) => Err(LinkError::new(
                &self.link,
                LinkErrorKind::Busy,
                format!(
                    "too many queries for link \"{}\": all {} connections busy for {:?}",
                    self.link, self.size, self.queue_timeout
                ),
            )),
        }
    }
}

/// A watch over the reads of one scan. Each time no read finishes for
/// `stall`, the source is pinged (`ping`, on a connection of its own); if
/// the ping fails or gets no answer within `stall` either, the read ends
/// as a lost connection ("stalled"). One timer serves the whole scan. A timer per read (per row: PostgreSQL sends a COPY message per
/// row) was registered and removed in tokio's timer wheel each time, and
/// made plain scans 1.5× slower; this one is only moved when it fires, and
/// a read only counts itself (reading the clock per row cost another 10%).
/// When the timer fires and no read finished since the last time it did,
/// the source is pinged: a stall is noticed between one and two `stall`
/// periods after the last row.
pub struct Watchdog<P> {
    link: String,
    stall: Duration,
    ping: P,
    /// Reads finished, and how many had when the timer last fired.
    reads: u64,
    seen: u64,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<P> Watchdog<P>
where
    P: Fn() -> BoxFuture<'static, Result<(), LinkError>>,
{
    /// A watch over reads from `link` that may each wait `stall` before
    /// the source is pinged.
    pub fn new(link: &str, stall: Duration, ping: P) -> Self {
        Self {
            link: link.to_string(),
            stall,
            ping,
            reads: 0,
            seen: 0,
            timer: Box::pin(tokio::time::sleep(stall)),
        }
    }

    /// Awaits `work`, pinging the source while it makes no progress.
    pub async fn read<T>(&mut self, work: impl Future<Output = T>) -> Result<T, LinkError> {
        tokio::pin!(work);
        let stall = self.stall;
        loop {
            tokio::select! {
                biased;
                done = &mut work => {
                    self.reads = self.reads.wrapping_add(1);
                    return Ok(done);
                }
                _ = self.timer.as_mut() => {}
            }
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + stall);
            if self.reads != self.seen {
                // Rows came since the timer last fired: not stalled.
                self.seen = self.reads;
                continue;
            }
            tokio::select! {
                done = &mut work => {
                    self.reads = self.reads.wrapping_add(1);
                    return Ok(done);
                }
                alive = tokio::time::timeout(stall, (self.ping)()) => match alive {
                    Ok(Ok(())) => {
                        self.timer
                            .as_mut()
                            .reset(tokio::time::Instant::now() + stall);
                    }
                    Ok(Err(e)) => {
                        return Err(LinkError::new(
                            &self.link,
                            LinkErrorKind::ConnectionLost,
                            format!(
                                "no data for {stall:?}, and a new connection failed: {}",
                                e.message
                            ),
                        ))
                    }
                    Err(_) => {
                        return Err(LinkError::new(
                            &self.link,
                            LinkErrorKind::ConnectionLost,
                            format!("stalled: no data for {stall:?}, and no answer to a new connection within {stall:?}"),
                        ))
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_answers_busy_after_the_queue_timeout() {
        let health = Arc::new(LinkHealth::default());
        let gate = Gate::new("x", 1, Duration::from_millis(50), health.clone());
        let first = gate.enter().await.expect("a slot");
        assert_eq!(health.in_use(), 1);
        let e = gate.enter().await.expect_err("busy");
        assert_eq!(e.client_sqlstate(), "53300");
        drop(first);
        assert_eq!(health.in_use(), 0);
        let _again = gate.enter().await.expect("free again");
    }

    #[tokio::test]
    async fn slow_but_alive_is_waited_for_and_silent_is_stalled() {
        let alive = || -> BoxFuture<'static, Result<(), LinkError>> { Box::pin(async { Ok(()) }) };
        let slow = tokio::time::sleep(Duration::from_millis(120));
        Watchdog::new("x", Duration::from_millis(30), alive)
            .read(slow)
            .await
            .expect("slow is fine while pings answer");
        let silent = || -> BoxFuture<'static, Result<(), LinkError>> {
            Box::pin(futures::future::pending())
        };
        let started = std::time::Instant::now();
        let e = Watchdog::new("x", Duration::from_millis(30), silent)
            .read(futures::future::pending::<()>())
            .await
            .expect_err("stalled");
        assert_eq!(e.kind, LinkErrorKind::ConnectionLost);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
