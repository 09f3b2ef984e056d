//! The outbound-spam lockout (product.md §4): every submission the antispam engine classes
//! as spam is recorded in the outbound spam log; a mailbox that sends more than
//! [`MAX_SPAM_PER_HOUR`] within one hour is locked (its password invalidated and every
//! session ended) and a password-reset link goes to the owner's contact address. The reset
//! link's token is kept only as its SHA-256, and works once, for [`RESET_VALID_SECS`].

use crate::{Gestore, GestoreError, hash_password};
use pec_engine::{Effect, Event, EventKind};
use pec_message::TimeRef;
use pec_store::{Commit, NewLock, NewSpamRecord, Store};

/// More spam submissions than this within [`WINDOW_SECS`] lock the mailbox.
pub const MAX_SPAM_PER_HOUR: u64 = 10;
/// The window of the rule.
pub const WINDOW_SECS: i64 = 3600;
/// How long a reset link works.
pub const RESET_VALID_SECS: i64 = 72 * 3600;

/// Whether a mailbox that had `before` spam submissions logged within the window is locked
/// by one more.
pub fn locks(before: u64) -> bool {
    before + 1 > MAX_SPAM_PER_HOUR
}

fn sha256_hex(s: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref())
}

/// The mail that carries the reset link: plain ASCII text in Italian and English.
fn reset_mail(
    provider: &pec_message::build::Provider,
    contact: &str,
    mailbox: &str,
    url: &str,
    now: TimeRef,
    id: &str,
) -> Vec<u8> {
    let hours = RESET_VALID_SECS / 3600;
    format!(
        "From: \"{name}\" <{from}>\r\n\
         To: <{contact}>\r\n\
         Subject: Casella PEC {mailbox} bloccata / PEC mailbox locked\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}@{domain}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n\
         La casella PEC {mailbox} ha inviato piu' di {max} messaggi classificati come\r\n\
         spam in un'ora ed e' stata bloccata: la password non e' piu' valida e tutte le\r\n\
         sessioni sono state chiuse. Le credenziali potrebbero essere state rubate.\r\n\
         Per scegliere una nuova password e sbloccare la casella aprire, entro {hours} ore:\r\n\
         \r\n\
         {url}\r\n\
         \r\n\
         The PEC mailbox {mailbox} sent more than {max} messages classed as spam within\r\n\
         one hour and has been locked: its password no longer works and every session\r\n\
         was closed. Its credentials may have been stolen. To choose a new password and\r\n\
         unlock the mailbox, open the link above within {hours} hours.\r\n\
         \r\n\
         {name}\r\n",
        name = provider.name.replace(['"', '\\', '\r', '\n'], ""),
        from = provider.service_address(),
        domain = provider.service_domain,
        date = now.rfc5322(),
        max = MAX_SPAM_PER_HOUR,
    )
    .into_bytes()
}

