//! Associated data that binds a ciphertext to the exact cell it was written for.
//!
//! AES-GCM authenticates the associated data along with the ciphertext without storing it, so
//! the reader must supply the same tenant, table, column and row id it was written with. A
//! ciphertext moved elsewhere (by a bug, a bad restore, or an attacker with write access to the
//! database) then fails to decrypt.

/// The cell a ciphertext belongs to: tenant, table, column and row id.
///
/// Encoded unambiguously (a label, then each field as an 8-byte big-endian length followed by its
/// bytes), so `("ab", "c")` and `("a", "bc")` never produce the same associated data.
///
/// The fields are identifiers, never patient data, so `Debug` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad {
    encoded: Vec<u8>,
}

/// Separates our associated data from any other use of the same key and allows a later format.
const LABEL: &[u8] = b"aro-aad-v1";

impl Aad {
    /// Associated data for the value stored in `table.column` of row `row_id` of `tenant_id`.
    ///
    /// For values inside event payloads, use the event's table and a column naming the payload
    /// field (e.g. `"payload.phone"`), with the event id as the row id.
    pub fn new(tenant_id: &str, table: &str, column: &str, row_id: &str) -> Self {
        let fields = [tenant_id, table, column, row_id];
        let capacity = LABEL.len() + fields.iter().map(|f| 8 + f.len()).sum::<usize>();
        let mut encoded = Vec::with_capacity(capacity);
        encoded.extend_from_slice(LABEL);
        for field in fields {
            push_field(&mut encoded, field.as_bytes());
        }
        Self { encoded }
    }

    /// The encoded bytes passed to AES-GCM.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }
}

/// Appends `bytes` prefixed with its length, so field boundaries cannot be moved.
pub(super) fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize is at most 64 bits on every platform Rust supports, so this never truncates.
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_a_boundary_between_fields_changes_the_encoding() {
        let a = Aad::new("ab", "c", "d", "e");
        let b = Aad::new("a", "bc", "d", "e");
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn separator_like_characters_cannot_forge_another_cell() {
        // A naive "tenant|table|column|row" join would make these equal.
        let a = Aad::new("t|customers", "phone", "1", "x");
        let b = Aad::new("t", "customers|phone", "1", "x");
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn same_cell_gives_same_encoding() {
        assert_eq!(
            Aad::new("default", "customers", "phone", "42"),
            Aad::new("default", "customers", "phone", "42")
        );
    }
}
