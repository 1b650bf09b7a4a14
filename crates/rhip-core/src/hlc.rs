//! A hybrid logical clock (Kulkarni et al., 2014) for ordering changes across nodes.
//!
//! Nodes' wall clocks disagree, yet a change made after seeing another change must sort
//! after it everywhere. An HLC timestamp is the largest physical time seen so far (in ms)
//! plus a logical counter, so it stays close to real time and still respects causality.
//! Timestamps are encoded with fixed width so that comparing the text (as a database
//! index does) is the same as comparing the times.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest logical counter that fits the six-digit encoding. When a counter would pass
/// it, the clock moves its wall time on by one millisecond instead.
pub const HLC_MAX_LOGICAL: u32 = 999_999;
/// Largest wall time that fits the fifteen-digit encoding (about the year 33658).
pub const HLC_MAX_WALL_MS: u64 = 999_999_999_999_999;

/// A point in hybrid logical time: wall-clock milliseconds since the Unix epoch and a
/// counter that orders events within one millisecond. Ordered by `(wall_ms, logical)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct HlcTimestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z (the largest physical time seen).
    pub wall_ms: u64,
    /// Events within the same `wall_ms`, counted from 0.
    pub logical: u32,
}

/// Why an HLC timestamp was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HlcError {
    /// The text is not an encoded timestamp.
    #[error("HLC timestamp must be 15 digits, '.', 6 digits (e.g. 001700000000000.000000), got {0:?}")]
    Format(String),
    /// A peer's timestamp is further ahead of our clock than allowed: its clock (or ours)
    /// is wrong, and accepting it would drag every later timestamp into the future.
    #[error("remote HLC time {remote_ms} ms is {ahead_ms} ms ahead of local time {physical_ms} ms; at most {max_drift_ms} ms is allowed (check both nodes' clocks)")]
    ClockDrift {
        /// The remote timestamp's wall time.
        remote_ms: u64,
        /// Our physical time when it arrived.
        physical_ms: u64,
        /// How far ahead it was.
        ahead_ms: u64,
        /// The configured limit.
        max_drift_ms: u64,
    },
}

impl HlcTimestamp {
    /// The earliest timestamp, before anything happened.
    pub const ZERO: HlcTimestamp = HlcTimestamp { wall_ms: 0, logical: 0 };

    /// Builds a timestamp.
    pub fn new(wall_ms: u64, logical: u32) -> HlcTimestamp {
        HlcTimestamp { wall_ms, logical }
    }

    /// Fixed-width text, `{wall_ms:015}.{logical:06}`, so text order equals time order.
    pub fn encode(&self) -> String {
        format!("{:015}.{:06}", self.wall_ms, self.logical)
    }

    /// Parses the text made by [`encode`](Self::encode) (exactly 15 digits, `.`, 6 digits).
    pub fn decode(s: &str) -> Result<HlcTimestamp, HlcError> {
        let error = || HlcError::Format(s.to_owned());
        let (wall, logical) = s.split_once('.').ok_or_else(error)?;
        let digits = |part: &str, length: usize| part.len() == length && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(wall, 15) || !digits(logical, 6) {
            return Err(error());
        }
        Ok(HlcTimestamp { wall_ms: wall.parse().map_err(|_| error())?, logical: logical.parse().map_err(|_| error())? })
    }

    /// The timestamp that follows `self` at the same wall time, or at the next
    /// millisecond when the counter is full.
    fn successor(self) -> HlcTimestamp {
        if self.logical >= HLC_MAX_LOGICAL {
            HlcTimestamp::new(self.wall_ms.saturating_add(1), 0)
        } else {
            HlcTimestamp::new(self.wall_ms, self.logical + 1)
        }
    }
}

impl std::fmt::Display for HlcTimestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

impl std::str::FromStr for HlcTimestamp {
    type Err = HlcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HlcTimestamp::decode(s)
    }
}

