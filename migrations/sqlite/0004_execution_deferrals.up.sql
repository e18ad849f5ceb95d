-- How many times the executor turned this execution away without calling the provider (its own
-- circuit breaker open or busy probing, its own rate limit full): PROVIDER_CIRCUIT_OPEN and
-- PROVIDER_THROTTLED_LOCALLY results. Such a claim is not an attempt: attempts left are
-- max_attempts - (attempt - deferrals). `attempt` still counts every claim, so a send handed out
-- again still looks up before resending. Capped separately (docs/executor.md, "Not attempted").
alter table executions add column deferrals integer not null default 0;
