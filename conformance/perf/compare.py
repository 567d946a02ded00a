"""Side-by-side S3 benchmark: fsgate against the S3 servers that install here, with nginx
serving plain files as the HTTP ceiling and the machine's own loopback and disk ceilings.

Every server gets a fresh data directory on the same filesystem each round, the same client
(`fsctl bench`: keep-alive hyper, SigV4, distinct random contents) and the same workloads;
rounds are interleaved with the server order rotated, and each figure is the median of the
rounds with its range. Server CPU per operation is read from /proc (user + system time of
the server's whole process tree, before and after each phase).

Run through `conformance/perf/compare.sh`, which builds and installs everything first.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

AK, SK = "benchroot", "benchroot-secret-key-0123"
TICK = os.sysconf("SC_CLK_TCK")

# name, objects, size, concurrency (the matrix)
WORKLOADS = [
    ("4KiB", 10_000, "4KiB", 16),
    ("1MiB", 1_000, "1MiB", 8),
    ("64MiB", 32, "64MiB", 4),
]
OPS = ["put", "get", "delete"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0, ok=None):
    """Waits until the URL answers (with one of `ok`, or any HTTP status when None)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if ok is None or r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if ok is None or e.code in ok:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def tree_pids(root):
    """The pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(d))
        except OSError:
            continue
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack += children.get(p, [])
    return out


def cpu_seconds(root):
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            continue
    return total / TICK


def status_kib(pid, field):
    """Sum of a /proc/PID/status field (VmRSS, VmHWM) over the process tree, in KiB."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


class Server:
    name = "?"
    workloads = None  # all of WORKLOADS

    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.proc = None
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.ak, self.sk = AK, SK
        self.log = open(os.path.join(workdir, "server.log"), "wb")

    def spawn(self, cmd, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=e,
                                     start_new_session=True)

    def prepare(self):
        """After start: create the bench bucket (as the bench's credentials, unless overridden)."""
        bench(self, ["put", "--objects", "1", "--size", "1", "--bucket", "bench", "--duration", "10s"],
              quiet=True)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def version(self):
        return ""


class Fsgate(Server):
    name = "fsgate"

    def start(self):
        self.spawn([self.args.fsgate, "serve", "--address", f"127.0.0.1:{self.port}",
                    "--data", os.path.join(self.workdir, "data")] + self.args.fsgate_arg,
                   env={"FSGATE_ROOT_USER": AK, "FSGATE_ROOT_PASSWORD": SK})
        wait_http(self.endpoint + "/health/ready", ok=(200,))

    def fsctl(self, *a):
        out = subprocess.run([self.args.fsctl, "--endpoint", self.endpoint, "--access-key", AK,
                              "--secret-key", SK, "--json"] + list(a),
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out) if out.strip() else None

    def prepare(self):
        # The bench runs as a non-root user whose only right is a role on the bench bucket,
        # so every request is decided by Cedar on the path a real tenant takes.
        bench(self, ["put", "--objects", "1", "--size", "1", "--bucket", "bench", "--duration", "10s"],
              quiet=True)
        u = self.fsctl("user", "add", "bench")
        self.fsctl("policy", "attach", "--user", "bench", "--role", "readwrite", "--bucket", "bench")
        self.ak, self.sk = u["access_key"], u["secret_key"]

    def version(self):
        v = subprocess.run([self.args.fsgate, "--version"], capture_output=True,
                           text=True).stdout.strip()
        rev = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse",
                              "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        return f"{v} (commit {rev})" if rev else v


class FsgateAuditOff(Fsgate):
    """fsgate with `--audit off`: only to measure what the audit costs (4 KiB workload)."""
    name = "fsgate --audit off"
    workloads = ["4KiB"]

    def start(self):
        self.args = argparse.Namespace(**{**vars(self.args),
                                          "fsgate_arg": self.args.fsgate_arg + ["--audit", "off"]})
        super().start()


