-- Signals: things other than reads that must reach the aggregator exactly once (gun times seen
-- by the edge's Modbus start-gun input). Their own sequence and cursor.
CREATE TABLE signals (
    seq            INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,  -- 'gun_time'
    race           TEXT    NOT NULL,
    wave           TEXT    NOT NULL,
    at_us          INTEGER NOT NULL,  -- UTC microseconds on the edge's clock
    source         TEXT    NOT NULL,  -- 'modbus:<device>:<channel>'
    jitter_us      INTEGER NOT NULL,  -- half the polling interval: the instant's uncertainty
    received_at_us INTEGER NOT NULL
);

ALTER TABLE outbox_state ADD COLUMN last_signal_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox_state ADD COLUMN acked_signal_seq INTEGER NOT NULL DEFAULT 0;
