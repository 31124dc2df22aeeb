//! A small HTTP client for raftkv nodes (used by `demo`, `bench` and the
//! tests).

use crate::http::{REQUEST_ID_HEADER, StatusAnswer, WriteAnswer};
use std::time::Duration;

/// What a call gave.
#[derive(Debug)]
pub enum Outcome<T> {
    /// It worked.
    Ok(T),
    /// A 404 for a read.
    Absent,
    /// An error answer (status and body) or a failed connection (status 0).
    Failed(u16, String),
}

/// A client for one node.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// The node's HTTP address.
    pub addr: String,
}

impl Client {
    /// A client for the node at `addr` (`host:port`). It lets go of a
    /// pooled connection after 30 s unused, before a node's default
    /// `http_idle_timeout` (60 s) closes it from the other end: reusing a
    /// connection just as the server closes it fails the request.
    pub fn new(addr: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Self { http, addr: addr.into() }
    }

    async fn outcome<T: serde::de::DeserializeOwned>(
        answer: Result<reqwest::Response, reqwest::Error>,
    ) -> Outcome<T> {
        match answer {
            Ok(answer) if answer.status().is_success() => match answer.json().await {
                Ok(value) => Outcome::Ok(value),
                Err(error) => Outcome::Failed(200, error.to_string()),
            },
            Ok(answer) if answer.status().as_u16() == 404 => Outcome::Absent,
            Ok(answer) => Outcome::Failed(answer.status().as_u16(), answer.text().await.unwrap_or_default()),
            Err(error) => Outcome::Failed(0, error.to_string()),
        }
    }

    /// `PUT /kv/{key}`, with a request id if given.
    pub async fn put(&self, key: &str, value: Vec<u8>, request_id: Option<&str>) -> Outcome<WriteAnswer> {
        let mut request = self.http.put(format!("http://{}/kv/{key}", self.addr)).body(value);
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID_HEADER, id);
        }
        Self::outcome(request.send().await).await
    }

    /// `DELETE /kv/{key}`.
    pub async fn delete(&self, key: &str) -> Outcome<WriteAnswer> {
        Self::outcome(self.http.delete(format!("http://{}/kv/{key}", self.addr)).send().await).await
    }

    /// `GET /kv/{key}?consistency=…`.
    pub async fn get(&self, key: &str, consistency: &str) -> Outcome<Vec<u8>> {
        let url = format!("http://{}/kv/{key}?consistency={consistency}", self.addr);
        match self.http.get(url).send().await {
            Ok(answer) if answer.status().is_success() => match answer.bytes().await {
                Ok(bytes) => Outcome::Ok(bytes.to_vec()),
                Err(error) => Outcome::Failed(200, error.to_string()),
            },
            Ok(answer) if answer.status().as_u16() == 404 => Outcome::Absent,
            Ok(answer) => Outcome::Failed(answer.status().as_u16(), answer.text().await.unwrap_or_default()),
            Err(error) => Outcome::Failed(0, error.to_string()),
        }
    }

    /// `GET /cluster/status`.
    pub async fn status(&self) -> Option<StatusAnswer> {
        match Self::outcome(self.http.get(format!("http://{}/cluster/status", self.addr)).send().await).await
        {
            Outcome::Ok(status) => Some(status),
            _ => None,
        }
    }
}
