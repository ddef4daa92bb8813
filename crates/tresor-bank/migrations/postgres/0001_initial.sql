-- Tresor bank schema, version 1: the tables as the first release created them. Kept with
-- IF NOT EXISTS so that a database made before migrations existed is taken over as is.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS users (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- initial | temporary | regular; the first two are one-time and expire.
    password_kind TEXT NOT NULL,
    password_expires BIGINT,
    password_used BIGINT NOT NULL DEFAULT 0,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked BIGINT NOT NULL DEFAULT 0,
    menus TEXT NOT NULL DEFAULT 'full',
    emergency_hash TEXT,
    emergency_expires BIGINT,
    recovery_pending BIGINT NOT NULL DEFAULT 0,
    totp_secret BYTEA,
    totp_pending BYTEA,
    totp_last_step BIGINT,
    otp_failures BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    der BYTEA NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    -- enroll | renewal | recovery
    purpose TEXT NOT NULL,
    revoked_at BIGINT,
    revoke_reason TEXT
);
CREATE INDEX IF NOT EXISTS certificates_user ON certificates (user_id);

CREATE TABLE IF NOT EXISTS accounts (
    iban TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL,
    signatures_required BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS rights (
    user_id BIGINT NOT NULL REFERENCES users (id),
    iban TEXT NOT NULL REFERENCES accounts (iban),
    can_view BIGINT NOT NULL DEFAULT 0,
    can_prepare BIGINT NOT NULL DEFAULT 0,
    can_sign BIGINT NOT NULL DEFAULT 0,
    can_send BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, iban)
);

CREATE TABLE IF NOT EXISTS orders (
    id BIGSERIAL PRIMARY KEY,
    payer_iban TEXT NOT NULL REFERENCES accounts (iban),
    payee_name TEXT NOT NULL,
    payee_tax_code TEXT NOT NULL,
    payee_iban TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    purpose TEXT NOT NULL,
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT,
    reject_reason TEXT
);
CREATE INDEX IF NOT EXISTS orders_payer ON orders (payer_iban);

CREATE TABLE IF NOT EXISTS order_signatures (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    position BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    cert_serial TEXT NOT NULL,
    signature BYTEA NOT NULL,
    signed_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);

-- One row per failed login from an address; valid for the penalty window.
CREATE TABLE IF NOT EXISTS ip_points (
    ip TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ip_points_ip ON ip_points (ip, at);

CREATE TABLE IF NOT EXISTS ip_blocks (
    ip TEXT PRIMARY KEY,
    until BIGINT NOT NULL
);

-- Append-only and hash-chained (audit.rs); audit_head anchors the newest record.
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    login TEXT NOT NULL,
    ip TEXT NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_login ON audit (login);

CREATE TABLE IF NOT EXISTS audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    mac BYTEA NOT NULL
);

-- Secure-channel sessions (sessions.rs), shared by every instance on this database, and the
-- login each one carries.
CREATE TABLE IF NOT EXISTS channel_sessions (
    id TEXT PRIMARY KEY,
    state BYTEA NOT NULL,
    next_seq BIGINT NOT NULL,
    last_activity BIGINT NOT NULL,
    idle_timeout BIGINT NOT NULL,
    user_id BIGINT,
    stage TEXT,
    cert_serial TEXT
);
