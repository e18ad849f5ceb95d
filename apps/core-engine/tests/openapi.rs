//! The committed OpenAPI document (`docs/api/core-engine.openapi.json`) is the one the code
//! generates. A change to a route or a wire type changes the generated document; this test then
//! fails until the committed copy is regenerated and reviewed with the change:
//!
//! ```text
//! ARO_UPDATE_OPENAPI=1 cargo test -p aro-core-engine --test openapi
//! ```

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(aro_core_engine::openapi::COMMITTED_PATH)
}

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = aro_core_engine::openapi::document_json();
    let path = committed_path();
    if std::env::var("ARO_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).expect("write the OpenAPI document");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let first_difference = committed
        .lines()
        .zip(generated.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| {
            format!(
                "first difference at line {}:\n  committed: {a}\n  generated: {b}",
                i + 1
            )
        })
        .unwrap_or_else(|| {
            format!(
                "the committed file has {} lines, the generated document {}",
                committed.lines().count(),
                generated.lines().count()
            )
        });
    panic!(
        "{} is not the document the code generates ({first_difference}).\n\
         Regenerate it, review the diff and commit it:\n\
         ARO_UPDATE_OPENAPI=1 cargo test -p aro-core-engine --test openapi",
        aro_core_engine::openapi::COMMITTED_PATH
    );
}
