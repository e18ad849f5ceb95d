//! The engine's public face: what core-engine's HTTP layer and workers call. Each method is one
//! or a few transactions; each is safe to call from several replicas at once.

use crate::clock::Clock;
use crate::ctx::{Ctx, EngineSettings};
use crate::envelope::{COMMAND_TYPES, CommandEnvelope, CommandOutcome};
use crate::error::{CONCURRENT_UPDATE, EngineError, EngineResult};
use crate::executions::{ClaimedExecution, ExecutionResult};
use crate::fire::{self, Fired};
use aro_store::engine_rows::{CommandRow, ExecutionClaim, IdempotencyRow, ResidentType};
use aro_store::{AggregateRef, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::types::Json;

use aro_domain::tenant::ClassificationResidency as Residency;

const CLASSIFY: &str = "classification.classify_reply";

/// The actor of decisions the engine takes by itself (timers, results).
pub const ENGINE_ACTOR: &str = "engine";
/// Idempotency keys are kept at least this long (DESIGN.md: ≥ 72 h).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::hours(96);
/// How often a command is applied again after losing a race on its aggregate before the
/// (retryable, unstored) `CONCURRENT_UPDATE` is answered.
const COMMAND_ATTEMPTS: u32 = 4;

#[derive(Clone, Debug)]
pub struct Engine {
    store: Store,
    clock: Clock,
    settings: EngineSettings,
}

/// An answer to a command: the HTTP status and body (without the request id, which the HTTP
/// layer adds), as stored for idempotent repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandAnswer {
    pub status: u16,
    pub body: Value,
    /// True when this is a stored answer to an earlier request with the same key.
    pub replayed: bool,
}

/// The error envelope's `error` object and status for an engine error.
pub fn error_answer(e: &EngineError) -> (u16, Value) {
    let (status, code, details, retryable): (u16, &str, Value, bool) = match e {
        EngineError::Validation { field, reason } => (
            422,
            "VALIDATION_ERROR",
            json!({"field": field, "reason": reason}),
            false,
        ),
        EngineError::InvalidTransition { from, to, reason } => (
            409,
            "INVALID_TRANSITION",
            json!({"from": from, "to": to, "reason": reason}),
            false,
        ),
        EngineError::NotFound(what) => (404, "NOT_FOUND", json!({"resource": what}), false),
        EngineError::Conflict {
            code: "IDEMPOTENCY_KEY_REUSED",
            ..
        } => (422, "IDEMPOTENCY_KEY_REUSED", json!({}), false),
        EngineError::Conflict { code, .. } => (409, code, json!({}), e.is_retryable()),
        EngineError::Guardrail { code, .. } => (422, code, json!({}), false),
        EngineError::Store(s) if s.is_retryable() => (503, "UNAVAILABLE", json!({}), true),
        EngineError::Store(_) => (500, "INTERNAL_ERROR", json!({}), true),
    };
    let message = match e {
        EngineError::Store(_) => {
            "the request could not be completed; it has been logged".to_owned()
        }
        other => other.to_string(),
    };
    (
        status,
        json!({"code": code, "message": message, "details": details, "retryable": retryable}),
    )
}

/// Sorted keys at every level, so the same request always hashes the same.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

