//! A patient's text arrives: record it, honour consent keywords first (they are the carrier's
//! words before they are ours), understand it (rules, then an optional LLM below the confidence
//! threshold), and act on the sender's next upcoming appointment that was texted. Anything
//! unclear, ambiguous or asking for a person goes to staff; no automated answer is ever
//! invented — patients only receive the pack's templates.

use crate::consent::{self, ConsentStatus};
use crate::ctx::Ctx;
use crate::error::EngineResult;
use crate::executions::{ExecutionResult, NewExecution};
use crate::outbound::{PatientText, Sent};
use crate::timers::{self, TimerKind};
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::Customer;
use aro_domain::message::{Channel, Direction, MessageStatus};
use aro_domain::values::Phone;
use aro_replies::{CarrierKeyword, Classification, Intent, ReplyCodes, Source};
use aro_store::engine_rows::ExecutionRow;
use aro_store::{AggregateRef, EventPii, NewMessage};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Inbound {
    pub from: Phone,
    pub to: String,
    pub body: String,
    pub provider_ref: String,
    pub channel: Channel,
}

/// Who the reply is about.
struct Matched {
    customer: Option<Customer>,
    appointment: Option<Appointment>,
    /// Several patients share the number and more than one has a texted visit ahead.
    ambiguous: bool,
}

async fn match_sender(ctx: &mut Ctx<'_, '_>, from: &Phone) -> EngineResult<Matched> {
    let tenant = ctx.tenant_id().to_owned();
    let index = ctx.tx.phone_index(&tenant, from);
    let upcoming = ctx
        .tx
        .raw()
        .upcoming_appointments_for_phone(&tenant, &index, ctx.now)
        .await?;
    let mut messaged = Vec::new();
    for a in upcoming {
        let texts = ctx.tx.messages_for_appointment(&tenant, &a.id).await?;
        if texts
            .iter()
            .any(|m| m.direction == Direction::Outbound && m.status != MessageStatus::Cancelled)
        {
            messaged.push(a);
        }
    }
    let customers: std::collections::BTreeSet<String> =
        messaged.iter().map(|a| a.customer_id.clone()).collect();
    let ambiguous = customers.len() > 1;
    let appointment_row = if ambiguous {
        None
    } else {
        messaged.into_iter().next()
    };
    let appointment = match appointment_row {
        Some(row) => ctx.tx.get_appointment(&tenant, &row.id).await?,
        None => None,
    };
    let customer = match &appointment {
        Some(a) => ctx.tx.get_customer(&tenant, a.customer_id.as_str()).await?,
        None => {
            let people = ctx.tx.customers_by_phone(&tenant, from).await?;
            if people.len() == 1 {
                people.into_iter().next()
            } else {
                None
            }
        }
    };
    Ok(Matched {
        customer,
        appointment,
        ambiguous,
    })
}

async fn record(ctx: &mut Ctx<'_, '_>, inbound: &Inbound, m: &Matched) -> EngineResult<String> {
    let tenant = ctx.tenant_id().to_owned();
    let customer_id = m.customer.as_ref().map(|c| c.id.to_string());
    // The store seals the number and text under the sender's data key (the clinic's when no
    // single patient is matched); the event's fields go under the same one.
    let message = ctx
        .tx
        .insert_message(&NewMessage {
            tenant_id: &tenant,
            customer_id: customer_id.as_deref(),
            appointment_id: m.appointment.as_ref().map(|a| a.id.as_str()),
            direction: Direction::Inbound,
            channel: inbound.channel,
            purpose: "reply",
            counterpart: Some(&inbound.from),
            body: Some(&inbound.body),
            status: MessageStatus::Received,
            provider_ref: Some(&inbound.provider_ref),
            execution_id: None,
            at: ctx.now,
        })
        .await?;
    let subject = message.subject_id().to_owned();
    let id = message.id;
    let aggregate = match &m.appointment {
        Some(a) => AggregateRef::new("appointment", a.id.as_str()),
        None => AggregateRef::new("message", &id),
    };
    ctx.emit(
        EventType::MessageReceived,
        aggregate,
        json!({"messageId": id, "customerId": m.customer.as_ref().map(|c| c.id.to_string()),
               "appointmentId": m.appointment.as_ref().map(|a| a.id.to_string()),
               "channel": inbound.channel.as_str(), "providerRef": inbound.provider_ref}),
        Some(EventPii {
            subject_id: subject,
            fields: json!({"from": inbound.from.as_str(), "body": inbound.body}),
        }),
    );
    Ok(id)
}

