//! The 12h / 24h deadlines of a certified recipient (pec.md §5.7, §2.7).
//!
//! Both are armed at acceptance (T0). The 12h notice goes out when neither a presa in carico
//! nor a delivery receipt has arrived by T0+12h; the 24h notice when no delivery receipt has
//! arrived, and it is sent inside the window [T0+22h, T0+24h], so it falls due at T0+22h.
//! An errore-consegna also ends the timers (pec.md §1.3, "Sending provider"). A recipient
//! gets each notice at most once (pec.md §5.9).

use crate::access::event;
use crate::effect::TrackedTransaction;
use crate::{Context, Effect, EngineError, EventKind, Progress, TimeoutKind};
use pec_message::TimeRef;
use pec_message::build::{Artefact, Transaction};
use pec_message::daticert::{Destinatario, RecipientType};

/// When a deadline of a transaction accepted at `t0` falls due.
pub fn due(t0: TimeRef, which: TimeoutKind) -> TimeRef {
    let hours = match which {
        TimeoutKind::H12 => 12,
        // pec.md §5.7: inside [T0+22h, T0+24h]; the earliest point leaves two hours for a
        // scheduler that was busy or restarting.
        TimeoutKind::H24 => 22,
    };
    let at = t0.utc() + chrono::Duration::hours(hours);
    TimeRef::new(at)
}

/// What the sender side knows of one certified recipient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecipientState {
    /// A presa in carico covered it.
    pub taken_in_charge: bool,
    /// An avvenuta-consegna arrived.
    pub delivered: bool,
    /// An errore-consegna arrived.
    pub failed: bool,
    /// The 12h notice went out.
    pub notified_12h: bool,
    /// The 24h notice went out.
    pub notified_24h: bool,
}

impl RecipientState {
    /// Applies one step.
    pub fn apply(&mut self, step: Progress) {
        match step {
            Progress::TakenInCharge => self.taken_in_charge = true,
            Progress::Delivered => self.delivered = true,
            Progress::Failed => self.failed = true,
            Progress::Notified12h => self.notified_12h = true,
            Progress::Notified24h => self.notified_24h = true,
        }
    }

    /// Whether the deadline `which` must produce a notice now.
    pub fn needs_notice(&self, which: TimeoutKind) -> bool {
        if self.delivered || self.failed {
            return false;
        }
        match which {
            // After the 24h notice tracking has stopped (pec.md §2.7): a 12h notice late
            // behind it (a scheduler that was down past T0+22h) would announce one more.
            TimeoutKind::H12 => !self.taken_in_charge && !self.notified_12h && !self.notified_24h,
            TimeoutKind::H24 => !self.notified_24h,
        }
    }
}

/// The transaction facts in the builder's form.
pub fn transaction(identificativo: &str, t: &TrackedTransaction) -> Transaction {
    Transaction {
        sender: t.sender.clone(),
        recipients: t
            .recipients
            .iter()
            .map(|(a, certified)| Destinatario {
                address: a.clone(),
                tipo: if *certified {
                    RecipientType::Certificato
                } else {
                    RecipientType::Esterno
                },
            })
            .collect(),
        reply_to: t.reply_to.clone(),
        subject: t.subject.clone(),
        identificativo: identificativo.to_string(),
        client_msgid: t.client_msgid.clone(),
    }
}

