//! Encryption at rest: round trips, binding to the cell, tampering, key wrapping, blind
//! indexes and the master key file.

use aro_security::crypto::{Aad, CryptoError, Keyring, MasterKey, MasterKeyError};
use proptest::prelude::*;

fn keyring() -> Keyring {
    Keyring::new(MasterKey::generate())
}

fn phone_cell(tenant: &str, row: &str) -> Aad {
    Aad::new(tenant, "customers", "phone", row)
}

#[test]
fn encrypted_text_round_trips_for_the_same_cell() {
    let key = keyring().new_data_key();
    let aad = phone_cell("default", "cus_1");
    let blob = key.encrypt_str("+15551234567", &aad).unwrap();
    assert_eq!(key.decrypt_str(&blob, &aad).unwrap(), "+15551234567");
    assert!(!blob.windows(12).any(|w| w == b"+15551234567"));
    assert_eq!(blob.len(), 1 + 12 + "+15551234567".len() + 16);
    assert_eq!(blob[0], 1, "format version byte");
}

#[test]
fn empty_plaintext_round_trips() {
    let key = keyring().new_data_key();
    let aad = phone_cell("default", "cus_1");
    let blob = key.encrypt(b"", &aad).unwrap();
    assert_eq!(key.decrypt(&blob, &aad).unwrap(), b"");
}

#[test]
fn encrypting_twice_gives_different_ciphertexts() {
    let key = keyring().new_data_key();
    let aad = phone_cell("default", "cus_1");
    assert_ne!(
        key.encrypt(b"Ada", &aad).unwrap(),
        key.encrypt(b"Ada", &aad).unwrap()
    );
}

#[test]
fn ciphertext_moved_to_another_row_column_table_or_tenant_fails() {
    let key = keyring().new_data_key();
    let written = Aad::new("default", "customers", "phone", "cus_1");
    let blob = key.encrypt(b"+15551234567", &written).unwrap();
    let elsewhere = [
        Aad::new("default", "customers", "phone", "cus_2"),
        Aad::new("default", "customers", "email", "cus_1"),
        Aad::new("default", "messages", "phone", "cus_1"),
        Aad::new("north", "customers", "phone", "cus_1"),
    ];
    for aad in elsewhere {
        assert_eq!(
            key.decrypt(&blob, &aad),
            Err(CryptoError::Authentication),
            "{aad:?}"
        );
    }
}

#[test]
fn another_patients_key_cannot_decrypt() {
    let ring = keyring();
    let aad = phone_cell("default", "cus_1");
    let blob = ring.new_data_key().encrypt(b"Ada", &aad).unwrap();
    assert_eq!(
        ring.new_data_key().decrypt(&blob, &aad),
        Err(CryptoError::Authentication)
    );
}

#[test]
fn every_tampered_byte_is_detected() {
    let key = keyring().new_data_key();
    let aad = phone_cell("default", "cus_1");
    let blob = key.encrypt(b"Ada Lovelace", &aad).unwrap();
    for i in 0..blob.len() {
        let mut tampered = blob.clone();
        tampered[i] ^= 0x01;
        assert!(
            key.decrypt(&tampered, &aad).is_err(),
            "flip at byte {i} accepted"
        );
    }
}

#[test]
fn short_input_and_unknown_version_are_errors() {
    let key = keyring().new_data_key();
    let aad = phone_cell("default", "cus_1");
    assert_eq!(
        key.decrypt(&[], &aad),
        Err(CryptoError::TooShort { len: 0, min: 29 })
    );
    assert_eq!(
        key.decrypt(&[1; 28], &aad),
        Err(CryptoError::TooShort { len: 28, min: 29 })
    );
    let mut blob = key.encrypt(b"Ada", &aad).unwrap();
    blob[0] = 2;
    assert_eq!(
        key.decrypt(&blob, &aad),
        Err(CryptoError::UnsupportedVersion(2))
    );
    let truncated = key.encrypt(b"Ada", &aad).unwrap();
    assert!(
        key.decrypt(&truncated[..truncated.len() - 1], &aad)
            .is_err()
    );
}

#[test]
fn non_utf8_plaintext_is_refused_as_text() {
    let key = keyring().new_data_key();
    let aad = phone_cell("default", "cus_1");
    let blob = key.encrypt(&[0xff, 0xfe], &aad).unwrap();
    assert_eq!(key.decrypt_str(&blob, &aad), Err(CryptoError::InvalidUtf8));
}

