-- One processor run inside a job: tokens and cost for billing.
CREATE TABLE processor_executions (
    id            VARCHAR(26) PRIMARY KEY,
    tenant_id     VARCHAR(26) NOT NULL,
    job_id        VARCHAR(26) NOT NULL REFERENCES document_jobs (id),
    processor_id  VARCHAR(26) NOT NULL REFERENCES processors (id),
    input_tokens  BIGINT      NOT NULL DEFAULT 0,
    output_tokens BIGINT      NOT NULL DEFAULT 0,
    cost_micros   BIGINT      NOT NULL DEFAULT 0,
    output        TEXT,
    created_at    TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP
);
