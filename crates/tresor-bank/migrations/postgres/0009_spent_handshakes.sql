-- Version 9: a handshake yields one session, on any instance. A pending handshake travels
-- with the client (a sealed ticket) so that its ClientFinish may reach another instance;
-- the id of each session opened is kept here for a while after, and a ClientFinish whose
-- id is here opens nothing (docs/ARCHITECTURE.md, "Handshakes without affinity").
CREATE TABLE spent_handshakes (
    id TEXT PRIMARY KEY,
    until_time BIGINT NOT NULL
);
CREATE INDEX spent_handshakes_until ON spent_handshakes (until_time);
