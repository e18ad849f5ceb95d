//! [`Tx`]: one transaction as callers use it. Domain records in and out; personal data sealed on
//! the way down and opened on the way up.

use crate::backend::BackendTx;
use crate::engine_rows::{ExecutionRow, MessageRow};
use crate::error::StoreError;
use crate::micros;
use crate::records::*;
use crate::rows::*;
use crate::vault::{Place, Vault};
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::{Customer, CustomerDetails};
use aro_domain::ids::{BusinessId, TenantId};
use aro_domain::message::{Channel, Direction, MessageStatus};
use aro_domain::tenant::{ClassificationResidency, Tenant, TenantConfig};
use aro_domain::values::{Currency, Email, Language, Money, Phone, Region, Zone};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

pub struct Tx<'t> {
    raw: &'t mut dyn BackendTx,
    vault: &'t Vault,
    unlogged: Unlogged,
}

/// Read-model writes of this transaction that no event has told yet. The engine's step context
/// carries them on the events it appends (and appends one when none would), so that the event
/// log alone rebuilds the read models (`aro events rebuild`), even where a command wrote a row
/// that its own events do not describe.
#[derive(Debug, Default, Clone)]
pub struct Unlogged {
    /// New identities given to bookings (a provider's reschedule), oldest first.
    pub aliases: Vec<AliasWrite>,
    /// The latest write of each patient created or changed in this transaction.
    pub customers: Vec<CustomerWrite>,
}

/// One row of `appointment_aliases`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasWrite {
    pub tenant_id: String,
    pub source: String,
    pub external_id: String,
    pub appointment_id: String,
    pub created_at: DateTime<Utc>,
}

/// A patient as last written in this transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerWrite {
    pub customer: Customer,
    /// Whether anything but the risk counters changed (or the patient is new): a
    /// `customer.risk_updated` event then does not tell the whole change.
    pub details_changed: bool,
}

impl Unlogged {
    fn customer_written(&mut self, customer: &Customer, details_changed: bool) {
        match self
            .customers
            .iter_mut()
            .find(|w| w.customer.tenant_id == customer.tenant_id && w.customer.id == customer.id)
        {
            Some(w) => {
                w.customer = customer.clone();
                w.details_changed |= details_changed;
            }
            None => self.customers.push(CustomerWrite {
                customer: customer.clone(),
                details_changed,
            }),
        }
    }
}

/// Whether two states of a patient differ in more than the risk counters and `updated_at`.
fn details_differ(a: &Customer, b: &Customer) -> bool {
    a.name != b.name
        || a.phone != b.phone
        || a.email != b.email
        || a.zone != b.zone
        || a.language != b.language
        || a.created_at != b.created_at
}

/// Where a message's sealed column lives: the associated data its ciphertext is bound to.
fn message_place<'a>(tenant_id: &'a str, column: &'a str, message_id: &'a str) -> Place<'a> {
    Place {
        tenant_id,
        table: "messages",
        column,
        row_id: message_id,
    }
}

/// Where an execution's payload is sealed: the table and column its ciphertext is bound to.
const EXECUTIONS: &str = "executions";
const PAYLOAD: &str = "payload";

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

impl<'t> Tx<'t> {
    pub(crate) fn new(raw: &'t mut dyn BackendTx, vault: &'t Vault) -> Self {
        Self {
            raw,
            vault,
            unlogged: Unlogged::default(),
        }
    }

    /// This transaction's writes not yet told by an event (see [`Unlogged`]).
    pub fn unlogged(&mut self) -> &mut Unlogged {
        &mut self.unlogged
    }

    /// The row-level interface, for engine-neutral code that needs a query not wrapped here.
    pub fn raw(&mut self) -> &mut dyn BackendTx {
        self.raw
    }

    pub fn vault(&self) -> &Vault {
        self.vault
    }

    /// Seals `plaintext` under `subject`'s data key (created when missing), bound to its place.
    /// The store's own helper: callers write through typed methods (patients, messages, events,
    /// execution payloads, credentials) and never name a binding.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn seal(
        &mut self,
        tenant_id: &str,
        subject_id: &str,
        table: &str,
        column: &str,
        row_id: &str,
        plaintext: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, StoreError> {
        let key = self
            .vault
            .key_for(&mut *self.raw, tenant_id, subject_id, now)
            .await?;
        self.vault.seal(
            &key,
            Place {
                tenant_id,
                table,
                column,
                row_id,
            },
            plaintext,
        )
    }

