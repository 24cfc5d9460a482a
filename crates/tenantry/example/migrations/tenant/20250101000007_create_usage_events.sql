-- Metering for billing.
CREATE TABLE usage_events (
    id          VARCHAR(26) NOT NULL,
    tenant_id   VARCHAR(26) NOT NULL,
    event_type  VARCHAR(32) NOT NULL,
    quantity    BIGINT      NOT NULL,
    occurred_at TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX usage_events_type ON usage_events (tenant_id, event_type, occurred_at);
