#!/usr/bin/env python3
"""Independent peer for encchat's CLASSIC suite, used by interop_test.go.

Written only from SPEC.md ("Classic suite") and the seed document's snippets,
not from encchat's Go code, so the two implementations check each other.

  classic_peer.py server --listen 127.0.0.1:0
      stdout line 1: LISTENING HOST:PORT
      stdout line 2: FINGERPRINT SHA256:<base64 of sha256(SPKI DER), no padding>
      Serves chat like the seed's server. Exits on SIGTERM, SIGINT or when
      stdin reaches EOF, sending "[SYSTEM] Server shutting down" to everyone.

  --split (server or client): write each frame with two send calls, the
      10-digit header, then the payload, as the seed's server does, so that
      a capture sees them in separate TCP segments.

  classic_peer.py client --connect HOST:PORT --name NAME [--linger 0.5]
      Prints "RECV <text>" for every text the server sends, with backslash,
      newline and carriage return escaped as \\\\, \\n and \\r. Sends every
      non-empty trimmed stdin line. At stdin EOF waits --linger seconds, then
      exits 0. When the server closes, prints "CLOSED" and exits 0. Handshake
      failures print "ERROR <reason>" to stderr and exit 1.

Wire format: every frame is "%010d" % len(payload) followed by the payload.
  1. server -> client: RSA-2048 public key PEM (key.publickey().export_key())
  2. client -> server: PKCS1_OAEP (SHA-1, MGF1-SHA-1, empty label) of 32 bytes
  3. server -> client: seal("HANDSHAKE_OK")
  4. client -> server: seal(username)
  5. server -> client: seal(welcome) or seal("ERROR: Username already taken")
seal(text) = base64(iv || AES-256-CBC(PKCS#7(utf-8 text))).
"""

import argparse
import base64
import hashlib
import os
import signal
import socket
import sys
import threading
import time

try:
    from Cryptodome.Cipher import AES, PKCS1_OAEP
    from Cryptodome.PublicKey import RSA
    from Cryptodome.Random import get_random_bytes
    from Cryptodome.Util.Padding import pad, unpad
except ImportError:  # pip's pycryptodome installs as "Crypto"
    from Crypto.Cipher import AES, PKCS1_OAEP
    from Crypto.PublicKey import RSA
    from Crypto.Random import get_random_bytes
    from Crypto.Util.Padding import pad, unpad

HEADER_LEN = 10
MAX_FRAME = 65536
RULE = "=" * 50
WELCOME = ("\n" + RULE + "\n✓ Secure connection established!\nWelcome %s!\n"
           "All messages are encrypted with AES-256\n" + RULE)

_out_lock = threading.Lock()


def out(line):
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(line):
    with _out_lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def now():
    return time.strftime("%H:%M:%S")


# ---- framing -------------------------------------------------------------


class ProtocolError(Exception):
    pass


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return bytes(buf)


def recv_frame(sock):
    header = recv_exact(sock, HEADER_LEN)
    if not all(0x30 <= b <= 0x39 for b in header):
        raise ProtocolError("bad frame header %r" % header)
    n = int(header.decode("ascii"))
    if n > MAX_FRAME:
        raise ProtocolError("frame too long: %d" % n)
    return recv_exact(sock, n)


def frame(payload):
    return b"%010d" % len(payload) + payload


SPLIT = False  # --split: header and payload in two send calls


def send_frame(sock, payload):
    if SPLIT:
        sock.sendall(b"%010d" % len(payload))
        sock.sendall(payload)
    else:
        sock.sendall(frame(payload))


# ---- classic record layer (the seed's encrypt_message/decrypt_message) ----


def seal(text, aes_key):
    cipher = AES.new(aes_key, AES.MODE_CBC)
    iv = cipher.iv
    encrypted = cipher.encrypt(pad(text.encode("utf-8"), AES.block_size))
    return base64.b64encode(iv + encrypted)


