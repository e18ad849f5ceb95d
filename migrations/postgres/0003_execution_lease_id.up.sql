-- The lease a claim handed out (docs/adr/0006, "Addendum: one lease per claim"). Every claim
-- mints a new lease id; a heartbeat or result that presents an older one is refused with
-- LEASE_LOST, so a holder whose lease lapsed and was re-claimed cannot extend or settle the new
-- holder's lease. It is kept after the lease ends (until the next claim replaces it) so a repeated
-- report from the lease that settled the execution is still recognised as that lease's.
alter table executions add column lease_id text;
