//! The installation's master key and its file.
//!
//! The master key never encrypts patient data itself: it wraps the per-patient data keys and
//! derives the blind-index key. It is kept in a file outside the database (DESIGN.md
//! `[auth] master_key_file`), so a copy of the database alone reveals nothing.
//!
//! # File format
//!
//! One line of ASCII text, fields separated by single spaces, optionally ending in a newline:
//!
//! ```text
//! aro-master-key v1 <key-id> <base64 key>
//! ```
//!
//! - `aro-master-key` identifies the file, `v1` its format;
//! - `<key-id>` is 8 lower-case hex characters: the first 4 bytes of SHA-256 of the key. It is
//!   recorded in every wrapped data key so that a later key rotation can tell which master key
//!   wrapped what, and it is checked on load to catch a damaged file;
//! - `<base64 key>` is the 32-byte key in standard base64 with padding (44 characters).
//!
//! The file must be readable by its owner only (mode 0600); [`MasterKey::load`] refuses anything
//! looser, like `ssh` does for private keys.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::random_bytes;

/// First word of a master key file.
const MAGIC: &str = "aro-master-key";
/// Format version written and accepted.
const FORMAT_VERSION: &str = "v1";
/// Master keys are AES-256 / HMAC-SHA256 keys.
const KEY_LEN: usize = 32;
/// A valid file is one short line; anything much bigger is not a key file.
const MAX_FILE_LEN: u64 = 1024;

/// Short public identifier of a master key (4 bytes, shown as 8 hex characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    fn of(key: &[u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0_u8; 4];
        for (dst, src) in id.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        Self(id)
    }

    /// The raw 4 bytes, as recorded in wrapped data keys.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0
    }

    /// Rebuilds an id from the 4 bytes recorded in a wrapped data key.
    pub fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// Parses the 8 lower- or upper-case hex characters of the key file.
    pub fn parse_hex(text: &str) -> Option<Self> {
        let mut id = [0_u8; 4];
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a master key file could not be created or loaded. Messages name the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// `create_file` never overwrites: an existing key may be the only way to read the data.
    #[error(
        "master key file {} already exists; refusing to overwrite it (it may be the only key that can read your data)",
        path.display()
    )]
    AlreadyExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// The file is readable or writable by group or others.
    #[error(
        "master key file {} has permissions {mode:04o}, which let other users read it; run `chmod 600 {}` and start again",
        path.display(),
        path.display()
    )]
    LoosePermissions {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file exists but does not hold a valid master key.
    #[error("master key file {} is not a valid master key file: {reason}", path.display())]
    Malformed {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it (never includes key material).
        reason: &'static str,
    },
    /// Reading or writing the file failed.
    #[error("master key file {}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The installation's 32-byte master key. Zeroized on drop; `Debug` shows only its [`KeyId`].
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> Self {
        Self::from_bytes(random_bytes())
    }

    /// A master key from raw bytes (e.g. for tests or an external secret store).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let bytes = Zeroizing::new(bytes);
        let id = KeyId::of(&bytes);
        Self { bytes, id }
    }

    /// The key's public identifier.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(super) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// Generates a key and writes it to a NEW file at `path` with mode 0600.
    ///
    /// Fails with [`MasterKeyError::AlreadyExists`] rather than replace an existing file. The
    /// file is created with its final permissions (no window where it is world-readable) and
    /// flushed to disk before returning.
    pub fn create_file(path: &Path) -> Result<Self, MasterKeyError> {
        let key = Self::generate();
        let io_err = |source| MasterKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                MasterKeyError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                io_err(source)
            }
        })?;
        let line = key.file_line();
        file.write_all(line.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(key)
    }

    /// Loads the key from `path`, refusing a file readable by group or others, a file that is
    /// not in the format above, and a file whose recorded key id does not match its key.
    pub fn load(path: &Path) -> Result<Self, MasterKeyError> {
        use std::io::Read;

        let io_err = |source| MasterKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let malformed = |reason| MasterKeyError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        // Permissions are checked on the opened file, so they are those of what we read.
        let metadata = file.metadata().map_err(io_err)?;
        if !metadata.is_file() {
            return Err(malformed("not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(MasterKeyError::LoosePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut raw = Zeroizing::new(Vec::new());
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut raw)
            .map_err(io_err)?;
        if raw.len() as u64 > MAX_FILE_LEN {
            return Err(malformed("file is too large to be a master key file"));
        }
        Self::parse_line(&raw).map_err(malformed)
    }

    /// The single line written to the key file (it contains the key: never log it).
    fn file_line(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{MAGIC} {FORMAT_VERSION} {} {}\n",
            self.id,
            BASE64.encode(self.bytes.as_slice())
        ))
    }

    fn parse_line(raw: &[u8]) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(raw).map_err(|_| "file is not text")?;
        let line = text
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(text);
        let mut fields = line.split(' ');
        let (Some(magic), Some(version), Some(id), Some(key), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err("expected one line `aro-master-key v1 <key-id> <base64 key>`");
        };
        if magic != MAGIC {
            return Err("it does not start with `aro-master-key`");
        }
        if version != FORMAT_VERSION {
            return Err("unsupported format version (expected v1)");
        }
        let recorded_id = KeyId::parse_hex(id).ok_or("key id is not 8 hex characters")?;
        let decoded = Zeroizing::new(BASE64.decode(key).map_err(|_| "key is not valid base64")?);
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| "key is not 32 bytes long")?;
        let master = Self::from_bytes(bytes);
        if master.id != recorded_id {
            return Err("key id does not match the key (the file is damaged)");
        }
        Ok(master)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_line_parses_back_to_the_same_key() {
        let key = MasterKey::generate();
        let line = key.file_line();
        let parsed = MasterKey::parse_line(line.as_bytes()).unwrap();
        assert_eq!(parsed.as_bytes(), key.as_bytes());
        assert_eq!(parsed.id(), key.id());
    }

    #[test]
    fn key_id_is_the_start_of_the_sha256_of_the_key() {
        let key = MasterKey::from_bytes([7; 32]);
        let digest = hex::encode(Sha256::digest([7_u8; 32]));
        assert_eq!(key.id().to_string(), digest[..8]);
    }

    #[test]
    fn parse_rejects_each_kind_of_damage() {
        // A fixed key, so every replacement below is known to hit its target.
        let key = MasterKey::from_bytes([7; 32]);
        let good = key.file_line().to_string();
        let encoded = BASE64.encode(key.as_bytes());
        let cases = [
            String::new(),
            "aro-master-key v1".to_owned(),
            good.replace(MAGIC, "other-key"),
            good.replace(" v1 ", " v2 "),
            good.replace(&key.id().to_string(), "zzzzzzzz"),
            good.replace(&key.id().to_string(), "00000000"),
            good.replace(&encoded, "not base64!"),
            good.replace(&encoded, &BASE64.encode([1_u8; 16])),
            format!("{} extra\n", good.trim_end()),
            format!("{good}{good}"),
        ];
        for case in cases {
            assert_ne!(case, good, "a damage case left the line unchanged");
            assert!(
                MasterKey::parse_line(case.as_bytes()).is_err(),
                "accepted {case:?}"
            );
        }
    }

    #[test]
    fn parse_accepts_missing_or_crlf_line_ending() {
        let key = MasterKey::generate();
        let good = key.file_line().to_string();
        let bare = good.trim_end();
        assert!(MasterKey::parse_line(bare.as_bytes()).is_ok());
        assert!(MasterKey::parse_line(format!("{bare}\r\n").as_bytes()).is_ok());
    }
}
