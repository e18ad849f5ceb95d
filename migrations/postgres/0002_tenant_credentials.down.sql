drop table if exists tenant_credentials;
