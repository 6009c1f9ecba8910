//! Entry points for fuzz targets (not part of the API).

use crate::web::{Request, ServerNode};

/// Reads `data` as a binary node and then as a request and as a server node: never a panic; and
/// whatever reads writes back to a node that reads as the same value.
pub fn node(data: &[u8]) {
    let Ok(node) = wa_binary::decode(data) else {
        return;
    };
    if let Ok(request) = Request::from_node(&node) {
        let own: crate::Jid = "15551234567@c.us"
            .parse()
            .unwrap_or_else(|_| crate::Jid::server_only(wa_binary::Server::User));
        let again = request.to_node(1, &own);
        assert_eq!(
            Request::from_node(&again).ok(),
            Some(request),
            "a request does not round-trip"
        );
    }
    if let Ok(server) = ServerNode::from_node(&node) {
        assert_eq!(
            ServerNode::from_node(&server.to_node()).ok(),
            Some(server),
            "a server node does not round-trip"
        );
    }
}

/// Reads `data` (as UTF-8) as a phone request both ways: [`crate::phone::PhoneRequest::from_text`]
/// agrees with serde's general way, the value or the error message.
pub fn phone_request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let general =
        serde_json::from_str::<crate::phone::PhoneRequest>(text).map_err(|e| e.to_string());
    let fast = crate::phone::PhoneRequest::from_text(text).map_err(|e| e.to_string());
    assert_eq!(fast, general, "from_text and serde disagree");
}

/// The hand reader of a relay's or a receipt's canonical text, which
/// [`crate::phone::PhoneRequest::from_text`] tries first: `None` where it leaves the text to
/// serde.
pub fn canonical_phone_request(text: &str) -> Option<crate::phone::PhoneRequest> {
    crate::canonical::request(text)
}
