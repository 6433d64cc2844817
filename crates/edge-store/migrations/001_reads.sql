-- Every read an edge accepted from a reader, with its edge sequence number.
CREATE TABLE reads (
    seq              INTEGER PRIMARY KEY, -- edge sequence number, given by the outbox: contiguous, never reused
    chip             TEXT    NOT NULL,
    at_us            INTEGER NOT NULL,  -- UTC microseconds, corrected for the reader's clock offset
    point            TEXT    NOT NULL,
    line             INTEGER NOT NULL,  -- 0 main, 1 backup
    reader           TEXT    NOT NULL,
    antenna          INTEGER NOT NULL,
    rssi             INTEGER,           -- tenths of a dBm
    reader_seq       INTEGER,           -- the reader's passing number / log id
    reader_time_kind INTEGER NOT NULL,  -- 0 UTC, 1 local date-time, 2 time of day
    reader_time_us   INTEGER NOT NULL,  -- the reader's own timestamp in that base
    session          INTEGER,           -- the reader's file / session / boot number
    hits             INTEGER,
    received_at_us   INTEGER NOT NULL   -- edge clock at receipt: diagnostics only
);

-- A reader's replay after a reconnect re-sends passings already stored: drop them on insert.
CREATE UNIQUE INDEX reads_reader_passing ON reads (reader, COALESCE(session, -1), reader_seq)
    WHERE reader_seq IS NOT NULL;

-- last_seq: the highest seq ever given (written with each batch, so seqs are never reused even
-- if rows are ever pruned); acked_seq: the uplink cursor, the highest contiguous seq the
-- aggregator has durably stored.
CREATE TABLE outbox_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL,
    acked_seq INTEGER NOT NULL
);
INSERT INTO outbox_state (id, last_seq, acked_seq) VALUES (1, 0, 0);
