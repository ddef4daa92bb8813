-- Version 7: payment templates and the counterparty directory. Both belong to a payer
-- account and are shared by every user with the prepare right on it: the company's
-- accountants see the same suppliers and the same monthly payments, and a user who loses the
-- right loses them with it (docs/ARCHITECTURE.md, "Templates and counterparties").
CREATE TABLE templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payer_iban TEXT NOT NULL REFERENCES accounts (iban),
    name TEXT NOT NULL,
    payee_name TEXT NOT NULL,
    payee_tax_code TEXT NOT NULL,
    payee_iban TEXT NOT NULL,
    -- None: the amount is typed each time.
    amount BIGINT CHECK (amount IS NULL OR amount > 0),
    currency TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    UNIQUE (payer_iban, name)
);

CREATE TABLE counterparties (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payer_iban TEXT NOT NULL REFERENCES accounts (iban),
    name TEXT NOT NULL,
    tax_code TEXT NOT NULL,
    iban TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    UNIQUE (payer_iban, iban)
);
