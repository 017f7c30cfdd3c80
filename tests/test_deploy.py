"""The deploy samples (deploy/, README "Production") checked as far as this machine allows:

- the nginx site with `nginx -t` (skipped when nginx is not installed: `apt-get install
  nginx-light`), and against wolive's own numbers (upload limit, activity timeout, the socket
  path, the upstream port, the forwarded-address headers wolive's `xheaders` reads);
- the systemd unit with `systemd-analyze verify` (skipped without systemd-analyze), its
  paths pointed at this checkout, and its keys;
- the container recipe: no Docker daemon nor `docker compose` here, so the compose file is
  parsed as YAML and checked, and every file the Dockerfile copies and runs exists;
- the sample configs load with wolive's own config check;
- constraints.txt pins exactly what setup.cfg pulls in, and setup.sh installs with it.
"""
from __future__ import annotations

import configparser
import datetime
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import wolive
from conftest import ROOT
from handlers.http_server import MAX_BODY_BYTES
from realtime.pusher.protocol import ACTIVITY_TIMEOUT_S
from realtime.chat.uploads import MULTIPART_SLACK_BYTES

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx-wolive.conf"
CLUSTER_SITE = DEPLOY / "nginx-wolive-cluster.conf"
CLUSTER_CONFIG = DEPLOY / "config.cluster.yaml"
UNIT = DEPLOY / "wolive.service"
PRODUCTION = DEPLOY / "config.production.yaml"
DOCKER = DEPLOY / "docker"


def _size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, value
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[
        m.group(2).lower()]


def _seconds(value: str) -> int:
    m = re.fullmatch(r"(\d+)(s|m)?", value)
    assert m, value
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def _location(text: str, path: str) -> str:
    m = re.search(r"location\s+" + re.escape(path) + r"\s*\{(.*?)\n    \}", text, re.S)
    assert m, f"no location {path}"
    return m.group(1)


# ---- the sample configs ------------------------------------------------------------------

