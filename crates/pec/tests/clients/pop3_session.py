"""Scripted POP3 sessions with Python's poplib against a running gestore.

Usage: pop3_session.py IP CA_FILE USER PASSWORD THROTTLED_USER
Prints one JSON object with what each step saw; the Rust test asserts on it.
"""
import base64, hashlib, json, poplib, ssl, sys

ip, ca, user, password, locked = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names mx.<domain>; we connect by address
out = {}

def err(f):
    try:
        f()
        return None
    except poplib.error_proto as e:
        return e.args[0].decode()

# Plain port: STLS is offered, nothing else before it.
p = poplib.POP3(ip, 1100, timeout=10)
out["plain_greeting"] = p.getwelcome().decode()
caps = p.capa()
out["plain_capa"] = sorted(caps.keys())
out["user_before_tls"] = err(lambda: p.user(user))
p.stls(context=ctx)
out["tls_capa"] = sorted(p.capa().keys())
p.user(user)
p.pass_(password)
out["stls_stat"] = list(p.stat())
p.quit()

# POP3S.
p = poplib.POP3_SSL(ip, 9950, context=ctx, timeout=10)
out["wrong_password"] = err(lambda: (p.user(user), p.pass_("wrong-password")))
p.user(user)
p.pass_(password)
count, size = p.stat()
out["stat"] = [count, size]
out["list"] = [l.decode() for l in p.list()[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
resp, lines, octets = p.retr(1)
out["retr1_sha256"] = hashlib.sha256(b"\r\n".join(lines) + b"\r\n").hexdigest()
resp, lines, octets = p.top(1, 0)
out["top1_last_line_empty"] = lines[-1] == b""
out["top1_lines"] = len(lines)
out["retr_missing"] = err(lambda: p.retr(99))
out["unknown"] = err(lambda: p._shortcmd("FROB"))
out["bad_args"] = err(lambda: p._shortcmd("RETR x"))
p.dele(1)
out["retr_deleted"] = err(lambda: p.retr(1))
p.rset()
p.dele(1)
out["quit"] = p.quit().decode()

# A new session: one message fewer, the others keep their UIDs.
p = poplib.POP3_SSL(ip, 9950, context=ctx, timeout=10)
plain = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
out["auth_plain"] = p._shortcmd("AUTH PLAIN " + plain).decode()
out["stat_after"] = list(p.stat())
out["uidl_after"] = [l.decode() for l in p.uidl()[1]]
p.quit()

# Failed-login throttling: after the account's limit, even the right password is refused.
for _ in range(10):
    p = poplib.POP3_SSL(ip, 9950, context=ctx, timeout=10)
    err(lambda: (p.user(locked), p.pass_("not-it")))
    p.quit()
p = poplib.POP3_SSL(ip, 9950, context=ctx, timeout=10)
out["throttled"] = err(lambda: (p.user(locked), p.pass_(password)))
p.quit()

print(json.dumps(out))
