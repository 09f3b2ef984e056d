//! Mailboxes as the operator and their owners manage them: creation in a local domain, the
//! service mailbox, and the settings (ordinary-mail policy, pec.md §5.6; spam policy and
//! contact address, product.md §4), each checked before the store sees it.

use crate::lockout::check_password;
use crate::{Gestore, GestoreError, hash_password};
use pec_store::{MailboxSettings, Store, StoreError};

/// The settings with every given value checked and normalised.
fn checked(mut s: MailboxSettings) -> Result<MailboxSettings, GestoreError> {
    if let Some(p) = &s.ordinary_policy
        && !matches!(p.as_str(), "default" | "anomalia" | "refuse")
    {
        return Err(GestoreError::Invalid(format!(
            "ordinary-mail policy {p:?} must be anomalia, refuse or default"
        )));
    }
    if let Some(p) = &s.spam_policy
        && !matches!(p.as_str(), "junk" | "delete")
    {
        return Err(GestoreError::Invalid(format!(
            "spam policy {p:?} must be junk or delete"
        )));
    }
    if let Some(c) = &mut s.contact {
        *c = c.trim().to_string();
        let ok = c.is_empty()
            || c.rsplit_once('@').is_some_and(|(l, d)| {
                !l.is_empty()
                    && d.contains('.')
                    && c.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"<>\"(),;:[]".contains(&b))
            });
        if !ok {
            return Err(GestoreError::Invalid(format!(
                "contact {c:?} is not an e-mail address"
            )));
        }
    }
    Ok(s)
}

impl<S: Store> Gestore<S> {
    /// Creates a mailbox in a local domain with the settings given (the others default:
    /// the gestore's ordinary-mail policy, spam to the junk folder, no contact address).
    pub async fn add_mailbox(
        &self,
        address: &str,
        password: &str,
        quota_bytes: u64,
        settings: MailboxSettings,
    ) -> Result<(), GestoreError> {
        let settings = checked(settings)?;
        let address = address.trim().to_ascii_lowercase();
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(GestoreError::Invalid(format!(
                "{address} is not an e-mail address"
            )));
        };
        if local.is_empty()
            || !local
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        {
            return Err(GestoreError::Invalid(format!(
                "{address} is not a valid address"
            )));
        }
        if !self.is_local_domain(domain) {
            return Err(GestoreError::Invalid(format!(
                "{domain} is not a domain of this gestore ({})",
                self.settings.domains.join(", ")
            )));
        }
        check_password(password)?;
        let hash = hash_password(password).await?;
        self.store
            .create_mailbox(pec_store::NewMailbox {
                address,
                password_hash: hash,
                quota_bytes,
                ordinary_policy: settings.ordinary_policy.unwrap_or_else(|| "default".into()),
                service: false,
                spam_policy: settings.spam_policy.unwrap_or_else(|| "junk".into()),
                contact: settings.contact,
            })
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(what) => {
                    GestoreError::Invalid(format!("{what} already exists"))
                }
                other => other.into(),
            })
    }

    /// Makes sure the service mailbox (`posta-certificata@<service domain>`, the
    /// `mailReceipt`) exists.
    pub async fn ensure_service_mailbox(&self) -> Result<(), GestoreError> {
        let address = self.settings.provider.service_address();
        if self.store.mailbox(&address).await?.is_some() {
            return Ok(());
        }
        match self
            .store
            .create_mailbox(pec_store::NewMailbox {
                address,
                password_hash: String::new(),
                quota_bytes: 0,
                ordinary_policy: "anomalia".into(),
                service: true,
                ..Default::default()
            })
            .await
        {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes a mailbox's settings (those given).
    pub async fn update_mailbox(
        &self,
        address: &str,
        settings: MailboxSettings,
    ) -> Result<(), GestoreError> {
        let settings = checked(settings)?;
        match self.store.update_mailbox(address.trim(), settings).await? {
            true => Ok(()),
            false => Err(GestoreError::NotFound(format!(
                "no mailbox {}",
                address.trim()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = |s: MailboxSettings| checked(s).is_ok();
        assert!(ok(MailboxSettings {
            spam_policy: Some("delete".into()),
            contact: Some(" owner@home.test ".into()),
            ordinary_policy: Some("refuse".into()),
        }));
        assert!(ok(MailboxSettings {
            contact: Some(String::new()),
            ..Default::default()
        }));
        assert!(!ok(MailboxSettings {
            spam_policy: Some("keep".into()),
            ..Default::default()
        }));
        assert!(!ok(MailboxSettings {
            ordinary_policy: Some("drop".into()),
            ..Default::default()
        }));
        for bad in ["owner", "@home.test", "a@b", "a b@c.test", "<a@c.test>"] {
            assert!(
                !ok(MailboxSettings {
                    contact: Some(bad.into()),
                    ..Default::default()
                }),
                "{bad}"
            );
        }
    }
}
