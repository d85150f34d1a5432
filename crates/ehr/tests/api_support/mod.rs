//! The FHIR API under test, in process: the router over a store with an admin token, and
//! requests that return the status, headers and JSON body (shared by the API test files).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ehr::{ApiConfig, EhrState, Store, router};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Where the API says it is.
pub const BASE: &str = "http://ehr.test/fhir";

#[derive(Clone)]
pub struct Api {
    pub app: Router,
    pub store: Store,
    pub admin: String,
}

impl Api {
    pub async fn new(store: &Store) -> Api {
        let config = ApiConfig {
            base_url: Some(BASE.to_string()),
            ..ApiConfig::default()
        };
        let admin = store
            .create_token("admin", "user/*.* system/*.read", None, None)
            .await
            .unwrap();
        Api {
            app: router(EhrState::new(store.clone(), config)),
            store: store.clone(),
            admin,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                request = request.header("content-type", "application/fhir+json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, value)
    }

    pub async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, value) = self.call(method, uri, Some(&self.admin), body, &[]).await;
        (status, value)
    }
}
