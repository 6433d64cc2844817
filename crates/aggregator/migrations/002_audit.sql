-- The results desk's corrections: append-only, replayed in order on every rebuild.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at_us      INTEGER NOT NULL,  -- when the aggregator recorded it
    who        TEXT    NOT NULL,
    why        TEXT    NOT NULL,
    correction TEXT    NOT NULL,  -- timing_wire::desk::DeskCorrection as JSON
    undoes     INTEGER             -- the entry this one undoes
);