fn reply_codes(ctx: &Ctx<'_, '_>) -> ReplyCodes {
    serde_json::to_value(&ctx.tenant.config.reply_codes)
        .ok()
        .and_then(|v| serde_json::from_value::<ReplyCodes>(v).ok())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(ReplyCodes::healthcare_default)
}

/// Records and acts on one inbound text; returns `{messageId, duplicate?}`.
pub async fn handle_inbound(ctx: &mut Ctx<'_, '_>, inbound: Inbound) -> EngineResult<Value> {
    let tenant = ctx.tenant_id().to_owned();
    if let Some(existing) = ctx
        .tx
        .message_by_provider_ref(&tenant, &inbound.provider_ref)
        .await?
    {
        return Ok(json!({"messageId": existing.id, "duplicate": true}));
    }
    let m = match_sender(ctx, &inbound.from).await?;
    let message_id = record(ctx, &inbound, &m).await?;
    if let Some(a) = &m.appointment {
        // Any reply ends the wait for one.
        timers::cancel(ctx, a.id.as_str(), &[TimerKind::NoReplyCheck]).await?;
        crate::visits::enter_workflow(ctx, a).await?;
        // A wait being retried may just have been called off: the run follows.
        crate::visits::settle_visit(ctx, a.id.as_str()).await?;
    }
    let language_hint = m
        .appointment
        .as_ref()
        .and_then(|a| a.language.clone())
        .or_else(|| m.customer.as_ref().and_then(|c| c.language.clone()))
        .map(|l| l.to_string());

    if let Some(keyword) = aro_replies::carrier_keyword_match(&inbound.body) {
        // The provider acts (and answers) only on its keyword alone, any case: "STOP", not
        // "STOP!" (Twilio's default opt-out handling, as the sandbox plays it).
        let provider_saw = inbound.body.trim().eq_ignore_ascii_case(keyword.keyword);
        match keyword.kind {
            CarrierKeyword::OptOut => {
                opt_out(
                    ctx,
                    &inbound.from,
                    &m,
                    keyword.keyword == "CANCEL",
                    provider_saw,
                )
                .await?;
                return Ok(json!({"messageId": message_id, "intent": "opt_out"}));
            }
            // "YES" is also a confirmation: it only means opt-in when the number had opted out.
            CarrierKeyword::OptIn => {
                if consent::current(ctx, &inbound.from).await? == Some(ConsentStatus::Revoked)
                    || keyword.keyword != "YES"
                {
                    opt_in(ctx, &inbound.from, &m, provider_saw).await?;
                    return Ok(json!({"messageId": message_id, "intent": "opt_in"}));
                }
            }
            CarrierKeyword::Help => {
                // Always the clinic's own answer (its name and phone), also where the provider
                // answers the keyword itself: the provider's text, unless the clinic rewrote
                // it, names neither, and a patient asking for help must learn who is texting
                // and how to reach them (ADR 0010). HELP blocks nothing, so a second answer
                // costs one text, not the patient's reach.
                answer_help(ctx, &m).await?;
                return Ok(json!({"messageId": message_id, "intent": "help"}));
            }
        }
    }

    let classification =
        aro_replies::classify(&inbound.body, language_hint.as_deref(), &reply_codes(ctx));
    emit_classified(ctx, &message_id, &m, &classification);
    let threshold = ctx.tenant.config.policies.classification_threshold as f32;
    if !classification.is_confident(threshold) && classification.intent != Intent::OptOut {
        ask_llm(ctx, &message_id, &inbound, &m, language_hint.as_deref()).await?;
        return Ok(json!({"messageId": message_id, "intent": "pending_llm"}));
    }
    apply_intent(ctx, classification.intent, &inbound.from, &m, &message_id).await?;
    Ok(json!({"messageId": message_id, "intent": classification.intent}))
}

