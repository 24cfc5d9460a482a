-- Append-only compliance trail.
CREATE TABLE audit_logs (
    id             VARCHAR(26)  NOT NULL,
    tenant_id      VARCHAR(26)  NOT NULL,
    actor_id       VARCHAR(26),
    action         VARCHAR(64)  NOT NULL,
    auditable_type VARCHAR(64)  NOT NULL,
    auditable_id   VARCHAR(26)  NOT NULL,
    changes        TEXT,
    created_at     TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);