impl<S: Store> Gestore<S> {
    /// Records a submission classed as spam in `c` and, when it is one too many, locks the
    /// mailbox in the same commit and queues the reset mail. Returns whether it locked.
    pub(crate) async fn outbound_spam(
        &self,
        now: TimeRef,
        mailbox: &str,
        identificativo: &str,
        spam: &pec_engine::Spam,
        effects: &mut Vec<Effect>,
        c: &mut Commit,
    ) -> Result<bool, GestoreError> {
        let t = now.utc().timestamp();
        let before = self
            .store
            .outbound_spam_count(mailbox, t - WINDOW_SECS + 1)
            .await?;
        c.outbound_spam.push(NewSpamRecord {
            mailbox: mailbox.to_string(),
            time: t,
            identificativo: Some(identificativo.to_string()),
            detail: format!("{} ({})", spam.detail, spam.engine),
        });
        let log = |detail: String| {
            Effect::Log(
                Event::new(
                    now,
                    identificativo,
                    EventKind::Spam,
                    mailbox,
                    Vec::new(),
                    None,
                    &self.settings.provider.name,
                )
                .detail(detail),
            )
        };
        effects.push(log(format!(
            "submission classed as spam, {} within the hour: {} ({})",
            before + 1,
            spam.detail,
            spam.engine
        )));
        if !locks(before) {
            return Ok(false);
        }
        let Some(m) = self.store.mailbox(mailbox).await? else {
            return Ok(false);
        };
        if m.locked {
            return Ok(false);
        }
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = hex::encode(raw);
        c.locks.push(NewLock {
            mailbox: mailbox.to_string(),
            reset_token_sha256: sha256_hex(&token),
            expires: t + RESET_VALID_SECS,
        });
        let why = format!(
            "mailbox locked: more than {MAX_SPAM_PER_HOUR} spam submissions within one hour"
        );
        match m.contact.as_deref() {
            Some(contact) => {
                let url = format!("{}/reset?token={token}", self.settings.public_url);
                let mut id = [0u8; 12];
                rand::fill(&mut id);
                effects.push(Effect::Relay {
                    mail_from: String::new(),
                    rcpt_to: vec![contact.to_string()],
                    message: reset_mail(
                        &self.settings.provider,
                        contact,
                        mailbox,
                        &url,
                        now,
                        &format!("blocco.{}", hex::encode(id)),
                    ),
                });
                effects.push(log(format!("{why}; reset link sent to {contact}")));
            }
            None => effects.push(log(format!(
                "{why}; no contact address: the operator must set a new password"
            ))),
        }
        Ok(true)
    }

    /// Spends a reset token from a reset link: sets `password` and unlocks the mailbox.
    /// Returns the mailbox.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
    ) -> Result<String, GestoreError> {
        check_password(password)?;
        let token = token.trim();
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GestoreError::Invalid("this reset link is not valid".into()));
        }
        let spent = || {
            GestoreError::Invalid(
                "this reset link is not valid: it was used already, it expired, or it was replaced by a newer one".into(),
            )
        };
        let token = sha256_hex(&token.to_ascii_lowercase());
        // The link is checked before the new password is hashed: an unknown token, which
        // anyone can send to this unauthenticated page, then costs one indexed read, not
        // an argon2 hash. The reset below checks the token again in its own write.
        if self
            .store
            .reset_token_owner(&token, self.clock.unix())
            .await?
            .is_none()
        {
            return Err(spent());
        }
        let hash = hash_password(password).await?;
        self.store
            .reset_password(&token, &hash, self.clock.unix())
            .await?
            .ok_or_else(spent)
    }

    /// Sets a password chosen by the operator, unlocking the mailbox.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), GestoreError> {
        check_password(password)?;
        let hash = hash_password(password).await?;
        if self.store.set_password(address.trim(), &hash).await? {
            Ok(())
        } else {
            Err(GestoreError::NotFound(format!(
                "no mailbox {}",
                address.trim()
            )))
        }
    }
}

/// The password rule of every way of setting one.
pub(crate) fn check_password(password: &str) -> Result<(), GestoreError> {
    if password.chars().count() < 8 {
        return Err(GestoreError::Invalid(
            "the password must have at least 8 characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_spam_within_the_hour_locks() {
        // product.md §4: "more than 10 spam messages within one hour".
        assert!(!locks(0));
        assert!(!locks(9), "the tenth does not lock");
        assert!(locks(10), "the eleventh does");
        assert!(locks(25));
    }

    #[test]
    fn the_reset_mail_carries_the_link_and_no_secret_elsewhere() {
        let p = pec_message::build::Provider {
            name: "Gestore \"A\"".into(),
            service_domain: "a.test".into(),
        };
        let now = TimeRef::from_unix(1_700_000_000).unwrap();
        let m = reset_mail(
            &p,
            "owner@home.test",
            "mario@a.test",
            "https://a.test/reset?token=abc",
            now,
            "blocco.1",
        );
        let s = String::from_utf8(m).unwrap();
        assert!(s.is_ascii());
        assert!(s.contains("To: <owner@home.test>\r\n"));
        assert!(s.contains("From: \"Gestore A\" <posta-certificata@a.test>\r\n"));
        assert!(s.contains("\r\nhttps://a.test/reset?token=abc\r\n"));
        assert_eq!(s.matches("token=abc").count(), 1);
        assert!(s.lines().all(|l| l.len() <= 78));
    }
}
