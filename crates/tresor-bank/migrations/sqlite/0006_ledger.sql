-- Version 6: the ledger (docs/ARCHITECTURE.md, "Ledger and statements"). Every change of a
-- balance is a movement, written in the transaction that changes the balance. Movements of one
-- account form a chain: each carries the balance and the debit and credit totals after it, and
-- an HMAC (with the data folder's key) over its content and the previous movement's tag, so
-- that a database-only attacker can neither edit, insert nor remove a movement in the middle
-- of an account's history, nor raise a balance that its ledger does not back.
--
-- Existing accounts get an opening movement for their balance, untagged here and bound by the
-- bank in the run that migrated (Bank::new), as version 3 did for passwords.
CREATE TABLE movements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    iban TEXT NOT NULL REFERENCES accounts (iban),
    booked_at BIGINT NOT NULL,
    value_date BIGINT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL CHECK (kind IN ('opening', 'order', 'internal', 'incoming')),
    counterparty_name TEXT NOT NULL,
    counterparty_iban TEXT NOT NULL,
    counterparty_tax_code TEXT NOT NULL,
    purpose TEXT NOT NULL,
    doc_number TEXT NOT NULL,
    order_id BIGINT REFERENCES orders (id),
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    debits_after BIGINT NOT NULL CHECK (debits_after >= 0),
    credits_after BIGINT NOT NULL CHECK (credits_after >= 0),
    tag BLOB
);
-- Statements read a range of booking times of one account; booking times never go back
-- within an account, so this order is also the ledger's order.
CREATE INDEX movements_statement ON movements (iban, booked_at, id);
CREATE INDEX movements_order ON movements (order_id);

INSERT INTO movements (iban, booked_at, value_date, direction, amount, kind, counterparty_name,
    counterparty_iban, counterparty_tax_code, purpose, doc_number, balance_after, debits_after,
    credits_after)
SELECT iban, CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER) / 86400,
    'credit', balance, 'opening', holder, iban, '', 'Opening balance', '0', balance, 0, balance
FROM accounts WHERE balance > 0 ORDER BY iban;

-- An order's document number and date, as the accounting program knows it (imported orders);
-- the order's id stands in where there is none.
ALTER TABLE orders ADD COLUMN doc_number TEXT;
ALTER TABLE orders ADD COLUMN doc_date BIGINT;
CREATE INDEX orders_doc ON orders (payer_iban, doc_number);
