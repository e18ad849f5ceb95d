-- core-engine's tables on SQLite. Times are UTC instants stored as RFC 3339 text with a fixed
-- "+00:00" suffix, so text order is time order. Personal data is only ever in *_ct columns
-- (AES-256-GCM ciphertext under the patient's data key).

create table tenants (
    id text primary key,
    name text not null,
    zone text not null,
    region text not null,
    clinic_phone text,
    review_link text,
    default_language text not null,
    classification_residency text not null,
    permissions text not null,          -- json array of execution types
    config text not null,               -- json: policies, templates, reply codes, mappings
    config_version integer not null default 0,
    created_at text not null,
    updated_at text not null
);

-- One data key per patient (subject), wrapped by the master key. Deleting the row erases the
-- patient (crypto-shredding): every ciphertext under it becomes unreadable, events included.
create table data_keys (
    tenant_id text not null references tenants (id),
    subject_id text not null,
    wrapped_key blob not null,
    created_at text not null,
    primary key (tenant_id, subject_id)
);

create table customers (
    tenant_id text not null references tenants (id),
    id text not null,
    name_ct blob,
    phone_ct blob,
    phone_index text,                   -- keyed blind index of the E.164 number; not unique
    email_ct blob,
    zone text,
    language text,
    risk_score integer not null default 0,
    no_show_count integer not null default 0,
    created_at text not null,
    updated_at text not null,
    primary key (tenant_id, id)
);
create index customers_by_phone on customers (tenant_id, phone_index);

create table appointments (
    tenant_id text not null references tenants (id),
    id text not null,
    customer_id text not null,
    source text not null,
    external_id text not null,
    status text not null,
    starts_at text not null,
    ends_at text not null,
    service_type text,
    price_minor integer,
    currency text,
    zone text,
    language text,
    channel text not null,
    cancel_url text,
    reschedule_url text,
    needs_contact integer not null default 0,
    workflow_id text,
    version integer not null default 1,
    created_at text not null,
    updated_at text not null,
    primary key (tenant_id, id),
    unique (tenant_id, source, external_id),
    foreign key (tenant_id, customer_id) references customers (tenant_id, id)
);
-- Reminders and reply matching only ever look at visits still ahead.
create index appointments_upcoming on appointments (tenant_id, starts_at)
    where status in ('booked', 'confirmed', 'cancel_requested');
create index appointments_by_customer on appointments (tenant_id, customer_id, starts_at);

-- A provider may give one visit several identities (Calendly: a new invitee on reschedule).
create table appointment_aliases (
    tenant_id text not null,
    source text not null,
    external_id text not null,
    appointment_id text not null,
    created_at text not null,
    primary key (tenant_id, source, external_id),
    foreign key (tenant_id, appointment_id) references appointments (tenant_id, id)
);

create table messages (
    tenant_id text not null references tenants (id),
    id text not null,
    customer_id text,
    appointment_id text,
    direction text not null,
    channel text not null,
    purpose text not null,              -- reminder_48h, confirm_ack, reply, staff_digest, ...
    counterpart_ct blob,                -- the patient's number (to or from), encrypted
    counterpart_index text,             -- blind index of that number
    body_ct blob,
    status text not null,
    provider_ref text,
    error_code text,
    execution_id text,
    created_at text not null,
    updated_at text not null,
    primary key (tenant_id, id)
);
create unique index messages_by_provider_ref on messages (tenant_id, provider_ref)
    where provider_ref is not null;
create index messages_by_counterpart on messages (tenant_id, counterpart_index, created_at);
create index messages_by_appointment on messages (tenant_id, appointment_id);

create table reminder_logs (
    tenant_id text not null references tenants (id),
    id text not null,
    appointment_id text not null,
    kind text not null,                 -- reminder_48h, reminder_24h, ...
    due_at text not null,
    status text not null,               -- scheduled, sent, skipped, cancelled
    reason text,
    message_id text,
    created_at text not null,
    updated_at text not null,
    primary key (tenant_id, id)
);
create index reminder_logs_by_appointment on reminder_logs (tenant_id, appointment_id);

-- The event log. seq is assigned by the single writer in commit order, so a reader paging by
-- seq never skips an event that commits later with a smaller seq.
create table events (
    seq integer primary key autoincrement,
    event_id text not null unique,
    tenant_id text not null,
    event_type text not null,
    aggregate_type text not null,
    aggregate_id text not null,
    occurred_at text not null,
    recorded_at text not null,
    profile text,
    payload text not null,
    pii_subject text,
    pii_ct blob,
    workflow_id text,
    correlation_id text,
    causation_id text
);
create index events_by_tenant on events (tenant_id, seq);
create index events_by_type on events (tenant_id, event_type, seq);
create index events_by_aggregate on events (tenant_id, aggregate_id, seq);
create index events_by_time on events (tenant_id, occurred_at);

create table workflow_instances (
    tenant_id text not null references tenants (id),
    id text not null,
    kind text not null,
    state text not null,
    aggregate_type text not null,
    aggregate_id text not null,
    step text,
    data text not null,
    attempt integer not null default 0,
    correlation_id text,
    created_at text not null,
    updated_at text not null,
    primary key (tenant_id, id)
);
create index workflows_by_aggregate on workflow_instances (tenant_id, aggregate_id);

create table timers (
    id text primary key,
    tenant_id text not null references tenants (id),
    workflow_id text,
    kind text not null,
    aggregate_id text not null,
    due_at text not null,
    payload text not null,
    status text not null,               -- pending, fired, cancelled, failed
    attempt integer not null default 0,
    last_error text,
    lease_owner text,
    lease_until text,
    created_at text not null,
    fired_at text
);
create index timers_due on timers (due_at) where status = 'pending';
create index timers_by_aggregate on timers (tenant_id, aggregate_id);

-- The outbox of side effects for the executor.
create table executions (
    id text primary key,
    tenant_id text not null references tenants (id),
    correlation_id text not null,
    command_type text not null,
    subject_id text,                    -- whose data key seals the payload
    payload_ct blob not null,
    status text not null,               -- ready, leased, succeeded, failed, expired, dead, cancelled
    attempt integer not null default 0,
    max_attempts integer not null,
    available_at text not null,
    not_after text,
    lease_owner text,
    lease_until text,
    workflow_id text,
    aggregate_id text,
    last_error_code text,
    last_error_message text,
    provider_ref text,
    output text,
    created_at text not null,
    updated_at text not null
);
create index executions_ready on executions (available_at) where status in ('ready', 'leased');
create index executions_by_aggregate on executions (tenant_id, aggregate_id);

create table dead_letters (
    tenant_id text not null references tenants (id),
    id text not null,
    execution_id text not null,
    command_type text not null,
    error_code text,
    error_message text,
    attempts integer not null,
    status text not null,               -- open, retried, archived
    created_at text not null,
    updated_at text not null,
    primary key (tenant_id, id)
);
create index dead_letters_by_status on dead_letters (tenant_id, status, created_at);

-- Provider event identities, recorded before any side effect so redelivery is a no-op.
create table webhook_receipts (
    tenant_id text not null,
    provider text not null,
    receipt_key text not null,
    received_at text not null,
    detail text,
    primary key (tenant_id, provider, receipt_key)
);

create table commands (
    tenant_id text not null,
    id text not null,
    command_type text not null,
    status text not null,
    aggregate_type text not null,
    aggregate_id text,
    workflow_id text,
    correlation_id text not null,
    response text not null,
    created_at text not null,
    primary key (tenant_id, id)
);

create table idempotency_keys (
    tenant_id text not null,
    key text not null,
    request_hash text not null,
    command_id text,
    status_code integer not null,
    response text not null,
    created_at text not null,
    expires_at text not null,
    primary key (tenant_id, key)
);
create index idempotency_keys_expiry on idempotency_keys (expires_at);

-- Consent per tenant and number (not per patient: family members share phones).
create table consents (
    tenant_id text not null references tenants (id),
    phone_index text not null,
    channel text not null,
    status text not null,               -- granted, revoked
    source text not null,
    updated_at text not null,
    primary key (tenant_id, phone_index, channel)
);

create table escalations (
    tenant_id text not null references tenants (id),
    id text not null,
    appointment_id text,
    customer_id text,
    reason text not null,
    status text not null,               -- open, resolved
    detail text not null,
    notified_at text,
    created_at text not null,
    resolved_at text,
    resolved_by text,
    resolution text,
    primary key (tenant_id, id)
);
create index escalations_open on escalations (tenant_id, status, created_at);

create table payment_links (
    tenant_id text not null references tenants (id),
    id text not null,
    appointment_id text,
    customer_id text,
    provider_ref text,
    url text,
    amount_minor integer not null,
    currency text not null,
    status text not null,               -- requested, open, paid, expired
    created_at text not null,
    paid_at text,
    primary key (tenant_id, id)
);
create unique index payment_links_by_provider_ref on payment_links (tenant_id, provider_ref)
    where provider_ref is not null;

-- One hash-chained trail: each row's hash covers the previous row's hash.
create table audit_log (
    seq integer primary key autoincrement,
    tenant_id text not null,
    actor text not null,
    action text not null,
    subject text,
    detail text not null,
    occurred_at text not null,
    prev_hash text not null,
    hash text not null
);
create index audit_log_by_tenant on audit_log (tenant_id, seq);

-- Push subscriptions (the Event API). cursor_seq: every event of the tenant up to this seq has
-- been delivered or skipped by the filter. A worker delivers a subscription only while it holds
-- the lease (lease_owner until lease_until, real time), so replicas never deliver one at the same
-- time; every worker write is fenced by lease_owner.
create table subscriptions (
    tenant_id text not null references tenants (id),
    id text not null,
    url text not null,
    description text,
    secret_ct blob not null,            -- the whsec_ secret, sealed under the subscription's data key
    event_types text not null,          -- json array; empty means all
    status text not null,               -- active, disabled
    cursor_seq integer not null default 0,
    failure_count integer not null default 0, -- consecutive failed attempts
    failing_since text,                 -- first failure of the current streak
    next_attempt_at text not null,
    last_attempt_at text,
    last_success_at text,
    last_error text,                    -- a status code or error kind, never a response body
    disabled_reason text,
    lease_owner text,
    lease_until text,
    created_at text not null,
    updated_at text not null,
    primary key (tenant_id, id)
);
-- The delivery worker's claim: active subscriptions in due order.
create index subscriptions_due on subscriptions (status, next_attempt_at);

-- The sandbox's business clock: an offset from real time that only moves forward.
create table clock (
    id integer primary key check (id = 1),
    offset_ms integer not null
);
