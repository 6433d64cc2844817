//! Crossing detection: reads of one chip on one line of one point, grouped until a quiet gap.
//!
//! Design note.
//! A crossing is a maximal run of reads whose neighbours (in time) are at most `quiet_gap` apart:
//! single-linkage clustering on one axis.
//! That clustering depends only on the *set* of read instants, not on arrival order, and it can be
//! kept exactly as a sorted list of interval summaries (first, last, peak, hits): a new read at `t`
//! joins every crossing whose interval widened by the gap contains `t`, and joining may bridge two
//! neighbours.
//! Any instant inside a crossing's `[first, last]` is within half a gap of one of its reads, so
//! interval arithmetic gives the same grouping as the raw reads would.
//! The engine therefore stores summaries, not reads (about 20 times smaller at a real mat), and
//! merging the crossings of a bib's two chips is the same interval merge.
//! Summaries are idempotent under duplicate reads except for `hits`, so the engine filters exact
//! duplicates before they get here (see `engine::read_fingerprint`).

use crate::course::TimeMode;
use crate::read::Rssi;
use crate::time::{Elapsed, Timestamp};

/// One crossing of one line by one chip (or by one bib's chips, once merged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crossing {
    pub first: Timestamp,
    pub last: Timestamp,
    /// Strongest read; ties go to the earliest. `None` if no read carried RSSI.
    pub peak: Option<(Rssi, Timestamp)>,
    pub hits: u32,
}

impl Crossing {
    pub fn single(at: Timestamp, rssi: Option<Rssi>) -> Crossing {
        Crossing { first: at, last: at, peak: rssi.map(|r| (r, at)), hits: 1 }
    }

    /// The instant the crossing stands for, by the point's time mode.
    pub fn time(&self, mode: TimeMode) -> Timestamp {
        match mode {
            TimeMode::First => self.first,
            TimeMode::Last => self.last,
            TimeMode::PeakRssi => self.peak.map_or(self.first, |(_, at)| at),
        }
    }

    pub fn span(&self) -> Elapsed {
        self.last.since(self.first)
    }

    /// Read continuously for at least `stray_after`: a bib lying by the mat, not a runner.
    pub fn is_stray(&self, stray_after: Elapsed) -> bool {
        self.span() >= stray_after
    }

    fn absorb(&mut self, other: &Crossing) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.hits = self.hits.saturating_add(other.hits);
        self.peak = match (self.peak, other.peak) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) { b } else { a }),
            (a, b) => a.or(b),
        };
    }

    /// Shifts every instant by `by` (a clock-offset correction).
    pub fn shifted(mut self, by: Elapsed) -> Crossing {
        self.first = self.first + by;
        self.last = self.last + by;
        self.peak = self.peak.map(|(r, at)| (r, at + by));
        self
    }
}

/// The crossings of one chip at one line of one point, sorted and pairwise separated by more than
/// the quiet gap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crossings {
    items: Vec<Crossing>,
}

impl Crossings {
    pub fn as_slice(&self) -> &[Crossing] {
        &self.items
    }

    /// Adds one read (or an already grouped crossing) and restores the invariant.
    pub fn insert(&mut self, c: Crossing, quiet_gap: Elapsed) {
        // First crossing that ends no earlier than `c.first - gap`: the earliest one `c` may join.
        let lo = self.items.partition_point(|x| x.last + quiet_gap < c.first);
        let mut hi = lo;
        while hi < self.items.len() && self.items[hi].first <= c.last + quiet_gap {
            hi += 1;
        }
        if lo == hi {
            self.items.insert(lo, c);
        } else {
            let mut merged = c;
            for x in &self.items[lo..hi] {
                merged.absorb(x);
            }
            self.items[lo] = merged;
            self.items.drain(lo + 1..hi);
        }
        debug_assert!(self.is_well_formed(quiet_gap));
    }

