//! Token and key checks. The environment is given as a map, so these tests never read or
//! change the process's own; `tests/jwt_env.rs` checks the real `TENANTRY_JWT_SECRET`.

use std::collections::HashMap;
use std::env::VarError;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("test key fixture")
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).expect("a sane clock")
}

fn verifier_with(settings: &JwtSettings, env: &[(&str, &str)]) -> Result<JwtVerifier, JwtError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    JwtVerifier::from_settings_with(settings, &|name| {
        env.get(name).cloned().ok_or(VarError::NotPresent)
    })
}

fn verifier(settings: &JwtSettings) -> JwtVerifier {
    verifier_with(settings, &[]).expect("valid settings")
}

fn hs256() -> JwtSettings {
    JwtSettings {
        secret: Some(SECRET.to_owned()),
        ..JwtSettings::new(JwtAlgorithm::HS256)
    }
}

fn rs256() -> JwtSettings {
    JwtSettings {
        key_file: Some(fixture("rsa_public.pem")),
        ..JwtSettings::new(JwtAlgorithm::RS256)
    }
}

fn es256() -> JwtSettings {
    JwtSettings {
        key_file: Some(fixture("ec_public.pem")),
        ..JwtSettings::new(JwtAlgorithm::ES256)
    }
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({"sub": "user-1", "tenant": "acme", "exp": now() + 60});
    if let (Some(c), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        c.extend(extra);
    }
    claims
}

fn hs(claims: &Value) -> String {
    mint_hs256(SECRET.as_bytes(), claims).expect("mint")
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("sign")
}

fn rs(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&read_fixture("rsa_private.pem")).expect("RSA key");
    sign(Algorithm::RS256, &key, claims)
}

fn es(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(&read_fixture("ec_private.pem")).expect("EC key");
    sign(Algorithm::ES256, &key, claims)
}

/// A token with any header, signature left empty.
fn unsigned(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(header), part(claims))
}

fn refused(verifier: &JwtVerifier, token: &str) -> TokenError {
    let err = verifier.verify(token).expect_err("token must be refused");
    let message = err.to_string();
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(!message.contains(part), "{message:?} repeats the token");
    }
    err
}

#[test]
fn valid_tokens_of_each_algorithm_are_accepted() {
    let exp = now() + 60;
    let c = json!({"sub": "user-1", "tenant": "acme", "exp": exp, "role": "admin"});
    for (settings, token) in [(hs256(), hs(&c)), (rs256(), rs(&c)), (es256(), es(&c))] {
        let verified = verifier(&settings).verify(&token);
        let verified = verified.unwrap_or_else(|e| panic!("{:?}: {e}", settings.algorithm));
        assert_eq!(verified.subject, "user-1");
        assert_eq!(verified.tenant.as_deref(), Some("acme"));
        assert_eq!(verified.expires_at, exp);
        assert_eq!(verified.all.get("role"), Some(&json!("admin")));
    }
}

#[test]
fn the_tenant_claim_is_optional_and_configurable() {
    let v = verifier(&hs256());
    let token = hs(&json!({"sub": "u", "exp": now() + 60}));
    assert_eq!(v.verify(&token).map(|c| c.tenant), Ok(None));
    let settings = JwtSettings {
        tenant_claim: "org".to_owned(),
        subject_claim: "uid".to_owned(),
        ..hs256()
    };
    let token = hs(&json!({"uid": "u-9", "org": "globex", "exp": now() + 60}));
    let verified = verifier(&settings).verify(&token);
    assert_eq!(
        verified.map(|c| (c.subject, c.tenant)),
        Ok(("u-9".to_owned(), Some("globex".to_owned())))
    );
    let token = hs(&claims(json!({"tenant": 42})));
    assert!(
        matches!(refused(&v, &token), TokenError::InvalidClaim { name, .. } if name == "tenant")
    );
}

