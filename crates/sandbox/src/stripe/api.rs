//! `POST /v1/prices`, `GET /v1/prices` (the list), `GET /v1/prices/{id}`,
//! `POST /v1/payment_links`, `GET /v1/payment_links/{id}`, and the hosted payment page a link
//! points at. Every API call sees only the objects of the account its key belongs to.

use super::{LinkStatus, PaymentLink, Price, StripeError, StripeState, authenticate, idempotency};
use crate::state::Sandbox;
use crate::{ids, wire};
use aro_http::ApiError;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

/// Stripe's limits on metadata.
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_LEN: usize = 40;
const MAX_METADATA_VALUE_LEN: usize = 500;

/// `metadata[key]=value` parameters as an object.
fn metadata(params: &[(String, String)]) -> Result<Map<String, Value>, StripeError> {
    let mut map = Map::new();
    for (name, value) in params {
        let Some(key) = name
            .strip_prefix("metadata[")
            .and_then(|rest| rest.strip_suffix(']'))
        else {
            continue;
        };
        if key.is_empty() || key.len() > MAX_METADATA_KEY_LEN {
            return Err(StripeError::invalid(
                format!(
                    "Metadata keys must be between 1 and {MAX_METADATA_KEY_LEN} characters long."
                ),
                Some(name),
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE_LEN {
            return Err(StripeError::invalid(
                format!("Metadata values can have up to {MAX_METADATA_VALUE_LEN} characters."),
                Some(name),
            ));
        }
        map.insert(key.to_owned(), Value::String(value.clone()));
    }
    if map.len() > MAX_METADATA_KEYS {
        return Err(StripeError::invalid(
            format!("You can specify up to {MAX_METADATA_KEYS} metadata keys."),
            Some("metadata"),
        ));
    }
    Ok(map)
}

fn integer(params: &[(String, String)], name: &str) -> Result<Option<i64>, StripeError> {
    match wire::non_blank(params, name) {
        None => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .map(Some)
            .map_err(|_| StripeError::invalid(format!("Invalid integer: {raw}"), Some(name))),
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `POST /v1/prices`
pub(super) async fn create_price(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = match authenticate(&sandbox, &headers) {
        Ok(account) => account,
        Err(error) => return error.into_response(),
    };
    let params = wire::form(&body);
    let mut state = sandbox.state();
    idempotency::run(
        &mut state.stripe,
        &headers,
        &account,
        "prices",
        &params,
        |stripe| new_price(stripe, &account, &params),
    )
}

/// Stripe's bounds on a list's `limit`.
const DEFAULT_LIST_LIMIT: usize = 10;
const MAX_LIST_LIMIT: usize = 100;

/// `GET /v1/prices?limit=&starting_after=&active=&currency=&product=`: the account's prices,
/// newest first, as Stripe's list object. The one read every key that can make deposit links
/// may do, so it is what checks a key.
pub(super) async fn list_prices(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let account = match authenticate(&sandbox, &headers) {
        Ok(account) => account,
        Err(error) => return error.into_response(),
    };
    let params = wire::form(query.unwrap_or_default().as_bytes());
    match price_page(&sandbox.state().stripe, &account, &params) {
        Ok(page) => axum::Json(page).into_response(),
        Err(error) => error.into_response(),
    }
}

fn price_page(
    stripe: &StripeState,
    account: &str,
    params: &[(String, String)],
) -> Result<Value, StripeError> {
    if let Some((name, _)) = params.iter().find(|(name, _)| {
        !matches!(
            name.as_str(),
            "limit" | "starting_after" | "active" | "currency" | "product"
        )
    }) {
        return Err(StripeError {
            code: Some("parameter_unknown"),
            ..StripeError::invalid(format!("Received unknown parameter: {name}"), Some(name))
        });
    }
    let limit = match integer(params, "limit")? {
        None => DEFAULT_LIST_LIMIT,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                StripeError::invalid(
                    format!("This value must be between 1 and {MAX_LIST_LIMIT}."),
                    Some("limit"),
                )
            })?,
    };
    let active = match wire::non_blank(params, "active") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(StripeError::invalid(
                format!("Invalid boolean: {other}"),
                Some("active"),
            ));
        }
    };
    let currency = wire::non_blank(params, "currency").map(str::to_ascii_lowercase);
    let product = wire::non_blank(params, "product");
    let mut newest_first = stripe
        .prices
        .values()
        .rev()
        .filter(|p| p.account == account)
        .filter(|p| active.is_none_or(|active| p.json["active"] == active))
        .filter(|p| currency.as_deref().is_none_or(|c| p.currency == c))
        .filter(|p| product.is_none_or(|product| p.json["product"] == product))
        .peekable();
    if let Some(after) = wire::non_blank(params, "starting_after") {
        let known = stripe
            .prices
            .get(after)
            .is_some_and(|p| p.account == account);
        if !known {
            return Err(StripeError::no_such("price", after, "starting_after"));
        }
        for price in newest_first.by_ref() {
            if price.json["id"] == after {
                break;
            }
        }
    }
    let data: Vec<Value> = newest_first
        .by_ref()
        .take(limit)
        .map(|p| p.json.clone())
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": newest_first.peek().is_some(),
        "url": "/v1/prices",
    }))
}