impl serde::Serialize for HlcTimestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for HlcTimestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        HlcTimestamp::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// A node's hybrid logical clock. Thread-safe; share one per node.
#[derive(Debug)]
pub struct HybridClock {
    last: Mutex<HlcTimestamp>,
    max_drift_ms: u64,
}

impl HybridClock {
    /// A clock that refuses remote timestamps more than `max_drift_ms` ahead of local time.
    pub fn new(max_drift_ms: u64) -> HybridClock {
        HybridClock { last: Mutex::new(HlcTimestamp::ZERO), max_drift_ms }
    }

    /// The configured drift limit in milliseconds.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// The last timestamp issued or observed, without advancing the clock.
    pub fn last(&self) -> HlcTimestamp {
        *self.lock()
    }

    /// A timestamp for a local or send event, using the system clock.
    pub fn now(&self) -> HlcTimestamp {
        self.tick(physical_now_ms())
    }

    /// A timestamp for a local or send event at physical time `physical_ms`.
    ///
    /// Strictly greater than every timestamp this clock issued or observed before.
    pub fn tick(&self, physical_ms: u64) -> HlcTimestamp {
        let mut last = self.lock();
        let physical_ms = physical_ms.min(HLC_MAX_WALL_MS);
        let next = if physical_ms > last.wall_ms { HlcTimestamp::new(physical_ms, 0) } else { last.successor() };
        *last = next;
        next
    }

