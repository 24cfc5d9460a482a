//! `TENANTRY_JWT_SECRET` read from the real environment. The only test in its binary, so
//! changing the environment races with nothing.

use serde_json::json;
use tenantry::routing::jwt::{JwtAlgorithm, JwtSettings, JwtVerifier, SECRET_ENV, mint_hs256};

#[test]
fn hs256_secret_comes_from_tenantry_jwt_secret() {
    let secret = "an HS256 secret of 32+ bytes, test only";
    // SAFETY: this binary has no other test, so no other thread reads the environment.
    unsafe { std::env::set_var(SECRET_ENV, secret) };
    let verifier = JwtVerifier::from_settings(&JwtSettings::new(JwtAlgorithm::HS256))
        .expect("secret from TENANTRY_JWT_SECRET");
    let exp = jsonwebtoken::get_current_timestamp() + 60;
    let token = mint_hs256(secret.as_bytes(), &json!({"sub": "u", "exp": exp})).expect("mint");
    let claims = verifier.verify(&token).expect("valid token");
    assert_eq!(claims.subject, "u");

    unsafe { std::env::remove_var(SECRET_ENV) };
    let err = JwtVerifier::from_settings(&JwtSettings::new(JwtAlgorithm::HS256));
    assert!(err.is_err_and(|e| e.to_string().contains(SECRET_ENV)));
}
