-- One processor run inside a job: tokens and cost for billing.
CREATE TABLE processor_executions (
    id            VARCHAR(26) NOT NULL,
    tenant_id     VARCHAR(26) NOT NULL,
    job_id        VARCHAR(26) NOT NULL,
    processor_id  VARCHAR(26) NOT NULL,
    input_tokens  BIGINT      NOT NULL DEFAULT 0,
    output_tokens BIGINT      NOT NULL DEFAULT 0,
    cost_micros   BIGINT      NOT NULL DEFAULT 0,
    output        TEXT,
    created_at    TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, job_id) REFERENCES document_jobs (tenant_id, id),
    FOREIGN KEY (tenant_id, processor_id) REFERENCES processors (tenant_id, id)
);
