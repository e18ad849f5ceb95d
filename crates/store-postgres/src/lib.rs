//! PostgreSQL storage for installs that outgrow one machine.