pub fn request_hash(body: &Value) -> String {
    let text = serde_json::to_string(&canonical(body)).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Engine {
    pub fn new(store: Store, clock: Clock, settings: EngineSettings) -> Self {
        Self {
            store,
            clock,
            settings,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Applies a command exactly once per idempotency key: the first request decides, repeats
    /// with the same body get the stored answer, a repeat with another body is refused.
    /// Deterministic refusals (4xx, the envelope's own included) are stored under the key;
    /// retryable ones (a lost race, an unavailable store) are not, so a retry can succeed.
    pub async fn execute_command(
        &self,
        tenant_id: &str,
        raw: Value,
        idempotency_key: &str,
        correlation_id: &str,
        actor: &str,
    ) -> EngineResult<CommandAnswer> {
        let hash = request_hash(&raw);
        let envelope = match parse_envelope(&raw) {
            Ok(envelope) => envelope,
            Err(e) => {
                return self
                    .store_failure(tenant_id, idempotency_key, &hash, e)
                    .await;
            }
        };
        let mut attempt = 1;
        loop {
            let result = self
                .try_apply(
                    tenant_id,
                    envelope.clone(),
                    hash.clone(),
                    idempotency_key,
                    correlation_id,
                    actor,
                )
                .await;
            match result {
                Ok(answer) => return Ok(answer),
                // Another writer changed the aggregate while this ran (a timer, a webhook, a
                // command on another replica): the transaction rolled back, so apply it again
                // on the new state, which decides whether it still holds.
                Err(EngineError::Conflict {
                    code: CONCURRENT_UPDATE,
                    ..
                }) if attempt < COMMAND_ATTEMPTS => attempt += 1,
                Err(e) if e.is_client_error() => {
                    return self
                        .store_failure(tenant_id, idempotency_key, &hash, e)
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_apply(
        &self,
        tenant_id: &str,
        envelope: CommandEnvelope,
        hash: String,
        key: &str,
        correlation_id: &str,
        actor: &str,
    ) -> EngineResult<CommandAnswer> {
        let now = self.clock.now();
        let tenant = tenant_id.to_owned();
        let key = key.to_owned();
        let correlation = correlation_id.to_owned();
        let actor = actor.to_owned();
        let settings = self.settings.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.lock(&format!("idempotency:{tenant}:{key}")).await?;
                    if let Some(stored) = tx.raw().get_idempotency(&tenant, &key).await? {
                        return replay(stored, &hash);
                    }
                    // Commands on one aggregate take turns (PostgreSQL; SQLite has one writer
                    // anyway): concurrent ones then apply one after another on the latest state
                    // instead of losing the optimistic version check. Always taken after the
                    // idempotency lock and before any row, so two commands cannot deadlock.
                    if let Some(id) = envelope.aggregate.id.as_deref().filter(|id| !id.is_empty()) {
                        tx.lock(&format!("aggregate:{tenant}:{}:{id}", envelope.aggregate.kind)).await?;
                    }
                    if envelope.tenant_id != tenant {
                        return Err(EngineError::validation("tenantId", "must equal X-Tenant-Id"));
                    }
                    if !COMMAND_TYPES.contains(&envelope.command_type.as_str()) {
                        return Err(EngineError::validation("commandType", format!("unknown command type {:?}", envelope.command_type)));
                    }
                    let command_id = match &envelope.command_id {
                        Some(id) => aro_domain::BusinessId::parse(id)
                            .map_err(|e| EngineError::validation("commandId", e.to_string()))?
                            .to_string(),
                        None => aro_store::ids::new_id(aro_domain::ids::prefix::COMMAND),
                    };
                    if tx.raw().get_command(&tenant, &command_id).await?.is_some() {
                        return Err(EngineError::Conflict {
                            code: "COMMAND_ID_REUSED",
                            message: "a command with this commandId was already applied under another idempotency key".into(),
                        });
                    }
                    let mut ctx = Ctx::new(tx, &tenant, now, correlation.clone(), actor, settings).await?;
                    ctx.causation_id = Some(command_id.clone());
                    ctx.profile = envelope.profile.clone();
                    let aggregate = crate::commands::dispatch(&mut ctx, &envelope).await?;
                    let workflow_id = ctx.workflow_id.clone();
                    let events = ctx.finish().await?;
                    let outcome = CommandOutcome {
                        command_id: command_id.clone(),
                        status: "applied".into(),
                        aggregate: aggregate.clone(),
                        workflow_id: workflow_id.clone(),
                        correlation_id: correlation.clone(),
                        events,
                    };
                    let body = serde_json::to_value(&outcome).map_err(StoreError::from)?;
                    ctx.tx
                        .raw()
                        .insert_command(&CommandRow {
                            tenant_id: tenant.clone(),
                            id: command_id.clone(),
                            command_type: envelope.command_type.clone(),
                            status: "applied".into(),
                            aggregate_type: aggregate.kind.clone(),
                            aggregate_id: Some(aggregate.id.clone()),
                            workflow_id,
                            correlation_id: correlation,
                            response: Json(body.clone()),
                            created_at: ctx.real_now,
                        })
                        .await?;
                    ctx.tx
                        .raw()
                        .insert_idempotency(&IdempotencyRow {
                            tenant_id: tenant,
                            key,
                            request_hash: hash,
                            command_id: Some(command_id),
                            status_code: 200,
                            response: Json(body.clone()),
                            created_at: ctx.real_now,
                            expires_at: ctx.real_now + IDEMPOTENCY_RETENTION,
                        })
                        .await?;
                    Ok(CommandAnswer { status: 200, body, replayed: false })
                })
            })
            .await
    }

    /// Stores a 4xx answer for the key (the command's own writes were rolled back) and reports
    /// the refusal; when the key already has an answer, that answer (or its refusal of this
    /// body) wins.
    async fn store_failure(
        &self,
        tenant_id: &str,
        key: &str,
        hash: &str,
        original: EngineError,
    ) -> EngineResult<CommandAnswer> {
        if matches!(
            original,
            EngineError::Conflict {
                code: "IDEMPOTENCY_KEY_REUSED",
                ..
            }
        ) {
            return Err(original);
        }
        let (status, error) = error_answer(&original);
        let body = json!({"error": error});
        let tenant = tenant_id.to_owned();
        let key = key.to_owned();
        let hash = hash.to_owned();
        let now = aro_store::micros(Utc::now());
        let stored = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    tx.lock(&format!("idempotency:{tenant}:{key}")).await?;
                    if let Some(existing) = tx.raw().get_idempotency(&tenant, &key).await? {
                        return replay(existing, &hash);
                    }
                    tx.raw()
                        .insert_idempotency(&IdempotencyRow {
                            tenant_id: tenant,
                            key,
                            request_hash: hash,
                            command_id: None,
                            status_code: i64::from(status),
                            response: Json(body.clone()),
                            created_at: now,
                            expires_at: now + IDEMPOTENCY_RETENTION,
                        })
                        .await?;
                    Ok::<_, EngineError>(CommandAnswer {
                        status,
                        body,
                        replayed: false,
                    })
                })
            })
            .await;
        match stored {
            // The failure stands; report it as the error it was (the answer is now stored).
            Ok(answer) if !answer.replayed => Err(original),
            other => other,
        }
    }

    pub async fn get_command(&self, tenant_id: &str, id: &str) -> EngineResult<Value> {
        let tenant = tenant_id.to_owned();
        let id = id.to_owned();
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    let row = tx
                        .raw()
                        .get_command(&tenant, &id)
                        .await?
                        .ok_or(EngineError::NotFound("command"))?;
                    let mut body = row.response.0;
                    if let Value::Object(map) = &mut body {
                        map.insert("commandType".into(), json!(row.command_type));
                        map.insert("createdAt".into(), json!(row.created_at));
                    }
                    Ok(body)
                })
            })
            .await
    }

    pub async fn get_workflow(&self, tenant_id: &str, id: &str) -> EngineResult<Value> {
        let tenant = tenant_id.to_owned();
        let id = id.to_owned();
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    let wf = tx.raw().get_workflow(&tenant, &id).await?.ok_or(EngineError::NotFound("workflow"))?;
                    let timers = tx.raw().pending_timers_for_aggregate(&tenant, &wf.aggregate_id).await?;
                    let timers: Vec<Value> = timers
                        .iter()
                        .filter(|t| t.workflow_id.as_deref() == Some(wf.id.as_str()))
                        .map(|t| json!({"timerId": t.id, "kind": t.kind, "dueAt": t.due_at, "status": t.status}))
                        .collect();
                    Ok(json!({
                        "workflowId": wf.id,
                        "kind": wf.kind,
                        "state": wf.state,
                        "step": wf.step,
                        "aggregate": AggregateRef::new(wf.aggregate_type, wf.aggregate_id),
                        "correlationId": wf.correlation_id,
                        "attempt": wf.attempt,
                        "pendingTimers": timers,
                        "createdAt": wf.created_at,
                        "updatedAt": wf.updated_at,
                    }))
                })
            })
            .await
    }

    /// Fires timers due now (business time), up to `limit`; returns how many fired.
    pub async fn fire_due_timers(&self, limit: usize) -> EngineResult<usize> {
        let mut fired = 0;
        for _ in 0..limit {
            match fire::fire_one(&self.store, self.clock.now(), &self.settings).await? {
                Fired::Idle => break,
                Fired::Fired { .. } | Fired::Failed { .. } => fired += 1,
            }
        }
        Ok(fired)
    }

    /// Moves business time forward to `target`, firing every timer that falls due on the way,
    /// in order, including timers created while stepping. Returns how many fired.
    pub async fn advance_clock_to(&self, target: DateTime<Utc>) -> EngineResult<usize> {
        let mut fired = 0;
        while let Some(n) = self.advance_clock_step(target).await? {
            fired += n;
        }
        Ok(fired)
    }

    /// One step of an advance: moves business time to the next timer due at or before `target`
    /// and fires every timer due at that instant (in order, including those created while
    /// firing). `None` once nothing is due before `target`; the clock is then at `target`.
    /// Callers let the work of each step settle (the executor's sends) before the next, so each
    /// text goes out at its own business time.
    pub async fn advance_clock_step(&self, target: DateTime<Utc>) -> EngineResult<Option<usize>> {
        let next = self
            .store
            .read(move |tx| Box::pin(async move { tx.raw().next_due_timer(target).await }))
            .await?;
        let Some(next) = next else {
            if target > self.clock.now() {
                self.set_offset_for(target).await?;
            }
            return Ok(None);
        };
        let at = next.due_at.max(self.clock.now());
        // Counted before the clock moves: the background timer worker may fire some of them
        // the moment it does, and they are this step's all the same.
        let due = self
            .store
            .read(move |tx| Box::pin(async move { tx.raw().count_pending_timers(at).await }))
            .await?;
        if next.due_at > self.clock.now() {
            self.set_offset_for(next.due_at).await?;
        }
        let mut fired = 0;
        loop {
            match fire::fire_one(&self.store, self.clock.now(), &self.settings).await? {
                Fired::Idle => break,
                _ => fired += 1,
            }
            if fired >= 10_000 {
                break;
            }
        }
        Ok(Some(fired.max(usize::try_from(due).unwrap_or(0))))
    }

    async fn set_offset_for(&self, at: DateTime<Utc>) -> EngineResult<()> {
        let offset = (at - Utc::now())
            .num_milliseconds()
            .max(self.clock.offset_ms());
        self.store
            .write(move |tx| Box::pin(async move { tx.raw().set_clock_offset(offset).await }))
            .await?;
        self.clock.advance_to(offset);
        Ok(())
    }

    /// Loads the persisted sandbox clock offset (only moves forward).
    pub async fn load_clock(&self) -> EngineResult<()> {
        let offset = self
            .store
            .read(|tx| Box::pin(async move { tx.raw().clock_offset().await }))
            .await?;
        if let Some(offset) = offset {
            self.clock.advance_to(offset);
        }
        Ok(())
    }

    /// Whether the work caused so far has settled: no execution waiting or running and no timer
    /// due on the business clock.
    pub async fn is_settled(&self) -> EngineResult<bool> {
        let now = self.clock.now();
        let (open, due) = self
            .store
            .read(move |tx| {
                Box::pin(async move {
                    let open = tx.raw().count_open_executions().await?;
                    let due = tx.raw().count_pending_timers(now).await?;
                    Ok::<_, StoreError>((open, due))
                })
            })
            .await?;
        Ok(open == 0 && due == 0)
    }

    /// Hands out up to `limit` executions with a lease; expired ones are marked, never handed out.
    /// Classification of tenants whose LLM runs in core-engine is left for core's own worker.
    pub async fn claim_executions(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        types: Option<Vec<String>>,
        allowed_tenants: Option<Vec<String>>,
    ) -> EngineResult<Vec<ClaimedExecution>> {
        self.claim(
            owner,
            limit,
            lease,
            types,
            allowed_tenants,
            Residency::OpenclawExecutor,
        )
        .await
    }

    /// Claims the reply classifications of tenants whose LLM runs in core-engine (never both:
    /// ADR-0006 "Classification Residency").
    pub async fn claim_core_classifications(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> EngineResult<Vec<ClaimedExecution>> {
        self.claim(
            owner,
            limit,
            lease,
            Some(vec![CLASSIFY.to_owned()]),
            None,
            Residency::CoreEngine,
        )
        .await
    }

    async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        types: Option<Vec<String>>,
        allowed_tenants: Option<Vec<String>>,
        claimant: Residency,
    ) -> EngineResult<Vec<ClaimedExecution>> {
        let now = self.clock.now();
        let owner = owner.to_owned();
        let settings = self.settings.clone();
        let limit = limit.clamp(1, 100) as i64;
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let real_now = aro_store::micros(Utc::now());
                    let rows = tx
                        .raw()
                        .claim_executions(&ExecutionClaim {
                            now: real_now,
                            limit,
                            types: types.as_deref(),
                            tenants: allowed_tenants.as_deref(),
                            resident: Some(ResidentType {
                                command_type: CLASSIFY,
                                residency: claimant,
                            }),
                        })
                        .await?;
                    let mut out = Vec::new();
                    for mut row in rows {
                        let expired = row.not_after.is_some_and(|na| na < now);
                        // A lease that lapsed on the last attempt: the executor took it every
                        // time and never answered (e.g. it crashes on this message). Offering
                        // it again would loop forever; it goes to the dead-letter queue.
                        // Claims the executor turned away unattempted do not count.
                        let exhausted = crate::executions::attempts_used(&row) >= row.max_attempts;
                        if expired || exhausted {
                            let mut ctx = Ctx::new(
                                tx,
                                &row.tenant_id.clone(),
                                now,
                                row.correlation_id.clone(),
                                ENGINE_ACTOR.into(),
                                settings.clone(),
                            )
                            .await?;
                            ctx.causation_id = Some(row.id.clone());
                            if expired {
                                crate::executions::expire(&mut ctx, row).await?;
                            } else {
                                crate::executions::exhausted_at_claim(&mut ctx, row).await?;
                            }
                            ctx.finish().await?;
                            continue;
                        }
                        let Some(payload) = tx.execution_payload(&row).await? else {
                            // The patient was erased while this waited: nothing left to do.
                            row.status = "cancelled".into();
                            row.updated_at = real_now;
                            tx.raw().update_execution(&row).await?;
                            continue;
                        };
                        let lease_id = crate::executions::new_lease_id();
                        row.status = "leased".into();
                        row.attempt += 1;
                        row.lease_owner = Some(owner.clone());
                        row.lease_until = Some(real_now + lease);
                        row.lease_id = Some(lease_id.clone());
                        row.updated_at = real_now;
                        tx.raw().update_execution(&row).await?;
                        out.push(ClaimedExecution {
                            execution_id: row.id,
                            tenant_id: row.tenant_id,
                            correlation_id: row.correlation_id,
                            command_type: row.command_type,
                            payload,
                            not_after: row.not_after,
                            attempt: row.attempt,
                            lease_until: real_now + lease,
                            lease_id,
                            created_at: row.created_at,
                        });
                    }
                    Ok(out)
                })
            })
            .await
    }

    /// Extends a lease held by `owner` (the token's subject), for callers that do not send the
    /// lease id they were given. Any claimant with the same subject passes this check; a caller
    /// with the lease id should use [`Self::heartbeat_lease`], which tells claims apart.
    pub async fn heartbeat(
        &self,
        execution_id: &str,
        owner: &str,
        lease: Duration,
        allowed_tenants: Option<Vec<String>>,
    ) -> EngineResult<DateTime<Utc>> {
        self.extend_lease(
            execution_id,
            LeaseHolder::Subject(owner.to_owned()),
            lease,
            allowed_tenants,
        )
        .await
    }

    /// Extends the lease `lease_id` (handed out with the claim) while it is still the
    /// execution's: `LEASE_LOST` once the execution was claimed again or its lease ended.
    pub async fn heartbeat_lease(
        &self,
        execution_id: &str,
        lease_id: &str,
        lease: Duration,
        allowed_tenants: Option<Vec<String>>,
    ) -> EngineResult<DateTime<Utc>> {
        self.extend_lease(
            execution_id,
            LeaseHolder::Lease(lease_id.to_owned()),
            lease,
            allowed_tenants,
        )
        .await
    }

    async fn extend_lease(
        &self,
        execution_id: &str,
        holder: LeaseHolder,
        lease: Duration,
        allowed_tenants: Option<Vec<String>>,
    ) -> EngineResult<DateTime<Utc>> {
        let id = execution_id.to_owned();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let mut row = held_execution(tx, &id, &holder, &allowed_tenants).await?;
                    let holds = row.status == "leased"
                        && match &holder {
                            LeaseHolder::Subject(owner) => {
                                row.lease_owner.as_deref() == Some(owner.as_str())
                            }
                            // The lease is the current one (checked under the row lock);
                            // heartbeats always name a holder, so `Anyone` is not asked.
                            LeaseHolder::Lease(_) | LeaseHolder::Anyone => true,
                        };
                    if !holds {
                        return Err(crate::executions::lease_lost(
                            "the lease is no longer held by this caller",
                        ));
                    }
                    let until = aro_store::micros(Utc::now()) + lease;
                    row.lease_until = Some(until);
                    tx.raw().update_execution(&row).await?;
                    Ok(until)
                })
            })
            .await
    }

    /// Records an execution's result and turns it into canonical events, for callers that do
    /// not send the lease id they were given: the result is taken whoever holds the lease.
    /// [`Self::record_lease_result`] refuses a result from a lease that was lost.
    pub async fn record_result(
        &self,
        execution_id: &str,
        result: ExecutionResult,
        allowed_tenants: Option<Vec<String>>,
    ) -> EngineResult<Value> {
        self.settle(execution_id, None, result, allowed_tenants)
            .await
    }

    /// Records the result of the lease `lease_id` (handed out with the claim): `LEASE_LOST`, and
    /// nothing changes, when the execution was claimed again after that lease lapsed.
    pub async fn record_lease_result(
        &self,
        execution_id: &str,
        lease_id: &str,
        result: ExecutionResult,
        allowed_tenants: Option<Vec<String>>,
    ) -> EngineResult<Value> {
        self.settle(
            execution_id,
            Some(lease_id.to_owned()),
            result,
            allowed_tenants,
        )
        .await
    }

    async fn settle(
        &self,
        execution_id: &str,
        lease_id: Option<String>,
        result: ExecutionResult,
        allowed_tenants: Option<Vec<String>>,
    ) -> EngineResult<Value> {
        let id = execution_id.to_owned();
        let now = self.clock.now();
        let settings = self.settings.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let holder = match &lease_id {
                        Some(lease) => LeaseHolder::Lease(lease.clone()),
                        None => LeaseHolder::Anyone,
                    };
                    let row = held_execution(tx, &id, &holder, &allowed_tenants).await?;
                    let mut ctx = Ctx::new(
                        tx,
                        &row.tenant_id.clone(),
                        now,
                        row.correlation_id.clone(),
                        ENGINE_ACTOR.into(),
                        settings,
                    )
                    .await?;
                    let answer = crate::executions::record_result(
                        &mut ctx,
                        row,
                        result,
                        lease_id.as_deref(),
                    )
                    .await?;
                    ctx.finish().await?;
                    Ok(answer)
                })
            })
            .await
    }

    /// Deletes idempotency keys past their retention.
    pub async fn purge_idempotency_keys(&self) -> EngineResult<u64> {
        let now = aro_store::micros(Utc::now());
        Ok(self
            .store
            .write(move |tx| {
                Box::pin(async move { tx.raw().delete_expired_idempotency(now).await })
            })
            .await?)
    }

    /// Runs one engine step on behalf of staff or a service, inside one transaction (used by
    /// the webhook handlers, which act like commands without an idempotency key of their own).
    pub async fn with_ctx<T, F>(
        &self,
        tenant_id: &str,
        correlation_id: &str,
        actor: &str,
        f: F,
    ) -> EngineResult<T>
    where
        T: Send + 'static,
        F: for<'a, 'b> FnOnce(
                &'a mut Ctx<'b, '_>,
            ) -> futures::future::BoxFuture<'a, EngineResult<T>>
            + Send
            + 'static,
    {
        let tenant = tenant_id.to_owned();
        let correlation = correlation_id.to_owned();
        let actor = actor.to_owned();
        let now = self.clock.now();
        let settings = self.settings.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let mut ctx = Ctx::new(tx, &tenant, now, correlation, actor, settings).await?;
                    let out = f(&mut ctx).await?;
                    ctx.finish().await?;
                    Ok(out)
                })
            })
            .await
    }
}