    /// Opens a ciphertext sealed by [`Tx::seal`]; `None` when the subject has been erased.
    pub(crate) async fn open(
        &mut self,
        tenant_id: &str,
        subject_id: &str,
        table: &str,
        column: &str,
        row_id: &str,
        ciphertext: &[u8],
    ) -> Result<Option<String>, StoreError> {
        match self
            .vault
            .existing_key(&mut *self.raw, tenant_id, subject_id)
            .await?
        {
            Some(key) => Ok(Some(self.vault.open(
                &key,
                Place {
                    tenant_id,
                    table,
                    column,
                    row_id,
                },
                ciphertext,
            )?)),
            None => Ok(None),
        }
    }

    /// Serialises transactions on the same logical key until this one ends.
    pub async fn lock(&mut self, key: &str) -> Result<(), StoreError> {
        self.raw.lock(key).await
    }

    // ----- tenants -----

    pub async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<bool, StoreError> {
        let row = tenant_row(tenant)?;
        self.raw.insert_tenant(&row).await
    }

    pub async fn update_tenant(
        &mut self,
        tenant: &Tenant,
        config_version: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut row = tenant_row(tenant)?;
        row.config_version = config_version;
        row.updated_at = micros(now);
        self.raw.update_tenant(&row).await
    }

    pub async fn get_tenant(&mut self, id: &str) -> Result<Option<(Tenant, i64)>, StoreError> {
        match self.raw.get_tenant(id).await? {
            Some(row) => Ok(Some((tenant_from_row(row.clone())?, row.config_version))),
            None => Ok(None),
        }
    }

    pub async fn list_tenants(&mut self) -> Result<Vec<Tenant>, StoreError> {
        self.raw
            .list_tenants()
            .await?
            .into_iter()
            .map(tenant_from_row)
            .collect()
    }

    // ----- customers -----

    /// Creates a patient with a fresh data key.
    pub async fn insert_customer(
        &mut self,
        tenant_id: &TenantId,
        details: &CustomerDetails,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError> {
        let id = crate::ids::new_business_id(aro_domain::ids::prefix::CUSTOMER);
        let now = micros(now);
        let customer = Customer {
            id,
            tenant_id: tenant_id.clone(),
            name: details.name.clone(),
            phone: details.phone.clone(),
            email: details.email.clone(),
            zone: details.zone,
            language: details.language.clone(),
            risk_score: 0,
            no_show_count: 0,
            created_at: now,
            updated_at: now,
        };
        let row = self.customer_row(&customer, now).await?;
        self.raw.insert_customer(&row).await?;
        self.unlogged.customer_written(&customer, true);
        Ok(customer)
    }

    pub async fn update_customer(
        &mut self,
        customer: &Customer,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let before = self
            .get_customer(customer.tenant_id.as_str(), customer.id.as_str())
            .await?;
        let mut row = self.customer_row(customer, now).await?;
        row.updated_at = micros(now);
        let updated = self.raw.update_customer(&row).await?;
        if updated {
            let mut written = customer.clone();
            written.updated_at = row.updated_at;
            let details_changed = before.is_none_or(|b| details_differ(&b, &written));
            self.unlogged.customer_written(&written, details_changed);
        }
        Ok(updated)
    }

    /// Writes a patient exactly as given, under their own id (`aro events rebuild`): personal
    /// fields are sealed under the subject's existing data key, so every other ciphertext of the
    /// patient keeps opening, and a patient without personal fields (erased) gets no key, so
    /// nothing erased comes back. True when the row was created, false when it was replaced.
    pub async fn restore_customer(&mut self, c: &Customer) -> Result<bool, StoreError> {
        let has_personal = c.name.is_some() || c.phone.is_some() || c.email.is_some();
        let key = if has_personal {
            let key = self
                .vault
                .existing_key(&mut *self.raw, c.tenant_id.as_str(), c.id.as_str())
                .await?
                .ok_or_else(|| {
                    corrupt(
                        "customers",
                        format!("{} has personal fields but no data key", c.id),
                    )
                })?;
            Some(key)
        } else {
            None
        };
        let row = self.sealed_customer_row(c, key.as_ref())?;
        if self
            .raw
            .get_customer(&row.tenant_id, &row.id)
            .await?
            .is_some()
        {
            self.raw.update_customer(&row).await?;
            Ok(false)
        } else {
            self.raw.insert_customer(&row).await?;
            Ok(true)
        }
    }

    pub async fn get_customer(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Customer>, StoreError> {
        match self.raw.get_customer(tenant_id, id).await? {
            Some(row) => Ok(Some(self.customer_from_row(row).await?)),
            None => Ok(None),
        }
    }

    /// Everyone in the tenant with this number (family members share phones).
    pub async fn customers_by_phone(
        &mut self,
        tenant_id: &str,
        phone: &Phone,
    ) -> Result<Vec<Customer>, StoreError> {
        let index = self.vault.blind_index(tenant_id, phone.as_str());
        let rows = self.raw.customers_by_phone_index(tenant_id, &index).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.customer_from_row(row).await?);
        }
        Ok(out)
    }