#[test]
fn wrapped_data_key_round_trips_and_still_decrypts() {
    let ring = keyring();
    let key = ring.new_data_key();
    let row = Aad::new("default", "customers", "data_key", "cus_1");
    let blob = key
        .encrypt(b"Ada", &phone_cell("default", "cus_1"))
        .unwrap();
    let wrapped = ring.wrap(&key, &row).unwrap();
    assert_eq!(wrapped.len(), 65);
    assert_eq!(&wrapped[1..5], ring.master_key_id().to_bytes().as_slice());
    let unwrapped = ring.unwrap(&wrapped, &row).unwrap();
    assert_eq!(
        unwrapped
            .decrypt(&blob, &phone_cell("default", "cus_1"))
            .unwrap(),
        b"Ada"
    );
}

#[test]
fn wrapped_key_for_another_row_or_tenant_fails() {
    let ring = keyring();
    let wrapped = ring
        .wrap(
            &ring.new_data_key(),
            &Aad::new("default", "customers", "data_key", "cus_1"),
        )
        .unwrap();
    for aad in [
        Aad::new("default", "customers", "data_key", "cus_2"),
        Aad::new("north", "customers", "data_key", "cus_1"),
    ] {
        assert_eq!(
            ring.unwrap(&wrapped, &aad).map(|_| ()),
            Err(CryptoError::Authentication)
        );
    }
}

#[test]
fn wrapped_key_is_bound_to_its_master_key() {
    let row = Aad::new("default", "customers", "data_key", "cus_1");
    let first = keyring();
    let second = keyring();
    let wrapped = first.wrap(&first.new_data_key(), &row).unwrap();
    assert_eq!(
        second.unwrap(&wrapped, &row).map(|_| ()),
        Err(CryptoError::UnknownMasterKey {
            wrapped_with: first.master_key_id(),
            holds: second.master_key_id(),
        })
    );
    // Rewriting the recorded id to the other key's does not get past authentication.
    let mut relabelled = wrapped.clone();
    relabelled[1..5].copy_from_slice(&second.master_key_id().to_bytes());
    assert_eq!(
        second.unwrap(&relabelled, &row).map(|_| ()),
        Err(CryptoError::Authentication)
    );
}

#[test]
fn same_master_key_in_two_keyrings_interoperates() {
    let bytes = [42_u8; 32];
    let a = Keyring::new(MasterKey::from_bytes(bytes));
    let b = Keyring::new(MasterKey::from_bytes(bytes));
    let row = Aad::new("default", "customers", "data_key", "cus_1");
    let wrapped = a.wrap(&a.new_data_key(), &row).unwrap();
    assert!(b.unwrap(&wrapped, &row).is_ok());
    assert_eq!(
        a.blind_index("default", "+15551234567"),
        b.blind_index("default", "+15551234567")
    );
}

