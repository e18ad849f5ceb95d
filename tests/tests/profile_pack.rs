//! The healthcare profile pack: its files load and pass every rule (one SMS segment per text in
//! English and Spanish, reminders that ask for the reply codes and never for CANCEL, valid reply
//! codes), a broken pack is refused naming the file and field, and the BFF installs it into
//! every tenant of core — once, idempotently, also when core starts after the BFF — so that the
//! engine renders reminders with the pack's words.

use aro_domain::TenantConfig;
use aro_domain::template::{
    Encoding, Placeholder, PlaceholderLimits, Template, TemplateSet, TemplateValues,
};
use aro_profile_backend_healthcare::install::{InstallSchedule, Installer, TenantState};
use aro_profile_backend_healthcare::pack::rules::{
    self, ENGINE_TEMPLATES, NAMEABLE_KEYWORDS, RESERVED_KEYWORDS, SHORT_SUFFIX,
};
use aro_profile_backend_healthcare::pack::{PackError, PackSource, ProfilePack, ReplyCodes};
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use aro_tests::*;
use chrono::{DateTime, Duration as Days, NaiveTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The pack's files

fn pack() -> ProfilePack {
    ProfilePack::builtin().unwrap_or_else(|e| panic!("the built-in pack must load: {e}"))
}

#[test]
fn the_builtin_pack_loads_and_every_file_parses() {
    // Loading reads every embedded file: pack.toml, templates/en.toml, templates/es.toml and
    // clinics.toml.
    let source = PackSource::builtin();
    let languages: Vec<&str> = source.templates.iter().map(|(l, _)| *l).collect();
    assert_eq!(languages, ["en", "es"]);
    let pack = pack();
    assert_eq!(pack.id(), "healthcare");
    let parts: Vec<&str> = pack.version().split('.').collect();
    assert_eq!(parts.len(), 3, "semver: {}", pack.version());
    let config = pack.config();
    // DESIGN.md's numbers.
    assert_eq!(config.policies.reminder_offsets_hours, vec![48, 24]);
    assert_eq!(config.policies.send_window.start.to_string(), "08:00");
    assert_eq!(config.policies.send_window.end.to_string(), "21:00");
    assert_eq!(config.policies.max_messages_per24h, 3);
    assert_eq!(config.policies.classification_threshold, 0.7);
    assert_eq!(config.policies.correction_window_hours, 72);
    config.validate().expect("core accepts the configuration");
    let languages: Vec<&String> = config.templates.keys().collect();
    assert_eq!(languages, ["en", "es"]);
    for key in [
        "checkup",
        "cleaning",
        "consultation",
        "Initial consultation",
    ] {
        let m = &config.mappings.event_types[key];
        assert!(m.price_minor.is_some() && m.currency.is_some(), "{key}");
    }
}

fn values_at_max(limits: &PlaceholderLimits) -> TemplateValues {
    let mut v = TemplateValues::new();
    for p in Placeholder::ALL {
        v.set(p, "x".repeat(limits.max_len(p)));
    }
    v
}

#[test]
fn every_template_fits_one_sms_segment_at_its_placeholders_maximum_lengths() {
    let pack = pack();
    let config = pack.config();
    let limits = config.placeholder_limits.clone().unwrap_or_default();
    for (language, templates) in &config.templates {
        for (name, source) in templates {
            let template =
                Template::parse(source).unwrap_or_else(|e| panic!("{language}.{name}: {e}"));
            template
                .check_fits_one_segment(&limits)
                .unwrap_or_else(|e| panic!("{language}.{name}: {e}"));
            // GSM-7 throughout, Spanish included, so the budget is 160 and not 70.
            let words: String = source.replace("{{", "").replace("}}", "");
            assert_eq!(
                Encoding::of(&words),
                Encoding::Gsm7,
                "{language}.{name} leaves GSM-7: {source}"
            );
            let rendered = template
                .render(&values_at_max(&limits), &limits)
                .unwrap_or_else(|e| panic!("{language}.{name}: {e}"));
            assert!(
                rendered.units <= 160,
                "{language}.{name}: {}",
                rendered.units
            );
        }
    }
}

#[test]
fn every_text_the_engine_sends_exists_in_english_and_spanish_with_short_fallbacks_for_links() {
    let pack = pack();
    let config = pack.config();
    let required = rules::required_templates(&config.policies);
    assert!(required.contains(&"reminder_48h".to_owned()));
    assert!(required.contains(&"reminder_24h".to_owned()));
    for language in ["en", "es"] {
        let templates = &config.templates[language];
        for name in ENGINE_TEMPLATES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(required.clone())
        {
            assert!(templates.contains_key(&name), "{language}.{name} missing");
        }
        for (name, text) in templates {
            if text.contains("{{link}}") && !name.ends_with(SHORT_SUFFIX) {
                assert!(
                    templates.contains_key(&format!("{name}{SHORT_SUFFIX}")),
                    "{language}.{name} has a link but no short form"
                );
            }
        }
        for name in [
            "cancel_ack",
            "reschedule_ack",
            "review_request",
            "no_show_recovery",
            "deposit_nudge",
        ] {
            assert!(
                templates[name].contains("{{link}}"),
                "{language}.{name} links"
            );
        }
        assert!(templates["help"].contains("{{clinicPhone}}"));
        assert!(templates["opt_out_cancel_confirmation"].contains("{{clinicPhone}}"));
    }
    // A link longer than declared falls back to the short form and still fits.
    let set = TemplateSet::load(&config.templates, PlaceholderLimits::default()).expect("loads");
    let long_link = format!("https://calendly.com/reschedulings/{}", "a".repeat(70));
    let values = TemplateValues::new()
        .with(Placeholder::FirstName, "Ada")
        .with(Placeholder::ClinicName, "Demo Clinic")
        .with(Placeholder::Date, "Fri, Mar 15")
        .with(Placeholder::Time, "10:00 AM")
        .with(Placeholder::Link, long_link.clone());
    let rendered = set
        .render("cancel_ack", "en", "en", &values)
        .expect("short form");
    assert_eq!(
        rendered.body,
        format!("Demo Clinic: cancel or change your visit: {long_link}")
    );
}

#[test]
fn no_template_asks_patients_to_reply_cancel_and_reminders_ask_for_the_reply_codes() {
    let pack = pack();
    let config = pack.config();
    let codes = pack.reply_codes();
    for (language, templates) in &config.templates {
        for (name, text) in templates {
            let upper_words: Vec<&str> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase()))
                .collect();
            assert!(
                !upper_words.contains(&"CANCEL"),
                "{language}.{name} names CANCEL: {text}"
            );
            for keyword in RESERVED_KEYWORDS {
                if !NAMEABLE_KEYWORDS.contains(&keyword) {
                    assert!(
                        !upper_words.contains(&keyword),
                        "{language}.{name}: {keyword}"
                    );
                }
            }
            assert!(
                !text.to_lowercase().contains("reply cancel"),
                "{language}.{name}: {text}"
            );
            assert!(rules::invited_carrier_keywords(text).is_empty());
            assert!(
                text.contains("{{clinicName}}"),
                "{language}.{name} names the clinic"
            );
            let confirmation = name.starts_with("opt_out_");
            if !name.ends_with(SHORT_SUFFIX) && !confirmation {
                assert!(
                    text.contains("STOP"),
                    "{language}.{name} has the opt-out hint"
                );
            }
        }
        for name in ["reminder_48h", "reminder_24h", "help"] {
            let text = &templates[name];
            for intent in ["confirm", "cancel", "reschedule"] {
                for code in &config.reply_codes[language][intent] {
                    assert!(
                        rules::mentions_code(text, code),
                        "{language}.{name} asks for {code} ({intent}): {text}"
                    );
                }
            }
        }
    }
    // The codes the reminders ask for are the ones the classifier reads.
    assert_eq!(
        codes.lookup("en", "C").map(|i| i.to_string()),
        Some("confirm".to_owned())
    );
    assert_eq!(
        codes.lookup("es", "S").map(|i| i.to_string()),
        Some("confirm".to_owned())
    );
}

