//! Rate limits and cool-downs shared by every process.
//!
//! Sends are paced per sender number and per WhatsApp recipient, broadcasts at
//! their own rate, sign-in attempts per client address and user name; a platform that says a whole number is over its limit sets
//! a cool-down every process respects. The keys live here; the limiter is the
//! backend's GCRA ([`super::Backend::rate_take`]).

use crate::channels::Channel;

use super::{Store, StoreResult};

/// What a rate limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKey<'a> {
    /// One business number or account (its id) on a channel.
    Sender(Channel, &'a str),
    /// One customer on a channel (WhatsApp's pair rate).
    Recipient(Channel, &'a str),
    /// One broadcast's own pace.
    Broadcast(&'a str),
    /// Sign-in attempts from one client address.
    SignInAddress(&'a str),
    /// Sign-in attempts for one user name.
    SignInUser(&'a str),
}

impl RateKey<'_> {
    fn key(&self) -> String {
        match self {
            RateKey::Sender(channel, id) => format!("rate:{}:{id}", channel.as_str()),
            RateKey::Recipient(channel, to) => format!("pair:{}:{to}", channel.as_str()),
            RateKey::Broadcast(id) => format!("bcrate:{id}"),
            RateKey::SignInAddress(address) => format!("signin:addr:{address}"),
            RateKey::SignInUser(name) => format!("signin:user:{name}"),
        }
    }
}

fn cooldown_key(channel: Channel, sender: &str) -> String {
    format!("cooldown:{}:{sender}", channel.as_str())
}

impl Store {
    /// Reserves one event under `key` at `per_second` with `burst` at once:
    /// 0 when reserved now, otherwise the milliseconds to wait before asking
    /// again (nothing reserved).
    pub async fn take_rate(
        &self,
        key: &RateKey<'_>,
        per_second: f64,
        burst: u32,
    ) -> StoreResult<u64> {
        self.backend
            .rate_take(&key.key(), per_second, burst, self.now_ms())
            .await
    }

    /// Forgets the limiter state under `key` (as if nothing had been taken).
    pub async fn reset_rate(&self, key: &RateKey<'_>) -> StoreResult<()> {
        self.backend.rate_reset(&key.key()).await
    }

    /// Until when (Unix ms) the platform asked a sender to hold back, if it did.
    pub async fn sender_cooldown(
        &self,
        channel: Channel,
        sender: &str,
    ) -> StoreResult<Option<i64>> {
        self.get_json(&cooldown_key(channel, sender)).await
    }

    /// Records that a sender must hold back until `until_ms`.
    pub async fn set_sender_cooldown(
        &self,
        channel: Channel,
        sender: &str,
        until_ms: i64,
    ) -> StoreResult<()> {
        self.put_json(&cooldown_key(channel, sender), &until_ms)
            .await
    }
}
