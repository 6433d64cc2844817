//! Places: rank indexes per ranking group, kept incrementally.
//!
//! A place is `1 + the number of ranked entries with a strictly better full-resolution time`, so
//! ties share a place and the next place is skipped (1, 2, 2, 4), and rounding for publication
//! never changes an order.
//! [`RankIndex`] is a sorted list cut into blocks of at most `2 × BLOCK` keys: insert, remove and
//! "how many are better" cost O(√n) with small constants (about 20 blocks for a 20,000-runner
//! race), which keeps one live update far under the engine's 50 µs budget without a tree.

/// A ranking key: full-resolution time in microseconds, then the participant index for a
/// deterministic total order among ties.
pub type RankKey = (i64, u32);

const BLOCK: usize = 512;

#[derive(Clone, Debug, Default)]
pub struct RankIndex {
    blocks: Vec<Vec<RankKey>>,
    len: usize,
}

impl RankIndex {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn block_for(&self, key: RankKey) -> usize {
        // First block whose last key is >= key; insertion goes to the last block if none is.
        let i = self.blocks.partition_point(|b| *b.last().expect("blocks are never empty") < key);
        i.min(self.blocks.len().saturating_sub(1))
    }

    pub fn insert(&mut self, key: RankKey) {
        if self.blocks.is_empty() {
            self.blocks.push(vec![key]);
            self.len = 1;
            return;
        }
        let b = self.block_for(key);
        let block = &mut self.blocks[b];
        let at = block.partition_point(|k| *k < key);
        if block.get(at) == Some(&key) {
            return;
        }
        block.insert(at, key);
        self.len += 1;
        if block.len() > 2 * BLOCK {
            let tail = block.split_off(BLOCK);
            self.blocks.insert(b + 1, tail);
        }
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: RankKey) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let b = self.block_for(key);
        let block = &mut self.blocks[b];
        match block.binary_search(&key) {
            Ok(at) => {
                block.remove(at);
                self.len -= 1;
                if block.is_empty() {
                    self.blocks.remove(b);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Entries with a time strictly less than `time_us`.
    pub fn count_better(&self, time_us: i64) -> usize {
        let probe = (time_us, 0);
        let mut n = 0;
        for block in &self.blocks {
            if *block.last().expect("blocks are never empty") < probe {
                n += block.len();
            } else {
                n += block.partition_point(|k| k.0 < time_us);
                break;
            }
        }
        n
    }

    /// The place an entry with this time holds.
    pub fn place(&self, time_us: i64) -> u32 {
        (self.count_better(time_us) + 1) as u32
    }

    pub fn iter(&self) -> impl Iterator<Item = RankKey> + '_ {
        self.blocks.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ties_share_a_place_and_skip_the_next() {
        let mut r = RankIndex::default();
        for (t, p) in [(100, 0), (200, 1), (200, 2), (300, 3)] {
            r.insert((t, p));
        }
        let places: Vec<u32> = r.iter().map(|(t, _)| r.place(t)).collect();
        assert_eq!(places, vec![1, 2, 2, 4]);
    }

    proptest! {
        #[test]
        fn matches_a_sorted_vector(ops in proptest::collection::vec((any::<bool>(), 0i64..3000, 0u32..4000), 0..4000)) {
            let mut r = RankIndex::default();
            let mut model: Vec<RankKey> = Vec::new();
            for (ins, t, p) in ops {
                let key = (t, p);
                if ins {
                    r.insert(key);
                    if let Err(i) = model.binary_search(&key) { model.insert(i, key); }
                } else {
                    let was = model.binary_search(&key).map(|i| { model.remove(i); }).is_ok();
                    prop_assert_eq!(r.remove(key), was);
                }
            }
            prop_assert_eq!(r.len(), model.len());
            prop_assert_eq!(r.iter().collect::<Vec<_>>(), model.clone());
            for probe in [0i64, 1, 777, 1500, 2999, 3000] {
                prop_assert_eq!(r.count_better(probe), model.iter().filter(|k| k.0 < probe).count());
            }
        }
    }
}
