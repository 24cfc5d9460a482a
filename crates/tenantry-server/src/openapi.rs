//! The OpenAPI 3.1 document, generated from the handlers: the bearer-key scheme on every
//! `/v1` operation and the problem responses every operation may give, added in one place.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

use crate::AppState;
use crate::problem::ProblemDocument;

/// The statuses any authenticated operation may answer with a problem document.
const PROBLEMS: &[(&str, &str)] = &[
    ("400", "malformed request"),
    ("401", "no valid API key"),
    ("403", "the key lacks the scope"),
    ("404", "not found, or not visible to this key"),
    ("409", "conflicts with the current state"),
    ("413", "body too large"),
    ("415", "body is not JSON"),
    ("422", "a field is invalid"),
    ("429", "too many failed authentications"),
    ("500", "internal error"),
    ("503", "a database did not answer; retry after Retry-After"),
];

pub fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info.title = "Tenantry admin API".to_owned();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.description = Some(
        "The control plane of a Tenantry fleet. Authenticate with `Authorization: Bearer \
         tnt_…` (create a key with `tenantry apikey create`). Errors are \
         application/problem+json (RFC 9457)."
            .to_owned(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        ProblemDocument::name().into_owned(),
        ProblemDocument::schema(),
    );
    components.security_schemes.insert(
        "api_key".to_owned(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()).into(),
    );
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            secure(operation);
        }
    }
    doc
}

fn secure(operation: &mut Operation) {
    operation.security = Some(vec![SecurityRequirement::new(
        "api_key",
        Vec::<String>::new(),
    )]);
    for (status, description) in PROBLEMS {
        let response = ResponseBuilder::new()
            .description(*description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert(response.into());
    }
}

pub fn router(doc: Arc<OpenApi>) -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(move |_: State<AppState>| {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()).into_response() }
        }),
    )
}