fn new_price(
    stripe: &mut StripeState,
    account: &str,
    params: &[(String, String)],
) -> Result<Value, StripeError> {
    let currency = wire::non_blank(params, "currency")
        .ok_or_else(|| StripeError::missing("currency"))?
        .to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(StripeError::invalid(
            format!("Invalid currency: {currency}."),
            Some("currency"),
        ));
    }
    let unit_amount =
        integer(params, "unit_amount")?.ok_or_else(|| StripeError::missing("unit_amount"))?;
    if unit_amount < 0 {
        return Err(StripeError::invalid(
            "This value must be greater than or equal to 0.",
            Some("unit_amount"),
        ));
    }
    let product_name = wire::non_blank(params, "product_data[name]").map(str::to_owned);
    let product = match (wire::non_blank(params, "product"), &product_name) {
        (Some(product), _) => product.to_owned(),
        (None, Some(_)) => ids::stripe_id("prod"),
        (None, None) => {
            return Err(StripeError::invalid(
                "You must specify either `product` or `product_data` when creating a price.",
                Some("product"),
            ));
        }
    };
    let id = ids::stripe_id("price");
    let json = json!({
        "id": id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": now_unix(),
        "currency": currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": null,
        "metadata": metadata(params)?,
        "nickname": null,
        "product": product,
        "recurring": null,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount.to_string(),
    });
    stripe.prices.insert(
        id,
        Price {
            account: account.to_owned(),
            currency,
            unit_amount,
            product_name,
            json: json.clone(),
        },
    );
    Ok(json)
}

/// `POST /v1/payment_links`
pub(super) async fn create_payment_link(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = match authenticate(&sandbox, &headers) {
        Ok(account) => account,
        Err(error) => return error.into_response(),
    };
    let params = wire::form(&body);
    let self_url = sandbox.settings().self_url.clone();
    let mut state = sandbox.state();
    idempotency::run(
        &mut state.stripe,
        &headers,
        &account,
        "payment_links",
        &params,
        |stripe| new_payment_link(stripe, &account, &params, &self_url),
    )
}

fn new_payment_link(
    stripe: &mut StripeState,
    account: &str,
    params: &[(String, String)],
    self_url: &url::Url,
) -> Result<Value, StripeError> {
    let mut currency: Option<String> = None;
    let mut amount_minor: i64 = 0;
    let mut labels = Vec::new();
    for index in 0.. {
        let price_param = format!("line_items[{index}][price]");
        let Some(price_id) = wire::non_blank(params, &price_param) else {
            if index == 0 {
                return Err(StripeError::missing("line_items"));
            }
            break;
        };
        let quantity_param = format!("line_items[{index}][quantity]");
        let quantity = integer(params, &quantity_param)?
            .ok_or_else(|| StripeError::missing(&quantity_param))?;
        if quantity < 1 {
            return Err(StripeError::invalid(
                "This value must be greater than or equal to 1.",
                Some(&quantity_param),
            ));
        }
        // Another account's price does not exist for this one.
        let price = stripe
            .prices
            .get(price_id)
            .filter(|p| p.account == account)
            .ok_or_else(|| StripeError::no_such("price", price_id, &price_param))?;
        if currency.as_ref().is_some_and(|c| *c != price.currency) {
            return Err(StripeError::invalid(
                "All prices on a payment link must have the same currency.",
                Some(&price_param),
            ));
        }
        currency = Some(price.currency.clone());
        amount_minor = price
            .unit_amount
            .checked_mul(quantity)
            .and_then(|line| amount_minor.checked_add(line))
            .ok_or_else(|| {
                StripeError::invalid("The total amount is too large.", Some(&quantity_param))
            })?;
        labels.push(
            price
                .product_name
                .clone()
                .unwrap_or_else(|| "Payment".to_owned()),
        );
    }
    let currency = currency.unwrap_or_default();
    let after_completion = match wire::non_blank(params, "after_completion[type]") {
        None | Some("hosted_confirmation") => json!({
            "hosted_confirmation": {
                "custom_message": wire::non_blank(params, "after_completion[hosted_confirmation][custom_message]"),
            },
            "type": "hosted_confirmation",
        }),
        Some("redirect") => {
            let url = wire::non_blank(params, "after_completion[redirect][url]")
                .ok_or_else(|| StripeError::missing("after_completion[redirect][url]"))?;
            json!({"redirect": {"url": url}, "type": "redirect"})
        }
        Some(other) => {
            return Err(StripeError::invalid(
                format!(
                    "Invalid after_completion[type]: must be one of hosted_confirmation or redirect (got {other})."
                ),
                Some("after_completion[type]"),
            ));
        }
    };
    let metadata = metadata(params)?;
    let tenant_id = metadata
        .get("tenantId")
        .and_then(Value::as_str)
        .filter(|t| aro_domain::ids::TenantId::parse(t).is_ok())
        .unwrap_or("default")
        .to_owned();
    let id = ids::stripe_id("plink");
    let url = crate::settings::join(self_url, &format!("/pay/{id}"));
    let json = json!({
        "id": id,
        "object": "payment_link",
        "active": true,
        "after_completion": after_completion,
        "allow_promotion_codes": false,
        "application_fee_amount": null,
        "application_fee_percent": null,
        "automatic_tax": {"enabled": false, "liability": null},
        "billing_address_collection": "auto",
        "currency": currency,
        "customer_creation": "if_required",
        "livemode": false,
        "metadata": metadata,
        "on_behalf_of": null,
        "payment_method_collection": "always",
        "payment_method_types": null,
        "phone_number_collection": {"enabled": false},
        "shipping_address_collection": null,
        "submit_type": "auto",
        "subscription_data": null,
        "transfer_data": null,
        "url": url,
    });
    stripe.links.insert(
        id.clone(),
        PaymentLink {
            id,
            account: account.to_owned(),
            tenant_id,
            currency,
            amount_minor,
            label: labels.join(", "),
            metadata,
            url,
            status: LinkStatus::Open,
            json: json.clone(),
        },
    );
    Ok(json)
}