fn emit_classified(ctx: &mut Ctx<'_, '_>, message_id: &str, m: &Matched, c: &Classification) {
    let aggregate = match &m.appointment {
        Some(a) => AggregateRef::new("appointment", a.id.as_str()),
        None => AggregateRef::new("message", message_id),
    };
    ctx.emit(
        EventType::ReplyClassified,
        aggregate,
        json!({"messageId": message_id, "intent": c.intent, "confidence": c.confidence,
               "source": c.source, "language": c.language,
               "appointmentId": m.appointment.as_ref().map(|a| a.id.to_string())}),
        None,
    );
}

async fn ask_llm(
    ctx: &mut Ctx<'_, '_>,
    message_id: &str,
    inbound: &Inbound,
    m: &Matched,
    hint: Option<&str>,
) -> EngineResult<()> {
    let subject = m.customer.as_ref().map(|c| c.id.to_string());
    crate::executions::enqueue(
        ctx,
        NewExecution {
            id: aro_store::ids::new_id(aro_domain::ids::prefix::EXECUTION),
            command_type: "classification.classify_reply",
            subject_id: subject.as_deref(),
            payload: json!({
                "messageId": message_id,
                "text": inbound.body,
                "languageHint": hint,
                "from": inbound.from.as_str(),
                "appointmentId": m.appointment.as_ref().map(|a| a.id.to_string()),
                "customerId": subject,
                "residency": ctx.tenant.classification_residency,
            }),
            not_after: None,
            aggregate_id: m
                .appointment
                .as_ref()
                .map(|a| a.id.as_str())
                .or(subject.as_deref()),
            max_attempts: 2,
        },
    )
    .await
}

/// The LLM answered: act if it is confident, else staff decide.
pub async fn apply_llm_classification(
    ctx: &mut Ctx<'_, '_>,
    row: &ExecutionRow,
    result: &ExecutionResult,
) -> EngineResult<()> {
    let payload = crate::results::payload(ctx, row).await?;
    let Some(output) = &result.output else {
        return llm_unavailable(ctx, row).await;
    };
    let Ok(mut c) = serde_json::from_value::<Classification>(output.clone()) else {
        return llm_unavailable(ctx, row).await;
    };
    c.source = Source::Llm;
    let (m, message_id, from) = context_of(ctx, &payload).await?;
    emit_classified(ctx, &message_id, &m, &c);
    let threshold = ctx.tenant.config.policies.classification_threshold as f32;
    if c.is_confident(threshold)
        && c.intent != Intent::Unknown
        && c.intent != Intent::Question
        && let Some(from) = from
    {
        return apply_intent(ctx, c.intent, &from, &m, &message_id).await;
    }
    escalate(ctx, &m, "unclear_reply", &message_id).await
}

/// No LLM answer (none configured, timed out, malformed): staff decide.
pub async fn llm_unavailable(ctx: &mut Ctx<'_, '_>, row: &ExecutionRow) -> EngineResult<()> {
    let payload = crate::results::payload(ctx, row).await?;
    let (m, message_id, _) = context_of(ctx, &payload).await?;
    escalate(ctx, &m, "unclear_reply", &message_id).await
}