#[test]
fn time_claims_are_checked_with_the_leeway() {
    let v = verifier(&hs256());
    let t = now();
    assert_eq!(
        refused(&v, &hs(&claims(json!({"exp": t - 30})))),
        TokenError::Expired
    );
    assert!(
        v.verify(&hs(&claims(json!({"exp": t - 2})))).is_ok(),
        "within 5 s leeway"
    );
    let token = hs(&claims(json!({"nbf": t + 30})));
    assert_eq!(refused(&v, &token), TokenError::NotYetValid);
    assert!(
        v.verify(&hs(&claims(json!({"nbf": t + 2})))).is_ok(),
        "within 5 s leeway"
    );
    assert!(v.verify(&hs(&claims(json!({"nbf": t - 60})))).is_ok());

    let strict = verifier(&JwtSettings {
        leeway_secs: 0,
        ..hs256()
    });
    assert_eq!(
        refused(&strict, &hs(&claims(json!({"exp": t - 2})))),
        TokenError::Expired
    );
    let token = hs(&claims(json!({"nbf": t + 2})));
    assert_eq!(refused(&strict, &token), TokenError::NotYetValid);

    let wide = verifier(&JwtSettings {
        leeway_secs: 120,
        ..hs256()
    });
    assert!(wide.verify(&hs(&claims(json!({"exp": t - 60})))).is_ok());
}

#[test]
fn exp_and_sub_are_required() {
    let v = verifier(&hs256());
    let token = hs(&json!({"sub": "u", "tenant": "acme"}));
    assert_eq!(
        refused(&v, &token),
        TokenError::MissingClaim {
            name: "exp".to_owned()
        }
    );
    let token = hs(&json!({"sub": "u", "exp": "tomorrow"}));
    assert!(matches!(refused(&v, &token), TokenError::MissingClaim { name } if name == "exp"));
    let token = hs(&json!({"tenant": "acme", "exp": now() + 60}));
    assert_eq!(
        refused(&v, &token),
        TokenError::MissingClaim {
            name: "sub".to_owned()
        }
    );
    let token = hs(&claims(json!({"sub": 7})));
    assert!(matches!(refused(&v, &token), TokenError::InvalidClaim { name, .. } if name == "sub"));
}

/// `forged`'s header and payload under `genuine`'s signature.
fn splice(genuine: &str, forged: &str) -> String {
    let (head, _) = forged.rsplit_once('.').expect("three parts");
    let (_, signature) = genuine.rsplit_once('.').expect("three parts");
    format!("{head}.{signature}")
}

#[test]
fn wrong_signatures_are_refused() {
    let other = mint_hs256(&[b'x'; 32], &claims(json!({}))).expect("mint");
    assert_eq!(
        refused(&verifier(&hs256()), &other),
        TokenError::BadSignature
    );
    let globex = claims(json!({"tenant": "globex"}));
    let c = claims(json!({}));
    for (settings, token) in [
        (hs256(), splice(&hs(&c), &hs(&globex))),
        (rs256(), splice(&rs(&c), &rs(&globex))),
        (es256(), splice(&es(&c), &es(&globex))),
    ] {
        assert_eq!(
            refused(&verifier(&settings), &token),
            TokenError::BadSignature
        );
    }
}

#[test]
fn alg_none_is_refused() {
    let token = unsigned(&json!({"alg": "none", "typ": "JWT"}), &claims(json!({})));
    for settings in [hs256(), rs256(), es256()] {
        assert_eq!(
            refused(&verifier(&settings), &token),
            TokenError::WrongAlgorithm {
                found: "none".to_owned(),
                expected: settings.algorithm
            }
        );
    }
    let token = unsigned(&json!({"typ": "JWT"}), &claims(json!({})));
    assert!(matches!(
        refused(&verifier(&hs256()), &token),
        TokenError::Malformed { .. }
    ));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let public_pem = read_fixture("rsa_public.pem");
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        &claims(json!({})),
    );
    assert_eq!(
        refused(&verifier(&rs256()), &confused),
        TokenError::WrongAlgorithm {
            found: "HS256".to_owned(),
            expected: JwtAlgorithm::RS256
        }
    );
    // And the other way round: an RS256 token against an HS256 verifier.
    let token = rs(&claims(json!({})));
    assert!(matches!(
        refused(&verifier(&hs256()), &token),
        TokenError::WrongAlgorithm { found, .. } if found == "RS256"
    ));
}

#[test]
fn audience_is_checked_only_when_configured() {
    let open = verifier(&hs256());
    assert!(open.verify(&hs(&claims(json!({"aud": "anyone"})))).is_ok());
    let v = verifier(&JwtSettings {
        audience: Some("tenantry".to_owned()),
        ..hs256()
    });
    assert!(v.verify(&hs(&claims(json!({"aud": "tenantry"})))).is_ok());
    assert!(
        v.verify(&hs(&claims(json!({"aud": ["billing", "tenantry"]}))))
            .is_ok()
    );
    let token = hs(&claims(json!({"aud": "billing"})));
    assert_eq!(refused(&v, &token), TokenError::WrongAudience);
    let token = hs(&claims(json!({"aud": ["billing"]})));
    assert_eq!(refused(&v, &token), TokenError::WrongAudience);
    let token = hs(&claims(json!({})));
    assert!(matches!(refused(&v, &token), TokenError::MissingClaim { name } if name == "aud"));
}

