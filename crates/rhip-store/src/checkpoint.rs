//! Background WAL checkpoints for SQLite.
//!
//! In WAL mode a commit only appends pages to the log; copying them back into
//! the database file (and the fsyncs that go with it) happens at checkpoints.
//! Left to SQLite, the writer that crosses the threshold runs the checkpoint
//! inside its own commit, and the message whose ACK waits on that commit pays
//! for the copy and two fsyncs. This thread checkpoints in passive mode a few
//! times a second on its own connection instead, so writers never wait for
//! it; the connections' `wal_autocheckpoint` stays as a backstop should this
//! thread fall behind.

use crate::conn::{DatabaseUrl, DbConn};
use diesel::connection::SimpleConnection;
use std::sync::Weak;
use std::time::Duration;

/// How often the log is copied back into the database.
const PERIOD: Duration = Duration::from_secs(2);

/// Starts the checkpointer; it ends when the store it serves is dropped.
pub(crate) fn start<T: Send + Sync + 'static>(url: &DatabaseUrl, store: Weak<T>) -> std::io::Result<()> {
    let url = url.clone();
    std::thread::Builder::new().name("rhip-sqlite-checkpoint".into()).spawn(move || {
        let mut conn = None;
        loop {
            std::thread::sleep(PERIOD);
            if store.strong_count() == 0 {
                return;
            }
            if conn.is_none() {
                conn = url.connect().ok();
            }
            if let Some(DbConn::Sqlite(sqlite)) = conn.as_mut() {
                if let Err(error) = sqlite.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                    // A busy database is retried next time; a broken connection is reopened.
                    tracing::debug!(%error, "WAL checkpoint did not run");
                    conn = None;
                }
            }
        }
    })?;
    Ok(())
}