async fn context_of(
    ctx: &mut Ctx<'_, '_>,
    payload: &Value,
) -> EngineResult<(Matched, String, Option<Phone>)> {
    let tenant = ctx.tenant_id().to_owned();
    let appointment = match payload.get("appointmentId").and_then(Value::as_str) {
        Some(id) => ctx.tx.get_appointment(&tenant, id).await?,
        None => None,
    };
    let customer = match payload.get("customerId").and_then(Value::as_str) {
        Some(id) => ctx.tx.get_customer(&tenant, id).await?,
        None => None,
    };
    let message_id = payload
        .get("messageId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let from = payload
        .get("from")
        .and_then(Value::as_str)
        .and_then(|p| Phone::parse_e164(p).ok());
    Ok((
        Matched {
            customer,
            appointment,
            ambiguous: false,
        },
        message_id,
        from,
    ))
}

async fn escalate(
    ctx: &mut Ctx<'_, '_>,
    m: &Matched,
    reason: &str,
    message_id: &str,
) -> EngineResult<()> {
    crate::escalations::open(
        ctx,
        m.appointment.as_ref().map(|a| a.id.as_str()),
        m.customer.as_ref().map(|c| c.id.as_str()),
        reason,
        json!({"messageId": message_id}),
    )
    .await?;
    Ok(())
}

/// Answers with a link template, or with the help text (the clinic's phone) when the visit has
/// no such link.
async fn answer_with_link(
    ctx: &mut Ctx<'_, '_>,
    m: &Matched,
    template: &str,
    link: Option<String>,
) -> EngineResult<Sent> {
    match link {
        Some(link) => answer(ctx, m, template, Some(link)).await,
        None => answer(ctx, m, "help", None).await,
    }
}

async fn answer(
    ctx: &mut Ctx<'_, '_>,
    m: &Matched,
    template: &str,
    link: Option<String>,
) -> EngineResult<Sent> {
    send_answer(ctx, m, template, link, false).await
}

/// The answer to HELP: the clinic's name and phone, also to a number that opted out.
async fn answer_help(ctx: &mut Ctx<'_, '_>, m: &Matched) -> EngineResult<Sent> {
    send_answer(ctx, m, "help", None, true).await
}

async fn send_answer(
    ctx: &mut Ctx<'_, '_>,
    m: &Matched,
    template: &str,
    link: Option<String>,
    without_consent: bool,
) -> EngineResult<Sent> {
    let Some(customer) = &m.customer else {
        return Ok(Sent::Refused(crate::outbound::Refusal::NoTextCapableNumber));
    };
    let sent = crate::outbound::send_to_patient(
        ctx,
        PatientText {
            customer,
            appointment: m.appointment.as_ref(),
            template,
            purpose: &format!("{template}_answer"),
            link,
            direct_answer: true,
            without_consent,
            not_after: None,
        },
    )
    .await?;
    if let Sent::Refused(reason) = &sent {
        tracing::info!(tenant = %ctx.tenant.id, customer = %customer.id, template, reason = ?reason, "answer not sent");
    }
    Ok(sent)
}

/// Consent sources under which the provider itself blocks the number (so its own START lifts
/// the block and answers): the provider's keyword, or its refusal of a send (Twilio 21610).
const PROVIDER_BLOCKS: [&str; 2] = ["carrier_keyword", "carrier_opt_out"];

/// Whether the tenant's provider confirms this consent change itself: it says so
/// (`providerSendsOptOutConfirmation`) and the change is one the provider acted on. A free-text
/// "please stop texting me" passes the provider by, so ARO confirms it whatever the setting:
/// exactly one confirmation either way.
fn provider_confirms(ctx: &Ctx<'_, '_>, provider_acted: bool) -> bool {
    provider_acted
        && ctx
            .tenant
            .config
            .policies
            .provider_sends_opt_out_confirmation
}

async fn opt_out(
    ctx: &mut Ctx<'_, '_>,
    from: &Phone,
    m: &Matched,
    bare_cancel: bool,
    provider_saw_keyword: bool,
) -> EngineResult<()> {
    let customer_id = m.customer.as_ref().map(|c| c.id.to_string());
    let source = if provider_saw_keyword {
        "carrier_keyword"
    } else {
        "reply"
    };
    let changed = consent::set(
        ctx,
        from,
        customer_id.as_deref(),
        ConsentStatus::Revoked,
        source,
    )
    .await?;
    if changed
        && !provider_confirms(ctx, provider_saw_keyword)
        && let Some(customer) = &m.customer
    {
        let template = if bare_cancel {
            "opt_out_cancel_confirmation"
        } else {
            "opt_out_confirmation"
        };
        crate::outbound::send_to_patient(
            ctx,
            PatientText {
                customer,
                appointment: m.appointment.as_ref(),
                template,
                purpose: "opt_out_confirmation",
                link: None,
                direct_answer: true,
                without_consent: true,
                not_after: None,
            },
        )
        .await?;
    }
    if bare_cancel && m.appointment.is_some() {
        // They may have meant the visit: staff call them (texts have stopped).
        escalate(ctx, m, "cancel_keyword_opt_out", "").await?;
    }
    Ok(())
}

async fn opt_in(
    ctx: &mut Ctx<'_, '_>,
    from: &Phone,
    m: &Matched,
    provider_saw_keyword: bool,
) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    let index = ctx.tx.phone_index(&tenant, from);
    // The provider answers START only where it had blocked the number itself.
    let provider_lifts_block = provider_saw_keyword
        && ctx
            .tx
            .raw()
            .get_consent(&tenant, &index, Channel::Sms.as_str())
            .await?
            .is_some_and(|c| c.status == "revoked" && PROVIDER_BLOCKS.contains(&c.source.as_str()));
    let customer_id = m.customer.as_ref().map(|c| c.id.to_string());
    let changed = consent::set(
        ctx,
        from,
        customer_id.as_deref(),
        ConsentStatus::Granted,
        "reply",
    )
    .await?;
    if changed && !provider_confirms(ctx, provider_lifts_block) {
        answer(ctx, m, "opt_in_confirmation", None).await?;
    }
    Ok(())
}

