-- Document-processing workflows. Every tenant table carries tenant_id, so one set of
-- migrations serves a tenant in a database of its own or in shared tables; keys lead with
-- tenant_id, which shared tables require (see README "Choosing a strategy").
CREATE TABLE campaigns (
    id              VARCHAR(26)  NOT NULL,
    tenant_id       VARCHAR(26)  NOT NULL,
    name            VARCHAR(255) NOT NULL,
    status          VARCHAR(16)  NOT NULL DEFAULT 'draft',
    pipeline_config TEXT,
    settings        TEXT,
    created_at      TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX campaigns_status ON campaigns (tenant_id, status);
