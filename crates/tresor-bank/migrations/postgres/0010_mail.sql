-- Version 10: the bank's e-mail. A user may have an address; mail waits in an outbox until
-- the SMTP server takes it, so that a mail outage never blocks or loses an action. What a
-- mail says (it may carry a one-time password) is sealed under the bank's key, and dropped
-- once sent (docs/ARCHITECTURE.md, "E-mail").
ALTER TABLE users ADD COLUMN email TEXT;
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt BIGINT NOT NULL,
    last_error TEXT,
    sent_at BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt) WHERE sent_at IS NULL;
