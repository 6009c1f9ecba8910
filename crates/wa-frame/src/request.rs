//! Typed JSON requests the client sends in text frames (PROTOCOL.md §2, §2.4–2.6).
//!
//! Each request is a JSON array; [`Request::to_json`] writes it and [`Request::from_json`] reads
//! it back (for test servers), keeping anything it does not recognise as [`Request::Other`].

use serde_json::{Value, json};

use crate::tag::Tag;

/// A JSON request from the client.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// `["admin","init",[v1,v2,v3],[long,short(,version)],clientId,true]`: start a connection.
    Init(Init),
    /// `["admin","Conn","reref"]`: ask for a new QR ref after the last one expired.
    Reref,
    /// `["admin","login",clientToken,serverToken,clientId,"takeover"|"reconnect"(,jid)]`:
    /// restore a session.
    Login(Login),
    /// `["admin","challenge",answer,serverToken,clientId]`: answer a server challenge.
    Challenge(ChallengeAnswer),
    /// `["admin","Conn","disconnect"]`: log out (sent with the tag `goodbye`).
    Disconnect,
    /// `["admin","test"]`: is the phone reachable? Answered by `["Pong",bool]`.
    Test,
    /// `["query", ...]`: a JSON query; the elements after `"query"`.
    Query(Vec<Value>),
    /// `["action", ...]`: a JSON action; the elements after `"action"`.
    Action(Vec<Value>),
    /// Anything else, kept as it is.
    Other(Value),
}

/// The `admin init` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Init {
    /// The web client version `[v1, v2, v3]`; `[2, 2142, 12]` was the last one used.
    pub version: [u64; 3],
    /// How the browser describes itself.
    pub browser: Browser,
    /// Base64 of 16 random bytes, kept for the whole session.
    pub client_id: String,
    /// The sixth element: `true` in every official request.
    pub last: bool,
    /// A seventh element, this project's extension: an object of client capabilities (for
    /// example the end-to-end identity of a multi-device client). Official and legacy clients
    /// never send it.
    pub features: Option<serde_json::Map<String, Value>>,
}

/// The browser description of `admin init`: `[long, short]` or `[long, short, version]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Browser {
    /// Long description, e.g. the operating system (`"Mac OS"`).
    pub long: String,
    /// Short description, e.g. the browser (`"Chrome"`).
    pub short: String,
    /// An optional third element, e.g. a version.
    pub version: Option<String>,
}

/// The `admin login` request that restores a saved session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// `clientToken` from the last `Conn`.
    pub client_token: String,
    /// `serverToken` from the last `Conn`.
    pub server_token: String,
    /// The client id of `admin init`.
    pub client_id: String,
    /// Takeover (user-initiated) or reconnect (automatic).
    pub mode: LoginMode,
}

/// How a login restores the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginMode {
    /// `"takeover"`: take the session over from any other client.
    Takeover,
    /// `"reconnect"` with the own JID: an automatic reconnect.
    Reconnect {
        /// The own JID (`wid` of the `Conn`).
        own_jid: String,
    },
}

/// The `admin challenge` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeAnswer {
    /// `base64(HMAC-SHA256(mac_key, base64decode(challenge)))`.
    pub answer: String,
    /// `serverToken` from the last `Conn`.
    pub server_token: String,
    /// The client id.
    pub client_id: String,
}

impl Request {
    /// `["query","exist",jid]`: does this number use WhatsApp?
    pub fn query_exist(jid: &str) -> Self {
        Self::Query(vec![json!("exist"), json!(jid)])
    }

    /// `["query","Status",jid]`: a user's status text.
    pub fn query_status(jid: &str) -> Self {
        Self::Query(vec![json!("Status"), json!(jid)])
    }

    /// `["query","ProfilePicThumb",jid]`: a profile picture URL.
    pub fn query_profile_pic(jid: &str) -> Self {
        Self::Query(vec![json!("ProfilePicThumb"), json!(jid)])
    }

    /// `["query","GroupMetadata",jid]`: a group's subject and participants.
    pub fn query_group_metadata(jid: &str) -> Self {
        Self::Query(vec![json!("GroupMetadata"), json!(jid)])
    }

    /// `["query","mediaConn"]`: media upload hosts and auth.
    pub fn query_media_conn() -> Self {
        Self::Query(vec![json!("mediaConn")])
    }

    /// `["action","presence","subscribe",jid]`: receive a contact's presence updates.
    pub fn presence_subscribe(jid: &str) -> Self {
        Self::Action(vec![json!("presence"), json!("subscribe"), json!(jid)])
    }

