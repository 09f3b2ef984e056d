"""Appends N small messages to a folder over IMAPS (one APPEND each, LITERAL+).

Usage: imap_fill.py IP PORT CA_FILE USER PASSWORD FOLDER N
"""
import imaplib, socket, ssl, sys

ip, port, ca, user, password, folder, n = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
m = imaplib.IMAP4_SSL(ip, int(port), ssl_context=ctx, timeout=30)
# imaplib writes a literal and its closing CRLF separately: without TCP_NODELAY each
# APPEND waits for a delayed ACK.
m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
m.login(user, password)
for i in range(int(n)):
    body = (
        f"From: fill@example.test\r\nTo: {user}\r\nSubject: messaggio {i}\r\n"
        f"Message-ID: <fill{i}@example.test>\r\n\r\nriga {i}\r\n"
    ).encode()
    typ, _ = m.append(folder, None, None, body)
    assert typ == "OK", typ
m.logout()
