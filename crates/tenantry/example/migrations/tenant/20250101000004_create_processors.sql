-- Registry of processors (OCR, classification, extraction, ...).
CREATE TABLE processors (
    id            VARCHAR(26)  NOT NULL,
    tenant_id     VARCHAR(26)  NOT NULL,
    name          VARCHAR(128) NOT NULL,
    category      VARCHAR(32)  NOT NULL,
    config_schema TEXT,
    enabled       BOOLEAN      NOT NULL DEFAULT TRUE,
    PRIMARY KEY (tenant_id, id)
);
