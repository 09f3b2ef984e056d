"""One scripted IMAP session and one scripted POP3 session, sent as raw protocol lines to a
server, printed as a normalised JSON transcript. The test runs it against Dovecot and against
pec on the same messages and compares the two transcripts step by step.

Usage: compare.py HOST IMAP_PORT POP3_PORT USER PASSWORD CA_FILE MESSAGE.eml...

Both servers offer STARTTLS (IMAP) and STLS (POP3) on their plain ports, refuse logins before
TLS, and start with an empty mailbox for USER. The MESSAGE files are appended to INBOX.

Normalisation: only what two correct servers may answer differently.
- Tags, and the human text after OK/NO/BAD/BYE or +OK/-ERR (response codes are kept).
- Capability lists are cut to the capabilities the product must offer (CAPS_*), so a
  missing one still shows as a difference.
- UIDVALIDITY, MODSEQ and HIGHESTMODSEQ values, the quota root name, ID data, and POP3
  UIDL strings (each mapped to the order in which it first appeared, so their stability
  across sessions is still compared).
- \\Recent and RECENT (not kept by pec, removed from IMAP4rev2).
- The order of untagged responses within one command's answer and of items within one
  FETCH response, and FETCH responses for one message merged. Literals over 256 bytes are
  compared by length and SHA-256.
- The case of media types in BODY and BODYSTRUCTURE (RFC 2045 §5.1).
- The quota usage figure: Dovecot's maildir quota counts stored bytes with LF line ends.
- Untagged BAD [ALERT] warnings.
"""
import base64, hashlib, json, socket, ssl, sys

