//! The SMTP delivery status notification (RFC 3464) a gestore returns when the outbound queue
//! gives up (pec.md §1.3 PR step 7, §2.14: at most 24 hours) or a next hop refuses a
//! recipient. It is not a PEC message and is never signed.

use pec_message::TimeRef;

/// One failed recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The forward-path.
    pub recipient: String,
    /// Enhanced status code, e.g. `5.1.1` or `4.4.7`.
    pub status: String,
    /// What the next hop said, or why the queue gave up.
    pub diagnostic: String,
}

/// Builds the DSN for `failures` of a message from `original_sender`, with `reporting_mta`
/// the host name of this gestore. `original` contributes only its header block.
pub fn dsn(
    reporting_mta: &str,
    postmaster: &str,
    original_sender: &str,
    failures: &[Failure],
    original: &[u8],
    now: TimeRef,
    message_id: &str,
) -> Vec<u8> {
    let boundary = format!("dsn-{}", message_id.replace(['@', '.'], "-"));
    let headers_end = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(original.len().min(8192));
    let mut m = String::new();
    m.push_str(&format!("From: Mail Delivery System <{postmaster}>\r\n"));
    m.push_str(&format!("To: {original_sender}\r\n"));
    m.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str(&format!("Date: {}\r\n", now.rfc5322()));
    m.push_str(&format!("Message-ID: <{message_id}>\r\n"));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ));
    m.push_str("Il messaggio non e' stato consegnato ai seguenti destinatari.\r\n");
    m.push_str("The message could not be delivered to the following recipients.\r\n\r\n");
    for f in failures {
        m.push_str(&format!("<{}>: {}\r\n", f.recipient, f.diagnostic));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {reporting_mta}\r\n"));
    // No Arrival-Date: it is optional (RFC 3464 §2.2.5) and means the time the message
    // arrived, not now.
    for f in failures {
        let action = if f.status.starts_with('5') || f.status.starts_with("4.4.7") {
            "failed"
        } else {
            "delayed"
        };
        m.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: {action}\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            f.recipient,
            f.status,
            f.diagnostic.replace(['\r', '\n'], " ")
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(&original[..headers_end]);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_names_each_failed_recipient() {
        let d = dsn(
            "mx.a.test",
            "postmaster@a.test",
            "mario@a.test",
            &[Failure {
                recipient: "x@b.test".into(),
                status: "4.4.7".into(),
                diagnostic: "no answer for 24 hours".into(),
            }],
            b"Subject: s\r\nFrom: mario@a.test\r\n\r\nbody",
            TimeRef::from_unix(1_700_000_000).unwrap(),
            "dsn1@a.test",
        );
        let s = String::from_utf8(d).unwrap();
        assert!(s.contains("Final-Recipient: rfc822; x@b.test\r\nAction: failed\r\nStatus: 4.4.7"));
        assert!(s.contains("Subject: s\r\nFrom: mario@a.test\r\n\r\n--dsn"));
        assert!(!s.contains("body"));
    }
}
