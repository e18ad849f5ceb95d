//! The one typed configuration file (aro.toml) with environment overrides, validated at start.
