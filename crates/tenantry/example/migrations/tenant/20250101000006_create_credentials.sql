-- Encrypted credentials scoped to the tenant, a campaign or a processor.
CREATE TABLE credentials (
    id              VARCHAR(26)  NOT NULL,
    tenant_id       VARCHAR(26)  NOT NULL,
    scope_type      VARCHAR(16)  NOT NULL,
    scope_id        VARCHAR(26),
    name            VARCHAR(128) NOT NULL,
    encrypted_value TEXT         NOT NULL,
    expires_at      TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);
