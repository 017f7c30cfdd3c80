"""wolive's Pusher benchmark: idle connections (memory) and HTTP-API fan-out (throughput,
latency, CPU per message). Not a test; see docs/performance.md for the numbers.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/run.py --all                # everything, a few minutes
    .venv/bin/python bench/run.py --idle --conns 2000  # one scenario, smaller
    .venv/bin/python bench/run.py --fanout --flat --variant uvloop --variant prepared
    .venv/bin/python bench/run.py --fanout --profile   # py-spy the server meanwhile
    .venv/bin/python bench/run.py --chat               # the chat path, SQLite and MariaDB

Each scenario gets a fresh server: `bench/serve.py` (= `wolive.py` plus the `--variant`
patches) pinned to core 0 with `taskset -c 0`, on a generated config (SQLite in a temp
dir, one Pusher app: id 1, key `bench`, a known secret), with the open-files limit raised
to the hard limit (both processes inherit it). The load generator `bench/loadgen.py` runs
pinned to core 1. Results are printed as a table and kept in bench/results/ as JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
SECRET = "bench-secret"


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import tornado
        tornado_v = tornado.version
    except ImportError:
        tornado_v = "?"
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "tornado": tornado_v, "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def tree_version(tree: str) -> str:
    """`git describe` of the served tree (+dirty), or 'unknown'."""
    try:
        return subprocess.run(["git", "-C", tree, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Server:
    """wolive on core 0, from a generated config; `stop()` ends it (SIGTERM, then KILL)."""

    def __init__(self, variants: list[str], log_level: str, cpu: str, tree: str,
                 nice: int = 0, db_url: str = "", admin: str = "",
                 xheaders: bool = False) -> None:
        self.dir = tempfile.mkdtemp(prefix="wolive-bench-")
        cfg = os.path.join(self.dir, "config.yaml")
        with open(cfg, "w") as f:
            f.write(
                "server:\n  host: 127.0.0.1\n  port: 0\n  demo_port: null\n"
                f"  xheaders: {'true' if xheaders else 'false'}\n"
                f"  data_dir: {self.dir}/data\n"
                f"database:\n  url: {db_url or f'sqlite:///{self.dir}/data/wolive.db'}\n"
                f"pusher:\n  apps:\n    - {{id: \"1\", key: bench, secret: {SECRET}}}\n"
                f"security:\n  bcrypt_rounds: 4\nlog_level: {log_level}\n")
        #: Where the `stmtcount` variant dumps its counters (SIGUSR2).
        self.counts = os.path.join(self.dir, "counts.json")
        env = dict(os.environ, WOLIVE_BENCH_COUNTS=self.counts)
        serve = [PY, os.path.join(HERE, "serve.py"), "--tree", tree]
        if admin:  # "user:password:business": the business and its super_manager first
            user, password, business = admin.split(":")
            subprocess.run(serve + ["--config", cfg, "--create-admin", user, "--business-id",
                                    business], cwd=ROOT, check=True, capture_output=True,
                           env=dict(env, WOLIVE_ADMIN_PASSWORD=password), timeout=120)
        cmd = niced(nice) + ["taskset", "-c", cpu] + serve
        for v in variants:
            cmd += ["--variant", v]
        cmd += ["--config", cfg]
        self.log = open(os.path.join(self.dir, "server.log"), "w+")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.stop()
            raise SystemExit(f"server did not start: {line!r}\n{self.tail()}")
        self.port = int(m.group(1))
        self.pid = self.proc.pid

    def tail(self, n: int = 20) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return "".join(f.readlines()[-n:])

    def errors(self) -> list[str]:
        """Server log lines at ERROR or with a traceback (other than shutdown noise)."""
        self.log.flush()
        with open(self.log.name) as f:
            return [line.rstrip() for line in f if " ERROR " in line or "Traceback" in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def set_autogroup_nice(nice: int) -> None:
    """With scheduler autogroups (kernel.sched_autogroup_enabled), `nice` only ranks
    processes inside one group; the group's own weight is set in /proc/self/autogroup.
    This process's group is inherited by the server and the load generator."""
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError as exc:
        print(f"note: autogroup nice not set ({exc.strerror})", file=sys.stderr)


