//! Busy job queues split into parts: which part a job lives in, and which
//! parts a worker asks when it claims.
//!
//! A job queue is one hash tag, so on a Redis Cluster one queue is one slot
//! on one master. The two queues every message passes through (`inbound`
//! and `outbox`, see [`SPLIT`]) are therefore split into parts, each a
//! queue of its own with its own tag (`{P:q:inbound}`, `{P:q:inbound:1}` …
//! `{P:q:inbound:15}`), so their traffic divides over the masters. Part 0
//! keeps the queue's own name: with one part (the default on one Redis
//! server and on the embedded store, where a split buys nothing) the layout
//! is exactly the unsplit one.
//!
//! A job's part is a stable hash of its *routing key*: its id for jobs
//! scheduled by id (the outbox: the record id), the customer for inbound
//! events (so one customer's events share a part and are claimed in order,
//! and a redelivered webhook meets its dedupe key in the same part). The
//! part is fixed when the job is pushed and travels with the claim; ack,
//! retry, heartbeat and bury go to that part.
//!
//! Claiming must stay cheap: asking every part on every claim would
//! multiply the calls by the number of parts. A [`ClaimPlan`] (one per
//! worker) asks only the parts worth asking: parts this process pushed to
//! (it knows without asking), parts whose last claim came back full (more
//! may wait), parts where this worker put a job back that is now due, and on
//! each poll tick a rotating window of [`SCAN_WINDOW`] parts, which finds
//! jobs of other processes and expired leases (a crashed holder's jobs)
//! within `parts / SCAN_WINDOW` polls. With one part every claim asks it, as
//! before the split.

use std::borrow::Cow;

use super::queues;

/// Parts of each split queue on a Redis Cluster unless `store.queue_parts`
/// says otherwise: a few per master of a usual 3–6 master Cluster.
pub const CLUSTER_PARTS: u32 = 16;

/// Most parts a queue may have (a worker keeps one bit per part).
pub const MAX_PARTS: u32 = crate::config::MAX_QUEUE_PARTS;

/// The queues that are split; every other queue is one part (their traffic
/// is a small share and they are addressed by id from many places).
pub const SPLIT: [&str; 2] = [queues::INBOUND, queues::OUTBOX];

/// Parts a poll tick looks at besides the hinted ones.
pub const SCAN_WINDOW: u32 = 4;

/// The part of a queue with `parts` parts that holds the job routed by `key`
/// (FNV-1a: the same in every process and version).
pub fn part_of(key: &str, parts: u32) -> u32 {
    if parts <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(parts)) as u32
}

/// The backend queue of part `part` of `queue`: the queue's own name for
/// part 0, `<queue>:<part>` for the others.
pub fn part_name(queue: &str, part: u32) -> Cow<'_, str> {
    if part == 0 {
        Cow::Borrowed(queue)
    } else {
        Cow::Owned(format!("{queue}:{part}"))
    }
}

/// How much a claim looks around besides the parts it has hints for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Only hinted parts (a wake-up, a finished job).
    Hinted,
    /// Hinted parts and the next window of the rotation (a poll tick).
    Window,
    /// Every part (a worker starting, a test stepping a queue to the end).
    All,
}

/// Which parts of a queue one worker asks when it claims; see the module
/// docs. Pure bookkeeping: the worker reports what it pushed, claimed and
/// put back, and asks for a plan.
#[derive(Debug, Clone)]
pub struct ClaimPlan {
    parts: u32,
    /// Parts to ask at the next claim whatever happens (bit per part):
    /// their last claim came back full, or they were hinted but got no
    /// share of the last claim.
    more: u64,
    /// Per part, the earliest due time of a job this worker put back there
    /// (`i64::MAX`: none).
    due: Vec<i64>,
    /// The first part of the next scan window.
    cursor: u32,
    /// The part that gets the first share next time (rotates, so a claim
    /// smaller than the hinted parts does not always serve the same ones).
    first: u32,
}

impl ClaimPlan {
    /// A plan for a queue with `parts` parts (1 to [`MAX_PARTS`]).
    pub fn new(parts: u32) -> ClaimPlan {
        let parts = parts.clamp(1, MAX_PARTS);
        ClaimPlan {
            parts,
            more: 0,
            due: vec![i64::MAX; parts as usize],
            cursor: 0,
            first: 0,
        }
    }

    /// The number of parts.
    pub fn parts(&self) -> u32 {
        self.parts
    }

    fn all(&self) -> u64 {
        if self.parts == 64 {
            u64::MAX
        } else {
            (1u64 << self.parts) - 1
        }
    }

    /// The parts to ask now and how many jobs to ask each for (at most `max`
    /// in all; none asked for 0). `pushed`: the parts this process pushed to
    /// since the last plan (bit per part).
    pub fn plan(&mut self, now_ms: i64, pushed: u64, scan: Scan, max: usize) -> Vec<(u32, usize)> {
        if max == 0 {
            return Vec::new();
        }
        if self.parts == 1 {
            // The one part is asked every time anyway; a full answer must
            // not make the worker ask again before it has free slots.
            self.due[0] = i64::MAX;
            self.more = 0;
            return vec![(0, max)];
        }
        let mut wanted = (pushed | self.more) & self.all();
        for (part, due) in self.due.iter_mut().enumerate() {
            if *due <= now_ms {
                wanted |= 1 << part;
                *due = i64::MAX;
            }
        }
        match scan {
            Scan::Hinted => {}
            Scan::All => wanted = self.all(),
            Scan::Window => {
                for i in 0..SCAN_WINDOW.min(self.parts) {
                    wanted |= 1 << ((self.cursor + i) % self.parts);
                }
                self.cursor = (self.cursor + SCAN_WINDOW) % self.parts;
            }
        }
        let order: Vec<u32> = (0..self.parts)
            .map(|i| (self.first + i) % self.parts)
            .filter(|p| wanted & (1 << p) != 0)
            .collect();
        self.first = (self.first + 1) % self.parts;
        self.more = 0;
        let (share, extra) = (max / order.len().max(1), max % order.len().max(1));
        let mut asks = Vec::with_capacity(order.len());
        for (i, part) in order.into_iter().enumerate() {
            let n = share + usize::from(i < extra);
            if n == 0 {
                // No share this time: asked first next time.
                self.more |= 1 << part;
            } else {
                asks.push((part, n));
            }
        }
        asks
    }