def test_sample_configs_load() -> None:
    prod = wolive.load_config(str(PRODUCTION))
    assert prod.server.xheaders is True
    assert prod.server.host == "127.0.0.1" and prod.server.demo_port is None
    assert prod.server.data_dir == "/var/lib/wolive"
    assert prod.database.url.startswith("mysql://")
    docker = wolive.load_config(str(DOCKER / "config.yaml"))
    assert docker.server.host == "0.0.0.0" and docker.server.port == 8000
    assert docker.server.data_dir == "/data"
    assert "@mariadb:3306/" in docker.database.url
    # check-config reads them too (the database is not there: exit 2, one line).
    result = subprocess.run([sys.executable, str(ROOT / "wolive.py"), "check-config",
                             "--config", str(DOCKER / "config.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "database.url: cannot use the database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---- nginx -------------------------------------------------------------------------------

def _cluster_config() -> wolive.Config:
    """The cluster sample with its three secrets filled in, as its comments ask."""
    return wolive.load_config(str(CLUSTER_CONFIG), {
        "server.cookie_secret": "a" * 64, "server.channel_secret": "b" * 64,
        "pusher.apps": [{"id": "1", "key": "wolive", "secret": "c" * 64}]})


def test_the_cluster_sample_loads_once_its_secrets_are_set() -> None:
    cfg = _cluster_config()
    assert cfg.cluster.redis_url.startswith("redis://")
    assert cfg.database.url.startswith("mysql://") and cfg.server.xheaders
    assert cfg.uploads.shared is True
    with pytest.raises(wolive.ConfigProblem, match=r"^server.cookie_secret: "):
        wolive.load_config(str(CLUSTER_CONFIG))
    # --port starts more nodes from the one file (the site's upstream lists 8001-8003).
    text = CLUSTER_SITE.read_text(encoding="utf-8")
    upstream = re.search(r"upstream wolive \{(.*?)\}", text, re.S).group(1)  # type: ignore
    ports = [int(p) for p in re.findall(r"server 127\.0\.0\.1:(\d+)", upstream)]
    assert ports == [cfg.server.port, 8002, 8003]
    assert "ip_hash" not in upstream and "sticky" not in upstream and "hash " not in upstream
    help_text = subprocess.run([sys.executable, str(ROOT / "wolive.py"), "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "--port" in help_text


@pytest.mark.parametrize("site", [SITE, CLUSTER_SITE], ids=["one node", "three nodes"])
def test_nginx_site_matches_wolive(site: Path) -> None:
    text = site.read_text(encoding="utf-8")
    prod = wolive.load_config(str(PRODUCTION)) if site == SITE else _cluster_config()
    body = _size(re.search(r"client_max_body_size\s+(\S+);", text).group(1))  # type: ignore
    need = prod.uploads.max_bytes + MULTIPART_SLACK_BYTES
    assert need <= body <= MAX_BODY_BYTES, (need, body, MAX_BODY_BYTES)
    assert wolive.load_config(str(ROOT / "config.yaml")).uploads.max_bytes == \
        prod.uploads.max_bytes
    socket = _location(text, "/app/")
    assert _seconds(re.search(r"proxy_read_timeout\s+(\S+);", socket).group(1)) \
        > ACTIVITY_TIMEOUT_S  # type: ignore[union-attr]
    assert any(re.fullmatch(pattern, "/app/wolive") for pattern, *_ in
               __import__("handlers").default_handlers())
    for header, value in (("Upgrade", "$http_upgrade"), ("Connection", "$wolive_connection"),
                          ("X-Real-IP", "$remote_addr"),
                          ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
                          ("X-Forwarded-Proto", "$scheme"), ("Host", "$host")):
        assert re.search(rf"\n    proxy_set_header {header}\s+{re.escape(value)};", text), header
    # The upgrade map: "upgrade" when the client asks for it, else no Connection header
    # (so the upstream's keepalive works).
    assert re.search(r"map \$http_upgrade \$wolive_connection \{\s+default upgrade;\s+''\s+'';",
                     text)
    assert "proxy_http_version 1.1;" in text
    assert re.search(rf"server 127\.0\.0\.1:{prod.server.port}[ ;]", text)
    assert re.search(r"listen 443 ssl;", text) and "ssl_certificate " in text
    assert "location = /metrics { return 404; }" in text


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kefu.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize("site_path", [SITE, CLUSTER_SITE], ids=["one node", "three nodes"])
def test_nginx_t_accepts_the_site(tmp_path: Path, site_path: Path) -> None:
    """`nginx -t` on a wrapper conf that includes the site (its certificate paths pointed at
    a throwaway self-signed pair); `-t` parses, loads the certificates and exits: it binds
    nothing and starts no daemon."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light); the site's "
                    "contents are still checked by test_nginx_site_matches_wolive")
    cert, key = _self_signed(tmp_path)
    site = site_path.read_text(encoding="utf-8").replace(
        "/etc/letsencrypt/live/kefu.example.com/fullchain.pem", str(cert)).replace(
        "/etc/letsencrypt/live/kefu.example.com/privkey.pem", str(key))
    (tmp_path / "wolive.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {tmp_path}/wolive.conf;\n}}\n",
        encoding="utf-8")
    result = subprocess.run([nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c",
                             str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr
    # -t leaves an empty pid file: no daemon wrote its pid.
    pid = tmp_path / "nginx.pid"
    assert not pid.exists() or pid.read_text() == ""


# ---- systemd -----------------------------------------------------------------------------

def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_systemd_unit_keys() -> None:
    unit = _unit()
    svc = unit["Service"]
    assert svc["User"] == "wolive" and svc["Group"] == "wolive"
    assert svc["Restart"] == "on-failure"
    assert int(svc["LimitNOFILE"]) >= 65536
    assert svc["RestartPreventExitStatus"] == "2"  # a bad config: restarting cannot help
    exec_start = svc["ExecStart"].split()
    assert exec_start[1:3] == ["/opt/wolive/wolive.py", "--config"]
    assert exec_start[3].startswith("/") and exec_start[0].startswith("/")
    assert svc["StateDirectory"] == "wolive"
    prod = wolive.load_config(str(PRODUCTION))
    assert prod.server.data_dir == "/var/lib/" + svc["StateDirectory"]
    # The service's stop timeout leaves room for wolive's drain.
    assert int(svc["TimeoutStopSec"]) > wolive.SHUTDOWN_DRAIN_S * 2
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` checks every key and that ExecStart's program exists, so the
    unit's /opt/wolive paths are pointed at this checkout for it. It exits 0 even for an
    unknown key (it only warns): standard error must be empty."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed; test_systemd_unit_keys checks the "
                    "unit's keys")
    text = UNIT.read_text(encoding="utf-8")
    text = text.replace("/opt/wolive/.venv/bin/python", sys.executable).replace(
        "/opt/wolive/wolive.py", str(ROOT / "wolive.py"))
    (tmp_path / "wolive.service").write_text(text, encoding="utf-8")
    result = subprocess.run([tool, "verify", str(tmp_path / "wolive.service")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # It does catch mistakes: a misspelt key is reported.
    (tmp_path / "bad.service").write_text(text.replace("LimitNOFILE", "LimitNOFIL"),
                                          encoding="utf-8")
    bad = subprocess.run([tool, "verify", str(tmp_path / "bad.service")],
                         capture_output=True, text=True, timeout=60)
    assert "Unknown key" in bad.stderr and "LimitNOFIL" in bad.stderr


# ---- the container -----------------------------------------------------------------------

def test_dockerfile_copies_and_runs_what_exists() -> None:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    lines = re.sub(r"\\\n", " ", text).splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies
    ignored = {p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()}
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source not in ignored, source
    # Everything wolive.py needs at run time is copied.
    copied = {s.rstrip("/") for sources in copies for s in sources}
    for needed in ("wolive.py", "config.py", "handlers", "realtime", "store", "templates", "static",
                   "constraints.txt", "setup.cfg", "pyproject.toml", "README.md"):
        assert needed in copied, needed
    assert "RUN pip install -c constraints.txt ." in text
    assert "USER wolive" in text and "useradd --system" in text
    cmd = re.search(r'^CMD (\[.*\])$', text, re.M)
    assert cmd is not None
    assert yaml.safe_load(cmd.group(1)) == ["python", "/app/wolive.py", "--config",
                                            "/etc/wolive/config.yaml"]
    assert "COPY deploy/docker/config.yaml /etc/wolive/config.yaml" in text
    assert "/healthz" in text and "EXPOSE 8000" in text


def test_compose_file() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"wolive", "mariadb"}  # redis stays commented out
    app, db = services["wolive"], services["mariadb"]
    assert app["build"] == {"context": "../..", "dockerfile": "deploy/docker/Dockerfile"}
    assert (DOCKER / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == \
        (DOCKER / "Dockerfile").resolve()
    assert app["depends_on"]["mariadb"]["condition"] == "service_healthy"
    assert "healthcheck" in db
    assert app["ulimits"]["nofile"]["soft"] >= 65536
    mounts = {v.split(":")[1]: v.split(":")[0] for v in app["volumes"]}
    assert mounts["/etc/wolive/config.yaml"] == "./config.yaml"
    assert (DOCKER / "config.yaml").exists()
    cfg = wolive.load_config(str(DOCKER / "config.yaml"))
    assert mounts[cfg.server.data_dir] in compose["volumes"]
    # The config's database is the compose file's, with the same user and password.
    env = db["environment"]
    url = cfg.database.url
    assert url == (f"mysql://{env['MARIADB_USER']}:{env['MARIADB_PASSWORD']}@mariadb:3306/"
                   f"{env['MARIADB_DATABASE']}")
    assert f"{cfg.server.port}:{cfg.server.port}" in app["ports"]
    assert "# redis:" in (DOCKER / "compose.yaml").read_text(encoding="utf-8")


# ---- the reproducible install ------------------------------------------------------------

def test_constraints_pin_what_setup_cfg_installs() -> None:
    """constraints.txt is what scripts/constraints.py makes from this virtualenv: every
    package of the closure of setup.cfg's requirements (test extra included), pinned with
    ==, each pin the version installed here."""
    from importlib import metadata
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, line
            pins[name] = version
    for name, version in pins.items():
        assert metadata.version(name) == version, name
    made = subprocess.run([sys.executable, str(ROOT / "scripts" / "constraints.py")],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    assert made == (ROOT / "constraints.txt").read_text(encoding="utf-8")
    for wanted in ("tornado", "SQLAlchemy", "aiomysql", "prometheus_client", "pytest",
                   "playwright", "greenlet", "PyMySQL"):
        assert wanted in pins, wanted
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert 'pip install -q -c constraints.txt -e ".$extras"' in setup
