//! The writers that apply HL7 messages.
//!
//! On SQLite (one writer at a time anyway) a single writer thread does group
//! commit: it applies the messages waiting from every connection in one
//! transaction, each in a savepoint of its own, and releases their ACKs after
//! the single commit, so the commit and its WAL writes are shared by the
//! batch. With one connection nothing changes (each message is still its own
//! commit, since its ACK may not leave before it). On PostgreSQL several
//! writers apply one message per transaction in parallel: batching there
//! would serialise the statements' round trips, and two batches locking
//! patients in different orders could deadlock.
//!
//! One message failing on a storage error rolls back only its savepoint; a
//! failed commit fails the whole batch, and every sender is told to resend.

use super::{answer_from_archive, process_in, Answer, Channel};
use rhip_hl7::Received;
use rhip_store::{Store, StoreError};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

/// Most messages applied in one SQLite transaction.
const SQLITE_BATCH: usize = 64;

/// Messages up to this size are read on the runtime thread that received
/// them (tens of microseconds); larger ones go to the blocking pool.
const INLINE_READ_BYTES: usize = 64 * 1024;

struct Job {
    raw: Vec<u8>,
    received: Received,
    channel: Channel,
    reply: oneshot::Sender<Result<Answer, String>>,
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::SyncSender<Job>,
}

impl Writer {
    /// Starts the writer threads for `store` (one batching writer on SQLite,
    /// `parallel` single-message writers on PostgreSQL); they end when every
    /// handle is dropped.
    pub fn start(store: Store, parallel: usize) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(4096);
        let queue = Arc::new(Mutex::new(queue));
        let (writers, batch) = match store.backend() {
            rhip_store::Backend::Sqlite => (1, SQLITE_BATCH),
            rhip_store::Backend::Postgres => (parallel.max(1), 1),
        };
        for index in 0..writers {
            let (store, queue) = (store.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("rhip-ingest-{index}"))
                .spawn(move || run(&store, &queue, batch))?;
        }
        Ok(Writer { jobs })
    }

    /// Reads a message (on the caller's blocking pool) and has the writer
    /// apply it; resolves when its transaction has committed.
    pub async fn submit(&self, raw: Vec<u8>, channel: Channel) -> Result<Answer, String> {
        let today = chrono::Utc::now().date_naive();
        let (raw, received) = if raw.len() <= INLINE_READ_BYTES {
            let received = rhip_hl7::receive(&raw, today);
            (raw, received)
        } else {
            tokio::task::spawn_blocking(move || {
                let received = rhip_hl7::receive(&raw, today);
                (raw, received)
            })
            .await
            .map_err(|e| format!("reader task failed: {e}"))?
        };
        let (reply, answer) = oneshot::channel();
        let job = Job { raw, received, channel, reply };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => return Err("the ingest writer has stopped".to_string()),
            Err(mpsc::TrySendError::Full(job)) => {
                // The queue is bounded: a full queue blocks this sender, not the runtime.
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || {
                    jobs.send(job).map_err(|_| "the ingest writer has stopped".to_string())
                })
                .await
                .map_err(|e| format!("queue task failed: {e}"))??;
            }
        }
        answer.await.map_err(|_| "the ingest writer dropped the message".to_string())?
    }
}

fn run(store: &Store, queue: &Mutex<mpsc::Receiver<Job>>, max_batch: usize) {
    loop {
        let batch = {
            // Take what is waiting, up to a batch; other writers wait for the lock meanwhile.
            let Ok(queue) = queue.lock() else { return };
            let Ok(first) = queue.recv() else { return };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let outcome = match batch.as_slice() {
            // Alone in its transaction, a message needs no savepoint: its failure rolls back the transaction.
            [job] => match store.write(|tx| process_in(tx, &job.raw, &job.received, &job.channel)) {
                Ok(answer) => Ok(vec![Ok(answer)]),
                Err(error @ StoreError::Conflict(_)) => Ok(vec![Err(error)]),
                Err(error) => Err(error),
            },
            _ => store.write(|tx| {
                Ok(batch
                    .iter()
                    .map(|job| tx.savepoint(|tx| process_in(tx, &job.raw, &job.received, &job.channel)))
                    .collect::<Vec<Result<Answer, StoreError>>>())
            }),
        };
        match outcome {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let result = match result {
                        // Another process archived the same resend first: answer from the archive.
                        Err(StoreError::Conflict(_)) => answer_from_archive(store, &job.received),
                        other => other,
                    };
                    let _ = job.reply.send(result.map_err(|e| e.to_string()));
                }
            }
            Err(error) => {
                tracing::error!(%error, messages = batch.len(), "ingest batch could not be committed");
                for job in batch {
                    let _ = job.reply.send(Err(format!("the batch could not be committed: {error}")));
                }
            }
        }
    }
}