#[test]
fn reply_codes_validate_without_collisions_or_carrier_keywords() {
    let pack = pack();
    let codes = pack.reply_codes();
    codes.validate().expect("valid reply codes");
    assert_eq!(
        serde_json::to_value(codes).expect("json"),
        serde_json::to_value(ReplyCodes::healthcare_default()).expect("json"),
        "the pack's codes are the classifier's built-in healthcare set"
    );
    for (language, by_intent) in &pack.config().reply_codes {
        let mut seen = std::collections::BTreeMap::new();
        for (intent, list) in by_intent {
            for code in list {
                assert!(
                    !RESERVED_KEYWORDS
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(code)),
                    "{language} {code} is a carrier keyword"
                );
                if let Some(other) = seen.insert(code.to_uppercase(), intent.clone()) {
                    panic!("{language} {code} means both {other} and {intent}");
                }
            }
        }
    }
    // Spanish "C" would be ambiguous (confirmar, cancelar, cambiar): never a code there.
    assert!(
        pack.config().reply_codes["es"]
            .values()
            .flatten()
            .all(|c| c != "C")
    );
}

// ---------------------------------------------------------------------------------------------
// Broken packs

fn load_with(
    manifest: impl Fn(&str) -> String,
    template: impl Fn(&str, &str) -> String,
    clinics: &str,
) -> Result<ProfilePack, PackError> {
    let builtin = PackSource::builtin();
    let manifest = manifest(builtin.manifest);
    let templates: Vec<(String, String)> = builtin
        .templates
        .iter()
        .map(|(l, t)| ((*l).to_owned(), template(l, t)))
        .collect();
    let refs: Vec<(&str, &str)> = templates
        .iter()
        .map(|(l, t)| (l.as_str(), t.as_str()))
        .collect();
    ProfilePack::load(&PackSource {
        manifest: &manifest,
        templates: &refs,
        clinics,
    })
}

