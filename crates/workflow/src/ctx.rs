//! One engine step inside one transaction: the tenant it acts for, business time, the
//! correlation chain, and the events it will append. Events are buffered and appended last
//! ([`Ctx::finish`]) so that on PostgreSQL the event-order lock is held only at the very end.

use crate::error::{EngineError, EngineResult};
use aro_domain::EventType;
use aro_domain::template::TemplateSet;
use aro_domain::tenant::Tenant;
use aro_store::{AggregateRef, EventMetadata, EventPii, NewEvent, Tx};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub struct Ctx<'a, 't> {
    pub tx: &'a mut Tx<'t>,
    pub tenant: Tenant,
    templates: Option<TemplateSet>,
    /// Business time (the injected clock).
    pub now: DateTime<Utc>,
    /// Real time, for leases and retries.
    pub real_now: DateTime<Utc>,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub workflow_id: Option<String>,
    pub profile: Option<String>,
    /// Who acted (a service, staff, the engine itself), for events and the audit trail.
    pub actor: String,
    pub settings: EngineSettings,
    pending: Vec<NewEvent>,
}

/// Installation settings the engine needs while deciding.
#[derive(Debug, Clone, Default)]
pub struct EngineSettings {
    /// The URL providers call (`server.public_base_url`); status callbacks are built from it.
    pub public_base_url: String,
}

impl<'a, 't> Ctx<'a, 't> {
    /// Loads the tenant; `NotFound` when it does not exist.
    pub async fn new(
        tx: &'a mut Tx<'t>,
        tenant_id: &str,
        now: DateTime<Utc>,
        correlation_id: String,
        actor: String,
        settings: EngineSettings,
    ) -> EngineResult<Self> {
        let (tenant, _) = tx
            .get_tenant(tenant_id)
            .await?
            .ok_or(EngineError::NotFound("tenant"))?;
        Ok(Self {
            tx,
            tenant,
            templates: None,
            now,
            real_now: aro_store::micros(Utc::now()),
            correlation_id,
            causation_id: None,
            workflow_id: None,
            profile: None,
            actor,
            settings,
            pending: Vec::new(),
        })
    }

    pub fn tenant_id(&self) -> &str {
        self.tenant.id.as_str()
    }

    /// Where Twilio reports delivery of one of this tenant's texts. The message id rides in
    /// the query (`?m=`), which Twilio signs as part of the URL, so a callback that arrives
    /// before the executor has reported the provider's id still finds its message. Our ids are
    /// `msg_` + hex, so they need no escaping.
    pub fn tenant_status_callback(&self, message_id: &str) -> String {
        format!(
            "{}/v1/webhooks/twilio/{}/status?m={message_id}",
            self.settings.public_base_url.trim_end_matches('/'),
            self.tenant.id
        )
    }

    /// The tenant's parsed templates (validated when the configuration was installed).
    pub fn templates(&mut self) -> EngineResult<&TemplateSet> {
        if self.templates.is_none() {
            let set = self.tenant.config.validate().map_err(|e| {
                EngineError::Store(aro_store::StoreError::Corrupt(format!(
                    "stored tenant config: {e}"
                )))
            })?;
            self.templates = Some(set);
        }
        Ok(self.templates.get_or_insert_with(TemplateSet::default))
    }

    /// Queues an event; appended by [`Ctx::finish`].
    pub fn emit(
        &mut self,
        event_type: EventType,
        aggregate: AggregateRef,
        mut payload: Value,
        mut pii: Option<EventPii>,
    ) {
        crate::snapshot::carry_unlogged(
            self.tx.unlogged(),
            self.tenant.id.as_str(),
            event_type,
            &mut payload,
            &mut pii,
        );
        self.pending.push(NewEvent {
            tenant_id: self.tenant.id.to_string(),
            event_type,
            aggregate,
            occurred_at: self.now,
            profile: self.profile.clone(),
            payload,
            pii,
            metadata: EventMetadata {
                workflow_id: self.workflow_id.clone(),
                correlation_id: Some(self.correlation_id.clone()),
                causation_id: self.causation_id.clone(),
            },
        });
    }

    /// Emits with an explicit workflow id (events of a workflow other than the context's).
    pub fn emit_in_workflow(
        &mut self,
        workflow_id: Option<String>,
        event_type: EventType,
        aggregate: AggregateRef,
        payload: Value,
        pii: Option<EventPii>,
    ) {
        let saved = std::mem::replace(&mut self.workflow_id, workflow_id);
        self.emit(event_type, aggregate, payload, pii);
        self.workflow_id = saved;
    }

    pub fn pending_events(&self) -> usize {
        self.pending.len()
    }

    /// Payment link ids of `payment.link_created` events queued in this step.
    pub fn pending_payment_links(&self) -> Vec<String> {
        self.pending
            .iter()
            .filter(|e| e.event_type == EventType::PaymentLinkCreated)
            .filter_map(|e| {
                e.payload
                    .get("paymentLinkId")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Appends every queued event, in order; returns their seqs.
    pub async fn finish(&mut self) -> EngineResult<Vec<i64>> {
        // Read-model writes no queued event told get one, so the log alone rebuilds them.
        crate::snapshot::log_unlogged(self).await?;
        let mut seqs = Vec::with_capacity(self.pending.len());
        for event in std::mem::take(&mut self.pending) {
            let (_, seq) = self.tx.append_event(event, self.real_now).await?;
            seqs.push(seq);
        }
        Ok(seqs)
    }
}
