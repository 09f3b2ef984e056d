"""Scripted IMAP sessions with Python's imaplib (and raw lines on its socket) against a
running gestore whose user has received one PEC to themselves.

Usage: imap_session.py IP CA_FILE USER PASSWORD LOCKED_USER
Prints one JSON object with what each step saw; the Rust test asserts on it.
"""
import hashlib, imaplib, json, re, smtplib, ssl, sys, threading, time

ip, ca, user, password, locked = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names mx.<domain>; we connect by address
out = {}


def err(f):
    try:
        f()
        return None
    except imaplib.IMAP4.error as e:
        return str(e)


def imaps():
    return imaplib.IMAP4_SSL(ip, 9930, ssl_context=ctx, timeout=15)


def raw(m, line, tag=None):
    """Sends one raw line and returns the response lines up to the tagged one."""
    tag = tag or line.split(b" ", 1)[0]
    m.send(line)
    lines = []
    while True:
        l = m.readline()
        lines.append(l.decode(errors="replace").rstrip("\r\n"))
        if l.startswith(tag + b" ") or not l:
            return lines


def submit(subject):
    s = smtplib.SMTP(ip, 5870, timeout=15)
    s.starttls(context=ctx)
    s.login(user, password)
    body = f"From: {user}\r\nTo: {user}\r\nSubject: {subject}\r\n\r\nciao\r\n"
    s.sendmail(user, [user], body.encode())
    s.quit()


# Plain port: LOGINDISABLED and STARTTLS until TLS is on.
m = imaplib.IMAP4(ip, 1430, timeout=15)
out["plain_capability"] = sorted(m.capabilities)
out["login_before_tls"] = err(lambda: m.login(user, password))
m.starttls(ssl_context=ctx)
m.capabilities = None
typ, caps = m.capability()
out["tls_capability"] = caps[0].decode()
m.login(user, password)
out["starttls_select"] = m.select("INBOX")[1][0].decode()
m.logout()

# IMAPS: refusals, each a clear tagged NO or BAD.
m = imaps()
out["select_before_login"] = raw(m, b"s0 SELECT INBOX\r\n")
out["wrong_password"] = err(lambda: m.login(user, "wrong-password"))
m.login(user, password)
out["list"] = [l.decode() for l in m.list()[1]]
out["select"] = m.select("INBOX")[1][0].decode()
out["select_codes"] = {k: [v.decode() for v in vs] for k, vs in m.untagged_responses.items()}
out["unknown_folder"] = raw(m, b"u1 SELECT Nope\r\n")
m.select("INBOX")
typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
out["bodies"] = {}
for part in data:
    if isinstance(part, tuple):
        uid = re.search(rb"UID (\d+)", part[0]).group(1).decode()
        out["bodies"][uid] = hashlib.sha256(part[1]).hexdigest()
out["flags_after_peek"] = [d.decode() for d in m.fetch("1:*", "(FLAGS)")[1]]
typ, data = m.fetch("1", "(BODY[HEADER.FIELDS (X-TRASPORTO X-RICEVUTA)])")
out["seen_after_body"] = [d.decode() if isinstance(d, bytes) else d[0].decode() for d in data]
out["envelope"] = m.fetch("1", "(ENVELOPE)")[1][0].decode()
out["bodystructure"] = m.fetch("1", "(BODYSTRUCTURE)")[1][0].decode()
out["uid_search_all"] = m.uid("SEARCH", "ALL")[1][0].decode()
out["search_subject"] = m.search(None, "SUBJECT", "CONSEGNA")[1][0].decode()
out["quota"] = [str(x) for x in m.getquotaroot("INBOX")[1]]
out["namespace"] = m.namespace()[1][0].decode()
out["status"] = m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)")[1][0].decode()

# Sent holds the submitted original.
out["sent"] = m.select("Sent")[1][0].decode()
out["sent_fetch"] = [
    d[0].decode() + d[1].decode(errors="replace") if isinstance(d, tuple) else d.decode()
    for d in m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1]
]

