//! One IMAP session over any stream: drives the `imap-next` server state machine (framing,
//! literals, AUTHENTICATE and IDLE continuations), dispatches each command to its file in
//! [`crate::command`], keeps the RFC 3501 §3 state (not authenticated, authenticated,
//! selected), and brings the selected folder up to date when another session or a delivery
//! changed it.

use crate::reply::{bad, bye, text};
use crate::selected::Selected;
use imap_next::server::{Event, Options, Server};
use imap_next::{Interrupt, Io, State as _};
use imap_types::command::{Command, CommandBody};
use imap_types::core::{Tag, Vec1};
use imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Greeting, GreetingKind, Response, Status,
};
use pec_gestore::Gestore;
use pec_store::Store;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Settings of one session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our host name, in the greeting.
    pub hostname: String,
    /// The stream is already encrypted.
    pub tls: bool,
    /// STARTTLS may be offered (a TLS configuration exists and the stream is plain).
    pub starttls: bool,
    /// The client's address (for the failed-login throttle).
    pub peer: IpAddr,
    /// Folder indexes shared by the server's sessions.
    pub index: Arc<crate::index_cache::IndexCache>,
}

/// How a session ended.
#[derive(Debug)]
pub enum End<S> {
    /// LOGOUT, the client went away, or the session timed out.
    Closed,
    /// The client asked for STARTTLS and got OK: upgrade and run a new session.
    StartTls(S),
}

/// Inactivity allowed outside IDLE (RFC 3501 §5.4: at least 30 minutes).
const AUTOLOGOUT: Duration = Duration::from_secs(30 * 60);
/// Longest IDLE (RFC 2177 §3: clients re-issue IDLE at least every 29 minutes).
const IDLE_MAX: Duration = Duration::from_secs(31 * 60);
/// Largest literal accepted (an APPEND of a PEC message within the largest size limit).
const MAX_LITERAL: u32 = 100 << 20;
/// Bytes a client may send before it has logged in: LOGIN, AUTHENTICATE, STARTTLS and a few
/// CAPABILITY or NOOP take a few hundred. Past it the connection ends, so no unauthenticated
/// client has the parser hold a literal of [`MAX_LITERAL`] bytes.
const PRE_LOGIN_BYTES: usize = 64 << 10;

/// What the driver does after a command.
pub(crate) enum Next {
    /// Read the next command.
    Continue,
    /// Send what is queued and close.
    Logout,
    /// Send what is queued and hand the stream over for TLS.
    StartTls,
    /// Run a FETCH in batches, then send its status.
    Fetch(Box<crate::command::fetch::FetchJob>),
}

/// The state of a session that commands read and change.
pub(crate) struct Session<'g, S: Store> {
    /// The gestore.
    pub g: &'g Arc<Gestore<S>>,
    /// Settings.
    pub cfg: &'g SessionConfig,
    /// The authenticated mailbox address.
    pub user: Option<String>,
    /// The selected folder.
    pub selected: Option<Selected>,
    /// CONDSTORE is on (ENABLE, SELECT (CONDSTORE), or a command that uses it: RFC 7162 §3.1).
    pub condstore: bool,
    /// Responses to send before the command's status, in order.
    pub out: Vec<Response<'static>>,
    /// The store's change feed.
    changes: tokio::sync::broadcast::Receiver<String>,
    /// The selected folder may have changed since the last sync.
    pub dirty: bool,
}

/// The capabilities for the current state (RFC 3501 §6.1.1; RFC 2595 §3.1 for
/// LOGINDISABLED and STARTTLS).
pub(crate) fn capabilities(cfg: &SessionConfig, authenticated: bool) -> Vec1<Capability<'static>> {
    let mut c = vec![Capability::Imap4Rev1, Capability::LiteralPlus];
    let atom = |s: &'static str| {
        imap_types::core::Atom::try_from(s)
            .map(Capability::from)
            .unwrap_or(Capability::Imap4Rev1)
    };
    if !authenticated {
        if cfg.tls {
            c.push(Capability::Auth(imap_types::auth::AuthMechanism::Plain));
            c.push(Capability::SaslIr);
        } else {
            c.push(Capability::LoginDisabled);
            if cfg.starttls {
                c.push(Capability::StartTls);
            }
        }
        c.push(Capability::Id);
        return Vec1::try_from(c).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1));
    }
    c.extend([
        Capability::Idle,
        Capability::UidPlus,
        Capability::Move,
        Capability::Enable,
        Capability::Namespace,
        Capability::Id,
        Capability::Quota,
        Capability::QuotaRes(imap_types::extensions::quota::Resource::Storage),
        Capability::Unselect,
        Capability::CondStore,
        atom("SPECIAL-USE"),
        atom("CHILDREN"),
    ]);
    Vec1::try_from(c).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}

