#!/usr/bin/env python3
"""Leader failover benchmark: arbor vs Apache ZooKeeper 3.8, 3-node ensembles on 127.0.0.1.

For each repetition a fresh ensemble is started (child processes, tracked by PID), the
leader is found with `srvr` (Mode:), a few writes go through every server, then the
leader's process gets SIGKILL (crash: sockets are reset) or SIGSTOP (silent partition:
no FIN, peers must time out). The script then keeps trying `create` of a fresh znode on
the two OTHER servers (raw ZooKeeper wire protocol: connect + create, 0.5 s connect
timeout, 2 s per attempt, a new attempt 20 ms after a failure, and an extra one if the
newest attempt has been pending 250 ms) until one succeeds, and records the time from
the signal to that first successful reply. Everything is then killed by PID (stopped
processes get SIGCONT first) and the next run starts. Runs are interleaved
arbor, zk, arbor, zk, ... so machine load hits both alike.

    python3 scripts/failover-bench.py --reps 5 --ticks 2000,200 --signals KILL,STOP

Options: --systems arbor,zk  --arbor /work/target/release/arbor (copied into --out first, so a
         concurrent rebuild cannot swap it mid-run)  --out DIR (logs, results.json)
         --give-up 120 (s per run)  --zk-heap 256m  --zk-fsync yes|no
         --no-phase-jitter (default: wait a random 0..tickTime after warm-up before the
         signal, so the signal lands at a random phase of the servers' tick timers)  --seed N

ZooKeeper is started the way /work/shared/peers/zk-cluster.sh starts it (Debian package
jars, QuorumPeerMain, log4j to a file, forceSync=yes, maxClientCnxns=0, admin server off),
but from a config written here so tickTime can vary, and on its own ports (24181-24183,
24888-24890, 24988-24990) so it cannot collide with a zk-cluster.sh ensemble. arbor uses
23181-23183 / 23888-23890 / 23988-23990. initLimit=10, syncLimit=5 for both.

arbor's stderr (its `role changed` lines) is kept per server with wall-clock and
since-signal timestamps in <out>/<run>/node<id>.log.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
ZK_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
PORTS = {
    "arbor": {"client": 23180, "quorum": 23887, "election": 23987},
    "zk": {"client": 24180, "quorum": 24887, "election": 24987},
}
IDS = (1, 2, 3)


def port(system, kind, i):
    return PORTS[system][kind] + i


def all_ports(system):
    return [port(system, k, i) for k in ("client", "quorum", "election") for i in IDS]


def port_free(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, p))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------- ZooKeeper wire protocol

def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by server")
        buf += chunk
    return buf


def _recv_frame(s):
    (n,) = struct.unpack(">i", _recv_exact(s, 4))
    if n < 0 or n > 1 << 20:
        raise ConnectionError(f"bad frame length {n}")
    return _recv_exact(s, n)


def _zstr(b):
    return struct.pack(">i", len(b)) + b


def zk_create(p, path, timeout=2.0, connect_timeout=0.5):
    """Open a session on HOST:p and create `path` (persistent). Returns None on success,
    else a short error string. Never takes much longer than `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        s = socket.create_connection((HOST, p), timeout=connect_timeout)
    except OSError as e:
        return f"connect:{e.__class__.__name__}"
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def left():
            r = deadline - time.monotonic()
            if r <= 0:
                raise TimeoutError("attempt timeout")
            return r

        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        req = struct.pack(">iqiq", 0, 0, 4000, 0) + _zstr(b"\0" * 16) + b"\0"
        s.settimeout(left())
        s.sendall(struct.pack(">i", len(req)) + req)
        s.settimeout(left())
        resp = _recv_frame(s)
        _, sess_timeout, session_id = struct.unpack(">iiq", resp[:16])
        if sess_timeout <= 0 or session_id == 0:
            return "session-rejected"
        # create: RequestHeader(xid=1, type=1) + CreateRequest(path, data, acl[world:anyone ALL], flags=0)
        body = (struct.pack(">ii", 1, 1) + _zstr(path.encode()) + _zstr(b"x")
                + struct.pack(">ii", 1, 31) + _zstr(b"world") + _zstr(b"anyone") + struct.pack(">i", 0))
        s.settimeout(left())
        s.sendall(struct.pack(">i", len(body)) + body)
        while True:
            s.settimeout(left())
            frame = _recv_frame(s)
            xid, _zxid, err = struct.unpack(">iqi", frame[:16])
            if xid == 1:
                break  # skip pings (-2) / notifications (-1)
        if err != 0:
            return f"create-err:{err}"
        try:  # closeSession, best effort, don't wait for the reply
            cs = struct.pack(">ii", 2, -11)
            s.sendall(struct.pack(">i", len(cs)) + cs)
        except OSError:
            pass
        return None
    except TimeoutError:
        return "timeout"
    except socket.timeout:
        return "timeout"
    except (OSError, ConnectionError, struct.error) as e:
        return f"io:{e.__class__.__name__}"
    finally:
        s.close()


def four_letter(p, cmd=b"srvr", timeout=1.0):
    try:
        with socket.create_connection((HOST, p), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(cmd)
            out = b""
            while True:
                c = s.recv(4096)
                if not c:
                    break
                out += c
            return out.decode(errors="replace")
    except OSError:
        return ""


def mode(system, i):
    for line in four_letter(port(system, "client", i)).splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


# ---------------------------------------------------------------- ensembles

class Ensemble:
    def __init__(self, system, tick, rundir, args):
        self.system, self.tick, self.dir, self.args = system, tick, rundir, args
        self.procs = {}
        self.readers = []
        self.t_signal = None  # wall clock of the signal, for log stamps

    def _stamp_reader(self, proc, path):
        def run():
            with open(path, "w") as f:
                for raw in proc.stdout:
                    now = time.time()
                    rel = "" if self.t_signal is None else f" sig{(now - self.t_signal) * 1000:+9.1f}ms"
                    f.write(f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d}{rel} "
                            f"{raw.decode(errors='replace')}")
                    f.flush()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.readers.append(t)

    def start(self):
        busy = [p for p in all_ports(self.system) if not port_free(p)]
        if busy:
            raise RuntimeError(f"{self.system}: ports in use: {busy}")
        if self.system == "arbor":
            cfg = os.path.join(self.dir, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write(f"tickTime={self.tick}\ninitLimit=10\nsyncLimit=5\n")
                f.write(f"dataDir={self.dir}/{{id}}\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n")
                for i in IDS:
                    f.write(f"server.{i}={HOST}:{port('arbor', 'quorum', i)}:{port('arbor', 'election', i)}"
                            f";{HOST}:{port('arbor', 'client', i)}\n")
            for i in IDS:
                p = subprocess.Popen([self.args.arbor, "node", str(i), cfg], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                self.procs[i] = p
                self._stamp_reader(p, os.path.join(self.dir, f"node{i}.log"))
        else:
            for i in IDS:
                d = os.path.join(self.dir, f"zk{i}")
                for sub in ("data", "conf", "log"):
                    os.makedirs(os.path.join(d, sub), exist_ok=True)
                with open(os.path.join(d, "data", "myid"), "w") as f:
                    f.write(f"{i}\n")
                with open(os.path.join(d, "conf", "zoo.cfg"), "w") as f:
                    f.write(f"tickTime={self.tick}\ninitLimit=10\nsyncLimit=5\ndataDir={d}/data\n"
                            f"clientPort={port('zk', 'client', i)}\nclientPortAddress={HOST}\n"
                            f"maxClientCnxns=0\nforceSync={self.args.zk_fsync}\nadmin.enableServer=false\n"
                            f"4lw.commands.whitelist=*\n")
                    for j in IDS:
                        f.write(f"server.{j}={HOST}:{port('zk', 'quorum', j)}:{port('zk', 'election', j)}\n")
                with open(os.path.join(d, "conf", "log4j.properties"), "w") as f:
                    f.write("log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n"
                            f"log4j.appender.F.File={d}/log/zookeeper.log\n"
                            "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                            "log4j.appender.F.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n\n")
                out = open(os.path.join(d, "log", "stdout.log"), "w")
                p = subprocess.Popen(
                    ["java", f"-Xms{self.args.zk_heap}", f"-Xmx{self.args.zk_heap}",
                     f"-Dzookeeper.forceSync={self.args.zk_fsync}", f"-Dzookeeper.log.dir={d}/log",
                     f"-Dlog4j.configuration=file:{d}/conf/log4j.properties",
                     "-cp", ZK_CP, "org.apache.zookeeper.server.quorum.QuorumPeerMain", f"{d}/conf/zoo.cfg"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
                out.close()
                self.procs[i] = p

    def wait_ready(self, timeout=90.0):
        """One leader, two followers; returns the leader id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{self.system} server {i} exited with {p.returncode}")
            modes = {i: mode(self.system, i) for i in IDS}
            leaders = [i for i, m in modes.items() if m == "leader"]
            followers = [i for i, m in modes.items() if m == "follower"]
            if len(leaders) == 1 and len(followers) == 2:
                return leaders[0]
            time.sleep(0.1)
        raise RuntimeError(f"{self.system}: no leader+2 followers within {timeout}s: {modes}")

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print(f"warning: pid {p.pid} did not exit", file=sys.stderr)
        for t in self.readers:
            t.join(timeout=2)
        # The ports must be free again before the next run starts.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(port_free(p) for p in all_ports(self.system)):
            time.sleep(0.1)


# ---------------------------------------------------------------- one measurement

def probe_until_write(system, targets, t0, give_up, tag):
    """Attempt creates on `targets` (client ports) until one succeeds. Returns
    (elapsed_ms or None, details)."""
    done = threading.Event()
    lock = threading.Lock()
    res = {"t": None, "port": None}
    errors = {}
    pending = {tp: [] for tp in targets}   # start times of in-flight attempts
    last_end = {tp: 0.0 for tp in targets}
    seq = [0]

    def attempt(tp, start, n):
        err = zk_create(tp, f"/failover-{tag}-{n}")
        now = time.monotonic()
        with lock:
            pending[tp].remove(start)
            last_end[tp] = now
            if err is None:
                if res["t"] is None:
                    res["t"], res["port"] = now, tp
                done.set()
            else:
                errors[err] = errors.get(err, 0) + 1

    end = t0 + give_up
    while not done.is_set() and time.monotonic() < end:
        now = time.monotonic()
        with lock:
            for tp in targets:
                pend = pending[tp]
                fresh = not pend and now - last_end[tp] >= 0.020
                stuck = pend and now - max(pend) >= 0.250 and len(pend) < 4
                if fresh or stuck:
                    seq[0] += 1
                    pend.append(now)
                    threading.Thread(target=attempt, args=(tp, now, seq[0]), daemon=True).start()
        done.wait(0.005)
    details = {"attempts": seq[0], "errors": errors}
    if res["t"] is None:
        return None, details
    details["port"] = res["port"]
    return (res["t"] - t0) * 1000.0, details


def one_run(system, tick, sig, rep, args):
    name = f"{system}-tick{tick}-{sig}-r{rep}"
    rundir = os.path.join(args.out, name)
    os.makedirs(rundir)
    ens = Ensemble(system, tick, rundir, args)
    rec = {"system": system, "tick": tick, "signal": sig, "rep": rep, "dir": rundir,
           "loadavg": open("/proc/loadavg").read().split()[:3]}
    try:
        ens.start()
        t_start = time.monotonic()
        leader = ens.wait_ready()
        rec["ready_s"] = round(time.monotonic() - t_start, 2)
        for i in IDS:  # a few writes through every server (the leader first)
            for k in range(3):
                err = None
                for _ in range(50):
                    err = zk_create(port(system, "client", i), f"/warm-{i}-{k}")
                    if err is None:
                        break
                    time.sleep(0.1)
                if err is not None:
                    raise RuntimeError(f"warm-up write via server {i} failed: {err}")
        time.sleep(1.0)
        if ens.wait_ready(5) != leader:
            raise RuntimeError("leader changed during warm-up")
        # Random phase: heartbeats and timeout checks run on tick boundaries, so a fixed
        # delay would always hit the same phase. Sample it uniformly over one tick.
        delay = random.uniform(0, tick / 1000.0) if args.phase_jitter else 0.0
        rec["pre_signal_delay_ms"] = round(delay * 1000)
        time.sleep(delay)
        if ens.wait_ready(5) != leader:
            raise RuntimeError("leader changed during warm-up")
        others = [i for i in IDS if i != leader]
        rec["leader"] = leader
        pid = ens.procs[leader].pid
        ens.t_signal = time.time()
        rec["signal_wall"] = ens.t_signal
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL if sig == "KILL" else signal.SIGSTOP)
        ms, details = probe_until_write(system, [port(system, "client", i) for i in others],
                                        t0, args.give_up, f"{system}{tick}{sig}{rep}")
        rec.update(details)
        rec["ms"] = None if ms is None else round(ms, 1)
        if ms is not None:
            rec["new_leader"] = next((i for i in others if mode(system, i) == "leader"), None)
            rec["via"] = next(i for i in others if port(system, "client", i) == details["port"])
    except Exception as e:  # recorded as a failure
        rec["ms"] = None
        rec["error"] = str(e)
    finally:
        ens.stop()
    if not args.keep_data:
        for i in IDS:
            shutil.rmtree(os.path.join(rundir, str(i)), ignore_errors=True)
            shutil.rmtree(os.path.join(rundir, f"zk{i}", "data"), ignore_errors=True)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ticks", default="2000,200")
    ap.add_argument("--signals", default="KILL,STOP")
    ap.add_argument("--systems", default="arbor,zk")
    ap.add_argument("--arbor", default="/work/target/release/arbor")
    ap.add_argument("--out", default=None)
    ap.add_argument("--give-up", type=float, default=120.0)
    ap.add_argument("--zk-heap", default="256m")
    ap.add_argument("--zk-fsync", default="yes", choices=["yes", "no"])
    ap.add_argument("--keep-data", action="store_true")
    ap.add_argument("--no-phase-jitter", dest="phase_jitter", action="store_false",
                    help="signal right after warm-up instead of after a random 0..tickTime delay")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    random.seed(args.seed)
    args.out = args.out or tempfile.mkdtemp(prefix="failover-bench-")
    os.makedirs(args.out, exist_ok=True)
    systems = args.systems.split(",")
    ticks = [int(t) for t in args.ticks.split(",")]
    sigs = args.signals.split(",")
    for s in systems:
        busy = [p for p in all_ports(s) if not port_free(p)]
        if busy:
            sys.exit(f"{s}: ports already in use: {busy}")
    if "arbor" in systems:
        if not os.access(args.arbor, os.X_OK):
            sys.exit(f"no arbor binary at {args.arbor}")
        # Run a private copy: a shared target dir may be rebuilt by someone else mid-run.
        copy = os.path.join(args.out, "arbor-bin")
        shutil.copy2(args.arbor, copy)
        print(f"arbor: {args.arbor} (mtime {time.ctime(os.path.getmtime(args.arbor))}) copied to {copy}")
        args.arbor = copy

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    print(f"output: {args.out}", flush=True)
    results = []
    try:
        for rep in range(1, args.reps + 1):
            for tick in ticks:
                for sig in sigs:
                    for system in systems:  # interleaved: arbor, zk, arbor, zk, ...
                        rec = one_run(system, tick, sig, rep, args)
                        results.append(rec)
                        print(f"{system:5} tick={tick:<5} {sig:4} rep={rep} "
                              f"ms={rec['ms']} delay={rec.get('pre_signal_delay_ms')} leader={rec.get('leader')}->{rec.get('new_leader')} "
                              f"via={rec.get('via')} attempts={rec.get('attempts')} "
                              f"errors={rec.get('errors')} load={' '.join(rec['loadavg'])}"
                              + (f" ERROR={rec['error']}" if "error" in rec else ""), flush=True)
                        with open(os.path.join(args.out, "results.json"), "w") as f:
                            json.dump(results, f, indent=1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)

    print(f"\n{'system':6} {'tick':>5} {'signal':6} {'min':>9} {'median':>9} {'max':>9} {'n':>3} {'fail':>4}")
    for system in systems:
        for tick in ticks:
            for sig in sigs:
                rs = [r for r in results if (r["system"], r["tick"], r["signal"]) == (system, tick, sig)]
                ok = [r["ms"] for r in rs if r["ms"] is not None]
                fail = len(rs) - len(ok)
                if ok:
                    print(f"{system:6} {tick:5} {sig:6} {min(ok):9.1f} {statistics.median(ok):9.1f} "
                          f"{max(ok):9.1f} {len(ok):3} {fail:4}")
                else:
                    print(f"{system:6} {tick:5} {sig:6} {'-':>9} {'-':>9} {'-':>9} {0:3} {fail:4}")
    print(f"results: {os.path.join(args.out, 'results.json')}")


if __name__ == "__main__":
    main()
