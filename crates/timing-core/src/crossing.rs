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
//! Summaries are idempotent under duplicate reads except for `hits`, so duplicates are dropped
//! before they get here: by the engine's exact-duplicate filter where reads come from files
//! (see `engine::read_fingerprint`), by the edge's outbox where they come from the aggregator.

use crate::course::{PointIdx, TimeMode};
use crate::read::{Line, Rssi};
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

/// The crossings of one line of one point (possibly several chips' merged), sorted and pairwise
/// separated by more than the quiet gap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crossings {
    items: Vec<Crossing>,
}

impl Crossings {
    pub fn as_slice(&self) -> &[Crossing] {
        &self.items
    }

    /// Merges crossings of one line (any order, e.g. a bib's two chips) into one sorted,
    /// gap-separated list.
    pub fn merge_all(parts: impl IntoIterator<Item = Crossing>, quiet_gap: Elapsed) -> Crossings {
        let mut all: Vec<Crossing> = parts.into_iter().collect();
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
}

/// Where a crossing was made: a point and one of its lines, packed into 16 bits (points are
/// fewer than 2^15; the event config refuses more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct LineKey(u16);

impl LineKey {
    fn new(point: PointIdx, line: Line) -> LineKey {
        assert!(point.0 < 1 << 15, "a point index fits in 15 bits");
        LineKey(point.0 << 1 | u16::from(line == Line::Backup))
    }
    fn point(self) -> PointIdx {
        PointIdx(self.0 >> 1)
    }
    fn line(self) -> Line {
        if self.0 & 1 == 1 { Line::Backup } else { Line::Main }
    }
}

/// A stored crossing: 32 bytes (a [`Crossing`] with its line is 56).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed {
    first: Timestamp,
    last: Timestamp,
    peak_at: Timestamp,
    hits: u32,
    /// [`NO_RSSI`] when no read carried RSSI.
    peak_rssi: i16,
    key: LineKey,
}

/// No real reader reports −3276.8 dBm; a read that says so is stored as −3276.7.
const NO_RSSI: i16 = i16::MIN;

impl Packed {
    fn new(key: LineKey, c: &Crossing) -> Packed {
        let (peak_rssi, peak_at) = match c.peak {
            Some((r, at)) => (r.0.max(NO_RSSI + 1), at),
            None => (NO_RSSI, c.first),
        };
        Packed { first: c.first, last: c.last, peak_at, hits: c.hits, peak_rssi, key }
    }
    fn crossing(&self) -> Crossing {
        Crossing {
            first: self.first,
            last: self.last,
            peak: (self.peak_rssi != NO_RSSI).then_some((Rssi(self.peak_rssi), self.peak_at)),
            hits: self.hits,
        }
    }
}

/// Every crossing of one chip, at every point and line, in one vector: sorted by (point, line),
/// then by time, each line's crossings pairwise separated by more than its quiet gap.
///
/// One flat vector per chip (reserved to its race's points when the first read comes) instead of
/// one per line: a 100,000-runner event keeps about 32 bytes per crossing, not a small vector's
/// header and minimum capacity per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChipCrossings {
    items: Vec<Packed>,
}

impl ChipCrossings {
    /// Stored crossings, every line together.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Makes room for `lines` crossings if nothing is stored yet (one per line is the usual case).
    pub fn reserve_first(&mut self, lines: usize) {
        if self.items.capacity() == 0 {
            self.items.reserve_exact(lines);
        }
    }

    fn range(&self, key: LineKey) -> std::ops::Range<usize> {
        let lo = self.items.partition_point(|x| x.key < key);
        let hi = lo + self.items[lo..].partition_point(|x| x.key == key);
        lo..hi
    }