def open_sealed(payload, aes_key):
    raw = base64.b64decode(payload, validate=True)
    if len(raw) < 32 or len(raw) % 16 != 0:
        raise ValueError("bad sealed length")
    iv, ciphertext = raw[:16], raw[16:]
    cipher = AES.new(aes_key, AES.MODE_CBC, iv)
    return unpad(cipher.decrypt(ciphertext), AES.block_size).decode("utf-8")


def fingerprint(pub):
    digest = hashlib.sha256(pub.export_key(format="DER")).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


# ---- server ----------------------------------------------------------------


class Client:
    def __init__(self, sock, addr):
        self.sock = sock
        self.addr = addr
        self.key = None
        self.name = None
        self.wlock = threading.Lock()

    def send(self, text):
        data = seal(text, self.key)
        with self.wlock:
            send_frame(self.sock, data)


class Server:
    def __init__(self, listen):
        host, port = listen.rsplit(":", 1)
        self.rsa = RSA.generate(2048)
        self.pem = self.rsa.publickey().export_key()
        self.lock = threading.Lock()
        self.users = {}  # name -> Client; dicts keep join order
        self.conns = set()
        self.stopping = threading.Event()
        self.ln = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ln.bind((host, int(port)))
        self.ln.listen(16)
        self.ln.settimeout(0.1)

    def addr(self):
        host, port = self.ln.getsockname()[:2]
        return "%s:%d" % (host, port)

    def broadcast(self, text, exclude=None):
        with self.lock:
            targets = [c for c in self.users.values() if c is not exclude]
        for c in targets:
            try:
                c.send(text)
            except OSError:
                pass

    def handshake(self, c):
        send_frame(c.sock, self.pem)
        blob = recv_frame(c.sock)
        c.key = PKCS1_OAEP.new(self.rsa).decrypt(blob)
        if len(c.key) != 32:
            raise ProtocolError("AES key is %d bytes" % len(c.key))
        c.send("HANDSHAKE_OK")
        name = open_sealed(recv_frame(c.sock), c.key).strip()
        # Holding the writer lock while joining makes the welcome the first
        # text this client sees, before any broadcast that finds it listed.
        with c.wlock:
            with self.lock:
                taken = name in self.users or not name
                if not taken:
                    c.name = name
                    self.users[name] = c
            if not taken:
                send_frame(c.sock, seal(WELCOME % name, c.key))
        if taken:
            c.send("ERROR: Username already taken")
            return False
        return True

    def handle_text(self, c, text):
        if text == "/quit":
            return False
        if text == "/list":
            with self.lock:
                names = list(self.users)
            c.send("\n%s\nOnline Users (%d): %s\n%s"
                   % (RULE, len(names), ", ".join(names), RULE))
            return True
        if text == "/pm" or text.startswith("/pm "):
            parts = text.split(" ", 2)
            if len(parts) < 3 or not parts[1] or not parts[2]:
                c.send("[%s] [ERROR] Usage: /pm <username> <message>" % now())
                return True
            to, msg = parts[1], parts[2]
            with self.lock:
                peer = self.users.get(to)
            if peer is None:
                c.send("[%s] [ERROR] User '%s' not found" % (now(), to))
                return True
            ts = now()
            try:
                peer.send("[%s] [PM from %s] %s" % (ts, c.name, msg))
            except OSError:
                pass
            c.send("[%s] [PM to %s] %s" % (ts, to, msg))
            log("[%s] [PM ENCRYPTED] %s -> %s" % (ts, c.name, to))
            return True
        self.broadcast("[%s] %s: %s" % (now(), c.name, text))
        return True

    def serve_client(self, c):
        joined = False
        try:
            log("[%s] [HANDSHAKE] Starting with %s" % (now(), c.addr))
            if not self.handshake(c):
                return
            joined = True
            log("[%s] [JOIN] %s joined from %s" % (now(), c.name, c.addr))
            self.broadcast("[%s] [SYSTEM] %s joined (secure channel)" % (now(), c.name), exclude=c)
            while not self.stopping.is_set():
                text = open_sealed(recv_frame(c.sock), c.key).strip()
                if not text:
                    continue
                if not self.handle_text(c, text):
                    break
        except (EOFError, OSError):
            pass
        except (ProtocolError, ValueError, KeyError) as e:
            log("[%s] [ERROR] %s: %s" % (now(), c.addr, e))
        finally:
            if joined:
                with self.lock:
                    if self.users.get(c.name) is c:
                        del self.users[c.name]
                if not self.stopping.is_set():
                    log("[%s] [LEAVE] %s" % (now(), c.name))
                    self.broadcast("[%s] [SYSTEM] %s left the chat" % (now(), c.name))
            with self.lock:
                self.conns.discard(c)
            try:
                c.sock.close()
            except OSError:
                pass

    def run(self):
        threads = []
        while not self.stopping.is_set():
            try:
                sock, addr = self.ln.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(None)
            c = Client(sock, addr)
            with self.lock:
                self.conns.add(c)
            t = threading.Thread(target=self.serve_client, args=(c,), daemon=True)
            t.start()
            threads.append(t)
        self.ln.close()
        with self.lock:
            users = list(self.users.values())
            conns = list(self.conns)
        for c in users:
            try:
                c.send("[SYSTEM] Server shutting down")
            except OSError:
                pass
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout=2)