class S3sFs(Server):
    name = "s3s-fs"

    def start(self):
        root = os.path.join(self.workdir, "data")
        os.makedirs(root)
        self.spawn([self.args.s3s_fs, "--host", "127.0.0.1", "--port", str(self.port),
                    "--access-key", AK, "--secret-key", SK, root])
        wait_http(self.endpoint + "/")

    def version(self):
        return subprocess.run([self.args.s3s_fs, "--version"], capture_output=True,
                              text=True).stdout.strip()


class RcloneS3(Server):
    name = "rclone serve s3"

    def start(self):
        root = os.path.join(self.workdir, "data")
        os.makedirs(root)
        self.spawn([self.args.rclone, "serve", "s3", "--addr", f"127.0.0.1:{self.port}",
                    "--auth-key", f"{AK},{SK}", root],
                   env={"RCLONE_CONFIG": os.path.join(self.workdir, "rclone.conf")})
        wait_http(self.endpoint + "/")

    def version(self):
        out = subprocess.run([self.args.rclone, "version"], capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else ""


class Moto(Server):
    name = "moto"

    def start(self):
        self.spawn([self.args.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)])
        wait_http(self.endpoint + "/moto-api/")

    def version(self):
        out = subprocess.run([self.args.python, "-c", "import moto; print(moto.__version__)"],
                             capture_output=True, text=True).stdout.strip()
        return f"moto {out}"