    /// The crossings of one line, in time order.
    pub fn line(&self, point: PointIdx, line: Line) -> impl ExactSizeIterator<Item = Crossing> + '_ {
        self.items[self.range(LineKey::new(point, line))].iter().map(Packed::crossing)
    }

    /// Every crossing with its point and line, sorted by (point, line, time).
    pub fn iter(&self) -> impl Iterator<Item = (PointIdx, Line, Crossing)> + '_ {
        self.items.iter().map(|x| (x.key.point(), x.key.line(), x.crossing()))
    }

    /// Adds one read (or an already grouped crossing) at a line and restores the invariant.
    pub fn insert(&mut self, point: PointIdx, line: Line, c: Crossing, quiet_gap: Elapsed) {
        let key = LineKey::new(point, line);
        let range = self.range(key);
        let items = &self.items[range.clone()];
        // First crossing that ends no earlier than `c.first - gap`: the earliest one `c` may join.
        let lo = items.partition_point(|x| x.last + quiet_gap < c.first);
        let mut hi = lo;
        while hi < items.len() && items[hi].first <= c.last + quiet_gap {
            hi += 1;
        }
        let (lo, hi) = (range.start + lo, range.start + hi);
        if lo == hi {
            self.items.insert(lo, Packed::new(key, &c));
        } else {
            let mut merged = c;
            for x in &self.items[lo..hi] {
                merged.absorb(&x.crossing());
            }
            self.items[lo] = Packed::new(key, &merged);
            self.items.drain(lo + 1..hi);
        }
        debug_assert!(self.is_well_formed(key, quiet_gap));
    }

    fn is_well_formed(&self, key: LineKey, quiet_gap: Elapsed) -> bool {
        let items = &self.items[self.range(key)];
        self.items.windows(2).all(|w| w[0].key <= w[1].key)
            && items.windows(2).all(|w| w[0].last + quiet_gap < w[1].first)
            && items.iter().all(|c| c.first <= c.last && c.hits > 0)
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

    const P: PointIdx = PointIdx(3);

    fn group(reads: &[(i64, Option<i16>)]) -> Vec<Crossing> {
        let mut cs = ChipCrossings::default();
        for &(ms, rssi) in reads {
            cs.insert(P, Line::Main, Crossing::single(t(ms), rssi.map(Rssi)), GAP);
        }
        assert_eq!(cs.len(), cs.line(P, Line::Main).len(), "one line only");
        cs.line(P, Line::Main).collect()
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

    #[test]
    fn a_read_claiming_the_lowest_rssi_still_has_one() {
        let mut cs = ChipCrossings::default();
        cs.insert(P, Line::Backup, Crossing::single(t(0), Some(Rssi(i16::MIN))), GAP);
        let got: Vec<_> = cs.line(P, Line::Backup).collect();
        assert_eq!(got[0].peak, Some((Rssi(i16::MIN + 1), t(0))));
        assert_eq!(std::mem::size_of::<Packed>(), 32);
    }

    proptest! {
        #[test]
        fn lines_of_one_chip_do_not_mix(
            reads in proptest::collection::vec((0u16..3, any::<bool>(), 0i64..10_000, proptest::option::of(-900i16..-300)), 1..80),
        ) {
            let mut chip = ChipCrossings::default();
            for &(p, backup, ms, rssi) in &reads {
                let line = if backup { Line::Backup } else { Line::Main };
                chip.insert(PointIdx(p), line, Crossing::single(t(ms), rssi.map(Rssi)), GAP);
            }
            let mut n = 0;
            for p in 0..3 {
                for (backup, line) in [(false, Line::Main), (true, Line::Backup)] {
                    let alone: Vec<_> = reads.iter().filter(|r| r.0 == p && r.1 == backup).map(|r| (r.2, r.3)).collect();
                    let want = if alone.is_empty() { Vec::new() } else { group(&alone) };
                    let got: Vec<_> = chip.line(PointIdx(p), line).collect();
                    n += got.len();
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(n, chip.len());
            let keys: Vec<_> = chip.iter().map(|(p, l, c)| (p, l == Line::Backup, c.first)).collect();
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted by point, line and time");
        }

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
            let singles = reads.iter().map(|&(ms, r)| Crossing::single(t(ms), r.map(Rssi)));
            prop_assert_eq!(&a, &Crossings::merge_all(singles, GAP).items);
            // Cross-check the grouping against the definition on sorted raw instants.
            let mut ms: Vec<i64> = reads.iter().map(|r| r.0).collect();
            ms.sort_unstable();
            let n_groups = 1 + ms.windows(2).filter(|w| w[1] - w[0] > 400).count();
            prop_assert_eq!(a.len(), n_groups);
        }
    }
}
