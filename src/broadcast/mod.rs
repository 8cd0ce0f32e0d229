//! Marketing broadcasts.

use crate::app::App;
use crate::store::{OutboundRecord, StoreError};

/// Called when an outbound record's delivery state changed.
pub async fn on_status(_app: &App, _record: &OutboundRecord) -> Result<(), StoreError> {
    Ok(())
}

/// Runs the broadcast sender until shutdown.
pub async fn run(_app: App, _shutdown: tokio::sync::watch::Receiver<bool>) {}
