//! Reading the pack's TOML files into core's `TenantConfig`, with errors that name the file and
//! the key. The files use the API's own key names, so one table merge (clinic over pack) and one
//! typed deserialisation give exactly what `tenant.update_config` carries.

use super::{PackError, PackSource, rules};
use aro_domain::ids::TenantId;
use aro_domain::{Language, TenantConfig};
use aro_replies::ReplyCodes;
use std::collections::BTreeMap;
use toml::{Table, Value};

pub(super) struct Loaded {
    pub id: String,
    pub version: String,
    pub base: TenantConfig,
    pub clinics: BTreeMap<String, TenantConfig>,
}

/// Keys a clinic's table in `clinics.toml` may change.
const CLINIC_KEYS: &[&str] = &[
    "bookingLink",
    "policies",
    "replyCodes",
    "mappings",
    "placeholderLimits",
    "templates",
];

pub(super) fn load(source: &PackSource<'_>) -> Result<Loaded, PackError> {
    let mut manifest = parse_table("pack.toml", source.manifest)?;
    let id = take_string(&mut manifest, "id")?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(PackError::new(
            "pack.toml",
            "id",
            "lower-case letters, digits and '-' only",
        ));
    }
    let version = take_string(&mut manifest, "version")?;
    if !is_semver(&version) {
        return Err(PackError::new(
            "pack.toml",
            "version",
            "a semantic version such as 1.2.0",
        ));
    }
    if manifest.contains_key("templates") {
        return Err(PackError::new(
            "pack.toml",
            "templates",
            "templates live in templates/<language>.toml, one file per language",
        ));
    }
    let mut templates = Table::new();
    for (language, text) in source.templates {
        let file = format!("templates/{language}.toml");
        if Language::parse(language)
            .map(|l| l.as_str() != *language)
            .unwrap_or(true)
        {
            return Err(PackError::new(
                file,
                "",
                "the file name must be a two-letter lower-case language code (en.toml, es.toml)",
            ));
        }
        let table = parse_table(&file, text)?;
        if let Some((name, _)) = table.iter().find(|(_, v)| !v.is_str()) {
            return Err(PackError::new(&file, name, "a template is a string"));
        }
        templates.insert((*language).to_owned(), Value::Table(table));
    }
    manifest.insert("templates".into(), Value::Table(templates));

    let base = to_config(manifest.clone(), locate_in_pack)?;
    require_every_policy(&manifest)?;
    check(&base, &locate_in_pack)?;

    let mut clinics = BTreeMap::new();
    for (tenant, overlay) in parse_table("clinics.toml", source.clinics)? {
        let here = |path: &str| {
            (
                "clinics.toml".to_owned(),
                if path.is_empty() {
                    tenant.clone()
                } else {
                    format!("{tenant}.{path}")
                },
            )
        };
        if TenantId::parse(&tenant).is_err() {
            return Err(PackError::new(
                "clinics.toml",
                &tenant,
                "a table per tenant id (lower-case letters, digits, '-' and '_')",
            ));
        }
        let Value::Table(overlay) = overlay else {
            return Err(PackError::new(
                "clinics.toml",
                &tenant,
                "must be a table: [tenant-id]",
            ));
        };
        if let Some(key) = overlay.keys().find(|k| !CLINIC_KEYS.contains(&k.as_str())) {
            let (file, field) = here(key);
            return Err(PackError::new(
                file,
                field,
                format!("a clinic may change only {}", CLINIC_KEYS.join(", ")),
            ));
        }
        let mut merged = manifest.clone();
        merge(&mut merged, overlay);
        let config = to_config(merged, here)?;
        check(&config, &here)?;
        clinics.insert(tenant, config);
    }
    Ok(Loaded {
        id,
        version,
        base,
        clinics,
    })
}

fn parse_table(file: &str, text: &str) -> Result<Table, PackError> {
    text.parse::<Table>().map_err(|e| {
        let field = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].lines().count().max(1);
                format!("line {line}")
            })
            .unwrap_or_default();
        PackError::new(file, field, e.message().to_owned())
    })
}