    /// Merges a timestamp received from another node at physical time `physical_ms` and
    /// returns the timestamp of the receive event, which is greater than both `remote`
    /// and everything this clock issued before.
    ///
    /// Refuses (and leaves the clock unchanged) when `remote` is more than the allowed
    /// drift ahead of `physical_ms`.
    pub fn observe(&self, remote: HlcTimestamp, physical_ms: u64) -> Result<HlcTimestamp, HlcError> {
        if remote.wall_ms > physical_ms.saturating_add(self.max_drift_ms) {
            return Err(HlcError::ClockDrift {
                remote_ms: remote.wall_ms,
                physical_ms,
                ahead_ms: remote.wall_ms - physical_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        let mut last = self.lock();
        let physical_ms = physical_ms.min(HLC_MAX_WALL_MS);
        let wall_ms = last.wall_ms.max(remote.wall_ms).max(physical_ms);
        let next = if wall_ms == last.wall_ms && wall_ms == remote.wall_ms {
            HlcTimestamp::new(wall_ms, last.logical.max(remote.logical)).successor()
        } else if wall_ms == last.wall_ms {
            last.successor()
        } else if wall_ms == remote.wall_ms {
            remote.successor()
        } else {
            HlcTimestamp::new(wall_ms, 0)
        };
        *last = next;
        Ok(next)
    }

    /// Locks the state; a poisoned lock still holds a consistent `Copy` value.
    fn lock(&self) -> std::sync::MutexGuard<'_, HlcTimestamp> {
        self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Milliseconds since the Unix epoch by the system clock (0 if it is before 1970).
fn physical_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_is_fixed_width_and_round_trips() {
        let ts = HlcTimestamp::new(1_700_000_000_123, 7);
        assert_eq!(ts.encode(), "001700000000123.000007");
        assert_eq!(ts.to_string(), ts.encode());
        assert_eq!(HlcTimestamp::decode("001700000000123.000007"), Ok(ts));
        assert_eq!("001700000000123.000007".parse(), Ok(ts));
        for bad in [
            "",
            "1.1",
            "001700000000123",
            "001700000000123.00007",
            "00170000000012a.000007",
            "001700000000123.0000070",
            "+01700000000123.000007",
        ] {
            assert_eq!(HlcTimestamp::decode(bad), Err(HlcError::Format(bad.into())));
        }
        use serde::de::{value::Error, IntoDeserializer};
        let de: Result<HlcTimestamp, Error> =
            serde::Deserialize::deserialize("001700000000123.000007".into_deserializer());
        assert_eq!(de, Ok(ts));
    }

    #[test]
    fn tick_follows_physical_time_and_counts_within_a_millisecond() {
        let clock = HybridClock::new(1_000);
        assert_eq!(clock.tick(100), HlcTimestamp::new(100, 0));
        assert_eq!(clock.tick(100), HlcTimestamp::new(100, 1));
        assert_eq!(clock.tick(90), HlcTimestamp::new(100, 2), "physical clock went back");
        assert_eq!(clock.tick(101), HlcTimestamp::new(101, 0));
        assert_eq!(clock.last(), HlcTimestamp::new(101, 0));
    }

    #[test]
    fn observe_applies_the_receive_rule() {
        let clock = HybridClock::new(1_000);
        clock.tick(100);
        // Remote ahead (within drift): adopt its wall time, counter + 1.
        assert_eq!(clock.observe(HlcTimestamp::new(500, 3), 200), Ok(HlcTimestamp::new(500, 4)));
        // Same wall time on both sides: max counter + 1.
        assert_eq!(clock.observe(HlcTimestamp::new(500, 9), 200), Ok(HlcTimestamp::new(500, 10)));
        // Remote behind: our own counter + 1.
        assert_eq!(clock.observe(HlcTimestamp::new(300, 50), 200), Ok(HlcTimestamp::new(500, 11)));
        // Physical time ahead of both: reset the counter.
        assert_eq!(clock.observe(HlcTimestamp::new(300, 50), 900), Ok(HlcTimestamp::new(900, 0)));
    }

    #[test]
    fn observe_refuses_excessive_drift_and_keeps_state() {
        let clock = HybridClock::new(1_000);
        clock.tick(100);
        let error = clock.observe(HlcTimestamp::new(1_101, 0), 100);
        assert_eq!(
            error,
            Err(HlcError::ClockDrift { remote_ms: 1_101, physical_ms: 100, ahead_ms: 1_001, max_drift_ms: 1_000 })
        );
        assert_eq!(clock.last(), HlcTimestamp::new(100, 0));
        assert!(clock.observe(HlcTimestamp::new(1_100, 0), 100).is_ok());
    }

    #[test]
    fn a_full_counter_moves_to_the_next_millisecond() {
        let clock = HybridClock::new(0);
        assert_eq!(clock.observe(HlcTimestamp::new(100, HLC_MAX_LOGICAL), 100), Ok(HlcTimestamp::new(101, 0)));
        assert_eq!(clock.tick(100), HlcTimestamp::new(101, 1));
    }

    #[test]
    fn now_is_close_to_the_system_clock_and_monotonic() {
        let clock = HybridClock::new(60_000);
        let a = clock.now();
        let b = clock.now();
        assert!(b > a);
        assert!(a.wall_ms > 1_600_000_000_000);
    }

    proptest! {
        #[test]
        fn text_order_is_time_order(a in 0..=HLC_MAX_WALL_MS, b in 0..=HLC_MAX_LOGICAL, c in 0..=HLC_MAX_WALL_MS, d in 0..=HLC_MAX_LOGICAL) {
            let x = HlcTimestamp::new(a, b);
            let y = HlcTimestamp::new(c, d);
            prop_assert_eq!(x.cmp(&y), x.encode().cmp(&y.encode()));
            prop_assert_eq!(HlcTimestamp::decode(&x.encode()), Ok(x));
        }

        #[test]
        fn every_event_is_later_than_everything_before(
            events in proptest::collection::vec((any::<bool>(), 0u64..2_000, 0u64..2_000, 0u32..5), 1..50)
        ) {
            let clock = HybridClock::new(10_000);
            let mut previous = HlcTimestamp::ZERO;
            for (receive, physical, remote_wall, remote_logical) in events {
                let next = if receive {
                    let remote = HlcTimestamp::new(remote_wall, remote_logical);
                    let next = clock.observe(remote, physical);
                    prop_assert!(next.is_ok());
                    let next = next.unwrap_or_default();
                    prop_assert!(next > remote);
                    next
                } else {
                    clock.tick(physical)
                };
                prop_assert!(next > previous);
                prop_assert!(next.wall_ms >= physical);
                previous = next;
            }
        }
    }
}
