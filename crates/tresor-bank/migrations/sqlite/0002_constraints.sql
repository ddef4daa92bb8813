-- Version 2: the database refuses values the bank never writes. Every enumerated column and
-- 0/1 flag gets a CHECK, one user signs an order once, and the queries get their indexes.
-- A database holding a value outside these sets fails this migration instead of carrying it.
--
-- SQLite adds constraints only by rebuilding a table: each is created anew, filled from the
-- old one, and put in its place. The migration runs on a connection with foreign keys off
-- (storage/mod.rs), as SQLite's documented procedure for schema changes asks; the copies keep
-- every row and id, so every reference still holds.

CREATE TABLE users_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    password_kind TEXT NOT NULL CHECK (password_kind IN ('initial', 'temporary', 'regular')),
    password_expires BIGINT,
    password_used BIGINT NOT NULL DEFAULT 0 CHECK (password_used IN (0, 1)),
    failed_logins BIGINT NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked BIGINT NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    menus TEXT NOT NULL DEFAULT 'full' CHECK (menus IN ('full', 'limited')),
    emergency_hash TEXT,
    emergency_expires BIGINT,
    recovery_pending BIGINT NOT NULL DEFAULT 0 CHECK (recovery_pending IN (0, 1)),
    totp_secret BLOB,
    totp_pending BLOB,
    totp_last_step BIGINT,
    otp_failures BIGINT NOT NULL DEFAULT 0 CHECK (otp_failures >= 0),
    created_at BIGINT NOT NULL,
    CHECK ((emergency_hash IS NULL) = (emergency_expires IS NULL))
);
INSERT INTO users_v2 SELECT id, login, name, password_hash, password_kind, password_expires,
    password_used, failed_logins, locked, menus, emergency_hash, emergency_expires,
    recovery_pending, totp_secret, totp_pending, totp_last_step, otp_failures, created_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;

CREATE TABLE certificates_v2 (
    serial TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    der BLOB NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('enroll', 'renewal', 'recovery')),
    revoked_at BIGINT,
    revoke_reason TEXT CHECK (revoke_reason IS NULL OR revoke_reason IN ('recovery', 'admin')),
    CHECK (not_after > not_before)
);
INSERT INTO certificates_v2 SELECT serial, user_id, der, not_before, not_after, issued_at,
    purpose, revoked_at, revoke_reason FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v2 RENAME TO certificates;
CREATE INDEX certificates_user ON certificates (user_id);

CREATE TABLE accounts_v2 (
    iban TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL CHECK (balance >= 0),
    signatures_required BIGINT NOT NULL DEFAULT 1 CHECK (signatures_required IN (1, 2))
);
INSERT INTO accounts_v2 SELECT iban, holder, currency, balance, signatures_required FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_v2 RENAME TO accounts;

CREATE TABLE rights_v2 (
    user_id BIGINT NOT NULL REFERENCES users (id),
    iban TEXT NOT NULL REFERENCES accounts (iban),
    can_view BIGINT NOT NULL DEFAULT 0 CHECK (can_view IN (0, 1)),
    can_prepare BIGINT NOT NULL DEFAULT 0 CHECK (can_prepare IN (0, 1)),
    can_sign BIGINT NOT NULL DEFAULT 0 CHECK (can_sign IN (0, 1)),
    can_send BIGINT NOT NULL DEFAULT 0 CHECK (can_send IN (0, 1)),
    PRIMARY KEY (user_id, iban)
);
INSERT INTO rights_v2 SELECT user_id, iban, can_view, can_prepare, can_sign, can_send FROM rights;
DROP TABLE rights;
ALTER TABLE rights_v2 RENAME TO rights;

CREATE TABLE orders_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payer_iban TEXT NOT NULL REFERENCES accounts (iban),
    payee_name TEXT NOT NULL,
    payee_tax_code TEXT NOT NULL,
    payee_iban TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    purpose TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    status TEXT NOT NULL CHECK (status IN ('draft', 'partly_signed', 'signed', 'sent', 'accepted', 'rejected')),
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT,
    reject_reason TEXT
);
INSERT INTO orders_v2 SELECT id, payer_iban, payee_name, payee_tax_code, payee_iban, amount,
    currency, purpose, version, status, created_by, created_at, updated_at, sent_at,
    reject_reason FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
CREATE INDEX orders_payer ON orders (payer_iban);

CREATE TABLE order_signatures_v2 (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    position BIGINT NOT NULL CHECK (position IN (1, 2)),
    user_id BIGINT NOT NULL REFERENCES users (id),
    cert_serial TEXT NOT NULL,
    signature BLOB NOT NULL,
    signed_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, position),
    UNIQUE (order_id, user_id)
);
INSERT INTO order_signatures_v2 SELECT order_id, position, user_id, cert_serial, signature,
    signed_at FROM order_signatures;
DROP TABLE order_signatures;
ALTER TABLE order_signatures_v2 RENAME TO order_signatures;
CREATE INDEX order_signatures_user ON order_signatures (user_id);

CREATE TABLE channel_sessions_v2 (
    id TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    next_seq BIGINT NOT NULL CHECK (next_seq >= 0),
    last_activity BIGINT NOT NULL,
    idle_timeout BIGINT NOT NULL,
    user_id BIGINT,
    stage TEXT CHECK (stage IS NULL OR stage IN ('change_password', 'enroll', 'recovery', 'key', 'otp', 'reconnect')),
    cert_serial TEXT,
    CHECK ((user_id IS NULL) = (stage IS NULL))
);
INSERT INTO channel_sessions_v2 SELECT id, state, next_seq, last_activity, idle_timeout,
    user_id, stage, cert_serial FROM channel_sessions;
DROP TABLE channel_sessions;
ALTER TABLE channel_sessions_v2 RENAME TO channel_sessions;
CREATE INDEX channel_sessions_user ON channel_sessions (user_id);

CREATE TABLE audit_head_v2 (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BLOB NOT NULL,
    mac BLOB NOT NULL
);
INSERT INTO audit_head_v2 SELECT id, seq, hash, mac FROM audit_head;
DROP TABLE audit_head;
ALTER TABLE audit_head_v2 RENAME TO audit_head;

CREATE INDEX ip_points_at ON ip_points (at);
