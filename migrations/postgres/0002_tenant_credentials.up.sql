-- A tenant's own provider credentials (DESIGN.md "Tenants"), one row per tenant and provider;
-- a tenant without a row uses the installation's [providers.*] section. secret_ct is the whole
-- credential document (identifiers and secrets) sealed under the tenant's `tenant-credentials`
-- data key and bound to tenant, table, column and provider (docs/adr/0011): nothing in this
-- table is readable without the master key.
create table tenant_credentials (
    tenant_id text not null references tenants (id),
    provider text not null,             -- twilio, stripe, calendly
    secret_ct bytea not null,
    updated_at timestamptz not null,
    primary key (tenant_id, provider)
);