    /// The request as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Init(init) => {
                let mut browser = vec![json!(init.browser.long), json!(init.browser.short)];
                browser.extend(init.browser.version.iter().map(|v| json!(v)));
                let mut items = vec![
                    json!("admin"),
                    json!("init"),
                    json!(init.version),
                    json!(browser),
                    json!(init.client_id),
                    json!(init.last),
                ];
                if let Some(features) = &init.features {
                    items.push(Value::Object(features.clone()));
                }
                Value::Array(items)
            }
            Self::Reref => json!(["admin", "Conn", "reref"]),
            Self::Login(login) => {
                let mut items = vec![
                    json!("admin"),
                    json!("login"),
                    json!(login.client_token),
                    json!(login.server_token),
                    json!(login.client_id),
                ];
                match &login.mode {
                    LoginMode::Takeover => items.push(json!("takeover")),
                    LoginMode::Reconnect { own_jid } => {
                        items.extend([json!("reconnect"), json!(own_jid)]);
                    }
                }
                Value::Array(items)
            }
            Self::Challenge(c) => {
                json!(["admin", "challenge", c.answer, c.server_token, c.client_id])
            }
            Self::Disconnect => json!(["admin", "Conn", "disconnect"]),
            Self::Test => json!(["admin", "test"]),
            Self::Query(args) => prefixed("query", args),
            Self::Action(args) => prefixed("action", args),
            Self::Other(value) => value.clone(),
        }
    }

    /// The text frame `tag,,JSON`.
    pub fn to_frame(&self, tag: &Tag<'_>) -> String {
        format!("{tag},,{}", self.to_json())
    }

    /// Reads a request (for test servers). Anything that is not exactly one of the known
    /// forms is [`Request::Other`]: nothing is lost, nothing fails.
    pub fn from_json(value: Value) -> Self {
        match Self::known(&value) {
            Some(request) => request,
            None => Self::Other(value),
        }
    }

    fn known(value: &Value) -> Option<Self> {
        let items = value.as_array()?;
        let (first, rest) = items.split_first()?;
        match first.as_str()? {
            "query" => return Some(Self::Query(rest.to_vec())),
            "action" => return Some(Self::Action(rest.to_vec())),
            "admin" => {}
            _ => return None,
        }
        let strs: Option<Vec<&str>> = rest.iter().map(Value::as_str).collect();
        match (rest, strs.as_deref()) {
            (_, Some(["Conn", "reref"])) => Some(Self::Reref),
            (_, Some(["Conn", "disconnect"])) => Some(Self::Disconnect),
            (_, Some(["test"])) => Some(Self::Test),
            (_, Some(["challenge", answer, server_token, client_id])) => {
                Some(Self::Challenge(ChallengeAnswer {
                    answer: (*answer).to_owned(),
                    server_token: (*server_token).to_owned(),
                    client_id: (*client_id).to_owned(),
                }))
            }
            (_, Some(["login", client_token, server_token, client_id, mode @ ..])) => {
                let mode = match mode {
                    ["takeover"] => LoginMode::Takeover,
                    ["reconnect", jid] => LoginMode::Reconnect {
                        own_jid: (*jid).to_owned(),
                    },
                    _ => return None,
                };
                Some(Self::Login(Login {
                    client_token: (*client_token).to_owned(),
                    server_token: (*server_token).to_owned(),
                    client_id: (*client_id).to_owned(),
                    mode,
                }))
            }
            ([init, version, browser, client_id, last, features @ ..], _)
                if init == "init" && features.len() <= 1 =>
            {
                let features = match features {
                    [Value::Object(map)] => Some(map.clone()),
                    [] => None,
                    _ => return None,
                };
                Some(Self::Init(Init {
                    version: version_of(version)?,
                    browser: browser_of(browser)?,
                    client_id: client_id.as_str()?.to_owned(),
                    last: last.as_bool()?,
                    features,
                }))
            }
            _ => None,
        }
    }
}

fn prefixed(head: &str, args: &[Value]) -> Value {
    let mut items = Vec::with_capacity(args.len() + 1);
    items.push(json!(head));
    items.extend_from_slice(args);
    Value::Array(items)
}

fn version_of(value: &Value) -> Option<[u64; 3]> {
    match value.as_array()?.as_slice() {
        [a, b, c] => Some([a.as_u64()?, b.as_u64()?, c.as_u64()?]),
        _ => None,
    }
}

fn browser_of(value: &Value) -> Option<Browser> {
    let strs: Option<Vec<&str>> = value.as_array()?.iter().map(Value::as_str).collect();
    match strs?.as_slice() {
        [long, short] => Some(Browser {
            long: (*long).to_owned(),
            short: (*short).to_owned(),
            version: None,
        }),
        [long, short, version] => Some(Browser {
            long: (*long).to_owned(),
            short: (*short).to_owned(),
            version: Some((*version).to_owned()),
        }),
        _ => None,
    }
}
