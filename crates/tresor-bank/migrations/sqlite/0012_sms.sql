-- Version 12: the SMS second step (docs/ARCHITECTURE.md, "SMS"). A user's mobile number, as
-- the bank knows it, counts only with its MAC under the data folder's key. Text messages
-- wait in the outbox beside the mail (`channel`), sealed the same way. A login's SMS code is
-- a one-time code whose target is the session it completes.
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN phone_tag BLOB;
ALTER TABLE mail_outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail' CHECK (channel IN ('mail', 'sms'));
CREATE INDEX user_codes_target ON user_codes (purpose, target);
