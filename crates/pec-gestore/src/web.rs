//! What the web services (webmail and REST API) ask of the gestore: API tokens, the TOTP
//! second factor, sending a PEC written in a form, and the verdict on a stored message.

use crate::{Account, Client, Gestore, GestoreError, LocalDirectory, Submitted, totp};
use pec_message::compose::{Draft, compose};
use pec_message::report::{Report, VerifyOptions, verify};
use pec_store::Store;
use std::sync::Arc;

/// Prefix of API tokens, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "pec_";

fn sha256_hex(s: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref())
}

impl<S: Store> Gestore<S> {
    /// Creates an API token for `address` and returns it; only its SHA-256 is kept, so it is
    /// shown once.
    pub async fn create_api_token(
        &self,
        address: &str,
        label: &str,
    ) -> Result<String, GestoreError> {
        let m = self
            .store
            .mailbox(address.trim())
            .await?
            .filter(|m| !m.service)
            .ok_or_else(|| GestoreError::NotFound(format!("no mailbox {address}")))?;
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        self.store
            .create_api_token(&sha256_hex(&token), &m.address, label, self.clock.unix())
            .await?;
        Ok(token)
    }

    /// The account an API token acts for: `None` for an unknown token, or one whose mailbox
    /// is gone, disabled or locked (product.md §4: a locked mailbox does nothing until reset).
    pub async fn api_account(&self, token: &str) -> Result<Option<Account>, GestoreError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() != TOKEN_PREFIX.len() + 64 {
            return Ok(None);
        }
        let Some(owner) = self.store.api_token_owner(&sha256_hex(token)).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .mailbox(&owner)
            .await?
            .filter(|m| !m.disabled && !m.locked && !m.service)
            .map(|m| Account { address: m.address }))
    }

    /// Whether `code` is the current TOTP code of `address`'s second factor; `true` when the
    /// mailbox has no second factor.
    pub async fn second_factor_ok(&self, address: &str, code: &str) -> Result<bool, GestoreError> {
        Ok(match self.store.mailbox(address).await? {
            Some(m) => match m.totp_secret {
                Some(secret) => match totp::matching_step(&secret, code, self.clock.unix()) {
                    // A code is good once: one seen, or one older than the last accepted,
                    // is refused (RFC 6238 §5.2), so an overheard code cannot be replayed.
                    Some(step) => {
                        let mut used = self.totp_used.lock().unwrap_or_else(|p| p.into_inner());
                        let key = m.address.to_ascii_lowercase();
                        if used.get(&key).is_some_and(|&last| step <= last) {
                            false
                        } else {
                            if used.len() > 100_000 {
                                used.clear();
                            }
                            used.insert(key, step);
                            true
                        }
                    }
                    None => false,
                },
                None => true,
            },
            None => false,
        })
    }

    /// Whether `address` has a second factor.
    pub async fn has_second_factor(&self, address: &str) -> Result<bool, GestoreError> {
        Ok(self
            .store
            .mailbox(address)
            .await?
            .is_some_and(|m| m.totp_secret.is_some()))
    }

    /// Turns the second factor on with `secret` once `code` proves the user's app holds it,
    /// or off (`secret` `None`). Returns whether it changed.
    pub async fn set_second_factor(
        &self,
        address: &str,
        secret: Option<&str>,
        code: &str,
    ) -> Result<bool, GestoreError> {
        if let Some(s) = secret
            && !totp::verify(s, code, self.clock.unix())
        {
            return Ok(false);
        }
        Ok(self.store.set_totp(address, secret).await?)
    }

    /// Writes `draft` as a message from `account` and submits it like an SMTP submission
    /// (same checks, same receipts; pec.md §5.1).
    pub async fn send_draft(
        self: &Arc<Self>,
        client: &Client,
        account: &Account,
        mut draft: Draft,
    ) -> Result<Submitted, GestoreError> {
        draft.from = account.address.clone();
        draft
            .check()
            .map_err(|e| GestoreError::Invalid(e.to_string()))?;
        let mut seed = [0u8; 12];
        rand::fill(&mut seed);
        let seed = hex::encode(seed);
        let domain = pec_engine::domain_of(&account.address).to_string();
        let message = compose(
            &draft,
            self.clock.now(),
            &format!("<{seed}.web@{domain}>"),
            &seed,
        );
        let rcpts: Vec<String> = draft.to.iter().chain(&draft.cc).cloned().collect();
        self.submit(client, account, &account.address, &rcpts, message)
            .await
    }

    /// The verifier's verdict on stored bytes, against this gestore's trust anchors and
    /// Indice copy, at the current time (what `pec verify` says).
    pub fn verify_stored(&self, raw: &[u8]) -> Report {
        let indexed = self.indexed();
        let crls = self.crls();
        let dir = LocalDirectory {
            index: &indexed.0,
            local: &self.settings.domains,
        };
        verify(
            raw,
            &VerifyOptions {
                anchors: indexed.1.clone(),
                at: self.clock.now(),
                directory: Some(&dir),
                crls: Some(&crls),
            },
        )
    }
}