class Nginx(Server):
    """Plain files: GET is static serving (sendfile), PUT/DELETE are WebDAV, bucket-level
    requests (create, head, delete) are answered 200 and do nothing."""
    name = "nginx (static files)"

    def start(self):
        root = os.path.join(self.workdir, "data")
        os.makedirs(os.path.join(root, "bench"))
        tmp = os.path.join(self.workdir, "tmp")
        os.makedirs(tmp)
        conf = os.path.join(self.workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
daemon off;
user root;
worker_processes 2;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  client_max_body_size 0;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    root {root};
    location ~ ^/[^/]+/?$ {{ return 200; }}
    location / {{ dav_methods PUT DELETE; create_full_put_path on; }}
  }}
}}
""")
        self.spawn([self.args.nginx, "-c", conf, "-e", os.path.join(self.workdir, "error.log")])
        wait_http(self.endpoint + "/bench")

    def version(self):
        out = subprocess.run([self.args.nginx, "-v"], capture_output=True, text=True).stderr
        return out.strip().replace("nginx version: ", "")


def bench(server, argv, quiet=True):
    cmd = [server.args.fsctl, "--endpoint", server.endpoint, "--access-key", server.ak,
           "--secret-key", server.sk, "--json", "bench"] + argv + (["--quiet"] if quiet else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{server.name}: {' '.join(argv)}: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_server(cls, args, results, memory):
    workdir = tempfile.mkdtemp(prefix="fsgate-perf-", dir=args.workdir)
    s = cls(args, workdir)
    # The peers do not fsync: without this, the next server would pay for writing back their
    # dirty pages.
    os.sync()
    try:
        s.start()
        s.prepare()
        for wname, objects, size, conc in WORKLOADS:
            if s.workloads is not None and wname not in s.workloads:
                continue
            common = ["--size", size, "--concurrency", str(conc), "--bucket", "bench"]
            n = max(1, int(objects * args.scale))
            for op in OPS:
                argv = [op, "--objects", str(n)] + common
                if op == "get":
                    argv += ["--existing", "--duration", f"{args.get_seconds}s"]
                elif op == "delete":
                    argv += ["--existing", "--duration", f"{args.cap_seconds}s"]
                else:
                    argv += ["--duration", f"{args.cap_seconds}s"]
                c0 = cpu_seconds(s.proc.pid)
                try:
                    r = bench(s, argv)
                except RuntimeError as e:
                    print(f"  {s.name} {wname} {op}: FAILED {e}", file=sys.stderr)
                    results.setdefault((s.name, wname, op), []).append(None)
                    if op == "put":
                        break
                    continue
                r["cpu_us_per_op"] = (cpu_seconds(s.proc.pid) - c0) * 1e6 / max(r["ops"], 1)
                results.setdefault((s.name, wname, op), []).append(r)
                print(f"  {s.name:22} {wname:6} {op:6} {r['ops_per_sec']:9.1f} ops/s "
                      f"{r['mib_per_sec']:8.1f} MiB/s p99 {r['latency_ms']['p99']:7.2f} ms "
                      f"cpu {r['cpu_us_per_op']:8.0f} us/op errors {r['errors']}", file=sys.stderr)
                if op == "put":
                    n = r["ops"]  # a capped run wrote fewer objects: read and delete those
        memory.setdefault(s.name, []).append(status_kib(s.proc.pid, "VmHWM"))
    except Exception as e:  # one server failing must not lose the others' figures
        print(f"  {s.name}: FAILED {e}", file=sys.stderr)
    finally:
        s.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return s


# ---- the machine's own ceilings ------------------------------------------------------------

def loopback_mib_s(seconds=2.0):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = [0]

    def sink():
        c, _ = srv.accept()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while True:
            n = c.recv_into(view)
            if not n:
                break
            got[0] += n
        c.close()

    t = threading.Thread(target=sink)
    t.start()
    c = socket.create_connection(("127.0.0.1", port))
    data = memoryview(os.urandom(1 << 20))
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        c.sendall(data)
    c.close()
    t.join()
    srv.close()
    return got[0] / (time.perf_counter() - start) / (1 << 20)


def fsync_sequential_mib_s(directory, total=1 << 30, file_size=64 << 20):
    """Files of 64 MiB written in 1 MiB writes, each fdatasync'd before the next: the same
    shape as a durable 64 MiB PUT, without any HTTP or hashing."""
    chunk = os.urandom(1 << 20)
    start = time.perf_counter()
    for i in range(total // file_size):
        path = os.path.join(directory, f"seq-{i}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for _ in range(file_size // len(chunk)):
            os.write(fd, chunk)
        os.fdatasync(fd)
        os.close(fd)
    secs = time.perf_counter() - start
    for i in range(total // file_size):
        os.unlink(os.path.join(directory, f"seq-{i}"))
    return total / secs / (1 << 20)


def small_fdatasync_per_s(directory, seconds=2.0):
    """4 KiB write + fdatasync, one after another, on one file."""
    path = os.path.join(directory, "small")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = os.urandom(4096)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        os.pwrite(fd, block, n * 4096)
        os.fdatasync(fd)
        n += 1
    secs = time.perf_counter() - start
    os.close(fd)
    os.unlink(path)
    return n / secs


# ---- fsgate alone: 5 GiB single-object upload and download ---------------------------------

def big_object_rss(args):
    workdir = tempfile.mkdtemp(prefix="fsgate-perf-big-", dir=args.workdir)
    s = Fsgate(args, workdir)
    out = {}
    try:
        s.start()
        size = args.big_object
        base = status_kib(s.proc.pid, "VmRSS")
        with open(f"/proc/{s.proc.pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        r = bench(s, ["put", "--objects", "1", "--size", f"{size}", "--concurrency", "1",
                      "--bucket", "big", "--duration", "600s"])
        out["put_growth_mib"] = (status_kib(s.proc.pid, "VmHWM") - base) / 1024
        out["put_mib_s"] = r["mib_per_sec"]
        assert r["ops"] == 1 and r["errors"] == 0, r
        base = status_kib(s.proc.pid, "VmRSS")
        with open(f"/proc/{s.proc.pid}/clear_refs", "w") as f:
            f.write("5")
        r = bench(s, ["get", "--objects", "1", "--size", f"{size}", "--concurrency", "1",
                      "--bucket", "big", "--existing", "--duration", "1s"])
        out["get_growth_mib"] = (status_kib(s.proc.pid, "VmHWM") - base) / 1024
        out["get_mib_s"] = r["mib_per_sec"]
        assert r["ops"] >= 1 and r["errors"] == 0, r
    finally:
        s.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# ---- fsgate alone: the policy base grows from 10 to 10,000 users --------------------------

def policy_base_scaling(args):
    """4 KiB GET as one user among 10 (10 buckets, a bucket policy each) on one fsgate and as
    the same kind of user among 10,000 (1,000 buckets, a bucket policy each) on another, both
    running, measured alternately three times each so that drift on the machine hits both
    alike. Users, roles, buckets and bucket policies are created through the admin and S3 APIs,
    as an operator would."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    from sigv4 import signed_request
    from concurrent.futures import ThreadPoolExecutor
    users, buckets = args.scale_users, args.scale_buckets
    objects = str(max(1, int(10_000 * args.scale)))
    out = {}

    def bucket_policy(b):
        return json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
             "Resource": f"arn:aws:s3:::{b}/locked/*"}]}).encode()

    def setup(s, n_users, n_buckets):
        def call(method, path, body=b"", query=""):
            st, _, data = signed_request(s.endpoint, AK, SK, method, path, query=query, body=body)
            if st >= 300:
                raise RuntimeError(f"{method} {path}?{query}: {st} {data[:300]!r}")
            return data

        def grow(lo_u, hi_u, lo_b, hi_b):
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda b: call("PUT", f"/pb{b:04d}"), range(lo_b, hi_b)))
                list(pool.map(lambda b: call("PUT", f"/pb{b:04d}", bucket_policy(f"pb{b:04d}"), "policy="),
                              range(lo_b, hi_b)))
                made = list(pool.map(lambda u: json.loads(call(
                    "POST", "/admin/v1/users", json.dumps({"name": f"pu{u:05d}"}).encode())),
                    range(lo_u, hi_u)))
                list(pool.map(lambda u: call("POST", "/admin/v1/policies", json.dumps(
                    {"user": f"pu{u:05d}", "role": "readwrite", "bucket": f"pb{u % hi_b:04d}"}).encode()),
                    range(lo_u, hi_u)))
            return made

        made = grow(0, 10, 0, 10)
        s.ak, s.sk = made[0]["access_key"], made[0]["secret_key"]
        bench(s, ["put", "--objects", objects, "--size", "4KiB", "--concurrency", "16",
                  "--bucket", "pb0000", "--duration", "60s"])
        if n_users > 10:
            t0 = time.time()
            grow(10, n_users, 10, n_buckets)
            out["setup_large_s"] = time.time() - t0
            # One more change at full size, timed alone: what an operator waits for.
            t0 = time.time()
            call("POST", "/admin/v1/users", json.dumps({"name": "pu-last"}).encode())
            out["add_user_ms"] = (time.time() - t0) * 1000
            t0 = time.time()
            call("POST", "/admin/v1/policies", json.dumps(
                {"user": "pu-last", "role": "readonly", "bucket": "pb0001"}).encode())
            out["attach_ms"] = (time.time() - t0) * 1000

    def get_ops(s):
        r = bench(s, ["get", "--objects", objects, "--size", "4KiB", "--concurrency", "16",
                      "--bucket", "pb0000", "--existing", "--duration", f"{args.get_seconds}s"])
        return r["ops_per_sec"]

    dirs = [tempfile.mkdtemp(prefix="fsgate-perf-scale-", dir=args.workdir) for _ in range(2)]
    small, large = Fsgate(args, dirs[0]), Fsgate(args, dirs[1])
    try:
        for s, n_users, n_buckets in [(small, 10, 10), (large, users, buckets)]:
            s.start()
            setup(s, n_users, n_buckets)
        runs = {"small": [], "large": []}
        for _ in range(3):
            runs["small"].append(get_ops(small))
            runs["large"].append(get_ops(large))
        out["small_ops"] = statistics.median(runs["small"])
        out["large_ops"] = statistics.median(runs["large"])
        out["runs"] = runs
        out["rss_mib"] = status_kib(large.proc.pid, "VmHWM") / 1024
    finally:
        stop_and_remove((small, large), dirs)
    return out


