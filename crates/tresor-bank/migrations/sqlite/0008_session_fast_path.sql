-- Version 8: a request on a session costs one statement. The statement that accepts a
-- record's seq also keeps, beside the new seq, the last activity and seq MAC it replaced, and
-- returns them: the bank checks that MAC and the idle timeout on what it replaced, without a
-- read before the write (docs/ARCHITECTURE.md, "Sessions").
ALTER TABLE channel_sessions ADD COLUMN prev_activity BIGINT;
ALTER TABLE channel_sessions ADD COLUMN prev_seq_tag BLOB;