fn take_string(table: &mut Table, key: &str) -> Result<String, PackError> {
    match table.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(PackError::new("pack.toml", key, "must be a string")),
        None => Err(PackError::new("pack.toml", key, "missing")),
    }
}

/// The pack states every policy, so a reader sees every number in one place and a policy the
/// domain adds later is a decision, not a silent default.
fn require_every_policy(manifest: &Table) -> Result<(), PackError> {
    let stated = manifest.get("policies").and_then(Value::as_table);
    let all = serde_json::to_value(aro_domain::Policies::default()).unwrap_or_default();
    let Some(all) = all.as_object() else {
        return Ok(());
    };
    for key in all.keys() {
        if !stated.is_some_and(|t| t.contains_key(key)) {
            return Err(PackError::new(
                "pack.toml",
                format!("policies.{key}"),
                "missing: the pack states every policy",
            ));
        }
    }
    Ok(())
}

/// Which file a key path of the merged pack came from.
fn locate_in_pack(path: &str) -> (String, String) {
    let mut parts = path.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("templates"), Some(language), rest) => (
            format!("templates/{language}.toml"),
            rest.unwrap_or_default().to_owned(),
        ),
        _ => ("pack.toml".to_owned(), path.to_owned()),
    }
}

fn to_config(
    table: Table,
    locate: impl Fn(&str) -> (String, String),
) -> Result<TenantConfig, PackError> {
    serde_path_to_error::deserialize::<_, TenantConfig>(Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let (file, field) = locate(&path);
        PackError::new(file, field, e.into_inner().message().to_owned())
    })
}

/// The domain's checks, the classifier's reply-code rules, then the profile's own rules.
fn check(
    config: &TenantConfig,
    locate: &dyn Fn(&str) -> (String, String),
) -> Result<(), PackError> {
    config.validate().map_err(|e| {
        let (file, field) = locate(&e.field);
        PackError::new(file, field, e.reason)
    })?;
    let (file, prefix) = locate("replyCodes");
    let codes = reply_codes(config, &file, &prefix)?;
    rules::check(config, &codes).map_err(|v| {
        let (file, field) = locate(&v.field);
        PackError::new(file, field, v.reason)
    })
}

/// The configuration's reply codes, validated as core will validate them.
pub(super) fn reply_codes(
    config: &TenantConfig,
    file: &str,
    field: &str,
) -> Result<ReplyCodes, PackError> {
    let field = if field.is_empty() {
        "replyCodes"
    } else {
        field
    };
    let codes: ReplyCodes = serde_json::to_value(&config.reply_codes)
        .and_then(serde_json::from_value)
        .map_err(|e| PackError::new(file, field, e.to_string()))?;
    codes
        .validate()
        .map_err(|e| PackError::new(file, field, e.to_string()))?;
    Ok(codes)
}

/// Merges `overlay` into `base`: tables key by key, anything else replaces.
fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `MAJOR.MINOR.PATCH` with an optional `-pre` part, numbers without leading zeros.
fn is_semver(raw: &str) -> bool {
    let core = raw.split_once(['-', '+']).map_or(raw, |(c, _)| c);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_semantic() {
        for ok in ["1.0.0", "0.3.12", "2.0.0-rc.1"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.0", "v1.0.0", "1.02.0", "1..0", ""] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn clinic_tables_merge_key_by_key() {
        let mut base: Table = "[a]\nx = 1\ny = [1, 2]\n[b]\nz = 'k'"
            .parse()
            .unwrap_or_default();
        let overlay: Table = "[a]\ny = [3]\n[c]\nw = true".parse().unwrap_or_default();
        merge(&mut base, overlay);
        let expected: Table = "[a]\nx = 1\ny = [3]\n[b]\nz = 'k'\n[c]\nw = true"
            .parse()
            .unwrap_or_default();
        assert_eq!(base, expected);
    }

    #[test]
    fn pack_paths_name_their_file() {
        assert_eq!(
            locate_in_pack("templates.es.reminder_48h"),
            ("templates/es.toml".into(), "reminder_48h".into())
        );
        assert_eq!(
            locate_in_pack("policies.sendWindow"),
            ("pack.toml".into(), "policies.sendWindow".into())
        );
    }
}