def audit_cost(args):
    """4 KiB GET on two fsgates, one with its defaults (audit on) and one with `--audit off`,
    both running with the same 10,000 objects and the same non-root bench user, measured in
    turn (which one goes first alternates) so that drift on the machine hits both alike."""
    objects = str(max(1, int(10_000 * args.scale)))
    dirs = [tempfile.mkdtemp(prefix="fsgate-perf-audit-", dir=args.workdir) for _ in range(2)]
    on, off = Fsgate(args, dirs[0]), FsgateAuditOff(args, dirs[1])
    runs = {"on": [], "off": [], "cpu_on": [], "cpu_off": []}
    try:
        for s in (on, off):
            s.start()
            s.prepare()
            bench(s, ["put", "--objects", objects, "--size", "4KiB", "--concurrency", "16",
                      "--bucket", "bench", "--duration", "60s"])
        order = [(on, "on"), (off, "off")]
        for i in range(args.audit_pairs):
            for s, k in (order if i % 2 == 0 else order[::-1]):
                c0 = cpu_seconds(s.proc.pid)
                r = bench(s, ["get", "--objects", objects, "--size", "4KiB", "--concurrency", "16",
                              "--bucket", "bench", "--existing", "--duration", f"{args.get_seconds}s"])
                runs[k].append(r["ops_per_sec"])
                runs["cpu_" + k].append((cpu_seconds(s.proc.pid) - c0) * 1e6 / max(r["ops"], 1))
    finally:
        stop_and_remove((on, off), dirs)
    return runs