    /// The blind index of a phone number in this tenant.
    pub fn phone_index(&self, tenant_id: &str, phone: &Phone) -> String {
        self.vault.blind_index(tenant_id, phone.as_str())
    }

    /// Destroys the patient's data key: every ciphertext under it, in any table or event, is
    /// unreadable from now on.
    pub async fn erase_subject(
        &mut self,
        tenant_id: &str,
        subject_id: &str,
    ) -> Result<bool, StoreError> {
        self.raw.delete_data_key(tenant_id, subject_id).await
    }

    async fn customer_row(
        &mut self,
        c: &Customer,
        now: DateTime<Utc>,
    ) -> Result<CustomerRow, StoreError> {
        // A patient with nothing personal to seal (an erased one) needs no key: creating one
        // would make the ciphertexts sealed before the erasure fail to open instead of reading
        // as erased.
        if c.name.is_none() && c.phone.is_none() && c.email.is_none() {
            return self.sealed_customer_row(c, None);
        }
        let key = self
            .vault
            .key_for(&mut *self.raw, c.tenant_id.as_str(), c.id.as_str(), now)
            .await?;
        self.sealed_customer_row(c, Some(&key))
    }

    /// The row of a patient, personal fields sealed under `key` (which they need).
    fn sealed_customer_row(
        &self,
        c: &Customer,
        key: Option<&aro_security::crypto::DataKey>,
    ) -> Result<CustomerRow, StoreError> {
        let tenant = c.tenant_id.as_str();
        let id = c.id.as_str();
        let place = |column| Place {
            tenant_id: tenant,
            table: "customers",
            column,
            row_id: id,
        };
        let seal = |column, value: Option<&str>| -> Result<Option<Vec<u8>>, StoreError> {
            match (value, key) {
                (Some(v), Some(key)) => self.vault.seal(key, place(column), v).map(Some),
                (Some(_), None) => Err(corrupt("customers", format!("{id}: no data key"))),
                (None, _) => Ok(None),
            }
        };
        Ok(CustomerRow {
            tenant_id: tenant.to_owned(),
            id: id.to_owned(),
            name_ct: seal("name", c.name.as_deref())?,
            phone_ct: seal("phone", c.phone.as_ref().map(Phone::as_str))?,
            phone_index: c
                .phone
                .as_ref()
                .map(|p| self.vault.blind_index(tenant, p.as_str())),
            email_ct: seal("email", c.email.as_ref().map(Email::as_str))?,
            zone: c.zone.map(|z| z.name().to_owned()),
            language: c.language.as_ref().map(|l| l.as_str().to_owned()),
            risk_score: i64::from(c.risk_score),
            no_show_count: i64::from(c.no_show_count),
            created_at: micros(c.created_at),
            updated_at: micros(c.updated_at),
        })
    }

