//! Turning a source's row loop into a bounded Arrow batch stream.
//!
//! A link's reader runs as its own task and hands batches over a channel
//! with room for [`CHANNEL_BATCHES`] batches: when the client reads slowly,
//! the reader waits, so memory stays bounded by a few batches per scan
//! whatever the table size. Dropping the stream aborts the reader.
//!
//! A reader starts when its scan is executed ([`spawn_reader`]) or only
//! when its stream is first read ([`spawn_reader_when`]): a scan that
//! starts early holds a source connection while nobody reads it (the probe
//! side of a join waits for the build side), so it may only do so while
//! the link has connections to spare (see [`crate::health::Gate`]).

use std::future::Future;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::runtime::SpawnedTask;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use crate::LinkError;

/// Batches buffered between a source reader and its consumer.
pub const CHANNEL_BATCHES: usize = 2;

/// The reader's end of a scan: where decoded batches go.
#[derive(Debug, Clone)]
pub struct BatchSender {
    tx: mpsc::Sender<Result<RecordBatch>>,
}

impl BatchSender {
    /// Sends one batch; returns `false` when the consumer has gone away (the
    /// reader should stop and release its connection).
    pub async fn send(&self, batch: RecordBatch) -> bool {
        self.tx.send(Ok(batch)).await.is_ok()
    }
}

/// Runs `reader` as a task feeding a bounded stream of `schema` batches. An
/// error the reader returns becomes the stream's last item.
pub fn spawn_reader<F, Fut>(schema: SchemaRef, reader: F) -> SendableRecordBatchStream
where
    F: FnOnce(BatchSender) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<(), LinkError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<RecordBatch>>(CHANNEL_BATCHES);
    let err_tx = tx.clone();
    let task = SpawnedTask::spawn(async move {
        if let Err(e) = reader(BatchSender { tx }).await {
            // The consumer may already be gone; nothing else to tell then.
            let _ = err_tx.send(Err(DataFusionError::from(e))).await;
        }
    });
    let stream = futures::stream::unfold((rx, Some(task)), |(mut rx, task)| async move {
        rx.recv().await.map(|item| (item, (rx, task)))
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// [`spawn_reader`] now, or when the stream is first polled (`now` false):
/// a scan nobody reads yet then holds no connection.
pub fn spawn_reader_when<F, Fut>(
    schema: SchemaRef,
    now: bool,
    reader: F,
) -> SendableRecordBatchStream
where
    F: FnOnce(BatchSender) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<(), LinkError>> + Send + 'static,
{
    if now {
        return spawn_reader(schema, reader);
    }
    use futures::StreamExt;
    let inner_schema = schema.clone();
    let stream = futures::stream::once(async move { spawn_reader(inner_schema, reader) }).flatten();
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}
