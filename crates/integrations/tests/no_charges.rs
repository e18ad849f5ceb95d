//! ARO never charges a patient: it may only offer a payment link. This test keeps that
//! structural by failing if the crate's source ever names an endpoint that creates a charge,
//! touches PaymentIntents or confirms anything.

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
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files)?;
    assert!(files.len() > 5, "the source tree was found");
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
