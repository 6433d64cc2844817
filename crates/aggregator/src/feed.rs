//! The ingest feed: the batches newly stored, in ingest order, on their way from ingest to the
//! race task.
//!
//! One consumer (the race task) takes each batch and the feed lets go of it: memory follows
//! how far the race task is behind, not how much was uploaded. The feed is bounded in reads.
//! When the race task falls further behind than that, the feed drops what it holds and tells
//! the race task it lagged. Nothing is lost: every batch is in the store before it is fed, and
//! a lagged race task rebuilds from the store (see [`crate::AppState::batches_published`] for how
//! the batch numbers keep every read applied once).

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::StoredBatch;

/// What the race task gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedItem {
    Batch(StoredBatch),
    /// Batches were dropped since the last item: rebuild from the store.
    Lagged,
}

#[derive(Debug, Default)]
struct Queue {
    batches: VecDeque<StoredBatch>,
    n_reads: usize,
    lagged: bool,
    /// Someone follows: before that, batches are only in the store.
    followed: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Feed {
    queue: Mutex<Queue>,
    ready: tokio::sync::Notify,
    max_reads: usize,
}

impl Feed {
    /// A feed that holds at most `max_reads` reads (one batch always fits).
    pub fn new(max_reads: usize) -> Feed {
        Feed { queue: Mutex::new(Queue::default()), ready: tokio::sync::Notify::new(), max_reads }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts following: batches pushed from now on are queued (whatever was queued is dropped).
    pub fn follow(&self) {
        *self.queue() = Queue { followed: true, ..Queue::default() };
    }

    /// Queues a batch the store now holds. Never waits.
    pub fn push(&self, batch: StoredBatch) {
        let mut q = self.queue();
        if !q.followed || q.lagged {
            return; // in the store; a rebuild will read it
        }
        let n = batch.reads.len() + batch.signals.len();
        if !q.batches.is_empty() && q.n_reads + n > self.max_reads {
            // Free it all now: the race task rebuilds from the store anyway.
            q.batches = VecDeque::new();
            q.n_reads = 0;
            q.lagged = true;
        } else {
            q.n_reads += n;
            q.batches.push_back(batch);
        }
        drop(q);
        self.ready.notify_one();
    }

    /// The next item, if one is there.
    pub fn try_next(&self) -> Option<FeedItem> {
        let mut q = self.queue();
        if q.lagged {
            q.lagged = false;
            return Some(FeedItem::Lagged);
        }
        let batch = q.batches.pop_front()?;
        q.n_reads -= batch.reads.len() + batch.signals.len();
        Some(FeedItem::Batch(batch))
    }

    /// The next item, waiting for one.
    pub async fn next(&self) -> FeedItem {
        loop {
            if let Some(item) = self.try_next() {
                return item;
            }
            // A push between `try_next` and here leaves a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// Reads (and signals) held.
    pub fn n_reads(&self) -> usize {
        self.queue().n_reads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(no: u64, n: usize) -> StoredBatch {
        let read = timing_wire::WireRead::from_read(
            1,
            &timing_core::Read {
                chip: timing_core::ChipId::new("058001"),
                at: timing_core::Timestamp::from_micros(1),
                point: timing_core::PointId::new("finish"),
                line: timing_core::Line::Main,
                reader: timing_core::ReaderId::new("finish-main"),
                antenna: 1,
                rssi: None,
                reader_seq: None,
            },
            reader_protocol::ReaderTime::Utc(timing_core::Timestamp::from_micros(1)),
            None,
            None,
            timing_core::Timestamp::from_micros(1),
        );
        StoredBatch { no, edge: "finish".into(), reads: vec![read; n], signals: vec![] }
    }

    fn no(item: Option<FeedItem>) -> Option<u64> {
        match item {
            Some(FeedItem::Batch(b)) => Some(b.no),
            Some(FeedItem::Lagged) => Some(0),
            None => None,
        }
    }

    #[test]
    fn batches_come_in_order_and_are_let_go_once_taken() {
        let feed = Feed::new(10);
        feed.push(batch(1, 3));
        assert_eq!(feed.try_next(), None, "nobody followed yet: the store has it");
        feed.follow();
        feed.push(batch(2, 3));
        feed.push(batch(3, 4));
        assert_eq!(feed.n_reads(), 7);
        assert_eq!(no(feed.try_next()), Some(2));
        assert_eq!(feed.n_reads(), 4);
        assert_eq!(no(feed.try_next()), Some(3));
        assert_eq!((feed.try_next(), feed.n_reads()), (None, 0));
    }

    #[test]
    fn overflowing_drops_everything_held_and_says_so_once() {
        let feed = Feed::new(10);
        feed.follow();
        feed.push(batch(1, 6));
        feed.push(batch(2, 4));
        feed.push(batch(3, 1)); // 11 > 10
        assert_eq!(feed.n_reads(), 0, "what was held is freed at once");
        feed.push(batch(4, 1)); // still lagged: the rebuild will read it from the store
        assert_eq!(no(feed.try_next()), Some(0));
        assert_eq!(feed.try_next(), None);
        feed.push(batch(5, 2));
        assert_eq!(no(feed.try_next()), Some(5), "after the lag is taken, batches are queued again");
    }

    #[test]
    fn one_batch_bigger_than_the_bound_still_fits_an_empty_feed() {
        let feed = Feed::new(10);
        feed.follow();
        feed.push(batch(1, 25));
        assert_eq!(no(feed.try_next()), Some(1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn next_waits_for_a_push() {
        let feed = std::sync::Arc::new(Feed::new(10));
        feed.follow();
        let waiter = tokio::spawn({
            let feed = feed.clone();
            async move { feed.next().await }
        });
        tokio::task::yield_now().await; // the waiter is parked on an empty feed
        feed.push(batch(7, 1));
        assert_eq!(no(Some(waiter.await.unwrap())), Some(7));
    }
}
