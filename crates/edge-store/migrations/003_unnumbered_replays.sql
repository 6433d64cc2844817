-- Readers without passing numbers (IPICO, LLRP) name a read only by what it says: a replay of
-- the reader's memory after a reconnect comes again with the same reader time. The outbox drops
-- such exact copies on insert (see `Outbox::append`); this index makes that lookup cheap.
-- Not a unique index: an outbox written before this migration may hold copies already, and
-- creating the index must not fail on it.
CREATE INDEX reads_unnumbered ON reads (reader, reader_time_us, chip) WHERE reader_seq IS NULL;
