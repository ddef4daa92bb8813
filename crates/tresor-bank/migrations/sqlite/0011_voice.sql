-- Version 11: the bank's voice to its users (docs/ARCHITECTURE.md, "E-mail"). A user's
-- address counts as verified only with its MAC under the data folder's key (an address
-- written into the database alone gets no mail); the language of the mails; the
-- notifications the user turned off. One-time codes (a password reset, a new address's
-- confirmation) are kept only as a MAC over the code and what it is for. The addresses a
-- user logged in from, to tell them of a new one; the notices already sent, so that a
-- reminder goes out once whichever instance finds it due.
ALTER TABLE users ADD COLUMN email_tag BLOB;
ALTER TABLE users ADD COLUMN language TEXT CHECK (language IN ('uk', 'en'));
ALTER TABLE users ADD COLUMN quiet TEXT NOT NULL DEFAULT '';
CREATE TABLE user_codes (
    user_id BIGINT NOT NULL REFERENCES users (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('reset', 'email', 'login')),
    target TEXT NOT NULL,
    expires BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    tag BLOB NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
CREATE TABLE seen_addresses (
    user_id BIGINT NOT NULL REFERENCES users (id),
    ip TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (user_id, ip)
);
CREATE TABLE notices_sent (
    key TEXT PRIMARY KEY,
    sent_at BIGINT NOT NULL
);
