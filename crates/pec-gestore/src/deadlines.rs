//! The deadline worker: leases due 12h / 24h deadlines, asks the engine whether a notice is
//! owed (pec.md §5.7) and commits the notice together with the deadline's end.

use crate::Gestore;
use pec_engine::deadline::{RecipientState, fire};
use pec_engine::{Progress, TimeoutKind, TrackedTransaction};
use pec_store::{DueDeadline, Store};
use std::sync::Arc;
use std::time::Duration;

fn step(name: &str) -> Option<Progress> {
    Some(match name {
        "presa-in-carico" => Progress::TakenInCharge,
        "avvenuta-consegna" => Progress::Delivered,
        "errore-consegna" => Progress::Failed,
        "preavviso-12h" => Progress::Notified12h,
        "preavviso-24h" => Progress::Notified24h,
        _ => return None,
    })
}

pub(crate) async fn run<S: Store>(g: Arc<Gestore<S>>) {
    loop {
        match g.store.lease_deadlines(g.clock.unix(), 120, 50).await {
            Ok(due) if !due.is_empty() => {
                for d in due {
                    if let Err(e) = one(&g, &d).await {
                        tracing::error!(identificativo = %d.identificativo, "deadline failed, will retry: {e}");
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!("deadline lease failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn one<S: Store>(g: &Arc<Gestore<S>>, d: &DueDeadline) -> Result<(), crate::GestoreError> {
    let tracked = g.store.tracked(&d.identificativo).await?;
    let which = TimeoutKind::parse(&d.which);
    let (Some(t), Some(which)) = (tracked, which) else {
        // Nothing to notify about: finish the deadline.
        let base = pec_store::Commit {
            deadlines_done: vec![d.id],
            ..Default::default()
        };
        return g.commit(g.clock.now(), Vec::new(), base).await;
    };
    let tx: TrackedTransaction = serde_json::from_str(&t.data)
        .map_err(|e| crate::GestoreError::Internal(format!("tracked transaction: {e}")))?;
    let mut state = RecipientState::default();
    for (r, steps) in &t.recipients {
        if r.eq_ignore_ascii_case(&d.recipient) {
            steps
                .iter()
                .filter_map(|s| step(s))
                .for_each(|s| state.apply(s));
        }
    }
    let now = g.clock.now();
    let this = g.clone();
    let ident = d.identificativo.clone();
    let recipient = d.recipient.clone();
    let effects = tokio::task::spawn_blocking(move || {
        this.with_context(now, |ctx| fire(&ident, &tx, &recipient, state, which, ctx))
    })
    .await
    .map_err(|e| crate::GestoreError::Internal(e.to_string()))??;
    let base = pec_store::Commit {
        deadlines_done: vec![d.id],
        ..Default::default()
    };
    g.commit(now, effects, base).await
}
