//! The audit trail: one hash-chained log per tenant. Each entry's hash covers the previous
//! entry's hash and its own content, so a changed or removed entry breaks the chain
//! (`aro audit verify` walks it). Other apps append through `audit.record`.

use crate::ctx::Ctx;
use crate::error::EngineResult;
use aro_store::engine_rows::AuditRow;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an entry: SHA-256 over the previous hash and the entry's canonical JSON.
pub fn entry_hash(
    prev_hash: &str,
    tenant: &str,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: &Value,
    at: DateTime<Utc>,
) -> String {
    let body = json!({"tenant": tenant, "actor": actor, "action": action, "subject": subject,
                      "detail": detail, "at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)});
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(&body).unwrap_or_default());
    hex::encode(h.finalize())
}

pub async fn append(
    ctx: &mut Ctx<'_, '_>,
    action: &str,
    subject: Option<&str>,
    detail: Value,
) -> EngineResult<i64> {
    let tenant = ctx.tenant_id().to_owned();
    // One chain per tenant: concurrent appends must not fork it.
    ctx.tx.lock(&format!("audit:{tenant}")).await?;
    let prev = ctx
        .tx
        .raw()
        .last_audit(&tenant)
        .await?
        .map(|r| r.hash)
        .unwrap_or_else(|| GENESIS.to_owned());
    let at = ctx.real_now;
    let hash = entry_hash(&prev, &tenant, &ctx.actor, action, subject, &detail, at);
    let seq = ctx
        .tx
        .raw()
        .insert_audit(&AuditRow {
            seq: 0,
            tenant_id: tenant,
            actor: ctx.actor.clone(),
            action: action.to_owned(),
            subject: subject.map(str::to_owned),
            detail: sqlx::types::Json(detail),
            occurred_at: at,
            prev_hash: prev,
            hash,
        })
        .await?;
    Ok(seq)
}

/// Checks a run of entries: each links to the one before and hashes to what it says.
/// Returns the seq of the first broken entry.
pub fn verify_chain(rows: &[AuditRow], mut prev: String) -> Result<String, i64> {
    for r in rows {
        let expected = entry_hash(
            &prev,
            &r.tenant_id,
            &r.actor,
            &r.action,
            r.subject.as_deref(),
            &r.detail.0,
            r.occurred_at,
        );
        if r.prev_hash != prev || r.hash != expected {
            return Err(r.seq);
        }
        prev = r.hash.clone();
    }
    Ok(prev)
}