host, imap_port, pop3_port, user, password, ca = sys.argv[1:7]
messages = []
for path in sys.argv[7:]:
    data = open(path, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    messages.append(data)

ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # Dovecot and pec share the address, not every name

# Before login only these are compared: the others are usable only after it.
CAPS_PRE_AUTH = {"IMAP4REV1", "STARTTLS", "LOGINDISABLED", "AUTH=PLAIN", "LITERAL+", "ID"}
CAPS_AUTH = {
    "IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LITERAL+", "ENABLE",
    "NAMESPACE", "ID", "QUOTA", "CONDSTORE", "UNSELECT", "CHILDREN", "STARTTLS",
    "LOGINDISABLED", "AUTH=PLAIN",
}
POP3_CAPA = {"TOP", "UIDL", "USER", "STLS", "RESP-CODES", "SASL PLAIN"}


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        self.buf = b""

    def starttls(self):
        assert not self.buf, "data after STARTTLS reply"
        self.sock = ctx.wrap_socket(self.sock)

    def send(self, data):
        self.sock.sendall(data)

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


# ---------------------------------------------------------------- IMAP response parsing

class Lit(bytes):
    """A string that arrived as a literal or a quoted string."""


def read_response(c):
    """One response with its literals inlined, as raw bytes."""
    raw = c.readline()
    while raw.endswith(b"}\r\n") and b"{" in raw:
        n = raw[raw.rindex(b"{") + 1:-3].rstrip(b"+")
        if not n.isdigit():
            break
        raw += c.read(int(n))
        raw += c.readline()
    return raw


def parse(raw):
    """Tokens of one response: bytes atoms, Lit strings, None for NIL, lists."""
    pos = 0
    stack = [[]]
    while pos < len(raw):
        ch = raw[pos:pos + 1]
        if ch in (b" ", b"\r", b"\n"):
            pos += 1
        elif ch == b"(":
            stack.append([])
            pos += 1
        elif ch == b")":
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif ch == b'"':
            pos += 1
            s = b""
            while raw[pos:pos + 1] != b'"':
                if raw[pos:pos + 1] == b"\\":
                    pos += 1
                s += raw[pos:pos + 1]
                pos += 1
            pos += 1
            stack[-1].append(Lit(s))
        elif ch == b"{":
            end = raw.index(b"}", pos)
            n = int(raw[pos + 1:end].rstrip(b"+"))
            start = end + 3
            stack[-1].append(Lit(raw[start:start + n]))
            pos = start + n
        else:
            end = pos
            depth = 0
            while end < len(raw):
                b = raw[end:end + 1]
                if b == b"[":
                    depth += 1
                elif b == b"]":
                    depth -= 1
                elif depth == 0 and b in (b" ", b")", b"(", b"\r"):
                    break
                end += 1
            atom = raw[pos:end]
            stack[-1].append(None if atom.upper() == b"NIL" else atom)
            pos = end
    while len(stack) > 1:
        done = stack.pop()
        stack[-1].append(done)
    return stack[0]


def plain(t):
    """JSON-friendly form of a token tree."""
    if t is None:
        return None
    if isinstance(t, list):
        return [plain(x) for x in t]
    if isinstance(t, Lit) and len(t) > 256:
        return "%d bytes sha256 %s" % (len(t), hashlib.sha256(t).hexdigest())
    return t.decode("utf-8", "replace")


def caps(words, allowed):
    return sorted({w.decode().upper() for w in words} & allowed)


def code(raw_text):
    """The response code of a status response, normalised; the text after it is dropped."""
    if not raw_text.startswith(b"["):
        return None
    inner = raw_text[1:raw_text.index(b"]")] if b"]" in raw_text else raw_text[1:]
    toks = parse(inner)
    name = toks[0].upper() if toks and isinstance(toks[0], bytes) else b""
    if name == b"CAPABILITY":
        return ["CAPABILITY"] + caps(toks[1:], CAPS_AUTH)
    if name in (b"UIDVALIDITY", b"HIGHESTMODSEQ"):
        return [name.decode(), "N"]
    if name in (b"APPENDUID", b"COPYUID"):
        return [name.decode(), "V"] + plain(toks[2:])
    if name == b"PERMANENTFLAGS":
        return [name.decode(), sorted(plain(toks[1]))]
    return plain(toks)


def status(rest):
    """'OK [CODE] text' -> ['OK', code]."""
    word, _, text = rest.partition(b" ")
    return [word.decode().upper(), code(text)]


def flags(lst):
    return sorted(f.decode() for f in lst if f.lower() != b"\\recent")


def media_case(b):
    """Media types and subtypes in BODY/BODYSTRUCTURE compared ignoring case (RFC 2045 §5.1)."""
    if not isinstance(b, list) or not b:
        return b
    if isinstance(b[0], list):  # multipart: the parts, then the subtype
        out = [media_case(x) if isinstance(x, list) else x for x in b]
        for i, x in enumerate(out):
            if isinstance(x, str):
                out[i] = x.lower()
                break
        return out
    out = list(b)
    out[0], out[1] = str(out[0]).lower(), str(out[1]).lower()
    if out[0] == "message" and out[1] == "rfc822" and len(out) > 8:
        out[8] = media_case(out[8])
    return out


def fetch_items(items):
    out = {}
    for k, v in zip(items[0::2], items[1::2]):
        key = k.decode().upper()
        if key == "FLAGS":
            out[key] = flags(v)
        elif key == "MODSEQ":
            out[key] = "N"
        elif key in ("BODY", "BODYSTRUCTURE"):
            out[key] = media_case(plain(v))
        else:
            out[key] = plain(v)
    return out


def untagged(raw):
    """Normalised form of one '* ...' response, or None when it is dropped."""
    body = raw[2:].rstrip(b"\r\n")
    head, _, rest = body.partition(b" ")
    h = head.upper()
    if h in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"):
        st = status(body)
        if st == ["BAD", ["ALERT"]]:
            return None  # a warning text of the server's own
        return ["*"] + st
    if h == b"CAPABILITY":
        return ["CAPABILITY"] + caps(rest.split(), CAPS_AUTH)
    if h == b"ID":
        return ["ID"]
    if h == b"FLAGS":
        return ["FLAGS", flags(parse(rest)[0])]
    if h in (b"LIST", b"LSUB"):
        t = parse(rest)
        return [h.decode(), sorted(plain(t[0])), plain(t[1]), plain(t[2])]
    if h == b"STATUS":
        t = parse(rest)
        items = t[1]
        pairs = {}
        for k, v in zip(items[0::2], items[1::2]):
            key = k.decode().upper()
            pairs[key] = "N" if key in ("UIDVALIDITY", "HIGHESTMODSEQ") else plain(v)
        return ["STATUS", plain(t[0]), pairs]
    if h == b"QUOTAROOT":
        t = parse(rest)
        return ["QUOTAROOT", plain(t[0])] + ["R" for _ in t[1:]]
    if h == b"QUOTA":
        # Dovecot's maildir quota counts stored bytes (LF line ends); pec counts RFC822.SIZE
        # like the message sizes it reports: compare the resource and the limit.
        t = parse(rest)
        res = plain(t[1])
        return ["QUOTA", "R", [res[0], "N", res[2]]]
    if h == b"SEARCH":
        t = parse(rest)
        nums = [plain(x) for x in t if isinstance(x, bytes)]
        mod = ["(MODSEQ N)"] if any(isinstance(x, list) for x in t) else []
        return ["SEARCH"] + nums + mod
    if h in (b"ENABLED", b"NAMESPACE"):
        return [h.decode()] + plain(parse(rest))
    # '* n EXISTS', '* n RECENT', '* n EXPUNGE', '* n FETCH (...)'
    word, _, more = rest.partition(b" ")
    w = word.upper()
    if w == b"RECENT":
        return None
    if w == b"FETCH":
        return ["FETCH", head.decode(), fetch_items(parse(more)[0])]
    return [w.decode(), head.decode()]


class Imap:
    def __init__(self, log):
        self.c = Conn(imap_port)
        self.n = 0
        self.log = log
        # The greeting's text and capability code are the server's own.
        self.log.append(["greeting", untagged(read_response(self.c))[:2]])

    def cmd(self, label, line, literals=(), sync=False):
        """Sends a command (literals appended to the line in order) and logs the answer."""
        self.n += 1
        tag = b"T%d" % self.n
        seen = []
        if not literals:
            self.c.send(tag + b" " + line + b"\r\n")
        else:
            parts = line.split(b"{}")
            self.c.send(tag + b" " + parts[0])
            for lit, after in zip(literals, parts[1:]):
                if sync:
                    self.c.send(b"{%d}\r\n" % len(lit))
                    cont = read_response(self.c)
                    seen.append("+" if cont.startswith(b"+") else plain(parse(cont)))
                else:
                    self.c.send(b"{%d+}\r\n" % len(lit))
                self.c.send(lit + after)
            self.c.send(b"\r\n")
        return self._answer(label, tag, seen)

    def _answer(self, label, tag, seen):
        unt = []
        while True:
            raw = read_response(self.c)
            if not raw:
                self.log.append([label, sorted_json(unt), "connection closed"])
                return None
            if raw.startswith(b"* "):
                u = untagged(raw)
                if u is not None:
                    unt.append(u)
            elif raw.startswith(b"+"):
                seen.append("+")
                return unt
            elif raw.startswith(tag + b" "):
                st = status(raw[len(tag) + 1:].rstrip(b"\r\n"))
                self.log.append([label, seen + sorted_json(unt), st])
                return st

    def idle(self):
        self.n += 1
        tag = b"T%d" % self.n
        self.c.send(tag + b" IDLE\r\n")
        cont = read_response(self.c)
        self.c.send(b"DONE\r\n")
        self._answer("IDLE then DONE", tag, ["+" if cont.startswith(b"+") else plain(parse(cont))])


def pre_auth_caps(entry):
    entry[1] = [[u[0]] + [c for c in u[1:] if c in CAPS_PRE_AUTH] if u[0] == "CAPABILITY" else u
                for u in entry[1]]


def merge_fetches(items):
    """FETCH responses for one message may come split in several (RFC 3501 §7.4.2)."""
    out, seen = [], {}
    for u in items:
        if isinstance(u, list) and u and u[0] == "FETCH":
            if u[1] in seen:
                seen[u[1]][2].update(u[2])
                continue
            seen[u[1]] = u
        out.append(u)
    return out


def sorted_json(items):
    return sorted(merge_fetches(items), key=lambda x: json.dumps(x, sort_keys=True))


transcript = {}

# ------------------------------------------------------------------------------ IMAP
def imap_script(s):
    s.cmd("CAPABILITY before TLS", b"CAPABILITY")
    pre_auth_caps(s.log[-1])
    s.cmd("LOGIN before TLS", b"LOGIN " + user.encode() + b" " + password.encode())
    s.cmd("STARTTLS", b"STARTTLS")
    s.c.starttls()
    s.cmd("CAPABILITY after TLS", b"CAPABILITY")
    pre_auth_caps(s.log[-1])
    s.cmd("SELECT before login", b"SELECT INBOX")
    s.cmd("LOGIN wrong password", b'LOGIN ' + user.encode() + b' "wrong-password"')
    s.cmd("LOGIN", b'LOGIN ' + user.encode() + b' "' + password.encode() + b'"')
    # Capabilities after LOGIN are optional (RFC 3501 §6.2.3): keep only the status.
    s.log[-1][1:] = [[], [s.log[-1][2][0], None]]
    s.cmd("CAPABILITY after login", b"CAPABILITY")
    s.cmd("ENABLE CONDSTORE", b"ENABLE CONDSTORE")
    s.cmd("NAMESPACE", b"NAMESPACE")
    s.cmd("LIST all", b'LIST "" "*"')
    s.cmd("LIST top level", b'LIST "" "%"')
    s.cmd("LSUB all", b'LSUB "" "*"')
    s.cmd("CREATE Pratiche", b"CREATE Pratiche")
    s.cmd("CREATE Pratiche/2026", b"CREATE Pratiche/2026")
    s.cmd("CREATE existing", b"CREATE Pratiche")
    s.cmd("LIST Pratiche*", b'LIST "" "Pratiche*"')
    s.cmd("SUBSCRIBE", b"SUBSCRIBE Pratiche")
    s.cmd("LSUB Pratiche*", b'LSUB "" "Pratiche*"')
    s.cmd("SELECT missing", b"SELECT Nessuna")
    s.cmd("EXAMINE empty INBOX", b"EXAMINE INBOX")
    s.cmd("APPEND while INBOX is examined", b'APPEND INBOX (\\Seen) "01-Oct-2026 09:00:00 +0200" {}',
          [messages[0]])
    for i, m in enumerate(messages[1:], start=2):
        flag = b"(\\Flagged)" if i % 2 == 0 else b"()"
        s.cmd("APPEND message %d" % i, b'APPEND INBOX ' + flag + b' "0%d-Oct-2026 1%d:30:00 +0000" {}' % (i, i),
              [m], sync=(i == 2))
    s.cmd("APPEND to missing folder", b'APPEND Nessuna {}', [b"Subject: x\r\n\r\nx\r\n"])
    s.cmd("SELECT INBOX", b"SELECT INBOX")
    s.cmd("FETCH summary", b"FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
    s.cmd("FETCH BODYSTRUCTURE", b"FETCH 1:* (BODYSTRUCTURE)")
    s.cmd("FETCH BODY", b"FETCH 1:* (BODY)")
    s.cmd("FETCH header fields", b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM X-RICEVUTA)])")
    s.cmd("FETCH header fields not", b"FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)])")
    s.cmd("FETCH sections", b"FETCH 2:* (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2.MIME] BODY.PEEK[TEXT]<0.20>)")
    s.cmd("FETCH nested sections", b"FETCH 2:* (BODY.PEEK[2.1] BODY.PEEK[1.1.MIME])")
    s.cmd("FETCH RFC822 items", b"UID FETCH 1:* (RFC822.HEADER RFC822.SIZE)")
    s.cmd("FETCH full peek", b"FETCH 1:* (BODY.PEEK[])")
    s.cmd("FETCH partial", b"FETCH 1 (BODY.PEEK[]<5.10>)")
    s.cmd("FETCH sets Seen", b"FETCH 2 (BODY[HEADER])")
    s.cmd("FETCH flags", b"FETCH 1:* (FLAGS)")
    s.cmd("FETCH MODSEQ", b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
    s.cmd("UID SEARCH ALL", b"UID SEARCH ALL")
    s.cmd("SEARCH UNSEEN", b"SEARCH UNSEEN")
    s.cmd("SEARCH FLAGGED", b"SEARCH FLAGGED")
    s.cmd("SEARCH SUBJECT", b'SEARCH SUBJECT "accettazione"')
    s.cmd("SEARCH FROM", b'SEARCH FROM "posta-certificata"')
    s.cmd("SEARCH SINCE", b"SEARCH SINCE 3-Oct-2026")
    s.cmd("SEARCH BEFORE", b"SEARCH BEFORE 3-Oct-2026")
    s.cmd("SEARCH LARGER", b"SEARCH LARGER 10000")
    s.cmd("SEARCH OR NOT", b"SEARCH OR FLAGGED NOT SEEN")
    s.cmd("SEARCH UID range", b"SEARCH UID 2:3")
    s.cmd("SEARCH HEADER", b'SEARCH HEADER X-Ricevuta "accettazione"')
    s.cmd("SEARCH BODY", b'SEARCH BODY "ricevuta"')
    s.cmd("SEARCH MODSEQ", b"SEARCH MODSEQ 1")
    s.cmd("STORE +FLAGS", b"STORE 1 +FLAGS (\\Answered)")
    s.cmd("STORE -FLAGS.SILENT", b"STORE 2 -FLAGS.SILENT (\\Seen)")
    s.cmd("UID STORE FLAGS", b"UID STORE 3 FLAGS (\\Draft \\Seen)")
    s.cmd("STORE UNCHANGEDSINCE", b"STORE 1:2 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)")
    s.cmd("FETCH flags after STORE", b"FETCH 1:* (FLAGS)")
    s.cmd("COPY", b"COPY 1:2 Pratiche")
    s.cmd("COPY to missing folder", b"COPY 1 Nessuna")
    s.cmd("UID MOVE", b"UID MOVE 3 Trash")
    s.cmd("STATUS Pratiche", b"STATUS Pratiche (MESSAGES UIDNEXT UNSEEN UIDVALIDITY)")
    s.cmd("STATUS Trash", b"STATUS Trash (MESSAGES UIDNEXT HIGHESTMODSEQ)")
    s.cmd("STATUS missing", b"STATUS Nessuna (MESSAGES)")
    s.cmd("GETQUOTAROOT", b"GETQUOTAROOT INBOX")
    s.cmd("STORE Deleted", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    s.cmd("EXPUNGE", b"EXPUNGE")
    s.cmd("UID EXPUNGE", b"UID EXPUNGE 1:*")
    s.cmd("FETCH after expunges", b"FETCH 1:* (UID FLAGS)")
    s.idle()
    s.cmd("FETCH bad syntax", b"FETCH")
    s.cmd("FETCH out of range", b"FETCH 99 (FLAGS)")
    s.cmd("unknown command", b"FROBNICATE")
    s.cmd("UNSELECT", b"UNSELECT")
    s.cmd("FETCH without selection", b"FETCH 1 (FLAGS)")
    s.cmd("SELECT Pratiche", b"SELECT Pratiche")
    s.cmd("CLOSE", b"CLOSE")
    s.cmd("RENAME", b"RENAME Pratiche Archivio")
    s.cmd("LIST after RENAME", b'LIST "" "Archivio*"')
    s.cmd("DELETE with children", b"DELETE Archivio")
    s.cmd("LIST after DELETE of a parent", b'LIST "" "*"')
    s.cmd("LIST % after DELETE of a parent", b'LIST "" "%"')
    s.cmd("SELECT deleted parent", b"SELECT Archivio")
    s.cmd("DELETE deleted parent", b"DELETE Archivio")
    s.cmd("DELETE child", b"DELETE Archivio/2026")
    s.cmd("LIST after DELETE of the child", b'LIST "" "Archivio*"')
    s.cmd("DELETE INBOX", b"DELETE INBOX")
    s.cmd("LOGOUT", b"LOGOUT")


imap_log = []
try:
    imap_script(Imap(imap_log))
except Exception as e:  # a broken session shows as a difference, with what came before
    imap_log.append(["session broke", repr(e)])
transcript["imap"] = imap_log


# ------------------------------------------------------------------------------ POP3
uidl_names = {}


def pop_status(line):
    line = line.rstrip(b"\r\n")
    word, _, text = line.partition(b" ")
    c = text[:text.index(b"]") + 1].decode() if text.startswith(b"[") else None
    return [word.decode(), c], text


class Pop:
    def __init__(self, log):
        self.c = Conn(pop3_port)
        self.log = log
        self.log.append(["greeting", pop_status(self.c.readline())[0]])

    def cmd(self, label, line, multi=False, data=None):
        self.c.send(line + b"\r\n")
        st, text = pop_status(self.c.readline())
        entry = [label, st]
        if data and st[0] == "+OK":
            entry.append(data(text))
        if multi and st[0] == "+OK":
            lines = []
            while True:
                l = self.c.readline()
                if l in (b".\r\n", b""):
                    break
                lines.append(l[1:] if l.startswith(b"..") else l)
            entry.append(multi(lines))
        self.log.append(entry)
        return st[0]

    def sasl(self, label, line, follow):
        self.c.send(line + b"\r\n")
        st, _ = pop_status(self.c.readline())
        seen = [st]
        if st[0] == "+":
            self.c.send(follow + b"\r\n")
            seen.append(pop_status(self.c.readline())[0])
        self.log.append([label] + seen)


def capa(lines):
    got = set()
    for l in lines:
        w = l.decode().strip().upper()
        if w.startswith("SASL "):
            got.update("SASL " + m for m in w.split()[1:])
        else:
            got.add(w)
    return sorted(got & POP3_CAPA)


def uidl_token(u):
    return uidl_names.setdefault(u, "U%d" % (len(uidl_names) + 1))


def uidl_lines(lines):
    out = []
    for l in lines:
        n, u = l.split()
        out.append([n.decode(), uidl_token(u)])
    return out


def body(lines):
    data = b"".join(lines)
    return "%d bytes sha256 %s" % (len(data), hashlib.sha256(data).hexdigest())


def words(text):
    return text.decode().split()


def first_word_uidl(text):
    n, u = text.split()[:2]
    return [n.decode(), uidl_token(u)]


def pop3_script(plog):
    p = Pop(plog)
    p.cmd("CAPA before TLS", b"CAPA", multi=capa)
    p.cmd("USER before TLS", b"USER " + user.encode())
    p.cmd("STLS", b"STLS")
    p.c.starttls()
    p.cmd("CAPA after TLS", b"CAPA", multi=capa)
    p.cmd("USER", b"USER " + user.encode())
    p.cmd("PASS wrong", b"PASS wrong-password")
    p = Pop(plog)
    p.cmd("STLS", b"STLS")
    p.c.starttls()
    p.sasl("AUTH PLAIN", b"AUTH PLAIN", base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()))
    p.cmd("STAT", b"STAT", data=lambda t: words(t)[:2])
    p.cmd("LIST", b"LIST", multi=lambda ls: [l.decode().split() for l in ls])
    p.cmd("LIST 1", b"LIST 1", data=lambda t: words(t)[:2])
    p.cmd("LIST 99", b"LIST 99")
    p.cmd("UIDL", b"UIDL", multi=uidl_lines)
    p.cmd("UIDL 2", b"UIDL 2", data=first_word_uidl)
    p.cmd("TOP 1 0", b"TOP 1 0", multi=body)
    p.cmd("TOP 1 3", b"TOP 1 3", multi=body)
    p.cmd("RETR 1", b"RETR 1", multi=body)
    p.cmd("RETR 2", b"RETR 2", multi=body)
    p.cmd("RETR x", b"RETR x")
    p.cmd("DELE 1", b"DELE 1")
    p.cmd("DELE 1 again", b"DELE 1")
    p.cmd("RETR deleted", b"RETR 1")
    p.cmd("STAT after DELE", b"STAT", data=lambda t: words(t)[:2])
    p.cmd("RSET", b"RSET")
    p.cmd("STAT after RSET", b"STAT", data=lambda t: words(t)[:2])
    p.cmd("NOOP", b"NOOP")
    p.cmd("DELE 1", b"DELE 1")
    p.cmd("unknown command", b"FROB")
    p.cmd("QUIT", b"QUIT")
    p = Pop(plog)
    p.cmd("STLS", b"STLS")
    p.c.starttls()
    p.cmd("USER", b"USER " + user.encode())
    p.cmd("PASS", b"PASS " + password.encode())
    p.cmd("STAT next session", b"STAT", data=lambda t: words(t)[:2])
    p.cmd("UIDL next session", b"UIDL", multi=uidl_lines)
    p.cmd("QUIT", b"QUIT")


plog = []
try:
    pop3_script(plog)
except Exception as e:
    plog.append(["session broke", repr(e)])
transcript["pop3"] = plog

# One step per line, so that the test can show which steps differ.
for proto in ("imap", "pop3"):
    for step in transcript[proto]:
        print(proto, json.dumps(step, sort_keys=True))
