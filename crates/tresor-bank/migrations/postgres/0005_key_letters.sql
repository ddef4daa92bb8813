-- Version 5: key letters and suspension (see the SQLite migration of the same version).
ALTER TABLE certificates DROP CONSTRAINT certificates_revoke_reason;
ALTER TABLE certificates
    ADD CONSTRAINT certificates_revoke_reason CHECK (revoke_reason IS NULL
        OR revoke_reason IN ('recovery', 'admin', 'suspended')),
    ADD COLUMN activation TEXT NOT NULL DEFAULT 'immediate'
        CONSTRAINT certificates_activation CHECK (activation IN ('immediate', 'pending', 'activated')),
    ADD COLUMN activation_tag BYTEA;

ALTER TABLE users ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0
    CONSTRAINT users_suspended CHECK (suspended IN (0, 1));
