//! The OpenAPI 3.1 document of the REST API, served at `/api/openapi.json`. Written by hand
//! next to the handlers; a unit test checks that every route of the router is in it.

use axum::Json;
use serde_json::{Value, json};

/// The paths the document describes (the router must serve exactly these).
pub const PATHS: [&str; 8] = [
    "/api/v1/messages",
    "/api/v1/messages/{identificativo}",
    "/api/v1/folders",
    "/api/v1/folders/{folder}/messages",
    "/api/v1/folders/{folder}/messages/{uid}",
    "/api/v1/folders/{folder}/messages/{uid}/raw",
    "/api/v1/folders/{folder}/messages/{uid}/attachments/{n}",
    "/api/v1/webhook",
];

fn err(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn common() -> Value {
    json!({
        "401": err("Missing or invalid token, or the mailbox is locked or disabled."),
        "429": err("Too many bad tokens from this address."),
        "500": err("Internal error.")
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn param(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema, "description": description})
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

/// The document.
pub fn spec() -> Value {
    let folder = param(
        "folder",
        json!({"type": "string"}),
        "Folder name, percent-encoded (INBOX, Sent, Junk, Trash, …).",
    );
    let uid = param(
        "uid",
        json!({"type": "integer", "minimum": 1}),
        "Message UID in the folder.",
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "PEC gestore REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Send Posta Elettronica Certificata and follow each recipient's receipts. \
                Every token acts for one mailbox and sees only that mailbox. Webhooks: every receipt \
                stored in the mailbox is POSTed as JSON to the webhook URL with the header \
                `X-PEC-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 with the webhook secret over \
                `<unix>.<body>`; `X-PEC-Delivery` identifies the event (it may come twice). \
                Deliveries are retried with backoff for 24 hours until a 2xx answer."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/messages": {"post": {
                "summary": "Send a PEC",
                "operationId": "sendMessage",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewMessage"}}}},
                "responses": with(common(), json!({
                    "201": ok("Accepted: the acceptance receipt is in the sender's INBOX.", json!({"$ref": "#/components/schemas/Sent"})),
                    "422": ok("Not accepted by the formal checks (a non-accettazione was issued).", json!({"$ref": "#/components/schemas/Sent"})),
                    "400": err("The body is not a valid message (a sentence says why)."),
                    "413": err("The body is too large."),
                    "503": err("A content scanner is unavailable; retry later.")
                }))
            }},
            "/api/v1/messages/{identificativo}": {"get": {
                "summary": "Per-recipient status and receipts of a sent PEC",
                "operationId": "messageStatus",
                "parameters": [param("identificativo", json!({"type": "string"}), "The PEC identificativo returned by sendMessage.")],
                "responses": with(common(), json!({
                    "200": ok("The transaction.", json!({"$ref": "#/components/schemas/Timeline"})),
                    "404": err("No such transaction in this mailbox.")
                }))
            }},
            "/api/v1/folders": {"get": {
                "summary": "Folders and quota",
                "operationId": "folders",
                "responses": with(common(), json!({"200": ok("Folders.", json!({"type": "object", "properties": {
                    "folders": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "messages": {"type": "integer"}, "unseen": {"type": "integer"}}}},
                    "quota_bytes": {"type": "integer", "description": "0: no limit"},
                    "used_bytes": {"type": "integer"}}}))}))
            }},
            "/api/v1/folders/{folder}/messages": {"get": {
                "summary": "A page of messages and receipts, newest first",
                "operationId": "listMessages",
                "parameters": [folder.clone(),
                    query("offset", json!({"type": "integer", "default": 0}), "Messages to skip."),
                    query("limit", json!({"type": "integer", "default": 50, "maximum": 500}), "Page size."),
                    query("from", json!({"type": "string"}), "Text the From field contains."),
                    query("subject", json!({"type": "string"}), "Text the subject contains."),
                    query("since", json!({"type": "integer"}), "Stored at or after (Unix seconds)."),
                    query("before", json!({"type": "integer"}), "Stored before (Unix seconds)."),
                    query("identificativo", json!({"type": "string"}), "Only this transaction."),
                    query("after_uid", json!({"type": "integer"}), "Only messages with a UID above this one (new arrivals since the last poll).")],
                "responses": with(common(), json!({
                    "200": ok("The page.", json!({"$ref": "#/components/schemas/Page"})),
                    "400": err("Bad parameter.")
                }))
            }},
            "/api/v1/folders/{folder}/messages/{uid}": {"get": {
                "summary": "One message parsed: the original of an envelope, daticert.xml, the signature verdict",
                "operationId": "getMessage",
                "parameters": [folder.clone(), uid.clone()],
                "responses": with(common(), json!({
                    "200": ok("The message.", json!({"type": "object", "properties": {
                        "message": {"$ref": "#/components/schemas/Listed"},
                        "view": {"$ref": "#/components/schemas/View"}}})),
                    "404": err("No such message.")
                }))
            }},
            "/api/v1/folders/{folder}/messages/{uid}/raw": {"get": {
                "summary": "One message's stored bytes (an envelope or receipt keeps its signature)",
                "operationId": "getRawMessage",
                "parameters": [folder.clone(), uid.clone()],
                "responses": with(common(), json!({
                    "200": {"description": "The bytes.", "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": err("No such message.")
                }))
            }},
            "/api/v1/folders/{folder}/messages/{uid}/attachments/{n}": {"get": {
                "summary": "One attachment of the shown message (the original's, for an envelope)",
                "operationId": "getAttachment",
                "parameters": [folder, uid, param("n", json!({"type": "integer", "minimum": 0}), "Attachment index (view.attachments[].index).")],
                "responses": with(common(), json!({
                    "200": {"description": "The decoded bytes.", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": err("No such message or attachment.")
                }))
            }},
            "/api/v1/webhook": {
                "get": {"summary": "The webhook URL", "operationId": "getWebhook",
                    "responses": with(common(), json!({"200": ok("The URL, or null.", json!({"type": "object", "properties": {"url": {"type": ["string", "null"]}}}))}))},
                "put": {"summary": "Set the webhook; returns a new signing secret", "operationId": "setWebhook",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string", "format": "uri"}}}}}},
                    "responses": with(common(), json!({
                        "200": ok("Set.", json!({"type": "object", "properties": {"url": {"type": "string"}, "secret": {"type": "string"}}})),
                        "400": err("Not an http(s) URL.")}))},
                "delete": {"summary": "Remove the webhook and its pending deliveries", "operationId": "deleteWebhook",
                    "responses": with(common(), json!({"204": {"description": "Removed."}}))}
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A token from `pec admin token create ADDRESS`."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "NewMessage": {"type": "object", "required": ["to"], "additionalProperties": false, "properties": {
                    "to": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1},
                    "cc": {"type": "array", "items": {"type": "string", "format": "email"}},
                    "subject": {"type": "string"},
                    "body": {"type": "string", "description": "Plain text."},
                    "receipt": {"type": "string", "enum": ["completa", "breve", "sintetica"], "default": "completa"},
                    "attachments": {"type": "array", "items": {"type": "object", "required": ["name", "content_base64"], "properties": {
                        "name": {"type": "string"}, "content_type": {"type": "string"}, "content_base64": {"type": "string", "contentEncoding": "base64"}}}}}},
                "Sent": {"type": "object", "properties": {
                    "identificativo": {"type": "string"}, "accepted": {"type": "boolean"},
                    "refusal": {"type": ["string", "null"]}, "status": {"type": "string", "description": "URL of messageStatus"}}},
                "Listed": {"type": "object", "properties": {
                    "folder": {"type": "string"}, "uid": {"type": "integer"}, "uidvalidity": {"type": "integer"},
                    "date": {"type": "string", "format": "date-time"}, "subject": {"type": ["string", "null"]},
                    "kind": {"type": "string", "description": "posta-certificata, accettazione, non-accettazione, presa-in-carico, avvenuta-consegna, errore-consegna, preavviso-errore-consegna, rilevazione-virus, anomalia, ordinaria"},
                    "identificativo": {"type": ["string", "null"]}, "size": {"type": "integer"},
                    "from": {"type": "string"}, "flags": {"type": "array", "items": {"type": "string"}}}},
                "Page": {"type": "object", "properties": {"total": {"type": "integer"}, "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Listed"}}}},
                "Step": {"type": "object", "properties": {
                    "kind": {"type": "string"}, "time": {"type": ["string", "null"], "format": "date-time"},
                    "detail": {"type": ["string", "null"], "description": "Receipt kind, failure reason, or 12h/24h"},
                    "receipt": {"type": ["object", "null"], "properties": {"folder": {"type": "string"}, "uid": {"type": "integer"}}}}},
                "Timeline": {"type": "object", "properties": {
                    "identificativo": {"type": "string"}, "subject": {"type": ["string", "null"]},
                    "acceptance": {"type": "string", "enum": ["accettato", "non-accettato", "in-attesa"]},
                    "refusal": {"type": ["string", "null"]},
                    "original": {"type": ["object", "null"], "properties": {"folder": {"type": "string"}, "uid": {"type": "integer"}}},
                    "recipients": {"type": "array", "items": {"type": "object", "properties": {
                        "address": {"type": "string"}, "tipo": {"type": "string", "enum": ["certificato", "esterno", "sconosciuto"]},
                        "status": {"type": "string", "enum": ["in-corso", "consegnato", "non-consegnato", "esterno"]},
                        "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}}}}},
                    "receipts": {"type": "array", "items": {"$ref": "#/components/schemas/Listed"}}}},
                "View": {"type": "object", "properties": {
                    "kind": {"type": "string"}, "from_envelope": {"type": "boolean"}, "from": {"type": "string"},
                    "to": {"type": "array", "items": {"type": "string"}}, "cc": {"type": "array", "items": {"type": "string"}},
                    "subject": {"type": "string"}, "date": {"type": ["string", "null"]},
                    "text": {"type": ["string", "null"]}, "html": {"type": ["string", "null"], "description": "Sanitised"},
                    "attachments": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "name": {"type": "string"}, "content_type": {"type": "string"}, "size": {"type": "integer"}}}},
                    "daticert": {"type": ["object", "null"]},
                    "signature": {"type": ["object", "null"], "properties": {
                        "present": {"type": "boolean"}, "valid": {"type": "boolean"}, "provider": {"type": ["string", "null"]},
                        "signer": {"type": ["string", "null"]}, "problems": {"type": "array", "items": {"type": "string"}}}}}}
            }
        }
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_described_with_responses() {
        let s = spec();
        let paths = s["paths"].as_object().expect("paths");
        assert_eq!(paths.len(), PATHS.len());
        for p in PATHS {
            let ops = paths.get(p).and_then(Value::as_object).expect(p);
            for (method, op) in ops {
                assert!(op["responses"]["401"].is_object(), "{method} {p} lacks 401");
                assert!(op["summary"].is_string(), "{method} {p}");
            }
        }
        // The router uses the same paths (with {id} for the identificativo).
        let src = include_str!("mod.rs");
        for p in PATHS {
            let routed = p.replace("{identificativo}", "{id}");
            assert!(
                src.contains(&format!("\"{routed}\"")),
                "{routed} not routed"
            );
        }
    }
}