#[test]
fn issuer_is_checked_only_when_configured() {
    let open = verifier(&hs256());
    assert!(open.verify(&hs(&claims(json!({"iss": "anyone"})))).is_ok());
    let v = verifier(&JwtSettings {
        issuer: Some("https://auth.example".to_owned()),
        ..hs256()
    });
    assert!(
        v.verify(&hs(&claims(json!({"iss": "https://auth.example"}))))
            .is_ok()
    );
    let token = hs(&claims(json!({"iss": "https://evil.example"})));
    assert_eq!(refused(&v, &token), TokenError::WrongIssuer);
    let token = hs(&claims(json!({})));
    assert!(matches!(refused(&v, &token), TokenError::MissingClaim { name } if name == "iss"));
}

#[test]
fn malformed_tokens_are_refused() {
    let v = verifier(&hs256());
    let good = hs(&claims(json!({})));
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.",
        &format!("{good}.x"),
        &"a".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert!(
            matches!(refused(&v, token), TokenError::Malformed { .. }),
            "{token:?}"
        );
    }
    // Correctly signed, but the payload is not base64url, or not JSON.
    let header = good.split('.').next().expect("a header");
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    for payload in ["!!!".to_owned(), URL_SAFE_NO_PAD.encode("not json")] {
        let message = format!("{header}.{payload}");
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256);
        let token = format!("{message}.{}", signature.expect("sign"));
        assert!(matches!(refused(&v, &token), TokenError::Malformed { .. }));
    }
    let crit = unsigned(
        &json!({"alg": "HS256", "crit": ["exp"]}),
        &claims(json!({})),
    );
    assert!(matches!(refused(&v, &crit), TokenError::Malformed { .. }));
}

#[test]
fn tenantry_jwt_secret_provides_and_overrides_the_hs256_secret() {
    let from_env = "fedcba9876543210fedcba9876543210";
    let token = mint_hs256(from_env.as_bytes(), &claims(json!({}))).expect("mint");
    let bare = JwtSettings::new(JwtAlgorithm::HS256);
    let v = verifier_with(&bare, &[(SECRET_ENV, from_env)]).expect("secret from env");
    assert!(v.verify(&token).is_ok());
    // It overrides a configured source.
    let v = verifier_with(&hs256(), &[(SECRET_ENV, from_env)]).expect("secret from env");
    assert!(v.verify(&token).is_ok());
    // Empty counts as unset.
    let v = verifier_with(&hs256(), &[(SECRET_ENV, "")]).expect("configured secret");
    assert!(v.verify(&hs(&claims(json!({})))).is_ok());
    // Without it, HS256 needs a source.
    let err = verifier_with(&bare, &[]).map(|_| ());
    assert!(matches!(err, Err(JwtError::MissingKey { .. })));
    assert!(err.is_err_and(|e| e.to_string().contains("TENANTRY_JWT_SECRET")));
    // It is not a key for public-key algorithms.
    let err = verifier_with(
        &JwtSettings::new(JwtAlgorithm::RS256),
        &[(SECRET_ENV, from_env)],
    );
    assert!(matches!(err, Err(JwtError::MissingKey { .. })));
}