    async fn customer_from_row(&mut self, row: CustomerRow) -> Result<Customer, StoreError> {
        let tenant = row.tenant_id.as_str();
        let id = row.id.as_str();
        // An erased patient has no key: their personal fields read as absent.
        let key = self.vault.existing_key(&mut *self.raw, tenant, id).await?;
        let open = |column, ct: &Option<Vec<u8>>| -> Result<Option<String>, StoreError> {
            match (ct, &key) {
                (Some(ct), Some(key)) => self
                    .vault
                    .open(
                        key,
                        Place {
                            tenant_id: tenant,
                            table: "customers",
                            column,
                            row_id: id,
                        },
                        ct,
                    )
                    .map(Some),
                _ => Ok(None),
            }
        };
        let name = open("name", &row.name_ct)?;
        let phone = open("phone", &row.phone_ct)?
            .map(|p| Phone::parse_e164(&p).map_err(|e| corrupt("customers.phone", e)))
            .transpose()?;
        let email = open("email", &row.email_ct)?
            .map(|e| Email::parse(&e).map_err(|e| corrupt("customers.email", e)))
            .transpose()?;
        Ok(Customer {
            id: BusinessId::parse(id).map_err(|e| corrupt("customers.id", e))?,
            tenant_id: TenantId::parse(tenant).map_err(|e| corrupt("customers.tenant_id", e))?,
            name,
            phone,
            email,
            zone: row
                .zone
                .as_deref()
                .map(Zone::parse)
                .transpose()
                .map_err(|e| corrupt("customers.zone", e))?,
            language: row
                .language
                .as_deref()
                .map(Language::parse)
                .transpose()
                .map_err(|e| corrupt("customers.language", e))?,
            risk_score: i32::try_from(row.risk_score)
                .map_err(|e| corrupt("customers.risk_score", e))?,
            no_show_count: i32::try_from(row.no_show_count)
                .map_err(|e| corrupt("customers.no_show_count", e))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    // ----- appointments -----

    /// Inserts unless the booking identity `(tenant, source, externalId)` exists.
    pub async fn insert_appointment(&mut self, a: &Appointment) -> Result<bool, StoreError> {
        self.raw.insert_appointment(&appointment_row(a)).await
    }

    /// Writes `a` (whose `version` is the new one) if the stored version is `expected_version`.
    pub async fn update_appointment(
        &mut self,
        a: &Appointment,
        expected_version: i64,
    ) -> Result<bool, StoreError> {
        self.raw
            .update_appointment(&appointment_row(a), expected_version)
            .await
    }

    pub async fn get_appointment(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Appointment>, StoreError> {
        self.raw
            .get_appointment(tenant_id, id)
            .await?
            .map(appointment_from_row)
            .transpose()
    }

    pub async fn appointment_by_external(
        &mut self,
        tenant_id: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<Appointment>, StoreError> {
        self.raw
            .appointment_by_external(tenant_id, source, external_id)
            .await?
            .map(appointment_from_row)
            .transpose()
    }

    pub async fn add_appointment_alias(
        &mut self,
        tenant_id: &str,
        source: &str,
        external_id: &str,
        appointment_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .raw
            .insert_alias(tenant_id, source, external_id, appointment_id, micros(now))
            .await?;
        if inserted {
            self.unlogged.aliases.push(AliasWrite {
                tenant_id: tenant_id.to_owned(),
                source: source.to_owned(),
                external_id: external_id.to_owned(),
                appointment_id: appointment_id.to_owned(),
                created_at: micros(now),
            });
        }
        Ok(inserted)
    }

    pub async fn appointments_for_customer(
        &mut self,
        tenant_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Appointment>, StoreError> {
        self.raw
            .appointments_for_customer(tenant_id, customer_id)
            .await?
            .into_iter()
            .map(appointment_from_row)
            .collect()
    }

    // ----- messages -----

    /// Records a text, its number and body sealed under the data key of its patient (or of
    /// [`TENANT_SUBJECT`]) bound to `("messages", column, id)`, its number indexed blind.
    /// Returns it as stored, with a fresh id.
    pub async fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<Message, StoreError> {
        let id = crate::ids::new_id(aro_domain::ids::prefix::MESSAGE);
        let at = micros(m.at);
        let subject = message_subject(m.customer_id);
        let counterpart = m.counterpart.map(Phone::as_str);
        let (counterpart_ct, body_ct) = if counterpart.is_some() || m.body.is_some() {
            let key = self
                .vault
                .key_for(&mut *self.raw, m.tenant_id, subject, at)
                .await?;
            let seal = |column, value: Option<&str>| {
                value
                    .map(|v| {
                        self.vault
                            .seal(&key, message_place(m.tenant_id, column, &id), v)
                    })
                    .transpose()
            };
            (seal("counterpart", counterpart)?, seal("body", m.body)?)
        } else {
            (None, None)
        };
        let counterpart_index = counterpart.map(|p| self.vault.blind_index(m.tenant_id, p));
        let row = MessageRow {
            tenant_id: m.tenant_id.to_owned(),
            id: id.clone(),
            customer_id: m.customer_id.map(str::to_owned),
            appointment_id: m.appointment_id.map(str::to_owned),
            direction: m.direction.as_str().to_owned(),
            channel: m.channel.as_str().to_owned(),
            purpose: m.purpose.to_owned(),
            counterpart_ct,
            counterpart_index: counterpart_index.clone(),
            body_ct,
            status: m.status.as_str().to_owned(),
            provider_ref: m.provider_ref.map(str::to_owned),
            error_code: None,
            execution_id: m.execution_id.map(str::to_owned),
            created_at: at,
            updated_at: at,
        };
        self.raw.insert_message(&row).await?;
        Ok(Message {
            tenant_id: row.tenant_id,
            id,
            customer_id: row.customer_id,
            appointment_id: row.appointment_id,
            direction: m.direction,
            channel: m.channel,
            purpose: row.purpose,
            counterpart: m.counterpart.cloned(),
            counterpart_index,
            body: m.body.map(str::to_owned),
            pii_erased: false,
            status: m.status,
            provider_ref: row.provider_ref,
            error_code: None,
            execution_id: row.execution_id,
            created_at: at,
            updated_at: at,
        })
    }

    /// Writes a text's delivery: `status`, `provider_ref`, `error_code`, `execution_id` and
    /// `updated_at`. Everything else was fixed when it was recorded (its patient above all:
    /// the data key of its sealed columns follows from it) and is left as stored. False when
    /// there is no such message.
    pub async fn update_message(&mut self, m: &Message) -> Result<bool, StoreError> {
        let Some(mut row) = self.raw.get_message(&m.tenant_id, &m.id).await? else {
            return Ok(false);
        };
        row.status = m.status.as_str().to_owned();
        row.provider_ref.clone_from(&m.provider_ref);
        row.error_code.clone_from(&m.error_code);
        row.execution_id.clone_from(&m.execution_id);
        row.updated_at = micros(m.updated_at);
        self.raw.update_message(&row).await
    }

    pub async fn message(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Message>, StoreError> {
        match self.raw.get_message(tenant_id, id).await? {
            Some(row) => Ok(Some(self.message_from_row(row).await?)),
            None => Ok(None),
        }
    }

    /// The text a provider knows by `provider_ref` (its message id).
    pub async fn message_by_provider_ref(
        &mut self,
        tenant_id: &str,
        provider_ref: &str,
    ) -> Result<Option<Message>, StoreError> {
        match self
            .raw
            .message_by_provider_ref(tenant_id, provider_ref)
            .await?
        {
            Some(row) => Ok(Some(self.message_from_row(row).await?)),
            None => Ok(None),
        }
    }

    /// Texts to or from `phone` recorded at or after `since`, oldest first (found by the
    /// number's blind index, whoever's patient they were).
    pub async fn messages_for_phone(
        &mut self,
        tenant_id: &str,
        phone: &Phone,
        since: DateTime<Utc>,
    ) -> Result<Vec<Message>, StoreError> {
        let index = self.vault.blind_index(tenant_id, phone.as_str());
        let rows = self
            .raw
            .messages_for_counterpart(tenant_id, &index, micros(since))
            .await?;
        self.messages_from_rows(rows).await
    }

    /// The texts about a visit, oldest first.
    pub async fn messages_for_appointment(
        &mut self,
        tenant_id: &str,
        appointment_id: &str,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = self
            .raw
            .messages_for_appointment(tenant_id, appointment_id)
            .await?;
        self.messages_from_rows(rows).await
    }

    async fn messages_from_rows(
        &mut self,
        rows: Vec<MessageRow>,
    ) -> Result<Vec<Message>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.message_from_row(row).await?);
        }
        Ok(out)
    }

    async fn message_from_row(&mut self, row: MessageRow) -> Result<Message, StoreError> {
        let sealed = row.counterpart_ct.is_some() || row.body_ct.is_some();
        // No key for a message with nothing sealed: none is looked up (or needed).
        let key = if sealed {
            self.vault
                .existing_key(
                    &mut *self.raw,
                    &row.tenant_id,
                    message_subject(row.customer_id.as_deref()),
                )
                .await?
        } else {
            None
        };
        let open = |column, ct: &Option<Vec<u8>>| -> Result<Option<String>, StoreError> {
            match (ct, &key) {
                (Some(ct), Some(key)) => self
                    .vault
                    .open(key, message_place(&row.tenant_id, column, &row.id), ct)
                    .map(Some),
                _ => Ok(None),
            }
        };
        let counterpart = open("counterpart", &row.counterpart_ct)?
            .map(|p| Phone::parse_e164(&p).map_err(|e| corrupt("messages.counterpart", e)))
            .transpose()?;
        let body = open("body", &row.body_ct)?;
        Ok(Message {
            direction: Direction::parse(&row.direction)
                .ok_or_else(|| corrupt("messages.direction", &row.direction))?,
            channel: Channel::parse(&row.channel)
                .ok_or_else(|| corrupt("messages.channel", &row.channel))?,
            status: MessageStatus::parse(&row.status)
                .ok_or_else(|| corrupt("messages.status", &row.status))?,
            pii_erased: sealed && key.is_none(),
            tenant_id: row.tenant_id,
            id: row.id,
            customer_id: row.customer_id,
            appointment_id: row.appointment_id,
            purpose: row.purpose,
            counterpart,
            counterpart_index: row.counterpart_index,
            body,
            provider_ref: row.provider_ref,
            error_code: row.error_code,
            execution_id: row.execution_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    // ----- executions -----

    /// Queues an execution, its payload sealed under the data key of its subject (or of
    /// [`TENANT_SUBJECT`]) bound to `("executions", "payload", id)`. Returns the row as stored
    /// (`ready`, no attempt yet).
    pub async fn insert_execution(
        &mut self,
        e: &NewExecutionRecord<'_>,
    ) -> Result<ExecutionRow, StoreError> {
        let subject = e.subject_id.unwrap_or(TENANT_SUBJECT);
        let text = serde_json::to_string(e.payload)?;
        let payload_ct = self
            .seal(
                e.tenant_id,
                subject,
                EXECUTIONS,
                PAYLOAD,
                e.id,
                &text,
                e.now,
            )
            .await?;
        let at = micros(e.at);
        let row = ExecutionRow {
            id: e.id.to_owned(),
            tenant_id: e.tenant_id.to_owned(),
            correlation_id: e.correlation_id.to_owned(),
            command_type: e.command_type.to_owned(),
            subject_id: Some(subject.to_owned()),
            payload_ct,
            status: "ready".into(),
            attempt: 0,
            max_attempts: e.max_attempts,
            deferrals: 0,
            available_at: at,
            not_after: e.not_after.map(micros),
            lease_owner: None,
            lease_until: None,
            lease_id: None,
            workflow_id: e.workflow_id.map(str::to_owned),
            aggregate_id: e.aggregate_id.map(str::to_owned),
            last_error_code: None,
            last_error_message: None,
            provider_ref: None,
            output: None,
            created_at: at,
            updated_at: at,
        };
        self.raw.insert_execution(&row).await?;
        Ok(row)
    }

    /// An execution's payload, opened; `None` when its subject has been erased (the patient is
    /// gone, so is what was to be done for them). A ciphertext that does not open for this row
    /// (moved from another, tampered with) is [`StoreError::Corrupt`].
    pub async fn execution_payload(
        &mut self,
        row: &ExecutionRow,
    ) -> Result<Option<Value>, StoreError> {
        let subject = row.subject_id.as_deref().unwrap_or(TENANT_SUBJECT);
        let Some(text) = self
            .open(
                &row.tenant_id,
                subject,
                EXECUTIONS,
                PAYLOAD,
                &row.id,
                &row.payload_ct,
            )
            .await?
        else {
            return Ok(None);
        };
        // The parser's message could quote the payload: say only that it did not read.
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| corrupt("executions.payload_ct", "not a JSON document"))
    }

    // ----- events -----

    /// Appends an event (sealing its personal fields under the subject's key) and returns
    /// `(eventId, seq)`.
    pub async fn append_event(
        &mut self,
        event: NewEvent,
        recorded_at: DateTime<Utc>,
    ) -> Result<(String, i64), StoreError> {
        let event_id = crate::ids::new_id(aro_domain::ids::prefix::EVENT);
        let (pii_subject, pii_ct) = match &event.pii {
            // Nothing personal to seal (an erased patient's fields): no key is created for it.
            Some(pii) if !has_value(&pii.fields) => (None, None),
            Some(pii) => {
                let key = self
                    .vault
                    .key_for(
                        &mut *self.raw,
                        &event.tenant_id,
                        &pii.subject_id,
                        recorded_at,
                    )
                    .await?;
                let text = serde_json::to_string(&pii.fields)?;
                let ct = self.vault.seal(
                    &key,
                    Place {
                        tenant_id: &event.tenant_id,
                        table: "events",
                        column: "pii",
                        row_id: &event_id,
                    },
                    &text,
                )?;
                (Some(pii.subject_id.clone()), Some(ct))
            }
            None => (None, None),
        };
        let row = NewEventRow {
            event_id: event_id.clone(),
            tenant_id: event.tenant_id,
            event_type: event.event_type.as_str().to_owned(),
            aggregate_type: event.aggregate.kind,
            aggregate_id: event.aggregate.id,
            occurred_at: micros(event.occurred_at),
            recorded_at: micros(recorded_at),
            profile: event.profile,
            payload: event.payload,
            pii_subject,
            pii_ct,
            workflow_id: event.metadata.workflow_id,
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
        };
        let seq = self.raw.append_event(&row).await?;
        Ok((event_id, seq))
    }

    pub async fn events(&mut self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let rows = self.event_rows(query).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.event_from_row(row).await?);
        }
        Ok(out)
    }

    /// The events without their patient fields: nothing is decrypted and no data key is looked
    /// up, for readers that count rather than show (reports). The payloads carry
    /// `"piiOmitted": true` where patient fields were left out.
    pub async fn events_without_pii(
        &mut self,
        query: &EventQuery,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = self.event_rows(query).await?;
        Ok(rows
            .into_iter()
            .map(|mut row| {
                if row.pii_ct.is_some()
                    && let Value::Object(map) = &mut row.payload.0
                {
                    map.insert("piiOmitted".to_owned(), Value::Bool(true));
                }
                event_without_pii(row)
            })
            .collect())
    }

    async fn event_rows(&mut self, query: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        self.raw
            .events(&EventFilter {
                tenant_id: query.tenant_id.clone(),
                after: query.after,
                limit: i64::from(query.limit.clamp(1, 1000)),
                event_type: query.event_type.clone(),
                aggregate_id: query.aggregate_id.clone(),
            })
            .await
    }

    pub async fn seq_before_time(
        &mut self,
        tenant_id: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.raw.seq_before_time(tenant_id, micros(at)).await
    }

    pub async fn max_seq(&mut self) -> Result<i64, StoreError> {
        self.raw.max_seq().await
    }

    async fn event_from_row(&mut self, mut row: EventRow) -> Result<Event, StoreError> {
        let mut payload = std::mem::take(&mut row.payload.0);
        if let (Some(subject), Some(ct)) = (&row.pii_subject, &row.pii_ct) {
            match self
                .vault
                .existing_key(&mut *self.raw, &row.tenant_id, subject)
                .await?
            {
                Some(key) => {
                    let text = self.vault.open(
                        &key,
                        Place {
                            tenant_id: &row.tenant_id,
                            table: "events",
                            column: "pii",
                            row_id: &row.event_id,
                        },
                        ct,
                    )?;
                    let fields: Value = serde_json::from_str(&text)?;
                    merge(&mut payload, fields);
                }
                None => {
                    if let Value::Object(map) = &mut payload {
                        map.insert("piiErased".to_owned(), Value::Bool(true));
                    }
                }
            }
        }
        row.payload.0 = payload;
        Ok(event_without_pii(row))
    }
}

/// The event a row holds, its payload as stored (patient fields, if any, not merged in).
fn event_without_pii(row: EventRow) -> Event {
    Event {
        event_id: row.event_id,
        seq: row.seq,
        event_type: row.event_type,
        occurred_at: row.occurred_at,
        tenant_id: row.tenant_id,
        profile: row.profile,
        aggregate: AggregateRef {
            kind: row.aggregate_type,
            id: row.aggregate_id,
        },
        payload: row.payload.0,
        metadata: EventMetadata {
            workflow_id: row.workflow_id,
            correlation_id: row.correlation_id,
            causation_id: row.causation_id,
        },
    }
}

/// Whether a JSON value holds anything but nulls (and empty objects or arrays).
fn has_value(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(map) => map.values().any(has_value),
        Value::Array(items) => items.iter().any(has_value),
        _ => true,
    }
}

/// Deep-merges `extra` into `base` (objects merge key by key; anything else replaces).
fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

fn residency_str(r: ClassificationResidency) -> &'static str {
    match r {
        ClassificationResidency::CoreEngine => "core-engine",
        ClassificationResidency::OpenclawExecutor => "openclaw-executor",
    }
}

fn tenant_row(t: &Tenant) -> Result<TenantRow, StoreError> {
    Ok(TenantRow {
        id: t.id.as_str().to_owned(),
        name: t.name.clone(),
        zone: t.zone.name().to_owned(),
        region: t.region.as_str().to_owned(),
        clinic_phone: t.clinic_phone.as_ref().map(|p| p.as_str().to_owned()),
        review_link: t.review_link.clone(),
        default_language: t.default_language.as_str().to_owned(),
        classification_residency: residency_str(t.classification_residency).to_owned(),
        permissions: Json(serde_json::to_value(&t.permissions)?),
        config: Json(serde_json::to_value(&t.config)?),
        config_version: 0,
        created_at: micros(t.created_at),
        updated_at: micros(t.created_at),
    })
}

fn tenant_from_row(row: TenantRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::parse(&row.id).map_err(|e| corrupt("tenants.id", e))?,
        name: row.name,
        zone: Zone::parse(&row.zone).map_err(|e| corrupt("tenants.zone", e))?,
        region: Region::parse(&row.region).map_err(|e| corrupt("tenants.region", e))?,
        clinic_phone: row
            .clinic_phone
            .as_deref()
            .map(Phone::parse_e164)
            .transpose()
            .map_err(|e| corrupt("tenants.clinic_phone", e))?,
        review_link: row.review_link,
        default_language: Language::parse(&row.default_language)
            .map_err(|e| corrupt("tenants.default_language", e))?,
        classification_residency: match row.classification_residency.as_str() {
            "core-engine" => ClassificationResidency::CoreEngine,
            "openclaw-executor" => ClassificationResidency::OpenclawExecutor,
            other => return Err(corrupt("tenants.classification_residency", other)),
        },
        permissions: serde_json::from_value(row.permissions.0)?,
        config: serde_json::from_value::<TenantConfig>(row.config.0)?,
        created_at: row.created_at,
    })
}

