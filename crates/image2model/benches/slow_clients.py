#!/usr/bin/env python3
"""Slow clients against image2model on loopback (docs/BENCHMARKS.md, section
"image2model"): RSS with 30 uploads of ~10 MB stopped short, how fast they are cut off (408) and
what they leave on disk; 150 idle connections (closed at the header timeout); and, with an
open-files limit of 128, /ready and the admin /metrics while 150 idle connections are held.

    cargo build -p image2model && BIN=target/debug/image2model python3 crates/image2model/benches/slow_clients.py
"""
import os, resource, socket, subprocess, tempfile, time, urllib.error, urllib.request

BIN = os.environ.get("BIN", "target/debug/image2model")
PORT, ADMIN = 18491, 19491


def start(d, nofile=None, **env):
    e = dict(os.environ, IMAGE2MODEL_LISTEN=f"127.0.0.1:{PORT}", TELEMETRY_ADMIN_ADDR=f"127.0.0.1:{ADMIN}",
             TELEMETRY_CONSOLE="off", IMAGE2MODEL_DATA_DIR=f"{d}/data", TELEMETRY_LOG_DIR=f"{d}/logs",
             OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1", **env)
    pre = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
    p = subprocess.Popen([BIN], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pre)
    for _ in range(500):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/ready", timeout=1)
            return p
        except Exception:
            time.sleep(0.02)
    raise SystemExit("not ready")


def rss(p):
    return next(int(l.split()[1]) // 1024 for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS"))


def get(path, port=PORT):
    t = time.time()
    try:
        code = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:
        code = repr(e)
    return code, round((time.time() - t) * 1000, 1)


with tempfile.TemporaryDirectory() as d:
    p = start(d, IMAGE2MODEL_BODY_TIMEOUT="5s")
    print("RSS idle MiB", rss(p))
    b, size = "B", 10 * 1024 * 1024 - 20 * 1024
    png = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n").encode() \
        + png + bytes(size - len(png)) + f"\r\n--{b}--\r\n".encode()
    head = (f"POST /api/v1/upload HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary={b}\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode()
    t0 = time.time()
    socks = []
    for _ in range(30):  # each stops before the file's last byte
        s = socket.create_connection(("127.0.0.1", PORT))
        s.sendall(head + body[:-(len(b) + 9)])
        socks.append(s)
    time.sleep(2)
    print("RSS with 30 stalled ~10 MB uploads MiB", rss(p))
    answered = 0
    for s in socks:
        s.settimeout(30)
        try:
            answered += s.recv(200).startswith(b"HTTP/1.1 408")
        except OSError:
            pass
    print(f"answered 408: {answered}/30, {time.time() - t0:.1f} s after the first byte (body timeout 5 s)")
    time.sleep(1)
    print("RSS after MiB", rss(p), "; .part files left:",
          sum(f.endswith(".part") for f in os.listdir(f"{d}/data/uploads")))
    idle = [socket.create_connection(("127.0.0.1", PORT)) for _ in range(150)]
    t = time.time()
    closed = 0
    for s in idle:
        s.settimeout(30)
        try:
            closed += s.recv(10) == b""
        except OSError:
            pass
    print(f"idle connections closed by the server: {closed}/150 in {time.time() - t:.1f} s")
    p.terminate(); p.wait()

with tempfile.TemporaryDirectory() as d:
    p = start(d, nofile=128)
    idle = [socket.create_connection(("127.0.0.1", PORT)) for _ in range(150)]
    time.sleep(0.5)
    print("open files 128, 150 idle connections held: /ready", get("/ready"), "admin /metrics", get("/metrics", ADMIN))
    time.sleep(11)
    print("after the header timeout: /ready", get("/ready"))
    rejected = [l for l in urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics").read().decode().splitlines()
                if l.startswith("requests_rejected_total")]
    print(rejected)
    p.terminate(); p.wait()
