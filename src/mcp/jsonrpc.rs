//! JSON-RPC 2.0 wire types (<https://www.jsonrpc.org/specification>).

use serde::Serialize;
use serde_json::{Map, Value};

/// A request id: a string or an integer (JSON-RPC 2.0 §4; MCP forbids null).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Id {
    Number(i64),
    String(String),
}

/// One message read from the wire.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Incoming {
    Request {
        id: Id,
        method: String,
        params: Option<Map<String, Value>>,
    },
    Notification {
        method: String,
        params: Option<Map<String, Value>>,
    },
    /// A response to a server-initiated request. We send none, so these are
    /// acknowledged and dropped.
    Response,
}

/// The error codes this server sends (JSON-RPC 2.0 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    /// A mirrored header is missing or disagrees with the body
    /// (MCP 2026-07-28, Streamable HTTP "Server Validation").
    HeaderMismatch,
    /// The requested protocol revision is not served here
    /// (MCP 2026-07-28, versioning "Protocol Version Negotiation").
    UnsupportedProtocolVersion,
}

impl ErrorCode {
    pub(crate) fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::HeaderMismatch => -32020,
            ErrorCode::UnsupportedProtocolVersion => -32022,
        }
    }
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A response object: exactly one of `result` or `error`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outgoing {
    pub(crate) id: Option<Id>,
    pub(crate) body: Result<Value, RpcError>,
}

impl Outgoing {
    pub(crate) fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("jsonrpc".into(), Value::from("2.0"));
        // A response to an unidentifiable request carries `"id": null`.
        obj.insert(
            "id".into(),
            match &self.id {
                Some(Id::Number(n)) => Value::from(*n),
                Some(Id::String(s)) => Value::from(s.clone()),
                None => Value::Null,
            },
        );
        match &self.body {
            Ok(result) => obj.insert("result".into(), result.clone()),
            Err(error) => obj.insert(
                "error".into(),
                serde_json::to_value(error).unwrap_or(Value::Null),
            ),
        };
        Value::Object(obj)
    }
}

/// Why a value is not a JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Invalid {
    /// The id, when one could be read, so the error can be correlated.
    pub(crate) id: Option<Id>,
    pub(crate) reason: &'static str,
}

/// Classifies one JSON value as a message (JSON-RPC 2.0 §4, §5).
pub(crate) fn parse_message(value: Value) -> Result<Incoming, Invalid> {
    let Value::Object(mut obj) = value else {
        return Err(Invalid {
            id: None,
            reason: "a JSON-RPC message must be an object",
        });
    };
    let id = match obj.remove("id") {
        None => None,
        Some(Value::String(s)) => Some(Id::String(s)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(n) => Some(Id::Number(n)),
            None => {
                return Err(Invalid {
                    id: None,
                    reason: "id must be a string or an integer",
                });
            }
        },
        Some(_) => {
            return Err(Invalid {
                id: None,
                reason: "id must be a string or an integer",
            });
        }
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Invalid {
            id,
            reason: "jsonrpc must be \"2.0\"",
        });
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => {
            return Err(Invalid {
                id,
                reason: "method must be a string",
            });
        }
        None => {
            if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
                return Ok(Incoming::Response);
            }
            return Err(Invalid {
                id,
                reason: "method is required",
            });
        }
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p),
        Some(_) => {
            // MCP params are always objects; by-position params are not used.
            return Err(Invalid {
                id,
                reason: "params must be an object",
            });
        }
    };
    Ok(match id {
        Some(id) => Incoming::Request { id, method, params },
        None => Incoming::Notification { method, params },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_messages() {
        let cases = [
            (
                json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
                Ok(Incoming::Request {
                    id: Id::Number(1),
                    method: "ping".into(),
                    params: None,
                }),
            ),
            (
                json!({"jsonrpc":"2.0","id":"a","method":"x","params":{}}),
                Ok(Incoming::Request {
                    id: Id::String("a".into()),
                    method: "x".into(),
                    params: Some(Map::new()),
                }),
            ),
            (
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
                Ok(Incoming::Notification {
                    method: "notifications/initialized".into(),
                    params: None,
                }),
            ),
            (
                json!({"jsonrpc":"2.0","id":3,"result":{}}),
                Ok(Incoming::Response),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_message(input.clone()), expected, "{input}");
        }
    }

    #[test]
    fn rejects_malformed_messages_keeping_the_id_when_readable() {
        let cases = [
            (json!([1]), None),
            (json!("x"), None),
            (json!({"id":1,"method":"ping"}), Some(Id::Number(1))),
            (
                json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
                Some(Id::Number(1)),
            ),
            (json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}), None),
            (json!({"jsonrpc":"2.0","id":null,"method":"ping"}), None),
            (json!({"jsonrpc":"2.0","id":{},"method":"ping"}), None),
            (
                json!({"jsonrpc":"2.0","id":2,"method":7}),
                Some(Id::Number(2)),
            ),
            (json!({"jsonrpc":"2.0","id":2}), Some(Id::Number(2))),
            (
                json!({"jsonrpc":"2.0","id":2,"method":"x","params":[1]}),
                Some(Id::Number(2)),
            ),
        ];
        for (input, id) in cases {
            let err = parse_message(input.clone()).expect_err(&input.to_string());
            assert_eq!(err.id, id, "{input}");
        }
    }

    #[test]
    fn responses_serialise_with_null_id_when_unknown() {
        let out = Outgoing {
            id: None,
            body: Err(RpcError::new(ErrorCode::ParseError, "bad")),
        };
        assert_eq!(
            out.to_json(),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}})
        );
    }
}
