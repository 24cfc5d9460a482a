-- Uploaded files and their processing state.
CREATE TABLE documents (
    id           VARCHAR(26)  NOT NULL,
    tenant_id    VARCHAR(26)  NOT NULL,
    campaign_id  VARCHAR(26)  NOT NULL,
    storage_path VARCHAR(512) NOT NULL,
    sha256       VARCHAR(64)  NOT NULL,
    mime_type    VARCHAR(128),
    size_bytes   BIGINT       NOT NULL DEFAULT 0,
    status       VARCHAR(16)  NOT NULL DEFAULT 'uploaded',
    metadata     TEXT,
    created_at   TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id)
);
CREATE INDEX documents_campaign ON documents (tenant_id, campaign_id);
