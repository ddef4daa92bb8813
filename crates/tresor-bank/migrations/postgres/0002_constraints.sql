-- Version 2: the database refuses values the bank never writes. Every enumerated column and
-- 0/1 flag gets a CHECK, one user signs an order once, and the queries get their indexes.
-- A database holding a value outside these sets fails this migration instead of carrying it.

ALTER TABLE users
    ADD CONSTRAINT users_password_kind CHECK (password_kind IN ('initial', 'temporary', 'regular')),
    ADD CONSTRAINT users_password_used CHECK (password_used IN (0, 1)),
    ADD CONSTRAINT users_locked CHECK (locked IN (0, 1)),
    ADD CONSTRAINT users_recovery_pending CHECK (recovery_pending IN (0, 1)),
    ADD CONSTRAINT users_menus CHECK (menus IN ('full', 'limited')),
    ADD CONSTRAINT users_failed_logins CHECK (failed_logins >= 0),
    ADD CONSTRAINT users_otp_failures CHECK (otp_failures >= 0),
    ADD CONSTRAINT users_emergency CHECK ((emergency_hash IS NULL) = (emergency_expires IS NULL));

ALTER TABLE certificates
    ADD CONSTRAINT certificates_purpose CHECK (purpose IN ('enroll', 'renewal', 'recovery')),
    ADD CONSTRAINT certificates_revoke_reason CHECK (revoke_reason IS NULL OR revoke_reason IN ('recovery', 'admin')),
    ADD CONSTRAINT certificates_validity CHECK (not_after > not_before);

ALTER TABLE accounts
    ADD CONSTRAINT accounts_signatures_required CHECK (signatures_required IN (1, 2)),
    ADD CONSTRAINT accounts_balance CHECK (balance >= 0);

ALTER TABLE rights
    ADD CONSTRAINT rights_flags CHECK (can_view IN (0, 1) AND can_prepare IN (0, 1)
        AND can_sign IN (0, 1) AND can_send IN (0, 1));

ALTER TABLE orders
    ADD CONSTRAINT orders_status CHECK (status IN ('draft', 'partly_signed', 'signed', 'sent', 'accepted', 'rejected')),
    ADD CONSTRAINT orders_amount CHECK (amount > 0),
    ADD CONSTRAINT orders_version CHECK (version >= 1);

ALTER TABLE order_signatures
    ADD CONSTRAINT order_signatures_position CHECK (position IN (1, 2)),
    ADD CONSTRAINT order_signatures_one_per_user UNIQUE (order_id, user_id);

ALTER TABLE channel_sessions
    ADD CONSTRAINT channel_sessions_stage CHECK (stage IS NULL OR stage IN ('change_password', 'enroll', 'recovery', 'key', 'otp', 'reconnect')),
    ADD CONSTRAINT channel_sessions_login CHECK ((user_id IS NULL) = (stage IS NULL)),
    ADD CONSTRAINT channel_sessions_seq CHECK (next_seq >= 0);

ALTER TABLE audit_head
    ADD CONSTRAINT audit_head_single CHECK (id = 1);

CREATE INDEX channel_sessions_user ON channel_sessions (user_id);
CREATE INDEX ip_points_at ON ip_points (at);
CREATE INDEX order_signatures_user ON order_signatures (user_id);