#[test]
fn blind_index_is_stable_and_separates_tenants_and_values() {
    let ring = keyring();
    let index = ring.blind_index("default", "+15551234567");
    assert_eq!(index, ring.clone().blind_index("default", "+15551234567"));
    assert_eq!(index.len(), 64);
    assert!(
        index
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_ne!(index, ring.blind_index("north", "+15551234567"));
    assert_ne!(index, ring.blind_index("default", "+15551234568"));
    // Moving characters between the tenant id and the value must not collide.
    assert_ne!(ring.blind_index("ab", "c"), ring.blind_index("a", "bc"));
}

#[test]
fn blind_index_depends_on_the_master_key() {
    assert_ne!(
        keyring().blind_index("default", "+15551234567"),
        keyring().blind_index("default", "+15551234567")
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let bytes = [0xab_u8; 32];
    let master = MasterKey::from_bytes(bytes);
    let id = master.id().to_string();
    let master_debug = format!("{master:?}");
    let ring = Keyring::new(master);
    let data_key = ring.new_data_key();
    for text in [master_debug, format!("{ring:?}"), format!("{data_key:?}")] {
        assert!(!text.contains("171"), "{text}");
        assert!(!text.to_lowercase().contains("abab"), "{text}");
        assert!(!text.contains("q6ur"), "{text}");
    }
    assert!(format!("{ring:?}").contains(&id));
}

// ---------------------------------------------------------------- master key file

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn created_key_file_loads_back_to_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let created = MasterKey::create_file(&path).unwrap();
    #[cfg(unix)]
    assert_eq!(mode_of(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let fields: Vec<&str> = text.trim_end().split(' ').collect();
    assert_eq!(fields.len(), 4);
    assert_eq!(fields[0], "aro-master-key");
    assert_eq!(fields[1], "v1");
    assert_eq!(fields[2], created.id().to_string());
    assert_eq!(fields[3].len(), 44);
    let loaded = MasterKey::load(&path).unwrap();
    assert_eq!(loaded.id(), created.id());
    // Same key, proven by function rather than by exposing bytes.
    let row = Aad::new("default", "customers", "data_key", "cus_1");
    let (a, b) = (Keyring::new(created), Keyring::new(loaded));
    assert!(
        b.unwrap(&a.wrap(&a.new_data_key(), &row).unwrap(), &row)
            .is_ok()
    );
}

#[test]
fn existing_key_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let first = MasterKey::create_file(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        MasterKey::create_file(&path),
        Err(MasterKeyError::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(MasterKey::load(&path).unwrap().id(), first.id());
}

#[cfg(unix)]
#[test]
fn key_file_readable_by_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    MasterKey::create_file(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = MasterKey::load(&path).unwrap_err();
        assert!(
            matches!(err, MasterKeyError::LoosePermissions { .. }),
            "{mode:o}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(MasterKey::load(&path).is_ok());
}

#[test]
fn malformed_key_files_are_refused_readably() {
    let dir = tempfile::tempdir().unwrap();
    let contents: [&[u8]; 5] = [
        b"",
        b"hello world\n",
        b"aro-master-key v1 00000000 AAAA\n",
        b"aro-master-key v9 00000000 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        &[0xff, 0xfe, 0x00],
    ];
    for (i, content) in contents.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.key"));
        write_private(&path, content);
        let err = MasterKey::load(&path).unwrap_err();
        assert!(
            matches!(err, MasterKeyError::Malformed { .. }),
            "case {i}: {err}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("not a valid master key file"), "{message}");
    }
}

#[test]
fn key_file_whose_id_does_not_match_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let key = MasterKey::create_file(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let wrong_id = if key.id().to_string() == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let damaged = text.replacen(&key.id().to_string(), wrong_id, 1);
    std::fs::remove_file(&path).unwrap();
    write_private(&path, damaged.as_bytes());
    assert!(matches!(
        MasterKey::load(&path),
        Err(MasterKeyError::Malformed { .. })
    ));
}

#[test]
fn missing_key_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.key");
    let err = MasterKey::load(&path).unwrap_err();
    assert!(matches!(err, MasterKeyError::Io { .. }));
    assert!(err.to_string().contains(&path.display().to_string()));
}

fn write_private(path: &std::path::Path, content: &[u8]) {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).unwrap().write_all(content).unwrap();
}

// ---------------------------------------------------------------- properties

proptest! {
    #[test]
    fn decrypting_arbitrary_bytes_is_an_error_not_a_panic(
        blob in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let ring = keyring();
        let aad = phone_cell("default", "cus_1");
        prop_assert!(ring.new_data_key().decrypt(&blob, &aad).is_err());
        prop_assert!(ring.unwrap(&blob, &aad).is_err());
    }

    #[test]
    fn any_plaintext_round_trips_and_any_prefix_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        cut in any::<prop::sample::Index>(),
    ) {
        let key = keyring().new_data_key();
        let aad = phone_cell("default", "cus_1");
        let blob = key.encrypt(&plaintext, &aad).unwrap();
        prop_assert_eq!(key.decrypt(&blob, &aad).unwrap(), plaintext);
        let prefix = &blob[..cut.index(blob.len())];
        prop_assert!(key.decrypt(prefix, &aad).is_err());
    }

    #[test]
    fn different_cells_never_share_associated_data(
        a in proptest::collection::vec("[a-c|:]{0,3}", 4),
        b in proptest::collection::vec("[a-c|:]{0,3}", 4),
    ) {
        let aad_a = Aad::new(&a[0], &a[1], &a[2], &a[3]);
        let aad_b = Aad::new(&b[0], &b[1], &b[2], &b[3]);
        prop_assert_eq!(a == b, aad_a == aad_b);
    }
}
