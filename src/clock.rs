//! The one clock abstraction.
//!
//! Every time-based decision (24-hour windows, business hours, survey delays, SLA
//! timers, job due times, quiet hours) reads the time from a [`Clock`], never from
//! `SystemTime` directly, so tests move time with a [`ManualClock`] instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// The current instant as Unix milliseconds (the unit the store uses).
    fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock stopped at the given Unix milliseconds.
    pub fn at_ms(ms: i64) -> Self {
        Self::new(Timestamp::from_millisecond(ms).expect("valid test timestamp"))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now
            .checked_add(jiff::SignedDuration::try_from(by).expect("duration fits"))
            .expect("clock stays in range");
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock that starts at a chosen instant, runs at real speed, and can be moved
/// forward (or set); for integration tests, where short real waits (retry in
/// 100 ms, rate pacing) must still pass while long ones (a 10-minute SLA) are
/// jumped over.
#[derive(Debug)]
pub struct ShiftedClock {
    start_ms: i64,
    since: std::time::Instant,
    /// Milliseconds added by [`ShiftedClock::advance`] and [`ShiftedClock::set`].
    shift_ms: Mutex<i64>,
}

impl ShiftedClock {
    /// A clock that reads `start_ms` now and runs on from there.
    pub fn at_ms(start_ms: i64) -> Self {
        Self {
            start_ms,
            since: std::time::Instant::now(),
            shift_ms: Mutex::new(0),
        }
    }

    /// Jumps forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.shift_ms.lock().unwrap_or_else(|e| e.into_inner()) +=
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
    }

    /// Jumps to `to` (forward or back) and runs on from there.
    pub fn set(&self, to: Timestamp) {
        let elapsed = i64::try_from(self.since.elapsed().as_millis()).unwrap_or(0);
        *self.shift_ms.lock().unwrap_or_else(|e| e.into_inner()) =
            to.as_millisecond() - self.start_ms - elapsed;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let shift = *self.shift_ms.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = i64::try_from(self.since.elapsed().as_millis()).unwrap_or(0);
        Timestamp::from_millisecond(self.start_ms + elapsed + shift).expect("clock stays in range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::at_ms(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
    }

    #[test]
    fn shifted_clock_runs_and_jumps() {
        let clock = ShiftedClock::at_ms(1_000_000);
        let a = clock.now_ms();
        assert!((1_000_000..1_001_000).contains(&a));
        clock.advance(Duration::from_secs(600));
        assert!(clock.now_ms() >= a + 600_000);
    }
}