/// A deadline fell due: the notice to the sender, or nothing when the recipient has moved on.
pub fn fire(
    identificativo: &str,
    tracked: &TrackedTransaction,
    recipient: &str,
    state: RecipientState,
    which: TimeoutKind,
    ctx: &mut Context<'_>,
) -> Result<Vec<Effect>, EngineError> {
    if !state.needs_notice(which) {
        return Ok(Vec::new());
    }
    let tx = transaction(identificativo, tracked);
    let (id, bytes) = ctx.make(
        &Artefact::PreavvisoErroreConsegna {
            recipient: recipient.to_string(),
            timeout: which.timeout(),
        },
        &tx,
    )?;
    let provider = ctx.provider.name.clone();
    Ok(vec![
        Effect::Store {
            mailbox: tx.sender.clone(),
            message: bytes,
            kind: "preavviso-errore-consegna".into(),
            identificativo: Some(identificativo.to_string()),
            message_id: Some(id.clone()),
            folder: crate::Folder::Inbox,
        },
        Effect::Progress {
            identificativo: identificativo.to_string(),
            recipient: recipient.to_string(),
            step: match which {
                TimeoutKind::H12 => Progress::Notified12h,
                TimeoutKind::H24 => Progress::Notified24h,
            },
        },
        Effect::Log(
            event(ctx, &tx, EventKind::PreavvisoErroreConsegna, &provider)
                .related([id])
                .detail(format!("{} {recipient}", which.as_str())),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    fn tracked(f: &Fixture) -> TrackedTransaction {
        TrackedTransaction {
            sender: "mario@a.test".into(),
            recipients: vec![("anna@b.test".into(), true)],
            reply_to: None,
            subject: Some("Prova".into()),
            client_msgid: Some("<m@c>".into()),
            t0: f.now.utc().timestamp(),
        }
    }

    #[test]
    fn the_24h_notice_falls_inside_22_to_24_hours() {
        let t0 = TimeRef::from_unix(1_000_000).unwrap();
        let d12 = due(t0, TimeoutKind::H12).utc().timestamp() - 1_000_000;
        let d24 = due(t0, TimeoutKind::H24).utc().timestamp() - 1_000_000;
        assert_eq!(d12, 12 * 3600);
        assert!((22 * 3600..=24 * 3600).contains(&d24));
    }

    #[test]
    fn notices_follow_the_recipient_state() {
        let mut s = RecipientState::default();
        assert!(s.needs_notice(TimeoutKind::H12));
        s.apply(Progress::TakenInCharge);
        assert!(
            !s.needs_notice(TimeoutKind::H12),
            "presa in carico cancels 12h"
        );
        assert!(s.needs_notice(TimeoutKind::H24), "but not 24h");
        s.apply(Progress::Delivered);
        assert!(!s.needs_notice(TimeoutKind::H24));
        let mut f = RecipientState::default();
        f.apply(Progress::Failed);
        assert!(!f.needs_notice(TimeoutKind::H12) && !f.needs_notice(TimeoutKind::H24));
        let mut n = RecipientState::default();
        n.apply(Progress::Notified12h);
        assert!(!n.needs_notice(TimeoutKind::H12), "never twice");
        n.apply(Progress::Notified24h);
        assert!(!n.needs_notice(TimeoutKind::H24), "never twice");
        // The 24h notice ends tracking: a 12h one still pending behind it is not sent.
        let mut late = RecipientState::default();
        late.apply(Progress::Notified24h);
        assert!(
            !late.needs_notice(TimeoutKind::H12),
            "nothing after the last notice"
        );
    }

    #[test]
    fn fired_deadline_stores_a_signed_preavviso_for_the_sender() {
        let mut f = Fixture::new();
        let t = tracked(&f);
        f.advance(12 * 3600);
        let e = fire(
            "id1@a.test",
            &t,
            "anna@b.test",
            RecipientState::default(),
            TimeoutKind::H12,
            &mut f.ctx(),
        )
        .unwrap();
        let Effect::Store {
            mailbox, message, ..
        } = &e[0]
        else {
            panic!("expected a store");
        };
        assert_eq!(mailbox, "mario@a.test");
        let r = f.verify(message);
        assert_eq!(r.kind, "preavviso-errore-consegna");
        assert_eq!(r.treat_as, "pec", "{:?}", r.problems);
        assert_eq!(
            e[1],
            Effect::Progress {
                identificativo: "id1@a.test".into(),
                recipient: "anna@b.test".into(),
                step: Progress::Notified12h
            }
        );
        let delivered = RecipientState {
            delivered: true,
            ..Default::default()
        };
        let none = fire(
            "id1@a.test",
            &t,
            "anna@b.test",
            delivered,
            TimeoutKind::H24,
            &mut f.ctx(),
        )
        .unwrap();
        assert!(none.is_empty());
    }
}
