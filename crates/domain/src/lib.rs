//! ARO's vocabulary, kept pure so every service and every test can share it without pulling in
//! I/O: validated values (phone numbers, zones, money), the entities core-engine stores, the
//! appointment and workflow state machines, the event catalogue, and the tenant's policies and
//! message templates. Nothing in here reads a clock, a file or the network.

pub mod appointment;
pub mod credentials;
pub mod customer;
pub mod event;
pub mod ids;
pub mod message;
pub mod policy;
pub mod template;
pub mod tenant;
pub mod values;
pub mod workflow;

pub use appointment::{Appointment, AppointmentStatus, TransitionError};
pub use customer::Customer;
pub use event::{EventType, UnknownEventType};
pub use ids::{BusinessId, IdError};
pub use message::{Channel, Direction, MessageStatus};
pub use policy::{Policies, SendWindow};
pub use template::{Template, TemplateError, TemplateSet};
pub use tenant::{ClassificationResidency, Tenant, TenantConfig};
pub use values::{Currency, Email, Language, Money, Phone, Region, ValueError, Zone};
pub use workflow::{WorkflowState, WorkflowTransitionError};