def stop_and_remove(servers, dirs):
    """Stops the side-by-side servers and removes their data directories."""
    for s in servers:
        s.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


# ---- report --------------------------------------------------------------------------------

def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def fmt_range(values, digits=0):
    v = [x for x in values if x is not None]
    if not v:
        return "failed"
    m = statistics.median(v)
    f = f"{{:,.{digits}f}}"
    return f"{f.format(m)} ({f.format(min(v))}–{f.format(max(v))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsgate", required=True)
    ap.add_argument("--fsctl", required=True)
    ap.add_argument("--s3s-fs", dest="s3s_fs")
    ap.add_argument("--rclone")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--nginx")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--get-seconds", type=float, default=6)
    ap.add_argument("--cap-seconds", type=float, default=20)
    ap.add_argument("--big-object", default="5GiB")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every workload's object count (a quick smoke run: 0.01)")
    ap.add_argument("--scale-users", type=int, default=10_000,
                    help="users for the policy-base check (0: skip it)")
    ap.add_argument("--scale-buckets", type=int, default=1_000)
    ap.add_argument("--audit-pairs", type=int, default=5,
                    help="alternating GET runs, audit on and off, for the audit's cost (0: skip)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--only", action="append", default=[], help="server names to run")
    ap.add_argument("--fsgate-arg", action="append", default=[])
    ap.add_argument("--out")
    ap.add_argument("--command", default=shlex.join(sys.argv))
    args = ap.parse_args()

    servers = [Fsgate]
    if args.s3s_fs:
        servers.append(S3sFs)
    if args.rclone:
        servers.append(RcloneS3)
    if args.python:
        try:
            subprocess.run([args.python, "-c", "import moto.server"], check=True, capture_output=True)
            servers.append(Moto)
        except subprocess.CalledProcessError:
            print("moto not importable: skipped", file=sys.stderr)
    if args.nginx:
        servers.append(Nginx)
    if args.only:
        servers = [c for c in servers if c.name in args.only or c.name.split()[0] in args.only]

    workdir = args.workdir or tempfile.gettempdir()
    started = time.time()
    results, memory, ceilings, versions = {}, {}, {"loopback": [], "seq": [], "small": []}, {}
    for rnd in range(args.rounds):
        order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
        print(f"round {rnd + 1}/{args.rounds}: {', '.join(c.name for c in order)}", file=sys.stderr)
        d = tempfile.mkdtemp(prefix="fsgate-ceiling-", dir=workdir)
        secs = 2.0 * min(1.0, args.scale * 50)
        ceilings["loopback"].append(loopback_mib_s(secs))
        ceilings["seq"].append(fsync_sequential_mib_s(d, total=max(64 << 20, int(args.scale * 16) * (64 << 20))))
        ceilings["small"].append(small_fdatasync_per_s(d, secs))
        shutil.rmtree(d, ignore_errors=True)
        print(f"  ceilings: loopback {ceilings['loopback'][-1]:.0f} MiB/s, fsync'd sequential "
              f"{ceilings['seq'][-1]:.0f} MiB/s, 4 KiB write+fdatasync {ceilings['small'][-1]:.0f}/s",
              file=sys.stderr)
        for cls in order:
            s = run_server(cls, args, results, memory)
            versions[cls.name] = s.version()
    big = {}
    if args.big_object != "0":
        print(f"fsgate alone: one {args.big_object} object up and down", file=sys.stderr)
        big = big_object_rss(args)
        print(f"  {big}", file=sys.stderr)
    scaling = {}
    if args.scale_users > 0 and any(c is Fsgate for c in servers):
        print(f"fsgate alone: 4 KiB GET with 10 users, then {args.scale_users:,} users and "
              f"{args.scale_buckets:,} bucket policies", file=sys.stderr)
        scaling = policy_base_scaling(args)
        print(f"  {scaling}", file=sys.stderr)
    audit = {}
    if args.audit_pairs > 0 and any(c is Fsgate for c in servers):
        print(f"fsgate alone: 4 KiB GET with the audit on and off, {args.audit_pairs} runs each, "
              "alternating", file=sys.stderr)
        audit = audit_cost(args)
        print(f"  {audit}", file=sys.stderr)
    elapsed = time.time() - started
    report = render(args, servers, results, memory, ceilings, versions, big, elapsed, scaling,
                    audit)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    print(report)