# Folders: create, copy with COPYUID, move, rename, delete; protected names refused.
m.select("INBOX")
out["create"] = m.create("Clienti/Rossi")[0]
out["copy"] = raw(m, b"c1 UID COPY 1:* Clienti/Rossi\r\n")
out["copy_missing"] = raw(m, b"c2 COPY 1 Nope\r\n")
out["delete_inbox"] = raw(m, b"c3 DELETE INBOX\r\n")
out["rename"] = raw(m, b"c4 RENAME Clienti Archivio\r\n")
out["list_after_rename"] = [l.decode() for l in m.list(pattern="Archivio*")[1]]
out["append_literal_plus"] = raw(
    m, b"c5 APPEND Drafts (\\Draft) {25+}\r\nSubject: bozza\r\n\r\ntesto\r\n\r\n"
)
m.send(b"c6 APPEND Drafts {25}\r\n")
out["sync_literal_continuation"] = m.readline().decode().rstrip("\r\n")
m.send(b"Subject: bozza\r\n\r\ntesto\r\n\r\n")
out["sync_literal_done"] = m.readline().decode().rstrip("\r\n")
out["literal_too_large"] = raw(m, b"c7 APPEND Drafts {200000000}\r\n")
out["garbage"] = raw(m, b"c8 FROBNICATE now\r\n")
out["bad_sequence"] = raw(m, b"c9 FETCH 999 FLAGS\r\n")
# A command sent in three fragments.
m.send(b"c10 NO")
time.sleep(0.2)
m.send(b"O")
time.sleep(0.2)
out["fragmented"] = raw(m, b"P\r\n", b"c10")
out["enable"] = raw(m, b"c11 ENABLE CONDSTORE\r\n")
out["id"] = raw(m, b'c12 ID ("name" "imap_session.py")\r\n')
out["unchangedsince"] = raw(m, b"c13 STORE 1 (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Flagged)\r\n")
out["delete_archivio"] = [raw(m, b"c14 DELETE Archivio/Rossi\r\n"), raw(m, b"c15 DELETE Archivio\r\n")]

# Two sessions on one folder see each other's flag and expunge changes.
a, b = imaps(), imaps()
a.login(user, password)
b.login(user, password)
count = int(a.select("INBOX")[1][0])
b.select("INBOX")
a.store("1", "+FLAGS", "(\\Flagged)")
out["b_sees_flag"] = raw(b, b"n1 NOOP\r\n")
a.append("INBOX", "(\\Deleted)", None, b"Subject: to be expunged\r\n\r\nx\r\n")
out["b_sees_exists"] = raw(b, b"n2 NOOP\r\n")
a.select("INBOX")
a.expunge()
out["b_sees_expunge"] = raw(b, b"n3 NOOP\r\n")
out["count_before"] = count

# IDLE: a PEC submitted to ourselves is reported while idling.
b.send(b"i1 IDLE\r\n")
out["idle_continuation"] = b.readline().decode().rstrip("\r\n")
start = time.time()
threading.Thread(target=submit, args=("IDLE prova",)).start()
seen = []
elapsed = None
b.sock.settimeout(10)
while time.time() - start < 10:
    l = b.readline().decode().rstrip("\r\n")
    seen.append(l)
    if l.endswith("EXISTS"):
        elapsed = time.time() - start
        break
out["idle_seen"] = seen
out["idle_seconds"] = elapsed
b.send(b"DONE\r\n")
while True:
    l = b.readline().decode().rstrip("\r\n")
    if l.startswith("i1 "):
        out["idle_done"] = l
        break
a.logout()
b.logout()

# Throttle: ten wrong passwords lock the account, even for the right one.
for _ in range(10):
    x = imaps()
    err(lambda: x.login(locked, "wrong-password"))
    x.shutdown()
x = imaps()
out["locked"] = err(lambda: x.login(locked, password))
x.shutdown()

# Before login a client may send 64 KiB at most: a literal promised larger is cut short with
# a BYE, and the connection ends.
x = imaps()
x.send(b"big LOGIN {200000}\r\n")
x.readline()  # "+ go ahead"
try:
    x.send(b"x" * 70000)
except OSError:
    pass
lines = []
while True:
    try:
        l = x.readline()
    except OSError:
        break
    if not l:
        break
    lines.append(l.decode(errors="replace").rstrip("\r\n"))
out["pre_login_flood"] = lines

# A command pipelined behind a large FETCH is answered too.
x = imaps()
x.login(user, password)
x.select("INBOX")
x.send(b"f1 FETCH 1:* (FLAGS)\r\nn1 NOOP\r\n")
while True:
    l = x.readline()
    if not l or l.startswith(b"n1 "):
        out["noop_after_fetch"] = l.decode().rstrip("\r\n")
        break
x.logout()

print(json.dumps(out, indent=1))