/// `GET /v1/prices/{id}`
pub(super) async fn get_price(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let account = match authenticate(&sandbox, &headers) {
        Ok(account) => account,
        Err(error) => return error.into_response(),
    };
    let found = sandbox
        .state()
        .stripe
        .prices
        .get(&id)
        .filter(|p| p.account == account)
        .map(|p| p.json.clone());
    match found {
        Some(json) => axum::Json(json).into_response(),
        None => StripeError::not_found("price", &id).into_response(),
    }
}

/// `GET /v1/payment_links/{id}`
pub(super) async fn get_payment_link(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let account = match authenticate(&sandbox, &headers) {
        Ok(account) => account,
        Err(error) => return error.into_response(),
    };
    let found = sandbox
        .state()
        .stripe
        .links
        .get(&id)
        .filter(|l| l.account == account)
        .map(|l| l.json.clone());
    match found {
        Some(json) => axum::Json(json).into_response(),
        None => StripeError::not_found("payment_link", &id).into_response(),
    }
}

/// `GET /pay/{id}`: the page a payment link's `url` opens. Nothing is charged; each button
/// completes the payment the way a patient paying would: by card, or by a bank debit that
/// succeeds or fails (the form's `method` and `outcome` fields).
pub(super) async fn payment_page(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Response {
    let link = sandbox.state().stripe.links.get(&id).cloned();
    let Some(link) = link else {
        return ApiError::not_found("payment link").into_response();
    };
    let amount = format!(
        "{}.{:02} {}",
        link.amount_minor / 100,
        link.amount_minor % 100,
        link.currency.to_ascii_uppercase()
    );
    let action = match link.status {
        LinkStatus::Open => {
            let target = format!("/sandbox/payments/{}/complete", escape(&link.id));
            let button = |fields: &str, label: &str| {
                format!(
                    "<form method=\"post\" action=\"{target}\">{fields}<button type=\"submit\">{label}</button></form>"
                )
            };
            let debit = "<input type=\"hidden\" name=\"method\" value=\"bank_debit\">";
            [
                button("", &format!("Pay {} by card", escape(&amount))),
                button(debit, "Pay by bank debit"),
                button(
                    &format!("{debit}<input type=\"hidden\" name=\"outcome\" value=\"failed\">"),
                    "Pay by bank debit that fails",
                ),
            ]
            .concat()
        }
        LinkStatus::Paid => "<p><strong>Paid.</strong></p>".to_owned(),
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sandbox payment</title></head>\
         <body><h1>{label}</h1><p>Amount: {amount}</p>{action}\
         <p>This is the ARO sandbox standing in for Stripe: no card or bank account is asked for and nothing is charged. \
         Paying by card sends a signed <code>checkout.session.completed</code> event to ARO; a bank debit sends \
         <code>checkout.session.completed</code> (unpaid), then <code>checkout.session.async_payment_succeeded</code> \
         or <code>checkout.session.async_payment_failed</code>.</p></body></html>",
        label = escape(&link.label),
        amount = escape(&amount),
    ))
    .into_response()
}

