//! The storage contract: one trait, records and errors, implemented once per engine.
