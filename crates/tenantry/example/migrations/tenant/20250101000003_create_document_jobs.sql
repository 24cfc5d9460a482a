-- Pipeline executions for a document, with retries.
CREATE TABLE document_jobs (
    id          VARCHAR(26) NOT NULL,
    tenant_id   VARCHAR(26) NOT NULL,
    document_id VARCHAR(26) NOT NULL,
    queue_id    VARCHAR(36),
    state       VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts    INTEGER     NOT NULL DEFAULT 0,
    last_error  TEXT,
    started_at  TIMESTAMP,
    finished_at TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id)
);
CREATE INDEX document_jobs_state ON document_jobs (tenant_id, state);