impl<'g, S: Store> Session<'g, S> {
    fn new(g: &'g Arc<Gestore<S>>, cfg: &'g SessionConfig) -> Self {
        Session {
            g,
            cfg,
            user: None,
            selected: None,
            condstore: false,
            out: Vec::new(),
            changes: g.store.changes(),
            dirty: false,
        }
    }

    /// Queues an untagged data response.
    pub fn data(&mut self, d: Data<'static>) {
        self.out.push(Response::Data(d));
    }

    /// Queues an untagged status response.
    pub fn untagged(&mut self, s: Status<'static>) {
        self.out.push(Response::Status(s));
    }

    /// The authenticated user; commands reach this only in the authenticated states.
    pub fn address(&self) -> String {
        self.user.clone().unwrap_or_default()
    }

    /// Takes note of the store's changes to this user's mailbox.
    fn drain_changes(&mut self) {
        let Some(user) = &self.user else { return };
        loop {
            match self.changes.try_recv() {
                Ok(m) if &m == user => self.dirty = true,
                Ok(_) => {}
                Err(TryRecvError::Lagged(_)) => self.dirty = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
    }

    /// Brings the selected folder up to date and queues what the client must hear.
    pub async fn sync(&mut self) {
        self.dirty = false;
        let (Some(user), Some(sel)) = (&self.user, &self.selected) else {
            return;
        };
        match self.cfg.index.load(&*self.g.store, user, &sel.name).await {
            Ok(Some((folder, entries))) => {
                let condstore = self.condstore;
                if let Some(sel) = self.selected.as_mut() {
                    for d in sel.sync(&folder, entries, condstore) {
                        self.out.push(Response::Data(d));
                    }
                }
            }
            Ok(None) => {
                // The folder was deleted or renamed by another session (RFC 3501 §6.3.4):
                // say so, and leave the client selected on an empty view.
                let empty = pec_store::Folder {
                    name: sel.name.clone(),
                    uidvalidity: sel.uidvalidity,
                    uidnext: 1,
                    highest_modseq: sel.highest_modseq,
                    messages: 0,
                    unseen: 0,
                    subscribed: false,
                };
                let condstore = self.condstore;
                if let Some(sel) = self.selected.as_mut() {
                    for d in sel.sync(&empty, Arc::default(), condstore) {
                        self.out.push(Response::Data(d));
                    }
                }
            }
            Err(e) => tracing::warn!("IMAP sync failed: {e}"),
        }
    }

    async fn command(&mut self, cmd: Command<'static>) -> Next {
        let tag = cmd.tag.clone();
        self.drain_changes();
        // RFC 3501 §7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH.
        let expunge_ok = !matches!(
            cmd.body,
            CommandBody::Fetch { .. } | CommandBody::Store { .. } | CommandBody::Search { .. }
        );
        let (status, next) = crate::command::dispatch(self, cmd).await;
        if self.selected.is_some() && self.dirty && expunge_ok {
            self.sync().await;
        }
        if let Some(status) = status {
            self.out.push(Response::Status(status));
        }
        let _ = tag;
        next
    }
}

fn options() -> Options {
    let mut o = Options::default();
    o.max_literal_size = MAX_LITERAL;
    o.max_command_size = MAX_LITERAL + (64 << 10);
    let _ = o.set_literal_reject_text("literal too large: the limit is 100 MiB".into());
    let _ = o.set_literal_accept_text("go ahead".into());
    o
}

fn enqueue(server: &mut Server, responses: Vec<Response<'static>>) {
    for r in responses {
        match r {
            Response::Data(d) => {
                server.enqueue_data(d);
            }
            Response::Status(s) => {
                server.enqueue_status(s);
            }
            Response::CommandContinuationRequest(c) => {
                server.enqueue_continuation_request(c);
            }
        }
    }
}

type Step = Result<Event, Interrupt<imap_next::server::Error>>;

/// Moves every queued response into `wbuf`; returns the first other step the state
/// machine produced (an event or an error), to be handled by the main loop.
fn drain(server: &mut Server, wbuf: &mut Vec<u8>, drop_greeting: &mut bool) -> Option<Step> {
    loop {
        match server.next() {
            Ok(Event::GreetingSent { .. } | Event::ResponseSent { .. }) => {}
            Err(Interrupt::Io(Io::Output(bytes))) => {
                if *drop_greeting {
                    *drop_greeting = false;
                } else {
                    wbuf.extend_from_slice(&bytes);
                }
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => return None,
            other => return Some(other),
        }
    }
}

/// The tag of a command line that did not parse, when it has one.
fn tag_of(bytes: &[u8]) -> Option<Tag<'static>> {
    let end = bytes
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    Tag::try_from(bytes[..end].to_vec()).ok()
}

/// Runs one session until LOGOUT, end of stream, timeout, or STARTTLS.
pub async fn run<S: Store, IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    cfg: &SessionConfig,
    g: &Arc<Gestore<S>>,
    greet: bool,
) -> std::io::Result<End<IO>> {
    let greeting = Greeting {
        kind: GreetingKind::Ok,
        code: Some(Code::Capability(capabilities(cfg, false))),
        text: text(format!("{} PEC IMAP4rev1 ready", cfg.hostname)),
    };
    let mut server = Server::new(options(), greeting);
    // After STARTTLS the greeting is not repeated (RFC 3501 §6.2.1): the first output, which
    // is the greeting, is dropped.
    let mut drop_greeting = !greet;
    let mut s = Session::new(g, cfg);
    let mut wbuf: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut rbuf = vec![0u8; 16 << 10];
    let mut idling: Option<Tag<'static>> = None;
    let mut auth: Option<Tag<'static>> = None;
    let mut ending: Option<Next> = None;
    // Events taken from the state machine while draining output, handled next in order.
    let mut stash: std::collections::VecDeque<Step> = std::collections::VecDeque::new();
    let mut before_login = 0usize;
    // When the current IDLE must end, whatever changes it reports meanwhile.
    let mut idle_until = tokio::time::Instant::now();
    loop {
        let step = match stash.pop_front() {
            Some(step) => step,
            None => server.next(),
        };
        match step {
            Ok(Event::GreetingSent { .. } | Event::ResponseSent { .. }) => {}
            Ok(Event::CommandReceived { command }) => {
                let next = s.command(command).await;
                enqueue(&mut server, std::mem::take(&mut s.out));
                match next {
                    Next::Continue => {}
                    Next::Fetch(mut job) => {
                        let total = job.messages.len();
                        let mut at = 0;
                        while at < total {
                            let end = crate::command::fetch::batch_end(&job, at);
                            for d in crate::command::fetch::batch(&mut s, &mut job, at..end).await {
                                server.enqueue_data(d);
                            }
                            // Every event a drain takes is kept, in order: the state
                            // machine gives each one once (a pipelined command after a
                            // large FETCH was lost when a later batch's drain overwrote it).
                            if let Some(ev) = drain(&mut server, &mut wbuf, &mut drop_greeting) {
                                stash.push_back(ev);
                            }
                            if !wbuf.is_empty() {
                                io.write_all(&wbuf).await?;
                                wbuf.clear();
                            }
                            at = end;
                        }
                        server.enqueue_status(crate::reply::ok(&job.tag, None, "FETCH completed"));
                    }
                    other => ending = Some(other),
                }
            }
            Ok(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => {
                let tag = command_authenticate.tag.clone();
                match crate::command::authenticate::start(&mut s, command_authenticate).await {
                    Some(status) => {
                        let _ = server.authenticate_finish(status);
                    }
                    None => {
                        auth = Some(tag);
                        let cont = CommandContinuationRequest::basic(None, text(" "))
                            .or_else(|_| CommandContinuationRequest::basic(None, text("go ahead")));
                        if let Ok(c) = cont {
                            let _ = server.authenticate_continue(c);
                        }
                    }
                }
            }
            Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                let tag = auth.take().unwrap_or_else(|| Tag::unvalidated("*"));
                let status =
                    crate::command::authenticate::finish(&mut s, &tag, authenticate_data).await;
                let _ = server.authenticate_finish(status);
            }
            Ok(Event::IdleCommandReceived { tag }) => {
                if s.user.is_none() {
                    let _ = server.idle_reject(bad(&tag, "IDLE requires authentication"));
                } else if let Ok(c) = CommandContinuationRequest::basic(None, text("idling")) {
                    s.drain_changes();
                    if s.dirty {
                        s.sync().await;
                    }
                    let _ = server.idle_accept(c);
                    enqueue(&mut server, std::mem::take(&mut s.out));
                    idling = Some(tag);
                    idle_until = tokio::time::Instant::now() + IDLE_MAX;
                }
            }
            Ok(Event::IdleDoneReceived) => {
                if let Some(tag) = idling.take() {
                    s.drain_changes();
                    if s.dirty {
                        s.sync().await;
                    }
                    s.out.push(Response::Status(crate::reply::ok(
                        &tag,
                        None,
                        "IDLE terminated",
                    )));
                    enqueue(&mut server, std::mem::take(&mut s.out));
                }
            }
            Err(Interrupt::Io(Io::Output(bytes))) => {
                if drop_greeting {
                    drop_greeting = false;
                } else {
                    wbuf.extend_from_slice(&bytes);
                }
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => {
                if !wbuf.is_empty() {
                    io.write_all(&wbuf).await?;
                    io.flush().await?;
                    wbuf.clear();
                    if wbuf.capacity() > 1 << 20 {
                        wbuf.shrink_to(16 << 10);
                    }
                }
                match ending.take() {
                    Some(Next::Logout) => {
                        let _ = io.shutdown().await;
                        return Ok(End::Closed);
                    }
                    Some(Next::StartTls) => return Ok(End::StartTls(io)),
                    _ => {}
                }
                let n = if idling.is_some() {
                    let user = s.user.clone().unwrap_or_default();
                    tokio::select! {
                        r = io.read(&mut rbuf) => Some(r?),
                        changed = s.changes.recv() => {
                            match changed {
                                Ok(m) if m == user => s.dirty = true,
                                Err(RecvError::Lagged(_)) => s.dirty = true,
                                Ok(_) => {}
                                Err(RecvError::Closed) => tokio::time::sleep_until(idle_until).await,
                            }
                            if s.dirty {
                                s.sync().await;
                                enqueue(&mut server, std::mem::take(&mut s.out));
                            }
                            None
                        }
                        // A deadline fixed when IDLE began: changes on the server do not
                        // push it back, so a vanished client's IDLE still ends.
                        _ = tokio::time::sleep_until(idle_until) => {
                            server.enqueue_status(bye("IDLE for too long; logging out"));
                            ending = Some(Next::Logout);
                            None
                        }
                    }
                } else {
                    match tokio::time::timeout(AUTOLOGOUT, io.read(&mut rbuf)).await {
                        Ok(r) => Some(r?),
                        Err(_) => {
                            server.enqueue_status(bye("autologout: idle for too long"));
                            ending = Some(Next::Logout);
                            None
                        }
                    }
                };
                match n {
                    Some(0) => return Ok(End::Closed),
                    Some(n) if s.user.is_none() && before_login + n > PRE_LOGIN_BYTES => {
                        server.enqueue_status(bye("too much input before login"));
                        ending = Some(Next::Logout);
                    }
                    Some(n) => {
                        if s.user.is_none() {
                            before_login += n;
                        }
                        server.enqueue_input(&rbuf[..n]);
                    }
                    None => {}
                }
            }
            Err(Interrupt::Error(e)) => {
                use imap_next::server::Error as E;
                match e {
                    E::MalformedMessage { discarded_bytes }
                    | E::ExpectedCrlfGotLf { discarded_bytes } => {
                        let raw = discarded_bytes.declassify();
                        let msg =
                            "the command is not valid IMAP4rev1 (RFC 3501 section 9) or not known";
                        match tag_of(raw) {
                            Some(tag) => {
                                server.enqueue_status(bad(&tag, msg));
                            }
                            None => {
                                let Ok(st) = Status::bad(None, None, text(msg));
                                server.enqueue_status(st);
                            }
                        }
                    }
                    E::LiteralTooLong { .. } => {}
                    E::CommandTooLong { discarded_bytes } => {
                        let raw = discarded_bytes.declassify();
                        let msg = "command too long";
                        match tag_of(raw) {
                            Some(tag) => {
                                server.enqueue_status(bad(&tag, msg));
                            }
                            None => {
                                server.enqueue_status(bye(msg));
                                ending = Some(Next::Logout);
                            }
                        }
                    }
                }
            }
        }
    }
}
