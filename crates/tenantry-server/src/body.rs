//! Request bodies and query strings, read so that a fault names its field: malformed JSON
//! is a 400, a value of the wrong type or shape a 422 with the field's path, a body of
//! another media type a 415, one over the limit a 413.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A JSON body of type `T`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            });
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
                    _ => "bad_body",
                };
                Problem::new(status, code, rejection.body_text())
            })?;
        let malformed = |e: serde_json::Error| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )
        };
        // Well-formed first, so that a syntax error is a 400 and only a wrong shape a 422.
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(malformed)?;
        serde_path_to_error::deserialize::<_, T>(value)
            .map(Json)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                Problem::invalid(&field_of(&path, &inner), inner)
            })
    }
}

/// A query string of type `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                Problem::invalid(&field_of(&path, &inner), inner)
                    .with_status(StatusCode::BAD_REQUEST)
            })
    }
}

/// The field a deserialisation error is about: its path, or for a missing field the name
/// serde quotes (`missing field `slug``).
fn field_of(path: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(name) = rest.split('`').next()
    {
        return match path {
            "." | "" => name.to_owned(),
            _ => format!("{path}.{name}"),
        };
    }
    match path {
        "." | "" => "body".to_owned(),
        _ => path.to_owned(),
    }
}

/// Path parameters of type `T`; a segment that does not decode is a 400 problem.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| {
                Problem::new(StatusCode::BAD_REQUEST, "bad_path", rejection.body_text())
            })
    }
}