#[test]
fn key_sources_are_read_from_env_and_files() {
    let settings = JwtSettings {
        secret_env: Some("APP_JWT".to_owned()),
        ..JwtSettings::new(JwtAlgorithm::HS256)
    };
    assert!(verifier_with(&settings, &[("APP_JWT", SECRET)]).is_ok());
    let err = verifier_with(&settings, &[]).map(|_| ());
    assert!(
        err.is_err_and(|e| e.to_string() == "environment variable APP_JWT is not set or is empty")
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write secret");
    let settings = JwtSettings {
        key_file: Some(file),
        ..JwtSettings::new(JwtAlgorithm::HS256)
    };
    let v = verifier_with(&settings, &[]).expect("secret file");
    assert!(
        v.verify(&hs(&claims(json!({})))).is_ok(),
        "the line ending is not the secret"
    );

    let pem = String::from_utf8(read_fixture("rsa_public.pem")).expect("PEM text");
    let settings = JwtSettings {
        key_env: Some("APP_JWT_KEY".to_owned()),
        ..JwtSettings::new(JwtAlgorithm::RS256)
    };
    let v = verifier_with(&settings, &[("APP_JWT_KEY", &pem)]).expect("key from env");
    assert!(v.verify(&rs(&claims(json!({})))).is_ok());
}

fn config_error(settings: &JwtSettings) -> String {
    match verifier_with(settings, &[]) {
        Ok(_) => panic!("{settings:?} must be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_key_configurations_are_refused_with_their_origin() {
    let both = JwtSettings {
        secret_env: Some("X".to_owned()),
        ..hs256()
    };
    assert_eq!(
        config_error(&both),
        "[routing.jwt] sets secret and secret_env: set exactly one key source"
    );
    let short = JwtSettings {
        secret: Some("short".to_owned()),
        ..hs256()
    };
    assert!(config_error(&short).contains("[routing.jwt] secret holds a 5-byte secret"));

    let missing = fixture("no-such-key.pem");
    let err = config_error(&JwtSettings {
        key_file: Some(missing.clone()),
        ..rs256()
    });
    assert!(err.starts_with(&format!("key file {} cannot be read", missing.display())));

    for (settings, file, fragment) in [
        (rs256(), "rsa_private.pem", "is a private key"),
        (rs256(), "ec_public.pem", "not a key of this kind"),
        (rs256(), "README.md", "no -----BEGIN"),
        (es256(), "rsa_public.pem", "not a key of this kind"),
        (es256(), "ec_private.pem", "is a private key"),
        (es256(), "ec_p384_public.pem", "curve P-256"),
    ] {
        let path = fixture(file);
        let err = config_error(&JwtSettings {
            key_file: Some(path.clone()),
            ..settings
        });
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(fragment), "{file}: {err}");
    }

    let secret_for_rsa = JwtSettings {
        secret: Some(SECRET.to_owned()),
        ..JwtSettings::new(JwtAlgorithm::RS256)
    };
    assert!(config_error(&secret_for_rsa).contains("secret cannot be used with RS256"));
    let pem_for_hmac = JwtSettings {
        key_env: Some("K".to_owned()),
        ..JwtSettings::new(JwtAlgorithm::HS256)
    };
    assert!(config_error(&pem_for_hmac).contains("key_env cannot be used with HS256"));
    let leeway = JwtSettings {
        leeway_secs: 3600,
        ..hs256()
    };
    assert!(config_error(&leeway).contains("leeway_secs is 3600"));
    let empty_claim = JwtSettings {
        tenant_claim: String::new(),
        ..hs256()
    };
    assert_eq!(
        config_error(&empty_claim),
        "[routing.jwt] tenant_claim is empty"
    );
}

#[test]
fn settings_read_from_toml() {
    let settings: JwtSettings =
        toml::from_str("algorithm = \"RS256\"\nkey_file = \"/etc/tenantry/jwt.pem\"\n")
            .expect("valid settings");
    assert_eq!(settings.algorithm, JwtAlgorithm::RS256);
    assert_eq!(settings.leeway_secs, 5);
    assert_eq!(settings.tenant_claim, "tenant");
    assert_eq!(settings.subject_claim, "sub");
    let unknown = toml::from_str::<JwtSettings>("algorithm = \"HS256\"\nsecrte = \"x\"\n");
    assert!(unknown.is_err_and(|e| e.to_string().contains("unknown field `secrte`")));
    assert!(toml::from_str::<JwtSettings>("algorithm = \"none\"\n").is_err());
    assert!(toml::from_str::<JwtSettings>("secret = \"x\"\n").is_err());
    let debug = format!("{:?}", hs256());
    assert!(!debug.contains(SECRET), "Debug hides the secret");
}

#[test]
fn minting_refuses_short_secrets_and_non_objects() {
    assert!(matches!(
        mint_hs256(b"short", &claims(json!({}))),
        Err(JwtError::SecretTooShort { len: 5, .. })
    ));
    assert!(matches!(
        mint_hs256(SECRET.as_bytes(), &json!(["sub"])),
        Err(JwtError::ClaimsNotObject)
    ));
}
