-- The edges that have uploaded, each with its cursors: the highest seq up to which every read
-- (and every signal) of that edge is stored, with no gap.
CREATE TABLE edges (
    edge_no          INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE, -- the edge file's [edge] id
    acked_seq        INTEGER NOT NULL DEFAULT 0,
    acked_signal_seq INTEGER NOT NULL DEFAULT 0
);

-- Every read an edge uploaded, once per (edge, seq); the rowid is the ingest order, which a
-- restart replays into the race engine.
CREATE TABLE reads (
    ingest_no        INTEGER PRIMARY KEY,
    edge_no          INTEGER NOT NULL REFERENCES edges (edge_no),
    seq              INTEGER NOT NULL, -- the edge's sequence number: 1, 2, 3, ... per edge
    chip             TEXT    NOT NULL,
    at_us            INTEGER NOT NULL, -- UTC microseconds, corrected by the edge for the reader's clock offset
    point            TEXT    NOT NULL,
    line             INTEGER NOT NULL, -- 0 main, 1 backup
    reader           TEXT    NOT NULL,
    antenna          INTEGER NOT NULL,
    rssi             INTEGER,          -- tenths of a dBm
    reader_seq       INTEGER,          -- the reader's passing number (u64 stored bit for bit)
    session          INTEGER,
    hits             INTEGER,
    reader_time_kind INTEGER NOT NULL, -- 0 UTC, 1 local date-time, 2 time of day
    reader_time_us   INTEGER NOT NULL,
    received_at_us   INTEGER NOT NULL, -- edge clock at receipt: diagnostics only
    ingested_at_us   INTEGER NOT NULL, -- aggregator clock at ingest: diagnostics only
    UNIQUE (edge_no, seq)
);

-- Every signal (gun times) an edge uploaded, once per (edge, seq): the edge numbers signals in
-- their own series.
CREATE TABLE signals (
    ingest_no      INTEGER PRIMARY KEY,
    edge_no        INTEGER NOT NULL REFERENCES edges (edge_no),
    seq            INTEGER NOT NULL,
    kind           TEXT    NOT NULL, -- 'gun_time'
    race           TEXT    NOT NULL,
    wave           TEXT    NOT NULL,
    at_us          INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    jitter_us      INTEGER NOT NULL,
    ingested_at_us INTEGER NOT NULL,
    UNIQUE (edge_no, seq)
);
