-- Pipeline executions for a document, with retries.
CREATE TABLE document_jobs (
    id          VARCHAR(26) PRIMARY KEY,
    tenant_id   VARCHAR(26) NOT NULL,
    document_id VARCHAR(26) NOT NULL REFERENCES documents (id),
    queue_id    VARCHAR(36),
    state       VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts    INTEGER     NOT NULL DEFAULT 0,
    last_error  TEXT,
    started_at  TIMESTAMP,
    finished_at TIMESTAMP
);
CREATE INDEX document_jobs_state ON document_jobs (tenant_id, state);
