//! ARO never charges a patient: it may only offer a payment link. This test keeps that
//! structural by failing if the source of anything that can reach a provider — this crate, the
//! executor, core-engine with its workflow engine, the BFF — ever names an endpoint that creates
//! a charge, touches PaymentIntents or confirms anything. (The sandbox plays Stripe and names
//! them in its fakes' answers; it calls no provider.)

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
    Ok(())
}

#[test]
fn no_source_file_can_create_a_charge_or_confirm_a_payment()
-> Result<(), Box<dyn std::error::Error>> {
    // Assembled at run time so this file does not trip its own check.
    let forbidden = [
        ["/v1/", "charges"].concat(),
        ["payment", "_intents"].concat(),
        ["/con", "firm"].concat(),
        ["payment", "_intent_data"].concat(),
    ];
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in [
        "crates/integrations/src",
        "crates/workflow/src",
        "apps/openclaw-executor/src",
        "apps/core-engine/src",
        "apps/profile-backend-healthcare/src",
    ] {
        let before = files.len();
        rust_files(&root.join(dir), &mut files)?;
        assert!(files.len() > before + 2, "{dir} was found");
    }
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?.to_lowercase();
        for needle in &forbidden {
            if text.contains(needle.as_str()) {
                offences.push(format!("{} names {needle}", file.display()));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
    Ok(())
}
