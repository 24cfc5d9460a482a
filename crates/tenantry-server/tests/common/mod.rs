//! A server of the test's own on a free port, over a fixture's catalog.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Client, Method, Response};
use serde_json::Value;
use tenantry::{NewApiKey, Scope, Tenantry};
use tokio::sync::oneshot;

pub struct Server {
    pub base: String,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(tenantry: &Tenantry) -> Server {
        Server::start_with(tenantry, tenantry_server::Options::default()).await
    }

    pub async fn start_with(tenantry: &Tenantry, options: tenantry_server::Options) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tenantry_server::serve(
            tenantry.clone(),
            listener,
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Server {
            base,
            client,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A request with `key` as its bearer (none: no Authorization header).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("send")
    }

    /// The status and JSON body of a request.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let response = self.call(method, path, key, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server");
        }
    }
}

/// A key's secret.
pub async fn key(t: &Tenantry, name: &str, scopes: &[Scope], tenant: Option<&str>) -> String {
    t.create_api_key(NewApiKey {
        name: name.to_owned(),
        scopes: scopes.to_vec(),
        tenant: tenant.map(str::to_owned),
    })
    .await
    .expect("create key")
    .secret
}