async fn apply_intent(
    ctx: &mut Ctx<'_, '_>,
    intent: Intent,
    from: &Phone,
    m: &Matched,
    message_id: &str,
) -> EngineResult<()> {
    match intent {
        // Free text (or the LLM's reading): the provider saw no keyword of its own.
        Intent::OptOut => return opt_out(ctx, from, m, false, false).await,
        Intent::OptIn => return opt_in(ctx, from, m, false).await,
        Intent::Help => {
            answer_help(ctx, m).await?;
            return Ok(());
        }
        Intent::Question | Intent::Unknown => {
            return escalate(ctx, m, "question", message_id).await;
        }
        Intent::Confirm | Intent::Cancel | Intent::Reschedule => {}
    }
    if m.ambiguous {
        return escalate(ctx, m, "ambiguous_sender", message_id).await;
    }
    let Some(a) = m.appointment.clone() else {
        return escalate(ctx, m, "unmatched_reply", message_id).await;
    };
    match intent {
        Intent::Confirm => {
            if matches!(
                a.status,
                AppointmentStatus::Booked | AppointmentStatus::CancelRequested
            ) {
                let a = crate::visits::transition(
                    ctx,
                    a,
                    AppointmentStatus::Confirmed,
                    EventType::AppointmentConfirmed,
                    json!({"via": "reply", "messageId": message_id}),
                )
                .await?;
                crate::visits::on_confirmed(ctx, &a).await?;
                answer(
                    ctx,
                    &Matched {
                        customer: m.customer.clone(),
                        appointment: Some(a),
                        ambiguous: false,
                    },
                    "confirm_ack",
                    None,
                )
                .await?;
            } else {
                answer(ctx, m, "confirm_ack", None).await?;
            }
        }
        Intent::Cancel => {
            let a = if a
                .status
                .transition(AppointmentStatus::CancelRequested)
                .is_ok()
            {
                crate::visits::transition(
                    ctx,
                    a,
                    AppointmentStatus::CancelRequested,
                    EventType::AppointmentCancelRequested,
                    json!({"via": "reply", "messageId": message_id}),
                )
                .await?
            } else {
                a
            };
            escalate(
                ctx,
                &Matched {
                    customer: m.customer.clone(),
                    appointment: Some(a.clone()),
                    ambiguous: false,
                },
                "cancel_request",
                message_id,
            )
            .await?;
            let link = a.cancel_url.clone().or_else(|| a.reschedule_url.clone());
            answer_with_link(
                ctx,
                &Matched {
                    customer: m.customer.clone(),
                    appointment: Some(a),
                    ambiguous: false,
                },
                "cancel_ack",
                link,
            )
            .await?;
        }
        Intent::Reschedule => {
            escalate(ctx, m, "reschedule_request", message_id).await?;
            answer_with_link(ctx, m, "reschedule_ack", a.reschedule_url.clone()).await?;
        }
        _ => {}
    }
    Ok(())
}

/// When the last reminder went unanswered: staff are asked to call.
pub async fn no_reply(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    last_reminder_at: DateTime<Utc>,
) -> EngineResult<()> {
    if a.status != AppointmentStatus::Booked {
        return Ok(());
    }
    crate::escalations::open(
        ctx,
        Some(a.id.as_str()),
        Some(a.customer_id.as_str()),
        "no_reply",
        json!({"lastReminderAt": last_reminder_at}),
    )
    .await?;
    Ok(())
}
