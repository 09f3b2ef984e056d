"""Scripted SMTP submission sessions over raw TLS against a running gestore: PIPELINING
(RFC 2920) and CHUNKING (RFC 3030), which smtplib does not speak.

Usage: smtp_session.py IP CA_FILE USER PASSWORD
Prints one JSON object with what each step saw; the Rust test asserts on it.
"""
import base64, json, socket, ssl, sys

ip, ca, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names mx.<domain>; we connect by address
out = {}


class Session:
    def __init__(self):
        self.s = ctx.wrap_socket(socket.create_connection((ip, 4650), timeout=20))
        self.buf = b""
        self.reply()

    def record(self):
        """One TLS record's worth of plaintext, as the server wrote it."""
        data = self.s.recv(65536)
        self.buf += data
        return data

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.record():
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        """A whole reply, multi-line ones joined: code and last line."""
        lines = []
        while True:
            l = self.line()
            if l is None:
                return None
            lines.append(l)
            if l[3:4] != "-":
                return lines

    def codes(self, n):
        return [self.reply()[-1][:3] for _ in range(n)]

    def send(self, data):
        self.s.sendall(data)


def message(subject):
    return (
        f"From: {user}\r\nTo: {user}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@client>\r\n\r\n"
        ".riga che inizia con un punto\r\nfine\r\n"
    ).encode()


s = Session()
s.send(b"EHLO client.test\r\n")
caps = [l[4:].split(" ")[0] for l in s.reply()[1:]]
out["caps"] = caps
plain = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
s.send(b"AUTH PLAIN " + plain + b"\r\n")
out["auth"] = s.reply()[-1][:3]

# PIPELINING: three commands in one write, three answers in one write.
s.send(f"MAIL FROM:<{user}>\r\nRCPT TO:<{user}>\r\nDATA\r\n".encode())
first = s.record()
out["pipelined_answers_in_one_record"] = first.count(b"\r\n")
out["pipelined_codes"] = s.codes(3)
body = message("pipelined data").replace(b"\r\n.", b"\r\n..")
s.send(body + b".\r\n")
out["data_final"] = s.reply()[-1][:3]

# CHUNKING: MAIL, RCPT and the whole message in one BDAT LAST, in one write. The recipient
# is named twice (the second time in capitals): one recipient, one copy, one receipt.
m = message("chunked one")
s.send(
    f"MAIL FROM:<{user}>\r\nRCPT TO:<{user}>\r\nRCPT TO:<{user.upper()}>\r\nBDAT {len(m)} LAST\r\n".encode()
    + m
)
out["bdat_last_codes"] = s.codes(4)

# Two chunks.
m = message("chunked two")
half = len(m) // 2
s.send(f"MAIL FROM:<{user}>\r\nRCPT TO:<{user}>\r\nBDAT {half}\r\n".encode() + m[:half])
out["bdat_first_codes"] = s.codes(3)
s.send(f"BDAT {len(m) - half} LAST\r\n".encode() + m[half:])
out["bdat_second_code"] = s.codes(1)

# RCPT and DATA after BDAT are refused; RSET clears the transaction.
s.send(f"MAIL FROM:<{user}>\r\nRCPT TO:<{user}>\r\nBDAT 5\r\nabcde".encode())
out["mixed_codes"] = s.codes(3)
s.send(f"RCPT TO:<{user}>\r\n".encode())
out["rcpt_after_bdat"] = s.codes(1)
s.send(b"DATA\r\n")
out["data_after_bdat"] = s.codes(1)
s.send(b"RSET\r\n")
out["rset"] = s.codes(1)

# RFC 5321 §3.5.3 and §4.1.1.8: VRFY is answered 252, HELP 214, EXPN 502.
s.send(f"VRFY {user}\r\nHELP\r\nEXPN staff\r\n".encode())
out["vrfy_help_expn"] = s.codes(3)

# BDAT outside a transaction: its octets are skipped, the session goes on.
s.send(b"BDAT 6 LAST\r\nNOOP\r\nNOOP\r\n")
out["bdat_without_mail"] = s.codes(2)

# A BDAT line without a size cannot be skipped: the session ends.
s.send(b"BDAT many\r\n")
out["bad_bdat"] = s.codes(1)
out["closed_after_bad_bdat"] = s.reply() is None

# After HELO, where CHUNKING is not offered, BDAT is refused and its octets skipped.
s = Session()
s.send(b"HELO client.test\r\n")
s.codes(1)
s.send(b"BDAT 6 LAST\r\nNOOP\r\nNOOP\r\n")
out["bdat_after_helo"] = s.codes(2)

# A chunk larger than any message may be: refused, and the session ends at once instead of
# waiting for bytes the client may never send.
s = Session()
s.send(b"EHLO client.test\r\n")
s.codes(1)
s.send(b"BDAT 18446744073709551615\r\n")
out["huge_bdat"] = s.codes(1)
out["closed_after_huge_bdat"] = s.reply() is None

print(json.dumps(out))