    /// Merges several chips' crossings of one line into one sorted, gap-separated list.
    pub fn merge_all<'a>(parts: impl IntoIterator<Item = &'a Crossings>, quiet_gap: Elapsed) -> Crossings {
        let mut all: Vec<Crossing> = parts.into_iter().flat_map(|p| p.items.iter().copied()).collect();
        all.sort_unstable_by_key(|c| (c.first, c.last));
        let mut items: Vec<Crossing> = Vec::with_capacity(all.len());
        for c in all {
            match items.last_mut() {
                Some(prev) if c.first <= prev.last + quiet_gap => prev.absorb(&c),
                _ => items.push(c),
            }
        }
        Crossings { items }
    }

    fn is_well_formed(&self, quiet_gap: Elapsed) -> bool {
        self.items.windows(2).all(|w| w[0].last + quiet_gap < w[1].first)
            && self.items.iter().all(|c| c.first <= c.last && c.hits > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GAP: Elapsed = Elapsed::from_millis(400);

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    fn group(reads: &[(i64, Option<i16>)]) -> Vec<Crossing> {
        let mut cs = Crossings::default();
        for &(ms, rssi) in reads {
            cs.insert(Crossing::single(t(ms), rssi.map(Rssi)), GAP);
        }
        cs.items
    }

    #[test]
    fn reads_within_the_quiet_gap_form_one_crossing() {
        let got = group(&[(0, Some(-700)), (300, Some(-550)), (700, Some(-600)), (1101, None)]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].first, got[0].last, got[0].hits), (t(0), t(700), 3));
        assert_eq!(got[0].peak, Some((Rssi(-550), t(300))));
        assert_eq!(got[0].time(TimeMode::PeakRssi), t(300));
        assert_eq!(got[0].time(TimeMode::Last), t(700));
        assert_eq!((got[1].first, got[1].peak), (t(1101), None));
        assert_eq!(got[1].time(TimeMode::PeakRssi), t(1101), "no RSSI falls back to the first read");
    }

    #[test]
    fn a_late_read_bridges_two_crossings() {
        assert_eq!(group(&[(0, None), (700, None)]).len(), 2);
        let got = group(&[(0, None), (700, None), (350, None)]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].first, got[0].last, got[0].hits), (t(0), t(700), 3));
    }

    #[test]
    fn peak_ties_go_to_the_earliest_read() {
        let got = group(&[(200, Some(-500)), (100, Some(-500))]);
        assert_eq!(got[0].peak, Some((Rssi(-500), t(100))));
    }

    #[test]
    fn a_long_continuous_crossing_is_a_stray() {
        let reads: Vec<_> = (0..25).map(|i| (i * 350, None)).collect();
        let got = group(&reads);
        assert_eq!(got.len(), 1);
        assert!(got[0].is_stray(Elapsed::from_secs(8)));
        assert!(!got[0].is_stray(Elapsed::from_secs(9)));
    }

    proptest! {
        #[test]
        fn grouping_is_independent_of_arrival_order(
            mut reads in proptest::collection::vec((0i64..20_000, proptest::option::of(-900i16..-300)), 1..60),
            seed in any::<u64>(),
        ) {
            let a = group(&reads);
            // A deterministic shuffle driven by the seed.
            let mut s = seed | 1;
            for i in (1..reads.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                reads.swap(i, (s % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(&a, &group(&reads));
            // And the same as a batch merge of single-read crossings.
            let singles: Vec<Crossings> = reads.iter().map(|&(ms, r)| Crossings { items: vec![Crossing::single(t(ms), r.map(Rssi))] }).collect();
            prop_assert_eq!(&a, &Crossings::merge_all(&singles, GAP).items);
            // Cross-check the grouping against the definition on sorted raw instants.
            let mut ms: Vec<i64> = reads.iter().map(|r| r.0).collect();
            ms.sort_unstable();
            let n_groups = 1 + ms.windows(2).filter(|w| w[1] - w[0] > 400).count();
            prop_assert_eq!(a.len(), n_groups);
        }
    }
}
