-- Version 7: templates and counterparties (see the SQLite migration of the same version).
CREATE TABLE templates (
    id BIGSERIAL PRIMARY KEY,
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
    id BIGSERIAL PRIMARY KEY,
    payer_iban TEXT NOT NULL REFERENCES accounts (iban),
    name TEXT NOT NULL,
    tax_code TEXT NOT NULL,
    iban TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    UNIQUE (payer_iban, iban)
);