    /// A claim of `asked` jobs from `part` got `got`: a full answer means
    /// more may wait there.
    pub fn claimed(&mut self, part: u32, asked: usize, got: usize) {
        if part < self.parts && got >= asked {
            self.more |= 1 << part;
        }
    }

    /// This worker put a job back into `part`, due at `due_ms`.
    pub fn deferred(&mut self, part: u32, due_ms: i64) {
        if let Some(due) = self.due.get_mut(part as usize) {
            *due = (*due).min(due_ms);
        }
    }

    /// The earliest due time of a job this worker put back, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.due.iter().copied().filter(|d| *d < i64::MAX).min()
    }

    /// Whether some part is worth asking at once (a full answer, or a part
    /// left without a share).
    pub fn has_more(&self) -> bool {
        self.more != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_of(asks: &[(u32, usize)]) -> Vec<u32> {
        let mut p: Vec<u32> = asks.iter().map(|(p, _)| *p).collect();
        p.sort_unstable();
        p
    }

    #[test]
    fn routing_is_stable_and_spreads() {
        // Fixed values: a job must be found in the part it was pushed to by
        // every process and every later version.
        assert_eq!(part_of("anything", 1), 0);
        assert_eq!(part_of("", 16), (0xcbf2_9ce4_8422_2325u64 % 16) as u32);
        assert_eq!(part_of("whatsapp:62811", 16), part_of("whatsapp:62811", 16));
        let seen: std::collections::BTreeSet<u32> = (0..1_000)
            .map(|i| part_of(&format!("whatsapp:628{i:08}"), 16))
            .collect();
        assert_eq!(seen.len(), 16);
        assert_eq!(part_name("outbox", 0), "outbox");
        assert_eq!(part_name("outbox", 7), "outbox:7");
    }

    #[test]
    fn one_part_is_always_asked_for_everything() {
        let mut plan = ClaimPlan::new(1);
        for scan in [Scan::Hinted, Scan::Window, Scan::All] {
            assert_eq!(plan.plan(0, 0, scan, 8), vec![(0, 8)]);
            // A full answer says "ask again at once" until the next plan,
            // an empty one never: an idle worker must not spin.
            plan.claimed(0, 8, 8);
            assert!(plan.has_more());
            assert_eq!(plan.plan(0, 0, scan, 8), vec![(0, 8)]);
            plan.claimed(0, 8, 0);
            assert!(!plan.has_more());
        }
        assert!(plan.plan(0, 0, Scan::All, 0).is_empty());
    }

    #[test]
    fn hints_decide_what_is_asked() {
        let mut plan = ClaimPlan::new(16);
        // Idle and unhinted: nothing to ask (no store call at all).
        assert!(plan.plan(0, 0, Scan::Hinted, 8).is_empty());
        // Own pushes are asked for at once, sharing the claim.
        let asks = plan.plan(0, 1 << 3 | 1 << 9, Scan::Hinted, 8);
        assert_eq!(parts_of(&asks), [3, 9]);
        assert_eq!(asks.iter().map(|(_, n)| n).sum::<usize>(), 8);
        // A full answer brings the part back; a short one does not.
        plan.claimed(3, 4, 4);
        plan.claimed(9, 4, 1);
        assert_eq!(parts_of(&plan.plan(0, 0, Scan::Hinted, 8)), [3]);
        assert!(plan.plan(0, 0, Scan::Hinted, 8).is_empty());
        // A job put back comes due: its part is asked then, not before.
        plan.deferred(5, 100);
        assert_eq!(plan.next_due(), Some(100));
        assert!(plan.plan(99, 0, Scan::Hinted, 8).is_empty());
        assert_eq!(parts_of(&plan.plan(100, 0, Scan::Hinted, 8)), [5]);
        assert_eq!(plan.next_due(), None);
    }

    #[test]
    fn poll_ticks_rotate_over_every_part() {
        let mut plan = ClaimPlan::new(16);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..16 / SCAN_WINDOW {
            let asks = plan.plan(0, 0, Scan::Window, 64);
            assert_eq!(
                asks.len(),
                SCAN_WINDOW as usize,
                "a tick asks a window, not every part"
            );
            seen.extend(parts_of(&asks));
        }
        assert_eq!(seen.len(), 16, "every part within parts / window ticks");
        assert_eq!(plan.plan(0, 0, Scan::All, 64).len(), 16);
    }

    #[test]
    fn a_small_claim_serves_every_hinted_part_in_turn() {
        let mut plan = ClaimPlan::new(8);
        let mut served = std::collections::BTreeSet::new();
        let mut pushed = 0xff;
        for _ in 0..8 {
            let asks = plan.plan(0, pushed, Scan::Hinted, 2);
            pushed = 0;
            assert_eq!(asks.iter().map(|(_, n)| n).sum::<usize>(), 2);
            for (p, n) in asks {
                served.insert(p);
                plan.claimed(p, n, 0);
            }
            if served.len() == 8 {
                break;
            }
        }
        assert_eq!(served.len(), 8, "parts without a share are asked next");
    }
}
