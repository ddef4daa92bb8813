-- Version 13: sessions held in an instance's memory (docs/ARCHITECTURE.md, "Sessions: held
-- by the instance that serves them"). `holder` names the instance whose memory holds a
-- session's seq and last activity, NULL while the row does; the seq MAC covers it, so the
-- sessions of older versions, whose MACs do not, end here.
DELETE FROM channel_sessions;
ALTER TABLE channel_sessions ADD COLUMN holder TEXT;
CREATE INDEX channel_sessions_holder ON channel_sessions (holder);
