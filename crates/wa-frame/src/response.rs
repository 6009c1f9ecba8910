//! Responses to requests: JSON objects with a `status` code, matched to their request by tag.
//!
//! The frame alone does not say which request a response answers (the tag does, and only the
//! session knows its tags), so [`Response`] is untyped and the typed views —
//! [`InitResponse`], [`RerefResponse`], [`LoginStatus`] — are made from it by the caller.

use serde_json::{Map, Value, json};
use thiserror::Error;

/// A response object: its `status` (when it is a number that fits) and every other field.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The `status` code, e.g. 200.
    pub status: Option<u16>,
    /// The other fields, as received.
    pub fields: Map<String, Value>,
}

impl Response {
    /// The response held by a JSON object: its `status` (when a number that fits `u16`) and
    /// every other field.
    pub fn from_map(mut fields: Map<String, Value>) -> Self {
        let status = fields
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|status| u16::try_from(status).ok());
        if status.is_some() {
            fields.remove("status");
        }
        Self { status, fields }
    }

    pub(crate) fn to_map(&self) -> Map<String, Value> {
        let mut map = self.fields.clone();
        if let Some(status) = self.status {
            map.insert("status".to_owned(), json!(status));
        }
        map
    }

    /// A field other than `status`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    fn require_status(&self) -> Result<u16, ResponseError> {
        self.status.ok_or(ResponseError::MissingStatus)
    }

    fn string(&self, field: &'static str) -> Result<Option<String>, ResponseError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ResponseError::BadField { field }),
        }
    }

    fn u64(&self, field: &'static str) -> Result<Option<u64>, ResponseError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or(ResponseError::BadField { field }),
        }
    }
}

/// The answer to `admin init`: `{"status":200,"ref":"...","ttl":20000,...}`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InitResponse {
    /// The QR ref.
    pub r#ref: String,
    /// How long the ref is valid, in milliseconds.
    pub ttl: Option<u64>,
    /// Whether the client should update.
    pub update: Option<bool>,
    /// The current web client version, e.g. `0.2.7314`.
    pub curr: Option<String>,
    /// The server time in Unix milliseconds.
    pub time: Option<f64>,
    /// Every other field, as received.
    pub extra: Map<String, Value>,
}

impl InitResponse {
    /// Reads the answer to `admin init`.
    ///
    /// # Errors
    ///
    /// [`ResponseError::Status`] for a status other than 200, [`ResponseError::MissingStatus`],
    /// and [`ResponseError::MissingField`] for a 200 without `ref` (what an outdated client
    /// version gets).
    pub fn from_response(response: &Response) -> Result<Self, ResponseError> {
        let status = response.require_status()?;
        if status != 200 {
            return Err(ResponseError::Status { status });
        }
        let r#ref = response
            .string("ref")?
            .ok_or(ResponseError::MissingField { field: "ref" })?;
        let update = match response.get("update") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(update)) => Some(*update),
            Some(_) => return Err(ResponseError::BadField { field: "update" }),
        };
        let time = match response.get("time") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_f64()
                    .ok_or(ResponseError::BadField { field: "time" })?,
            ),
        };
        let mut extra = response.fields.clone();
        for known in ["ref", "ttl", "update", "curr", "time"] {
            extra.remove(known);
        }
        Ok(Self {
            r#ref,
            ttl: response.u64("ttl")?,
            update,
            curr: response.string("curr")?,
            time,
            extra,
        })
    }
}

/// The answer to `["admin","Conn","reref"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RerefResponse {
    /// 200: show this new ref.
    NewRef {
        /// The new QR ref.
        r#ref: String,
        /// How long it is valid, in milliseconds.
        ttl: Option<u64>,
    },
    /// 304: keep showing the current ref.
    Unchanged {
        /// The ref, if the server repeated it.
        r#ref: Option<String>,
        /// How long it is valid, in milliseconds.
        ttl: Option<u64>,
    },
    /// 429: no more refs; give up linking.
    Refused,
}

impl RerefResponse {
    /// Reads the answer to a reref.
    ///
    /// # Errors
    ///
    /// [`ResponseError::Status`] for a status other than 200, 304 and 429,
    /// [`ResponseError::MissingStatus`], and [`ResponseError::MissingField`] for a 200 without
    /// `ref`.
    pub fn from_response(response: &Response) -> Result<Self, ResponseError> {
        match response.require_status()? {
            200 => Ok(Self::NewRef {
                r#ref: response
                    .string("ref")?
                    .ok_or(ResponseError::MissingField { field: "ref" })?,
                ttl: response.u64("ttl")?,
            }),
            304 => Ok(Self::Unchanged {
                r#ref: response.string("ref")?,
                ttl: response.u64("ttl")?,
            }),
            429 => Ok(Self::Refused),
            status => Err(ResponseError::Status { status }),
        }
    }
}

/// The answer to `admin login` (takeover or reconnect), PROTOCOL.md §2.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginStatus {
    /// 200: logged in.
    Ok,
    /// 401: unpaired from the phone: forget the session, link again.
    Unpaired,
    /// 403: access denied; `tos >= 2` is a terms-of-service ban.
    AccessDenied {
        /// The `tos` field, if present.
        tos: Option<u64>,
    },
    /// 405: already logged in.
    AlreadyLoggedIn,
    /// 409: logged in from another location.
    LoggedInElsewhere,
    /// 419: the session expired (after about 30 days).
    Expired,
    /// 500: server error; retry with backoff.
    ServerError,
    /// Any other status.
    Other(u16),
}

impl LoginStatus {
    /// Reads the answer to a login.
    ///
    /// # Errors
    ///
    /// [`ResponseError::MissingStatus`] when there is no status code.
    pub fn from_response(response: &Response) -> Result<Self, ResponseError> {
        Ok(match response.require_status()? {
            200 => Self::Ok,
            401 => Self::Unpaired,
            403 => Self::AccessDenied {
                tos: response.u64("tos")?,
            },
            405 => Self::AlreadyLoggedIn,
            409 => Self::LoggedInElsewhere,
            419 => Self::Expired,
            500 => Self::ServerError,
            other => Self::Other(other),
        })
    }

    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Unpaired => 401,
            Self::AccessDenied { .. } => 403,
            Self::AlreadyLoggedIn => 405,
            Self::LoggedInElsewhere => 409,
            Self::Expired => 419,
            Self::ServerError => 500,
            Self::Other(code) => code,
        }
    }
}

/// Why a response is not the expected answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The response has no numeric `status`.
    #[error("response has no status code")]
    MissingStatus,
    /// The status code is not one this request can get.
    #[error("unexpected status {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// A required field is missing.
    #[error("response has no {field:?}")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("response field {field:?} has the wrong type")]
    BadField {
        /// The field.
        field: &'static str,
    },
}