def render(args, servers, results, memory, ceilings, versions, big, elapsed, scaling, audit):
    names = [c.name for c in servers]
    L = []
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    L.append("# fsgate against other S3 servers on the same machine\n")
    L.append(f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
             f"the whole run took {elapsed / 60:.1f} min.")
    L.append(f"- Machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, "
             f"{platform.system()} {platform.release()}; client and servers share the cores, over loopback.")
    L.append("- Command: `" + args.command + "`")
    L.append("- Versions: " + "; ".join(f"{n}: {versions.get(n, '')}" for n in names))
    L.append(f"- {args.rounds} rounds, interleaved, server order rotated each round; each figure is the "
             "median of the rounds with the range in brackets. GET runs "
             f"{args.get_seconds:g} s over random objects of the set; PUT and DELETE run over the whole "
             f"set (capped at {args.cap_seconds:g} s). Client: `fsctl bench` (keep-alive, SigV4, distinct "
             "random contents). CPU is the server's user+system time per operation, from /proc.")
    L.append("- fsgate runs with its defaults: fsync before every acknowledgement, audit on, Cedar on; "
             "the bench user is not root: its only right is the `readwrite` role on the bench bucket. "
             "The peers do not fsync. nginx serves the same kind of files as static content (GET), "
             "takes PUT/DELETE as WebDAV, and is the HTTP ceiling, not an S3 server.\n")
    L.append("## Machine ceilings\n")
    L.append("| Ceiling | Median (range) |\n|---|---|")
    L.append(f"| Loopback TCP, one stream | {fmt_range(ceilings['loopback'])} MiB/s |")
    L.append(f"| Sequential write, 64 MiB files, fdatasync each | {fmt_range(ceilings['seq'])} MiB/s |")
    L.append(f"| 4 KiB write + fdatasync, one after another | {fmt_range(ceilings['small'])} /s |\n")
    for wname, objects, size, conc in WORKLOADS:
        L.append(f"## {wname}: {max(1, int(objects * args.scale)):,} objects of {size}, concurrency {conc}\n")
        L.append("| Server | Op | ops/s | MiB/s | p50 ms | p99 ms | CPU µs/op | errors |")
        L.append("|---|---|---|---|---|---|---|---|")
        for op in OPS:
            for n in names:
                rs = results.get((n, wname, op), [])
                if not rs:
                    continue
                g = lambda f: [f(r) if r else None for r in rs]
                errs = sum(r["errors"] for r in rs if r)
                L.append(f"| {n} | {op.upper()} | {fmt_range(g(lambda r: r['ops_per_sec']))} "
                         f"| {fmt_range(g(lambda r: r['mib_per_sec']), 1)} "
                         f"| {fmt_range(g(lambda r: r['latency_ms']['p50']), 2)} "
                         f"| {fmt_range(g(lambda r: r['latency_ms']['p99']), 2)} "
                         f"| {fmt_range(g(lambda r: r['cpu_us_per_op']))} | {errs} |")
        L.append("")
    L.append("## Targets\n")
    L.append("| Target | Measured | Met |\n|---|---|---|")

    def m(server, w, op, field="ops_per_sec"):
        rs = [r for r in results.get((server, w, op), []) if r]
        if field == "p99":
            return med([r["latency_ms"]["p99"] for r in rs])
        return med([r[field] for r in rs])

    peers = [n for n in names if n not in ("fsgate", "fsgate --audit off", "nginx (static files)")]

    def best_peer(w, op):
        vals = [(m(p, w, op), p) for p in peers if m(p, w, op) is not None]
        return max(vals) if vals else (None, None)

    def ratio_row(label, w, op, need):
        f = m("fsgate", w, op)
        b, who = best_peer(w, op)
        if f is None or b is None:
            L.append(f"| {label} | not measured | no |")
            return
        r = f / b
        L.append(f"| {label} ≥ {need}× best peer | {r:.2f}× ({f:,.0f} vs {who} {b:,.0f} ops/s) | "
                 f"{'yes' if r >= need else 'no'} |")

    ratio_row("4 KiB GET ops/s", "4KiB", "get", 1.5)
    p99 = m("fsgate", "4KiB", "get", "p99")
    if p99 is not None:
        L.append(f"| 4 KiB GET p99 < 5 ms | {p99:.2f} ms | {'yes' if p99 < 5 else 'no'} |")
    cpu_get = m("fsgate", "4KiB", "get", "cpu_us_per_op")
    if cpu_get is not None:
        L.append(f"| 4 KiB GET server CPU < 120 µs/request | {cpu_get:.0f} µs | {'yes' if cpu_get < 120 else 'no'} |")
    ratio_row("4 KiB PUT ops/s, durable", "4KiB", "put", 1.0)
    ratio_row("1 MiB GET ops/s", "1MiB", "get", 1.5)
    f, ng = m("fsgate", "64MiB", "get", "mib_per_sec"), m("nginx (static files)", "64MiB", "get", "mib_per_sec")
    if f is not None and ng is not None:
        L.append(f"| 64 MiB GET ≥ 0.75× nginx static | {f / ng:.2f}× ({f:,.0f} vs {ng:,.0f} MiB/s) | "
                 f"{'yes' if f / ng >= 0.75 else 'no'} |")
    f, seq = m("fsgate", "64MiB", "put", "mib_per_sec"), med(ceilings["seq"])
    if f is not None and seq:
        L.append(f"| 64 MiB PUT (fsync) ≥ 0.8× fsync'd sequential write | {f / seq:.2f}× ({f:,.0f} vs "
                 f"{seq:,.0f} MiB/s) | {'yes' if f / seq >= 0.8 else 'no'} |")
    on, off = med(audit.get("on", [])), med(audit.get("off", []))
    if on is not None and off is not None:
        cost = 1 - on / off
        L.append(f"| Audit on costs < 10 % of 4 KiB GET ops/s | {cost * 100:.1f} % ({on:,.0f} with vs "
                 f"{off:,.0f} ops/s without{'; below zero: no cost measurable over the noise' if cost < 0 else ''}) "
                 f"| {'yes' if cost < 0.10 else 'no'} |")
    if memory.get("fsgate"):
        peak = max(memory["fsgate"]) / 1024
        L.append(f"| fsgate peak RSS through the matrix < 256 MiB | {peak:.0f} MiB | {'yes' if peak < 256 else 'no'} |")
    if big:
        for k, label in [("put_growth_mib", "upload"), ("get_growth_mib", "download")]:
            g = big[k]
            L.append(f"| {args.big_object} {label} grows RSS < 64 MiB | +{g:.0f} MiB "
                     f"({big[k.replace('growth_mib', 'mib_s')]:.0f} MiB/s) | {'yes' if g < 64 else 'no'} |")
    if scaling:
        ratio = scaling["large_ops"] / scaling["small_ops"]
        L.append(f"| 4 KiB GET with {args.scale_users:,} users and {args.scale_buckets:,} bucket policies "
                 f"within 10 % of 10 users | {ratio:.2f}× the 10-user figure ({scaling['large_ops']:,.0f} vs "
                 f"{scaling['small_ops']:,.0f} ops/s) | {'yes' if abs(1 - ratio) < 0.10 else 'no'} |")
    L.append("")
    if scaling:
        L.append(f"## Policy base of {args.scale_users:,} users\n")
        L.append(f"Two fsgates, each with a bench user holding the `readwrite` role on its bucket: one "
                 f"with 10 users, 10 buckets and a bucket policy on each; one with {args.scale_users:,} "
                 f"users (a role each), {args.scale_buckets:,} buckets and a bucket policy on each, all "
                 f"created through the admin and S3 APIs ({scaling['setup_large_s']:.0f} s, 4 requests at "
                 f"a time). Both keep running; GET ({args.get_seconds:g} s) is measured on each in turn, "
                 f"three times, and the medians compared (runs: 10 users "
                 f"{', '.join(f'{x:,.0f}' for x in scaling['runs']['small'])}; {args.scale_users:,} users "
                 f"{', '.join(f'{x:,.0f}' for x in scaling['runs']['large'])} ops/s).\n")
        L.append("| | Figure |\n|---|---|")
        L.append(f"| 4 KiB GET, 10 users | {scaling['small_ops']:,.0f} ops/s |")
        L.append(f"| 4 KiB GET, {args.scale_users:,} users | {scaling['large_ops']:,.0f} ops/s |")
        L.append(f"| Adding one user at that size | {scaling['add_user_ms']:.0f} ms |")
        L.append(f"| Attaching one role at that size | {scaling['attach_ms']:.0f} ms |")
        L.append(f"| Peak RSS with {args.scale_users:,} users | {scaling['rss_mib']:.0f} MiB |\n")
    if audit.get("on") and audit.get("off"):
        L.append("## What the audit costs\n")
        L.append("Two fsgates with the same 10,000 objects and the same non-root bench user, one with its "
                 "defaults (every request's audit record committed in synced RocksDB batches) and one with "
                 "`--audit off` (an option that exists only for this comparison). Both keep running; "
                 f"4 KiB GET ({args.get_seconds:g} s) is measured on each in turn, {len(audit['on'])} times, "
                 "alternating which goes first, and the medians compared.\n")
        L.append("| | ops/s, median (range) | CPU µs/request | runs, ops/s |\n|---|---|---|---|")
        for k, label in [("on", "audit on (default)"), ("off", "--audit off")]:
            L.append(f"| {label} | {fmt_range(audit[k])} | {fmt_range(audit['cpu_' + k])} | "
                     f"{', '.join(f'{x:,.0f}' for x in audit[k])} |")
        L.append("")
    L.append("## Peak memory (VmHWM of the server's processes, largest round)\n")
    L.append("| Server | Peak RSS MiB |\n|---|---|")
    for n in names:
        if memory.get(n):
            L.append(f"| {n} | {max(memory[n]) / 1024:.0f} |")
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
