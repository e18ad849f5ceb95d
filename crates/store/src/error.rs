//! Storage errors, classified so callers know whether to retry.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write (the caller raced another writer).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database is busy, restarting or unreachable; the same call may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data that cannot be read back (a ciphertext that does not authenticate, a value
    /// that is not what the schema promises).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// The engine's settings could lose committed writes and no override was given.
    #[error("unsafe durability settings: {0}")]
    UnsafeDurability(String),
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return Self::Conflict(db.message().to_owned());
                }
                // SQLite busy/locked, PostgreSQL serialization failure / deadlock / shutdown.
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if matches!(
                    code.as_str(),
                    "5" | "6" | "517" | "40001" | "40P01" | "57P01" | "57P03"
                ) {
                    return Self::Unavailable(db.message().to_owned());
                }
                Self::Database(db.message().to_owned())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Self::Corrupt(e.to_string())
            }
            _ => Self::Database(e.to_string()),
        }
    }
}

impl From<aro_security::crypto::CryptoError> for StoreError {
    fn from(e: aro_security::crypto::CryptoError) -> Self {
        Self::Corrupt(format!("ciphertext: {e}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(format!("json: {e}"))
    }
}