fn refused(result: Result<ProfilePack, PackError>) -> PackError {
    match result {
        Ok(_) => panic!("the pack should have been refused"),
        Err(e) => {
            // Shown when a later assertion fails: the message an operator would read.
            eprintln!("{e}");
            e
        }
    }
}

fn same(s: &str) -> String {
    s.to_owned()
}

#[test]
fn a_broken_pack_is_refused_naming_the_file_and_the_field() {
    // Accents outside GSM-7 make a Spanish reminder UCS-2: 70 characters, not 160.
    let e = refused(load_with(
        same,
        |l, t| {
            if l == "es" {
                t.replace(
                    "su cita: {{date}}, {{time}}. Responda S para confirmar",
                    "su cita: {{date}}, {{time}}. Responda S para confirmación",
                )
            } else {
                t.to_owned()
            }
        },
        "",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("templates/es.toml", "reminder_48h")
    );
    assert!(e.reason.contains("UCS-2"), "{e}");
    assert!(
        e.to_string()
            .contains("apps/profile-backend-healthcare/pack/templates/es.toml")
    );

    let e = refused(load_with(
        same,
        |l, t| {
            if l == "en" {
                t.replace("Hi {{firstName}}", "Hi {{lastName}}")
            } else {
                t.to_owned()
            }
        },
        "",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("templates/en.toml", "reminder_48h")
    );
    assert!(e.reason.contains("lastName"), "{e}");

    let e = refused(load_with(
        same,
        |l, t| {
            if l == "en" {
                t.replace(
                    "Reply C to confirm, R to reschedule, N to cancel",
                    "Reply C to confirm or CANCEL",
                )
            } else {
                t.to_owned()
            }
        },
        "",
    ));
    assert_eq!(e.file, "templates/en.toml");
    assert!(e.reason.contains("CANCEL"), "{e}");

    let e = refused(load_with(
        same,
        |l, t| {
            if l == "en" {
                t.lines()
                    .filter(|line| !line.starts_with("deposit_nudge ="))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                t.to_owned()
            }
        },
        "",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("templates/en.toml", "deposit_nudge")
    );

    let e = refused(load_with(
        |m| m.replace("maxMessagesPer24h = 3", "maxMesagesPer24h = 3"),
        |_, t| t.to_owned(),
        "",
    ));
    assert_eq!(e.file, "pack.toml");
    assert!(e.field.starts_with("policies"), "{e}");
    assert!(e.reason.contains("maxMesagesPer24h"), "{e}");

    let e = refused(load_with(
        |m| {
            m.replace(
                "sendWindow = { start = \"08:00\", end = \"21:00\" }",
                "sendWindow = { start = \"21:00\", end = \"08:00\" }",
            )
        },
        |_, t| t.to_owned(),
        "",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("pack.toml", "policies.sendWindow")
    );

    // Spanish "N" for confirm while it means cancel: a collision.
    let e = refused(load_with(
        |m| {
            m.replace(
                "[replyCodes.es]\nconfirm = [\"S\"]",
                "[replyCodes.es]\nconfirm = [\"N\"]",
            )
        },
        |_, t| t.to_owned(),
        "",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("pack.toml", "replyCodes")
    );

    let e = refused(load_with(
        |m| {
            m.replace(
                "[replyCodes.en]\nconfirm = [\"C\"]",
                "[replyCodes.en]\nconfirm = [\"YES\"]",
            )
        },
        |_, t| t.to_owned(),
        "",
    ));
    assert!(e.reason.contains("carrier keyword"), "{e}");

    let e = refused(load_with(
        |m| m.replace("version = \"1.0.0\"", "version = \"one\""),
        |_, t| t.to_owned(),
        "",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("pack.toml", "version")
    );

    let e = refused(load_with(
        same,
        |_, t| t.to_owned(),
        "[clinic-a.policies]\nsendWindow = { start = \"09:00\", end = \"09:30\" }\n",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("clinics.toml", "clinic-a.policies.sendWindow")
    );

    let e = refused(load_with(
        same,
        |_, t| t.to_owned(),
        "[clinic-a]\nname = \"Other\"\n",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("clinics.toml", "clinic-a.name")
    );

    let e = refused(load_with(same, |_, t| t.to_owned(), "[clinic-a\n"));
    assert_eq!(e.file, "clinics.toml");
}

#[test]
fn a_clinic_table_changes_only_what_it_names() {
    let pack = load_with(
        same,
        |_, t| t.to_owned(),
        "[clinic-a]\nbookingLink = \"https://book.example.org/a\"\n\
         [clinic-a.mappings.eventTypes.checkup]\npriceMinor = 9000\n\
         [clinic-a.templates.en]\nhelp = \"{{clinicName}}: call {{clinicPhone}}. Reply C to confirm, R to reschedule, N to cancel. STOP to opt out\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let a = &pack.for_tenant("clinic-a").config;
    let base = pack.config();
    assert_eq!(
        a.booking_link.as_deref(),
        Some("https://book.example.org/a")
    );
    assert_eq!(a.mappings.event_types["checkup"].price_minor, Some(9000));
    assert_eq!(a.mappings.event_types["checkup"].service, "Checkup");
    assert_eq!(
        a.mappings.event_types["cleaning"],
        base.mappings.event_types["cleaning"]
    );
    assert!(a.templates["en"]["help"].starts_with("{{clinicName}}: call"));
    assert_eq!(
        a.templates["en"]["reminder_48h"],
        base.templates["en"]["reminder_48h"]
    );
    assert_eq!(a.templates["es"], base.templates["es"]);
    assert_eq!(a.policies, base.policies);
    assert_ne!(
        pack.for_tenant("clinic-a").content_hash,
        pack.for_tenant("clinic-b").content_hash
    );
    assert_eq!(pack.for_tenant("clinic-b").config, *base);
}

// ---------------------------------------------------------------------------------------------
// Installation into core

fn mint(scopes: &[Scope], tenants: TenantGrant) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    TokenSigner::new(SIGNING_KEY.as_bytes())
        .expect("signing key")
        .issue(
            "profile-pack-tests",
            "core",
            scopes,
            tenants,
            std::time::Duration::from_secs(600),
            now,
        )
        .expect("token")
}

fn admin() -> String {
    mint(&[Scope::Admin], TenantGrant::All)
}

/// The token `aro up` gives the BFF: commands:write + events:read for every tenant.
fn bff_token() -> String {
    mint(&[Scope::CommandsWrite, Scope::EventsRead], TenantGrant::All)
}

async fn create_clinic(core: &url::Url, id: &str, name: &str) {
    let resp = http()
        .post(core.join("v1/admin/tenants").expect("url"))
        .bearer_auth(admin())
        .json(
            &json!({"id": id, "name": name, "timezone": "America/New_York",
                      "clinicPhone": "+14155550100", "reviewLink": "https://example.org/review"}),
        )
        .send()
        .await
        .expect("create tenant");
    assert_eq!(resp.status().as_u16(), 201, "creating {id}");
}

async fn installed(core: &url::Url, tenant: &str) -> Value {
    http()
        .get(core.join("v1/tenant").expect("url"))
        .bearer_auth(bff_token())
        .header("x-tenant-id", tenant)
        .send()
        .await
        .expect("GET /v1/tenant")
        .json()
        .await
        .expect("json")
}

async fn config_updates(core: &url::Url, tenant: &str) -> usize {
    let body: Value = http()
        .get(
            core.join("v1/events?eventType=tenant.config_updated&limit=1000")
                .expect("url"),
        )
        .bearer_auth(bff_token())
        .header("x-tenant-id", tenant)
        .send()
        .await
        .expect("GET /v1/events")
        .json()
        .await
        .expect("json");
    body["events"].as_array().map_or(0, Vec::len)
}

async fn pack_check(bff: &url::Url) -> String {
    let body: Value = http()
        .get(bff.join("ready").expect("url"))
        .send()
        .await
        .expect("GET /ready")
        .json()
        .await
        .expect("json");
    let checks = body["checks"]
        .as_array()
        .or_else(|| body["error"]["details"]["checks"].as_array())
        .cloned()
        .unwrap_or_default();
    checks
        .iter()
        .find(|c| c["name"] == "profile_pack")
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Polls `probe` until it holds (bounded, so a broken installer fails the test, not hangs it).
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !probe().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn with_bff_token(env: &mut TestEnv, core: &url::Url) {
    env.config.services.core.url = core.clone();
    env.config.services.bff.core_token = Some(aro_config::Secret::new(bff_token()));
}

both_engines!(
    the_bff_installs_the_pack_into_every_tenant_once,
    |db| async move {
        let Some(mut env) = TestEnv::new(db).await else {
            return;
        };
        let core = start_core(&env).await;
        create_clinic(&core.url, "clinic-a", "Harbor Family Clinic").await;
        create_clinic(&core.url, "clinic-b", "Northside Dental").await;
        with_bff_token(&mut env, &core.url);
        let bff = spawn_service(env.config.clone(), aro_profile_backend_healthcare::run).await;
        eventually("the pack in both tenants", || async {
            pack_check(&bff.url)
                .await
                .contains("installed in 2 of 2 tenants")
        })
        .await;
        let ready = http()
            .get(bff.url.join("ready").unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            ready.status().as_u16(),
            200,
            "installation never blocks readiness"
        );

        let pack = pack();
        let mut versions = Vec::new();
        for tenant in ["clinic-a", "clinic-b"] {
            let t = installed(&core.url, tenant).await;
            let config: TenantConfig = serde_json::from_value(t["config"].clone()).expect("config");
            assert_eq!(&config, pack.config(), "{tenant} holds the pack");
            assert_eq!(
                t["config"]["templates"]["es"]["reminder_48h"],
                pack.config().templates["es"]["reminder_48h"]
            );
            assert_eq!(t["config"]["policies"]["maxMessagesPer24h"], 3);
            assert_eq!(
                config_updates(&core.url, tenant).await,
                1,
                "{tenant}: one install"
            );
            versions.push(t["configVersion"].as_i64().expect("configVersion"));
        }
        bff.stop().await;

        // Installing again changes nothing: a new installer finds every tenant current...
        let installer = Installer::new(http(), core.url.clone(), bff_token(), Arc::new(pack));
        let report = installer.reconcile().await.expect("reconcile");
        assert_eq!(report.tenants.len(), 2);
        assert!(
            report.tenants.values().all(|s| *s == TenantState::Current),
            "{report:?}"
        );
        // ...the very same command (same tenant, pack, content and base version) is answered from
        // core's idempotency store...
        for (tenant, version) in ["clinic-a", "clinic-b"].into_iter().zip(&versions) {
            let again = installer
                .send_install(tenant, version - 1)
                .await
                .expect("replay");
            assert!(again.replayed, "{tenant}: {again:?}");
        }
        // ...and a restarted BFF installs nothing.
        let bff = spawn_service(env.config.clone(), aro_profile_backend_healthcare::run).await;
        eventually("the restarted BFF's pass", || async {
            pack_check(&bff.url)
                .await
                .contains("installed in 2 of 2 tenants")
        })
        .await;
        for (tenant, version) in ["clinic-a", "clinic-b"].into_iter().zip(&versions) {
            assert_eq!(
                config_updates(&core.url, tenant).await,
                1,
                "{tenant}: still one install"
            );
            assert_eq!(
                installed(&core.url, tenant).await["configVersion"],
                *version
            );
        }
        bff.stop().await;
        core.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bff_installs_the_pack_once_core_comes_up_after_it() {
    let Some(mut env) = TestEnv::new(Db::Sqlite).await else {
        return;
    };
    // Core's port, bound but not listening yet: connections are refused until core starts.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let core_url = url::Url::parse(&format!("http://{}/", socket.local_addr().unwrap())).unwrap();
    with_bff_token(&mut env, &core_url);
    let schedule = InstallSchedule {
        period: Duration::from_millis(200),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
    };
    let bff = spawn_service(env.config.clone(), move |c, l, s| {
        aro_profile_backend_healthcare::run_with_schedule(c, l, s, schedule)
    })
    .await;
    eventually("the BFF reports core unreachable", || async {
        pack_check(&bff.url).await.contains("not installed yet")
    })
    .await;

    let store = aro_core_engine::storage::open(&env.config)
        .await
        .expect("store");
    store.migrate_up().await.expect("migrate");
    store.close().await;
    let shutdown = aro_http::CancellationToken::new();
    let core = tokio::spawn(aro_core_engine::run(
        env.config.clone(),
        socket.listen(128).expect("listen"),
        shutdown.clone(),
    ));
    // A tenant created after both are up gets the pack on the next pass.
    create_clinic(&core_url, "late-clinic", "Late Clinic").await;
    eventually("the pack in the late tenant", || async {
        installed(&core_url, "late-clinic").await["config"]["templates"]["en"]["reminder_48h"]
            .is_string()
    })
    .await;
    eventually("the BFF reports it", || async {
        pack_check(&bff.url)
            .await
            .contains("installed in 1 of 1 tenants")
    })
    .await;
    assert_eq!(config_updates(&core_url, "late-clinic").await, 1);
    bff.stop().await;
    shutdown.cancel();
    let _ = core.await;
}

// ---------------------------------------------------------------------------------------------
// The engine sends the pack's words

async fn business_now(core: &url::Url) -> DateTime<Utc> {
    let body: Value = http()
        .get(core.join("v1/admin/clock").unwrap())
        .bearer_auth(admin())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["now"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("now")
}

async fn book(
    core: &url::Url,
    tenant: &str,
    id: &str,
    name: &str,
    phone: &str,
    language: &str,
    starts: DateTime<Utc>,
) {
    let resp = http()
        .post(core.join("v1/commands").unwrap())
        .bearer_auth(bff_token())
        .header("x-tenant-id", tenant)
        .header("idempotency-key", format!("book-{id}"))
        .json(&json!({
            "commandType": "appointment.upsert", "tenantId": tenant,
            "aggregate": {"type": "appointment"},
            "payload": {"source": "calendly", "externalId": format!("https://api.calendly.com/scheduled_events/EV/invitees/{id}"),
                "customer": {"name": name, "phone": phone, "timezone": "America/New_York", "language": language},
                "startsAt": starts, "endsAt": starts + Days::minutes(30), "serviceType": "checkup",
                "cancelUrl": "https://calendly.com/cancellations/AAAA", "rescheduleUrl": "https://calendly.com/reschedulings/AAAA"}}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(
        status,
        200,
        "booking {id}: {}",
        resp.text().await.unwrap_or_default()
    );
}

both_engines!(
    the_engine_renders_reminders_with_the_pack_in_english_and_spanish,
    |db| async move {
        let Some(mut env) = TestEnv::with_extra(db, "[sandbox]\nenabled = true\n").await else {
            return;
        };
        let core = start_core(&env).await;
        create_clinic(&core.url, "clinic-a", "Harbor Family Clinic").await;
        with_bff_token(&mut env, &core.url);
        let bff = spawn_service(env.config.clone(), aro_profile_backend_healthcare::run).await;
        eventually("the pack installed", || async {
            pack_check(&bff.url)
                .await
                .contains("installed in 1 of 1 tenants")
        })
        .await;

        // Visits three days ahead at 17:00 UTC (midday in New York, inside the send window), so
        // the 48 h reminders fall at 17:00 UTC the day after tomorrow... and the 24 h ones later.
        let now = business_now(&core.url).await;
        let noonish = NaiveTime::from_hms_opt(17, 0, 0).unwrap();
        let starts = (now.date_naive() + Days::days(3))
            .and_time(noonish)
            .and_utc();
        book(
            &core.url,
            "clinic-a",
            "IN-EN",
            "Ada Lovelace",
            "+14155552671",
            "en",
            starts,
        )
        .await;
        book(
            &core.url,
            "clinic-a",
            "IN-ES",
            "Lucía Pérez",
            "+14155552672",
            "es",
            starts,
        )
        .await;

        // Just past the 48 h reminders; the clock answers once their sends are reported.
        let at = starts - Days::hours(48) + Days::seconds(30);
        let clock = {
            let url = core.url.join("v1/admin/clock").unwrap();
            tokio::spawn(async move {
                http()
                    .post(url)
                    .bearer_auth(admin())
                    .json(&json!({"set": at}))
                    .send()
                    .await
                    .expect("clock")
                    .json::<Value>()
                    .await
                    .expect("json")
            })
        };
        let executor = mint(&[Scope::ExecutionsClaim], TenantGrant::All);
        let mut claimed: Vec<Value> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(25);
        while claimed.len() < 2 {
            assert!(
                Instant::now() < deadline,
                "reminders were not queued: {claimed:?}"
            );
            let body: Value = http()
                .post(core.url.join("v1/executions/claim").unwrap())
                .bearer_auth(&executor)
                .json(
                    &json!({"limit": 10, "leaseSeconds": 60, "types": ["messaging.send_reminder"]}),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            claimed.extend(body["executions"].as_array().cloned().unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(claimed.len(), 2, "{claimed:?}");
        let body_to = |to: &str| -> String {
            claimed
                .iter()
                .find(|e| e["payload"]["to"] == to)
                .and_then(|e| e["payload"]["body"].as_str())
                .unwrap_or_else(|| panic!("no reminder to {to}: {claimed:?}"))
                .to_owned()
        };
        let english = body_to("+14155552671");
        assert!(
            english.starts_with("Harbor Family Clinic: Hi Ada, see you "),
            "{english}"
        );
        assert!(
            english.ends_with("Reply C to confirm, R to reschedule, N to cancel. STOP to opt out"),
            "{english}"
        );
        let spanish = body_to("+14155552672");
        // The name is folded to GSM-7 so the text keeps its 160-character budget.
        assert!(
            spanish.starts_with("Harbor Family Clinic: Hola Lucia, su cita: "),
            "{spanish}"
        );
        assert!(
            spanish.contains(", 13:00.") || spanish.contains(", 12:00."),
            "{spanish}"
        );
        assert!(
            spanish.ends_with("Responda S para confirmar, R cambiar, N cancelar. STOP para baja"),
            "{spanish}"
        );
        for body in [&english, &spanish] {
            assert!(!body.contains("{{"), "{body}");
            assert_eq!(Encoding::of(body), Encoding::Gsm7, "{body}");
            assert!(body.chars().count() <= 160, "{body}");
        }
        for execution in &claimed {
            let id = execution["executionId"].as_str().expect("id");
            let resp = http()
                .post(
                    core.url
                        .join(&format!("v1/executions/{id}/result"))
                        .unwrap(),
                )
                .bearer_auth(&executor)
                .json(&json!({"status": "succeeded", "providerRef": format!("SM{id}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
        }
        let moved = clock.await.expect("clock task");
        assert_eq!(moved["settled"], true, "{moved}");
        bff.stop().await;
        core.stop().await;
    }
);