/// Reads the command envelope, naming the offending field as the rest of the API does
/// (`details.field`: `commandType`, `aggregate.type`, …; `body` when it is not an object).
/// Who is asking about an execution's lease: the holder of a lease id from a claim, the token
/// subject of a caller that sends none (every claimant with that subject looks alike), or, for a
/// result without a lease id, anyone.
enum LeaseHolder {
    Lease(String),
    Subject(String),
    Anyone,
}

/// The execution `id` (one of `allowed_tenants`', else `NotFound`). For a lease holder, the row
/// is locked for this transaction and read again, and `LEASE_LOST` unless that lease is still
/// the execution's (a lapsed lease that nobody claimed again still is).
async fn held_execution(
    tx: &mut aro_store::Tx<'_>,
    id: &str,
    holder: &LeaseHolder,
    allowed_tenants: &Option<Vec<String>>,
) -> EngineResult<aro_store::engine_rows::ExecutionRow> {
    let visible = |r: &aro_store::engine_rows::ExecutionRow| {
        allowed_tenants
            .as_ref()
            .is_none_or(|t| t.contains(&r.tenant_id))
    };
    let row = tx
        .raw()
        .get_execution(id)
        .await?
        .filter(visible)
        .ok_or(EngineError::NotFound("execution"))?;
    let LeaseHolder::Lease(lease_id) = holder else {
        return Ok(row);
    };
    if !tx.raw().lock_execution_lease(id, lease_id).await? {
        return Err(crate::executions::lease_lost(
            "the lease lapsed and the execution was claimed again, or this lease was never its",
        ));
    }
    tx.raw()
        .get_execution(id)
        .await?
        .filter(visible)
        .ok_or(EngineError::NotFound("execution"))
}

