-- Version 4: accountable admins (docs/ARCHITECTURE.md, "Admins and four eyes"). An admin is a
-- user row with an `admins` row: its roles, under a MAC with the data folder's key, so that a
-- database-only attacker can neither make a user an admin nor add a role. Four-eyes requests
-- wait in `approvals`: what was asked, by whom, until when, under a MAC; the decision under a
-- MAC of its own.
CREATE TABLE admins (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    roles TEXT NOT NULL,
    tag BLOB NOT NULL
);

CREATE TABLE approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL CHECK (action IN ('temp_password', 'emergency_password',
        'grant_rights', 'lower_signatures', 'add_admin', 'set_roles', 'break_glass')),
    target TEXT NOT NULL,
    params TEXT NOT NULL,
    requested_by BIGINT NOT NULL REFERENCES users (id),
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    tag BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'used')),
    decided_by BIGINT REFERENCES users (id),
    decided_at BIGINT,
    decision_tag BLOB,
    CHECK (expires_at > requested_at),
    CHECK ((status = 'pending') = (decided_by IS NULL))
);
CREATE INDEX approvals_status ON approvals (status, expires_at);
