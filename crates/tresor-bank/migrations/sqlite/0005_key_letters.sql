-- Version 5: key letters and suspension. A certificate issued under `activation = "letter"`
-- is stored 'pending' and refused at the handshake until a security officer activates it from
-- the signed paper letter; its activation state carries a MAC with the data folder's key
-- (`activation_tag`, written for older rows by the first run after this migration). A user
-- who blocks their key has every certificate revoked as 'suspended' and is `suspended` until
-- a recovery with an emergency password.
--
-- SQLite changes a CHECK only by rebuilding the table (see version 2).
CREATE TABLE certificates_v5 (
    serial TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    der BLOB NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('enroll', 'renewal', 'recovery')),
    revoked_at BIGINT,
    revoke_reason TEXT CHECK (revoke_reason IS NULL
        OR revoke_reason IN ('recovery', 'admin', 'suspended')),
    activation TEXT NOT NULL DEFAULT 'immediate'
        CHECK (activation IN ('immediate', 'pending', 'activated')),
    activation_tag BLOB,
    CHECK (not_after > not_before)
);
INSERT INTO certificates_v5 (serial, user_id, der, not_before, not_after, issued_at, purpose,
    revoked_at, revoke_reason)
    SELECT serial, user_id, der, not_before, not_after, issued_at, purpose, revoked_at,
    revoke_reason FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v5 RENAME TO certificates;
CREATE INDEX certificates_user ON certificates (user_id);

ALTER TABLE users ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1));