fn parse_envelope(raw: &Value) -> EngineResult<CommandEnvelope> {
    if !raw.is_object() {
        return Err(EngineError::validation(
            "body",
            "the command must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        // A missing or unknown field is reported at its parent: name the field itself.
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|prefix| reason.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next())
            .filter(|name| !name.is_empty());
        let field = match (path.as_str(), named) {
            (".", Some(name)) => name.to_owned(),
            (".", None) => "body".to_owned(),
            (parent, Some(name)) if !parent.ends_with(name) => format!("{parent}.{name}"),
            (parent, _) => parent.to_owned(),
        };
        EngineError::validation(field, reason)
    })
}

fn replay(stored: IdempotencyRow, hash: &str) -> EngineResult<CommandAnswer> {
    if stored.request_hash != hash {
        return Err(EngineError::Conflict {
            code: "IDEMPOTENCY_KEY_REUSED",
            message: "this Idempotency-Key was used with a different request body".into(),
        });
    }
    Ok(CommandAnswer {
        status: u16::try_from(stored.status_code).unwrap_or(500),
        body: stored.response.0,
        replayed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_body_hashes_the_same_whatever_its_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": null, "y": [1, {"c": 3, "d": 2}]}, "b": 1}"#)
                .unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        let c: Value =
            serde_json::from_str(r#"{"a": {"x": null, "y": [{"c": 3, "d": 2}, 1]}, "b": 1}"#)
                .unwrap();
        assert_ne!(request_hash(&a), request_hash(&c));
    }

    fn envelope_field(raw: Value) -> String {
        match parse_envelope(&raw) {
            Err(EngineError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn envelope_errors_name_the_field() {
        assert_eq!(
            envelope_field(json!({"tenantId": "default", "aggregate": {"type": "appointment"}})),
            "commandType"
        );
        assert_eq!(
            envelope_field(json!({"commandType": "appointment.confirm"})),
            "tenantId"
        );
        assert_eq!(
            envelope_field(
                json!({"commandType": "appointment.confirm", "tenantId": "default",
                                  "aggregate": {"id": "apt_1"}})
            ),
            "aggregate.type"
        );
        assert_eq!(
            envelope_field(
                json!({"commandType": "appointment.confirm", "tenantId": "default",
                                  "aggregate": {"type": 7}})
            ),
            "aggregate.type"
        );
        assert_eq!(
            envelope_field(
                json!({"commandType": "appointment.confirm", "tenantId": "default",
                                  "aggregate": {"type": "appointment"}, "extra": 1})
            ),
            "extra"
        );
        assert_eq!(envelope_field(json!({"commandType": 1})), "commandType");
        assert_eq!(envelope_field(json!([1, 2])), "body");
    }
}