def run_server(args):
    srv = Server(args.listen)
    out("LISTENING " + srv.addr())
    out("FINGERPRINT " + fingerprint(srv.rsa.publickey()))

    def stop(*_):
        srv.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        srv.stopping.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    srv.run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # daemon threads may still block in reads


# ---- client ----------------------------------------------------------------


def escape(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def run_client(args):
    host, port = args.connect.rsplit(":", 1)
    try:
        sock = socket.create_connection((host, int(port)), timeout=10)
        pem = recv_frame(sock)
        pub = RSA.import_key(pem)
        if pub.size_in_bits() != 2048:
            raise ProtocolError("server key is %d bits" % pub.size_in_bits())
        key = get_random_bytes(32)
        send_frame(sock, PKCS1_OAEP.new(pub).encrypt(key))
        ok = open_sealed(recv_frame(sock), key)
        if ok != "HANDSHAKE_OK":
            raise ProtocolError("unexpected confirmation %r" % ok)
        send_frame(sock, seal(args.name, key))
        sock.settimeout(None)
    except Exception as e:  # any handshake failure ends the run
        log("ERROR %s: %s" % (type(e).__name__, e))
        sys.stdout.flush()
        os._exit(1)
    out("FINGERPRINT " + fingerprint(pub))

    done = threading.Event()
    wlock = threading.Lock()

    def receive():
        try:
            while True:
                out("RECV " + escape(open_sealed(recv_frame(sock), key)))
        except (EOFError, OSError):
            out("CLOSED")
        except (ProtocolError, ValueError) as e:
            log("ERROR %s: %s" % (type(e).__name__, e))
            out("CLOSED")
        done.set()

    def send_stdin():
        try:
            for raw in sys.stdin.buffer:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                with wlock:
                    send_frame(sock, seal(line, key))
        except OSError:
            pass
        time.sleep(args.linger)
        done.set()

    threading.Thread(target=receive, daemon=True).start()
    threading.Thread(target=send_stdin, daemon=True).start()
    done.wait()
    try:
        sock.close()
    except OSError:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--listen", default="127.0.0.1:5174")
    s.add_argument("--split", action="store_true")
    c = sub.add_parser("client")
    c.add_argument("--connect", default="127.0.0.1:5174")
    c.add_argument("--name", required=True)
    c.add_argument("--linger", type=float, default=0.5)
    c.add_argument("--split", action="store_true")
    args = p.parse_args()
    global SPLIT
    SPLIT = args.split
    if args.mode == "server":
        run_server(args)
    else:
        run_client(args)


if __name__ == "__main__":
    main()
