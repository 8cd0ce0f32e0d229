//! Taking an uploaded audience (a JSON request's recipient list or a CSV file)
//! into the store chunk by chunk, without ever holding the parsed list.
//!
//! The upload is read twice, each time one recipient at a time: first every row
//! is checked, so that a bad row refuses the whole upload before anything is
//! stored (the marketer fixes the file and sends it again); then the good rows
//! are stored in chunks of [`CHUNK`] as they are read. Reading runs on the
//! blocking pool (it is CPU work on a body of up to 64 MiB) and hands full
//! chunks to the storing side through a small channel, so at most a few chunks
//! are in memory at once. What stays for the whole upload is the request body
//! itself and the set of recipient ids seen (for deduplication).

use std::ops::ControlFlow;

use tokio::sync::mpsc;

use super::audience::{self, Recipient, RowError, Validator};
use super::{Broadcasts, CHUNK, append_chunk};
use crate::channels::Channel;
use crate::store::StoreError;

/// Row errors reported back at most (the count covers all of them).
pub const REPORTED_ERRORS: usize = 50;

/// Chunks read ahead of the store.
const CHUNKS_IN_FLIGHT: usize = 2;

/// How an uploaded audience is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A broadcast request whose `audience.recipients` is read.
    Json,
    /// A CSV file with a header row.
    Csv,
}

/// What an intake stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// Recipients stored.
    pub added: u64,
    /// Chunks stored.
    pub chunks: u64,
    /// Rows dropped because their recipient came earlier in the upload.
    pub duplicates: u64,
}

/// Why an upload was refused; nothing of it is stored (except after `Store`).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Some rows are bad: the first [`REPORTED_ERRORS`] of `total`.
    #[error("{total} recipient row(s) are invalid")]
    Rows {
        /// The first bad rows, in input order.
        errors: Vec<RowError>,
        /// How many rows are bad.
        total: usize,
    },
    /// The upload cannot be read at all (not JSON, a recipient of the wrong shape).
    #[error("{0}")]
    Unreadable(String),
    /// The store failed; chunks stored before may be left unreferenced.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks every row of `data` and, when all are good, stores the recipients as
/// chunks of broadcast `id` after the ones stored already. `required` are the
/// placeholder names every recipient needs values for.
pub async fn take_in(
    broadcasts: &Broadcasts,
    id: &str,
    channel: Channel,
    required: Vec<String>,
    format: Format,
    data: impl AsRef<[u8]> + Send + 'static,
) -> Result<Intake, IntakeError> {
    let (tx, mut rx) = mpsc::channel::<Vec<Recipient>>(CHUNKS_IN_FLIGHT);
    let reader =
        tokio::task::spawn_blocking(move || read(channel, &required, format, data.as_ref(), &tx));
    let (mut added, mut chunks) = (0, 0);
    while let Some(chunk) = rx.recv().await {
        // Dropping `rx` on an error stops the reader at its next chunk.
        append_chunk(broadcasts, id, &chunk).await?;
        added += chunk.len() as u64;
        chunks += 1;
    }
    let duplicates = reader
        .await
        .map_err(|e| StoreError::Unavailable(format!("reading the audience: {e}")))??;
    Ok(Intake {
        added,
        chunks,
        duplicates,
    })
}

/// Both passes over the upload; returns the number of duplicates.
fn read(
    channel: Channel,
    required: &[String],
    format: Format,
    data: &[u8],
    chunks: &mpsc::Sender<Vec<Recipient>>,
) -> Result<u64, IntakeError> {
    let mut check = Validator::new(channel, required, REPORTED_ERRORS);
    rows(format, data, |line, row| {
        check.check(line, row);
        ControlFlow::Continue(())
    })?;
    if check.bad() > 0 {
        return Err(IntakeError::Rows {
            total: check.bad(),
            errors: check.into_errors(),
        });
    }
    let duplicates = check.duplicates() as u64;
    drop(check);

    // Same rows, same order, same verdicts: store the good ones.
    let mut keep = Validator::new(channel, required, 0);
    let mut chunk = Vec::with_capacity(CHUNK);
    rows(format, data, |line, row| {
        if let Some(r) = keep.check(line, row) {
            chunk.push(r);
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if chunks.blocking_send(full).is_err() {
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    if !chunk.is_empty() {
        // The storing side may have stopped on an error; it reports that error.
        let _ = chunks.blocking_send(chunk);
    }
    Ok(duplicates)
}

/// Every row of the upload, with its line (CSV) or position (JSON list).
fn rows(
    format: Format,
    data: &[u8],
    mut each: impl FnMut(usize, Result<Recipient, String>) -> ControlFlow<()>,
) -> Result<(), IntakeError> {
    match format {
        Format::Json => audience::for_each_json_recipient(data, |line, r| each(line, Ok(r)))
            .map_err(IntakeError::Unreadable),
        Format::Csv => audience::for_each_csv_row(data, each).map_err(|e| IntakeError::Rows {
            errors: vec![e],
            total: 1,
        }),
    }
}
