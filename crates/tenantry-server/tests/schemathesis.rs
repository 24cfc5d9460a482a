//! The whole API exercised from its own OpenAPI document by schemathesis (property-based:
//! generated requests, valid and not): no answer is a server error, and every answer
//! matches the document (status code, content type, body schema).

mod common;

use std::process::Command;

use tenantry::{Scope, Settings};
use tenantry_testkit::{Backend, Fixture};

use common::{Server, key};

fn schemathesis() -> Option<String> {
    let found = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match (found, std::env::var_os("CI").is_some()) {
        (true, _) => Some("schemathesis".to_owned()),
        (false, true) => panic!("CI needs schemathesis (pip install schemathesis)"),
        (false, false) => {
            eprintln!("skipped: schemathesis is not installed");
            None
        }
    }
}

#[tokio::test]
async fn every_operation_answers_as_its_document_says() {
    let Some(program) = schemathesis() else {
        return;
    };
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    // A server that does not exist is given up on quickly.
    let t = fx
        .reopen(Settings {
            connect_timeout_secs: Some(1),
            ..Settings::default()
        })
        .await;
    for slug in ["acme", "globex"] {
        fx.create(slug).await.expect("create");
    }
    let admin = key(&t, "fuzz", &[Scope::Admin], None).await;
    // Generated requests include ones without a valid key; they must not lock the fuzzer out.
    let options = tenantry_server::Options {
        failure_budget: u32::MAX,
        ..Default::default()
    };
    let server = Server::start_with(&t, options).await;
    let report = fx.dir.path().join("schemathesis");
    let out = tokio::task::spawn_blocking({
        let base = server.base.clone();
        move || {
            Command::new(program)
                .args([
                    "run",
                    &format!("{base}/openapi.json"),
                    "--header",
                    &format!("Authorization: Bearer {admin}"),
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                    "--max-examples",
                    "25",
                    // Revoking keys is tested on its own: here it would revoke the fuzzer's key
                    // (named in the responses it reads) and leave the rest untested.
                    "--exclude-name",
                    "DELETE /v1/keys/{name}",
                    // Links inferred from Location headers do not name their parameters.
                    "--phases",
                    "examples,coverage,fuzzing",
                    "--seed",
                    "20261123",
                    "--no-color",
                    "--report-dir",
                ])
                .arg(&report)
                .env("SCHEMATHESIS_HOOKS", "")
                .output()
                .expect("run schemathesis")
        }
    })
    .await
    .expect("schemathesis task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
    fx.cleanup().await;
}