/// Minimal HTML escaping for text placed in the page.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn metadata_is_read_from_bracketed_keys() {
        let map = metadata(&params(&[
            ("metadata[tenantId]", "default"),
            ("metadata[executionId]", "exe_1"),
            ("currency", "usd"),
        ]))
        .unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["tenantId"], "default");
        let long_key = format!("metadata[{}]", "k".repeat(41));
        assert!(metadata(&params(&[(&long_key, "v")])).is_err());
    }

    #[test]
    fn a_price_needs_a_currency_an_amount_and_a_product() {
        let mut stripe = StripeState::new(10);
        let err = new_price(
            &mut stripe,
            "acct_sandbox",
            &params(&[("unit_amount", "100")]),
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("currency"));
        let err = new_price(
            &mut stripe,
            "acct_sandbox",
            &params(&[("currency", "usd"), ("unit_amount", "100")]),
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("product"));
        let price = new_price(
            &mut stripe,
            "acct_sandbox",
            &params(&[
                ("currency", "USD"),
                ("unit_amount", "2500"),
                ("product_data[name]", "Deposit"),
            ]),
        )
        .unwrap();
        assert_eq!(price["currency"], "usd");
        assert_eq!(price["unit_amount_decimal"], "2500");
    }

    #[test]
    fn a_link_adds_up_its_line_items_and_takes_its_tenant_from_metadata() {
        let mut stripe = StripeState::new(10);
        let price = new_price(
            &mut stripe,
            "acct_sandbox",
            &params(&[
                ("currency", "usd"),
                ("unit_amount", "2500"),
                ("product_data[name]", "Deposit"),
            ]),
        )
        .unwrap();
        let price_id = price["id"].as_str().unwrap();
        let self_url = url::Url::parse("http://127.0.0.1:7400").unwrap();
        let link = new_payment_link(
            &mut stripe,
            "acct_sandbox",
            &params(&[
                ("line_items[0][price]", price_id),
                ("line_items[0][quantity]", "2"),
                ("metadata[tenantId]", "clinic-2"),
            ]),
            &self_url,
        )
        .unwrap();
        let id = link["id"].as_str().unwrap();
        assert_eq!(link["url"], format!("http://127.0.0.1:7400/pay/{id}"));
        let stored = stripe.links.get(id).unwrap();
        assert_eq!(stored.amount_minor, 5000);
        assert_eq!(stored.tenant_id, "clinic-2");
        let err = new_payment_link(
            &mut stripe,
            "acct_sandbox",
            &params(&[
                ("line_items[0][price]", "price_nope"),
                ("line_items[0][quantity]", "1"),
            ]),
            &self_url,
        )
        .unwrap_err();
        assert_eq!(err.code, Some("resource_missing"));
        // Another account's price does not exist for this one.
        let err = new_payment_link(
            &mut stripe,
            "acct_other",
            &params(&[
                ("line_items[0][price]", price_id),
                ("line_items[0][quantity]", "1"),
            ]),
            &self_url,
        )
        .unwrap_err();
        assert_eq!(err.code, Some("resource_missing"));
    }

    #[test]
    fn the_price_list_pages_the_accounts_own_prices_newest_first() {
        let mut stripe = StripeState::new(10);
        let make = |stripe: &mut StripeState, account: &str| {
            new_price(
                stripe,
                account,
                &params(&[
                    ("currency", "usd"),
                    ("unit_amount", "100"),
                    ("product_data[name]", "Deposit"),
                ]),
            )
            .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let first = make(&mut stripe, "acct_sandbox");
        make(&mut stripe, "acct_other");
        let second = make(&mut stripe, "acct_sandbox");
        let page = price_page(&stripe, "acct_sandbox", &params(&[("limit", "1")])).unwrap();
        assert_eq!(page["object"], "list");
        assert_eq!(page["url"], "/v1/prices");
        assert_eq!(page["data"][0]["id"], second.as_str());
        assert_eq!(page["has_more"], true);
        let next = price_page(
            &stripe,
            "acct_sandbox",
            &params(&[("limit", "1"), ("starting_after", &second)]),
        )
        .unwrap();
        assert_eq!(next["data"][0]["id"], first.as_str());
        assert_eq!(next["has_more"], false);
        let empty = price_page(&stripe, "acct_none", &[]).unwrap();
        assert_eq!(empty["data"], json!([]));
        for wrong in [
            ("limit", "0"),
            ("limit", "101"),
            ("count", "1"),
            ("active", "yes"),
        ] {
            assert!(price_page(&stripe, "acct_sandbox", &params(&[wrong])).is_err());
        }
    }

    #[test]
    fn page_text_is_escaped() {
        assert_eq!(
            escape("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
    }
}