fn appointment_row(a: &Appointment) -> AppointmentRow {
    AppointmentRow {
        tenant_id: a.tenant_id.as_str().to_owned(),
        id: a.id.as_str().to_owned(),
        customer_id: a.customer_id.as_str().to_owned(),
        source: a.source.clone(),
        external_id: a.external_id.clone(),
        status: a.status.as_str().to_owned(),
        starts_at: micros(a.starts_at),
        ends_at: micros(a.ends_at),
        service_type: a.service_type.clone(),
        price_minor: a.price.map(|p| p.minor),
        currency: a.price.map(|p| p.currency.as_str().to_owned()),
        zone: a.zone.map(|z| z.name().to_owned()),
        language: a.language.as_ref().map(|l| l.as_str().to_owned()),
        channel: a.channel.as_str().to_owned(),
        cancel_url: a.cancel_url.clone(),
        reschedule_url: a.reschedule_url.clone(),
        needs_contact: a.needs_contact,
        workflow_id: None,
        version: a.version,
        created_at: micros(a.created_at),
        updated_at: micros(a.updated_at),
    }
}

fn appointment_from_row(row: AppointmentRow) -> Result<Appointment, StoreError> {
    let price = match (row.price_minor, row.currency.as_deref()) {
        (Some(minor), Some(currency)) => Some(
            Money::new(
                minor,
                Currency::parse(currency).map_err(|e| corrupt("appointments.currency", e))?,
            )
            .map_err(|e| corrupt("appointments.price_minor", e))?,
        ),
        _ => None,
    };
    Ok(Appointment {
        id: BusinessId::parse(&row.id).map_err(|e| corrupt("appointments.id", e))?,
        tenant_id: TenantId::parse(&row.tenant_id)
            .map_err(|e| corrupt("appointments.tenant_id", e))?,
        customer_id: BusinessId::parse(&row.customer_id)
            .map_err(|e| corrupt("appointments.customer_id", e))?,
        source: row.source,
        external_id: row.external_id,
        status: AppointmentStatus::parse(&row.status)
            .ok_or_else(|| corrupt("appointments.status", &row.status))?,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        service_type: row.service_type,
        price,
        zone: row
            .zone
            .as_deref()
            .map(Zone::parse)
            .transpose()
            .map_err(|e| corrupt("appointments.zone", e))?,
        language: row
            .language
            .as_deref()
            .map(Language::parse)
            .transpose()
            .map_err(|e| corrupt("appointments.language", e))?,
        channel: Channel::parse(&row.channel)
            .ok_or_else(|| corrupt("appointments.channel", &row.channel))?,
        cancel_url: row.cancel_url,
        reschedule_url: row.reschedule_url,
        needs_contact: row.needs_contact,
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: row.version,
    })
}
