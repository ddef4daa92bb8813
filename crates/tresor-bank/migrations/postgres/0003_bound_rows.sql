-- Version 3: what grants authority is bound to the data folder's key (docs/THREAT_MODEL.md).
-- Sessions carry MACs over their login and their seq, and the address that opened them; open
-- sessions end here (their rows have no MACs; clients connect again). Users get the counter
-- that throttles anonymous password guesses per account. Audit records say whether their
-- hash is keyed (HMAC, from this version on) or a plain SHA-256 (older records).
DELETE FROM channel_sessions;
ALTER TABLE channel_sessions
    ADD COLUMN login_tag BYTEA,
    ADD COLUMN seq_tag BYTEA,
    ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX channel_sessions_source ON channel_sessions (source);

ALTER TABLE users
    ADD COLUMN anon_failures BIGINT NOT NULL DEFAULT 0 CONSTRAINT users_anon_failures CHECK (anon_failures >= 0),
    ADD COLUMN anon_window BIGINT NOT NULL DEFAULT 0;

ALTER TABLE audit
    ADD COLUMN keyed BIGINT NOT NULL DEFAULT 0 CONSTRAINT audit_keyed CHECK (keyed IN (0, 1));
