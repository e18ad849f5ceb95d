//! Id minting. Ids are time-ordered (UUIDv7) so they sort by creation and index well, with a
//! prefix that says what they name (`apt_…`, `cus_…`).

use aro_domain::BusinessId;

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub fn new_business_id(prefix: &str) -> BusinessId {
    BusinessId::parse(&new_id(prefix)).expect("a prefix and 32 hex digits make a valid business id")
}
