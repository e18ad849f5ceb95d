//! The patient's no-show risk (spec 03 `calculateRiskScore`), recomputed from their history:
//! up to 40 points for no-shows (20 each), up to 30 for unconfirmed visits, up to 20 for
//! reschedules. No-shows count within the last 90 days ([`NO_SHOW_WINDOW`]), so risk fades with
//! good attendance; two no-shows in that window is the pattern that asks for a deposit link next
//! time, as does a score at or above the high-risk threshold (default 70).

use crate::ctx::Ctx;
use crate::error::EngineResult;
use aro_domain::EventType;
use aro_domain::customer::Customer;
use aro_store::{AggregateRef, EventQuery};
use serde_json::json;

/// The window of the pattern "two no-shows in 90 days".
pub const NO_SHOW_WINDOW: chrono::Duration = chrono::Duration::days(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    pub visits: u32,
    pub no_shows: u32,
    pub confirmed: u32,
    pub reschedules: u32,
}

/// Spec 03's formula, in whole points (0–100).
pub fn score(h: History) -> i32 {
    let no_show_points = (h.no_shows * 20).min(40) as f64;
    let confirmation_rate = if h.visits == 0 {
        1.0
    } else {
        f64::from(h.confirmed) / f64::from(h.visits)
    };
    let unconfirmed_points = (1.0 - confirmation_rate.min(1.0)) * 30.0;
    let reschedule_points = if h.visits == 0 {
        0.0
    } else {
        (f64::from(h.reschedules) / f64::from(h.visits)).min(1.0) * 20.0
    };
    (no_show_points + unconfirmed_points + reschedule_points)
        .round()
        .clamp(0.0, 100.0) as i32
}

pub fn needs_deposit(c: &Customer, high_risk_threshold: i32) -> bool {
    c.risk_score >= high_risk_threshold || c.no_show_count >= 2
}

/// Reads the patient's visits and their events, updates the customer, and emits
/// `customer.risk_updated` when the score or no-show count changed.
pub async fn recompute(ctx: &mut Ctx<'_, '_>, mut customer: Customer) -> EngineResult<Customer> {
    let tenant = ctx.tenant_id().to_owned();
    let appointments = ctx
        .tx
        .appointments_for_customer(&tenant, customer.id.as_str())
        .await?;
    let mut h = History::default();
    for a in &appointments {
        if !a.status.is_outcome() {
            continue;
        }
        h.visits += 1;
        if a.status == aro_domain::AppointmentStatus::NoShow
            && a.ends_at >= ctx.now - NO_SHOW_WINDOW
        {
            h.no_shows += 1;
        }
        let events = ctx
            .tx
            .events(&EventQuery {
                tenant_id: Some(tenant.clone()),
                after: 0,
                limit: 1000,
                event_type: None,
                aggregate_id: Some(a.id.to_string()),
            })
            .await?;
        if events
            .iter()
            .any(|e| e.event_type == EventType::AppointmentConfirmed.as_str())
        {
            h.confirmed += 1;
        }
        h.reschedules += events
            .iter()
            .filter(|e| e.event_type == EventType::AppointmentRescheduled.as_str())
            .count() as u32;
    }
    let new_score = score(h);
    let new_no_shows = h.no_shows as i32;
    if new_score == customer.risk_score && new_no_shows == customer.no_show_count {
        return Ok(customer);
    }
    let previous = customer.risk_score;
    customer.risk_score = new_score;
    customer.no_show_count = new_no_shows;
    customer.updated_at = ctx.now;
    ctx.tx.update_customer(&customer, ctx.now).await?;
    ctx.emit(
        EventType::CustomerRiskUpdated,
        AggregateRef::new("customer", customer.id.as_str()),
        json!({"customerId": customer.id, "riskScore": new_score, "previousRiskScore": previous,
               "noShowCount": new_no_shows, "updatedAt": customer.updated_at,
               "pattern": (new_no_shows >= 2).then_some("two_no_shows_in_90_days"),
               "highRisk": needs_deposit(&customer, ctx.tenant.config.policies.high_risk_threshold)}),
        None,
    );
    Ok(customer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_03_formula() {
        assert_eq!(score(History::default()), 0);
        // Two no-shows out of two visits, never confirmed: 40 + 30.
        assert_eq!(
            score(History {
                visits: 2,
                no_shows: 2,
                confirmed: 0,
                reschedules: 0
            }),
            70
        );
        // No-show points cap at 40; reschedules add up to 20.
        assert_eq!(
            score(History {
                visits: 4,
                no_shows: 4,
                confirmed: 0,
                reschedules: 4
            }),
            90
        );
        // Always confirmed and present: 0.
        assert_eq!(
            score(History {
                visits: 5,
                no_shows: 0,
                confirmed: 5,
                reschedules: 0
            }),
            0
        );
        // Half confirmed: 15.
        assert_eq!(
            score(History {
                visits: 2,
                no_shows: 0,
                confirmed: 1,
                reschedules: 0
            }),
            15
        );
    }
}