def niced(nice: int) -> list[str]:
    """A `nice -n N` prefix (a negative N needs root), or nothing for 0."""
    return ["nice", "-n", str(nice)] if nice else []


def loadgen(server: Server, scenario: str, extra: list[str], cpu: str,
            nice: int = 0) -> dict[str, Any]:
    cmd = niced(nice) + ["taskset", "-c", cpu, PY, os.path.join(HERE, "loadgen.py"), scenario,
           "--port", str(server.port), "--server-pid", str(server.pid),
           "--secret", SECRET] + extra
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"loadgen failed:\n{proc.stderr[-3000:]}\nserver log:\n"
                         f"{server.tail()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_one(name: str, scenario: str, extra: list[str], args: argparse.Namespace,
            variants: list[str]) -> dict[str, Any]:
    server = Server(variants, args.log_level, args.server_cpu, args.tree, args.nice,
                    xheaders=args.xheaders)
    if args.xheaders:
        extra = extra + ["--xheaders"]
    profile: Optional[subprocess.Popen[bytes]] = None
    prof_path = ""
    try:
        if args.profile:
            os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
            stem = f"profile-{name}-{'+'.join(variants) or 'baseline'}"
            prof_path = os.path.join(HERE, "results", stem + ".txt")
            pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(PY), "py-spy")
            # --nonblocking: sampling must not stop the server it measures; raw (collapsed
            # stacks) output, summarised by bench/profile_summary.py.
            profile = subprocess.Popen(
                ["taskset", "-c", args.loadgen_cpu, pyspy, "record", "--nonblocking",
                 "--format", "raw", "--rate", "250", "-o", prof_path, "--pid",
                 str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        result = loadgen(server, scenario, extra, args.loadgen_cpu, args.nice)
        errors = server.errors()
        result["server_errors"] = len(errors)
        if errors:
            result["server_first_error"] = errors[0][:300]
    finally:
        if profile is not None:
            profile.send_signal(signal.SIGINT)
            profile.wait(30)
        server.stop()
    result["name"] = name
    result["variants"] = variants
    result["log_level"] = args.log_level
    if prof_path:
        result["profile"] = os.path.relpath(prof_path, ROOT)
    return result


def fresh_mariadb(url: str) -> tuple[str, Any]:
    """A new empty database on the MariaDB at `url` (mysql://user:pw@host:port/); returns
    its URL and a function that drops it."""
    import secrets
    from urllib.parse import urlsplit

    import pymysql
    u = urlsplit(url)
    name = "wolive_bench_" + secrets.token_hex(4)
    conn = pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                           user=u.username or "root", password=u.password or "",
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                    "COLLATE utf8mb4_unicode_ci")

    def drop() -> None:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()

    return f"mysql://{u.netloc}/{name}", drop


def start_profile(name: str, pid: int, args: argparse.Namespace
                  ) -> tuple[Optional[subprocess.Popen[bytes]], str]:
    """With --profile: py-spy recording `pid` (collapsed stacks to
    bench/results/profile-NAME.txt, summarised by bench/profile_summary.py)."""
    if not args.profile:
        return None, ""
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    prof_path = os.path.join(HERE, "results", f"profile-{name}.txt")
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(PY), "py-spy")
    profile = subprocess.Popen(
        ["taskset", "-c", args.loadgen_cpu, pyspy, "record", "--nonblocking", "--threads",
         "--format", "raw", "--rate", "250", "-o", prof_path, "--pid", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    return profile, prof_path


def run_chat(db: str, args: argparse.Namespace, variants: list[str]) -> dict[str, Any]:
    """The chat path (bench/chatload.py) on a fresh server and database ("sqlite" or
    "mariadb"), with the statement counters on."""
    url, drop = ("", None)
    if db == "mariadb":
        url, drop = fresh_mariadb(args.mysql_url)
    try:
        server = Server(variants + ["stmtcount"], args.log_level, args.server_cpu,
                        args.tree, args.nice, db_url=url,
                        admin="boss:bench-password:bench")
        try:
            extra = ["--db", db, "--counts", server.counts, "--duration",
                     str(args.chat_duration), "--arrival-rates", args.arrival_rates,
                     "--message-rates", args.message_rates, "--burst", str(args.burst)]
            if args.counts_only:
                extra.append("--counts-only")
            cmd = niced(args.nice) + ["taskset", "-c", args.loadgen_cpu, PY,
                                      os.path.join(HERE, "chatload.py"), "--port",
                                      str(server.port), "--server-pid", str(server.pid)]
            profile, prof_path = start_profile(f"chat-{db}-{'+'.join(variants) or 'baseline'}",
                                               server.pid, args)
            try:
                proc = subprocess.run(cmd + extra, cwd=ROOT, capture_output=True, text=True)
            finally:
                if profile is not None:
                    profile.send_signal(signal.SIGINT)
                    profile.wait(30)
            if proc.returncode != 0:
                raise SystemExit(f"chatload failed:\n{proc.stderr[-3000:]}\nserver log:\n"
                                 f"{server.tail()}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            if prof_path:
                result["profile"] = os.path.relpath(prof_path, ROOT)
            errors = server.errors()
            result["server_errors"] = len(errors)
            result["server_error_kinds"] = error_kinds(errors)
            if errors:
                result["server_first_error"] = errors[0][:300]
        finally:
            server.stop()
    finally:
        if drop:
            drop()
    result["variants"] = variants
    result["tree"] = tree_version(args.tree)
    return result


def error_kinds(lines: list[str]) -> dict[str, int]:
    """Server log error lines by kind: the MySQL error number when there is one
    (e.g. "1213" deadlock, "1305" savepoint gone), else the access-log status."""
    kinds: dict[str, int] = {}
    for line in lines:
        m = re.search(r"\((\d{4}), ", line) or re.search(r" (5\d\d) (GET|POST) ", line)
        key = m.group(1) if m else ("traceback" if "Traceback" in line else "other")
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


def chat_table(results: list[dict[str, Any]]) -> str:
    """The chat results side by side, one column per run."""
    def col(r: dict[str, Any]) -> str:
        return f"{r['db']} {r['tree']}" + (f" {'+'.join(r['variants'])}" if r["variants"]
                                           else "")

    def stm(r: dict[str, Any], key: str) -> str:
        c = r["statements_per_request"][key]
        return (f"{c['statements']:g} stmts, {c['begin']:g} tx, {c['checkout']:g} checkouts"
                + (f", {c['verbs'].get('SAVEPOINT', 0):g} savepoints"
                   if c["verbs"].get("SAVEPOINT") else ""))

    def row_at(rows: list[dict[str, Any]], flat: bool = False) -> list[dict[str, Any]]:
        return [x for x in rows if (x["rate_wanted"] == 0) == flat]

    def cpu(rows: list[dict[str, Any]]) -> str:
        fixed = row_at(rows)
        vals = [x["server_cpu_ms_per_req"] for x in fixed if x["server_cpu_ms_per_req"]]
        text = f"{min(vals):.2f}–{max(vals):.2f} ms" if vals else "–"
        dbs = [x["db_cpu_ms_per_req"] for x in fixed if x.get("db_cpu_ms_per_req")]
        if dbs:
            text += f" (+ {min(dbs):.2f}–{max(dbs):.2f} in MariaDB)"
        return text

    def ladder(rows: list[dict[str, Any]]) -> str:
        return "; ".join(
            f"{x['rate_wanted']:g}/s → {x['rate']:g}/s p50 {x['lat_ms']['p50']} p99 "
            f"{x['lat_ms']['p99']} max {x['lat_max_ms']} ms"
            + (f", {x['failures']} failed" if x["failures"] else "")
            for x in row_at(rows))

    def flat(rows: list[dict[str, Any]]) -> str:
        x = row_at(rows, True)
        if not x:
            return "–"
        y = x[0]
        return (f"{y['rate']:g}/s, p50 {y['lat_ms']['p50']} p99 {y['lat_ms']['p99']} ms, "
                f"{y['server_cpu_ms_per_req']} ms CPU each")

    def burst(r: dict[str, Any]) -> str:
        b = r["burst"]
        bad = {k: v for k, v in b["answers"].items()
               if not re.fullmatch(r"200/200/[02]", k)}
        return (f"{b['done'] - b['failures']} of {b['done']} answered 0/2"
                + (f", failed: {bad}" if bad else "") +
                f"; p50 {b['lat_ms']['p50']} p99 {b['lat_ms']['p99']} ms; "
                f"server errors {r['server_errors']} {r['server_error_kinds'] or ''}")

    if results and "burst" not in results[0]:  # --counts-only
        results = [{**r, "arrivals_new": [], "arrivals_returning": [], "visitor_messages": [],
                    "agent_messages": [], "burst": {"done": 0, "failures": 0, "answers": {},
                                                    "lat_ms": {"p50": "–", "p99": "–"}}}
                   for r in results]
    rows = [
        ("statements: new visitor's arrival (page + notice)", lambda r: stm(r, "arrival_new")),
        ("— chat window page alone (new)", lambda r: stm(r, "page_new")),
        ("statements: returning visitor's arrival", lambda r: stm(r, "arrival_returning")),
        ("statements: visitor message", lambda r: stm(r, "visitor_message")),
        ("statements: agent reply", lambda r: stm(r, "agent_reply")),
        ("server CPU per new arrival", lambda r: cpu(r["arrivals_new"])),
        ("server CPU per returning arrival", lambda r: cpu(r["arrivals_returning"])),
        ("server CPU per visitor message", lambda r: cpu(r["visitor_messages"])),
        ("server CPU per agent reply", lambda r: cpu(r["agent_messages"])),
        ("new arrivals (request → notice answer)", lambda r: ladder(r["arrivals_new"])),
        ("visitor messages (request → agent's frame)",
         lambda r: ladder(r["visitor_messages"])),
        ("agent replies (request → visitor's frame)", lambda r: ladder(r["agent_messages"])),
        ("highest rate with p99 ≤ 20 ms: new arrivals / visitor messages / agent replies",
         lambda r: " / ".join(str(r.get(f"{k}_max_rate_p99_20ms")) for k in
                              ("arrivals_new", "visitor_messages", "agent_messages"))),
        ("visitor messages flat out", lambda r: flat(r["visitor_messages"])),
        ("agent replies flat out", lambda r: flat(r["agent_messages"])),
    ]
    if results and results[0].get("burst"):
        rows.append((f"burst of {results[0]['burst']['done']} new arrivals in 5 s", burst))
    head = "| measured | " + " | ".join(col(r) for r in results) + " |"
    sep = "|---|" + "---|" * len(results)
    return "\n".join([head, sep] + [f"| {name} | " + " | ".join(f(r) for r in results) + " |"
                                    for name, f in rows])


def table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        var = "+".join(r["variants"]) or "baseline"
        if r["scenario"] == "idle":
            rows.append(
                f"| idle | {var} | {r['conns_open']} conns ({r['errors']} errors) in "
                f"{r['connect_s']} s | RSS {r['rss_before_kb'] // 1024} → "
                f"{r['rss_after_kb'] // 1024} MB | **{r['kb_per_conn']} KB/conn** "
                f"(marginal {r.get('kb_per_conn_marginal')}) | fresh connect "
                f"{r['fresh_connect_ms']} ms, publish {r['probe_publish_ms']} ms |")
        else:
            lat = r["lat_ms"]
            rows.append(
                f"| {r['scenario']} | {var} | {r['publish_rate']} "
                f"{'events/s, ' if r['scenario'] == 'client-events' else 'pub/s × '}"
                f"{r['subs']} {'sockets' if r['scenario'] == 'client-events' else 'subs'}"
                f" → **{r['delivered_per_s']} msg/s** (lost {r['lost']}) | p50/p95/p99 "
                f"{lat['p50']}/{lat['p95']}/**{lat['p99']}** ms (max {r['lat_max_ms']}) | "
                f"**{r['server_us_per_msg']} µs/msg** (server CPU "
                f"{round(r['server_cpu_util'] * 100)} %) | loadgen CPU "
                f"{round(r['loadgen_cpu_util'] * 100)} % |")
    head = ("| scenario | variant | load | memory or latency | per connection or per message "
            "| notes |\n|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def summary(results: list[dict[str, Any]]) -> str:
    """Medians over repeats, per scenario and variant set."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["scenario"], "+".join(r["variants"]) or "baseline"), []).append(r)
    lines = ["| scenario | variant | runs | median result |", "|---|---|---|---|"]
    for (scenario, var), rs in groups.items():
        if scenario == "idle":
            text = (f"{statistics.median(r['kb_per_conn'] for r in rs):.2f} KB/conn, connect "
                    f"{statistics.median(r['connect_s'] for r in rs):.1f} s")
        else:
            text = (f"{statistics.median(r['delivered_per_s'] for r in rs):.0f} msg/s, p50/p95/p99 "
                    + "/".join(f"{statistics.median(r['lat_ms'][q] for r in rs):.2f}"
                               for q in ("p50", "p95", "p99"))
                    + f" ms, {statistics.median(r['server_us_per_msg'] for r in rs):.2f} µs/msg")
        lines.append(f"| {scenario} | {var} | {len(rs)} | {text} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--all", action="store_true", help="--idle --fanout --flat")
    parser.add_argument("--idle", action="store_true", help="idle connections, memory")
    parser.add_argument("--fanout", action="store_true", help="fixed-rate fan-out")
    parser.add_argument("--flat", action="store_true", help="flat-out fan-out")
    parser.add_argument("--client-events", action="store_true",
                        help="client events between socket pairs on private channels "
                             "(--ce-socks sockets, --ce-rate events/s in all)")
    parser.add_argument("--xheaders", action="store_true",
                        help="the server behind a proxy (server.xheaders: true) and the "
                             "clients sending the headers nginx adds")
    parser.add_argument("--ce-socks", type=int, default=100)
    parser.add_argument("--ce-rate", type=float, default=500.0)
    parser.add_argument("--conns", type=int, default=10000)
    parser.add_argument("--subs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--publishers", type=int, default=4,
                        help="keep-alive API connections (fixed rate)")
    parser.add_argument("--flat-publishers", type=int, default=8,
                        help="keep-alive API connections (flat out)")
    parser.add_argument("--variant", action="append", default=[],
                        help="server variant (see bench/serve.py); repeatable")
    parser.add_argument("--compare", action="append", default=[],
                        help="also run with this '+'-joined variant set, e.g. "
                             "uvloop+prepared; repeatable ('baseline' = none)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run everything this many times (medians are printed)")
    parser.add_argument("--log-level", default="info",
                        help="server log_level (the shipped config.yaml says info)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy record the server (collapsed stacks in bench/results/)")
    parser.add_argument("--tree", default=ROOT,
                        help="wolive source tree to serve (default: this checkout)")
    parser.add_argument("--nice", type=int, default=0,
                        help="run server and load generator at this niceness (e.g. -10 on a "
                             "machine shared with other work; needs root)")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--loadgen-cpu", default="1")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    chat = parser.add_argument_group("the chat path (--chat; bench/chatload.py)")
    chat.add_argument("--chat", action="store_true",
                      help="visitor arrivals and messages both ways, statements per request, "
                           "a burst of arrivals")
    chat.add_argument("--db", default="sqlite,mariadb",
                      help="databases to run --chat on, comma-separated")
    chat.add_argument("--mysql-url", default=os.environ.get(
        "WOLIVE_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306/"),
                      help="MariaDB server for --db mariadb (a fresh database each run)")
    chat.add_argument("--chat-duration", type=float, default=5.0, help="seconds per rate")
    chat.add_argument("--arrival-rates", default="5,10,20,40")
    chat.add_argument("--message-rates", default="50,100,200,400")
    chat.add_argument("--burst", type=int, default=500, help="arrivals within 5 s")
    chat.add_argument("--counts-only", action="store_true",
                      help="only the statements per request (deterministic; seconds)")
    parser.add_argument("--nodes", type=int, default=0, metavar="N",
                        help="cross-node fan-out on N nodes with Redis, against one node: "
                             "runs bench/nodes.py with every option given (see its --help)")
    if any(a == "--nodes" or a.startswith("--nodes=") for a in sys.argv[1:]):
        import nodes
        return nodes.main(sys.argv[1:])
    args = parser.parse_args()
    if args.all:
        args.idle = args.fanout = args.flat = True
    if args.chat:
        return chat_main(args)
    if not (args.idle or args.fanout or args.flat or args.client_events):
        parser.error("choose --all or some of --idle --fanout --flat --client-events, "
                     "or --chat")
    hard = raise_nofile()
    if args.nice:
        set_autogroup_nice(args.nice)
    if args.idle and hard < args.conns + 100:
        print(f"warning: open-files hard limit {hard} < {args.conns} connections",
              file=sys.stderr)

    sets = [args.variant] + [[] if c == "baseline" else c.split("+") for c in args.compare]
    info = machine()
    info["tree"] = tree_version(args.tree)
    info["nice"] = args.nice
    print(f"machine: {info['nproc']} × {info['cpu']}, Python {info['python']}, "
          f"Tornado {info['tornado']}, {info['date']}; open-files limit {hard}; "
          f"tree {args.tree} ({info['tree']})",
          flush=True)
    if args.fanout or args.flat:
        # The kernel's price of a paced loopback send() today: the floor under CPU per
        # message, which differs a lot from one session (VM) to the next.
        floor = subprocess.run([sys.executable, os.path.join(HERE, "send_floor.py"),
                                "--paced", "--json"], capture_output=True, text=True,
                               timeout=120)
        if floor.returncode == 0:
            info["send_floor"] = json.loads(floor.stdout)
            print("send floor, 1,000 rounds/s: " + "; ".join(
                f"{r['tcp']} user {r['user_us']} + system {r['system_us']} µs"
                for r in info["send_floor"]), flush=True)
    results = []
    plan = []
    if args.idle:
        plan.append(("idle", "idle", ["--conns", str(args.conns)]))
    if args.fanout:
        plan.append(("fanout", "fanout", [
            "--subs", str(args.subs), "--rate", str(args.rate),
            "--duration", str(args.duration), "--publishers", str(args.publishers)]))
    if args.client_events:
        plan.append(("client-events", "clientevents", [
            "--subs", str(args.ce_socks), "--rate", str(args.ce_rate),
            "--duration", str(args.duration)]))
    if args.flat:
        plan.append(("flat", "fanout", [
            "--subs", str(args.subs), "--rate", "0", "--duration", str(args.duration),
            "--publishers", str(args.flat_publishers)]))
    # Repeats and variant sets interleave, so that load from elsewhere on the machine
    # spreads over all of them rather than landing on one.
    for rep in range(args.repeat):
        for name, scenario, extra in plan:
            for variants in sets:
                label = '+'.join(variants) or 'baseline'
                print(f"-- {name} {label} (run {rep + 1}/{args.repeat}; load average "
                      f"{os.getloadavg()[0]:.2f}) ...", flush=True)
                r = run_one(name, scenario, extra, args, variants)
                r["load_average_1m"] = round(os.getloadavg()[0], 2)
                print("   " + json.dumps(r), flush=True)
                results.append(r)
    print()
    print(table(results))
    if args.repeat > 1:
        print()
        print(summary(results))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": info, "argv": sys.argv[1:], "results": results}, f, indent=1)
    return 0


def chat_main(args: argparse.Namespace) -> int:
    raise_nofile()
    if args.nice:
        set_autogroup_nice(args.nice)
    sets = [args.variant] + [[] if c == "baseline" else c.split("+") for c in args.compare]
    info = machine()
    info["tree"] = tree_version(args.tree)
    info["nice"] = args.nice
    info["load_average_1m_start"] = round(os.getloadavg()[0], 2)
    print(f"machine: {info['nproc']} × {info['cpu']}, Python {info['python']}, "
          f"{info['date']}; tree {args.tree} ({info['tree']}); load average "
          f"{info['load_average_1m_start']}", flush=True)
    results = []
    for rep in range(args.repeat):
        for db in args.db.split(","):
            for variants in sets:
                print(f"-- chat {db} {'+'.join(variants) or 'baseline'} (run {rep + 1}/"
                      f"{args.repeat}; load average {os.getloadavg()[0]:.2f}) ...",
                      flush=True)
                r = run_chat(db, args, variants)
                r["load_average_1m"] = round(os.getloadavg()[0], 2)
                print("   " + json.dumps(r), flush=True)
                results.append(r)
    print()
    print(chat_table(results))
    out = args.out
    if out == os.path.join(HERE, "results", "latest.json"):
        out = os.path.join(HERE, "results", "chat-latest.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"machine": info, "argv": sys.argv[1:], "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
