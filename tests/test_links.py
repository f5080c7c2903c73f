"""The link checker against the local server: every status it must tell apart, concurrency, the CLI."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import yaml
from servers.arxiv_server import FakeArxivServer

from tools.cli.main import main
from tools.track.links import LinkChecker

FIXTURE = Path(__file__).parent / "fixtures" / "catalog"
MIRROR = ("--allow-host", "127.0.0.1")  # the local test server stands for the web


@pytest.fixture()
def server():
    with FakeArxivServer(slow_s=1.0) as srv:
        yield srv


def checker(**kw) -> tuple[LinkChecker, list[float]]:
    sleeps: list[float] = []
    kw.setdefault("timeout_s", 2.0)
    kw.setdefault("retries", 2)
    kw.setdefault("allow_hosts", ["127.0.0.1"])  # the local test server, as a mirror
    return LinkChecker(sleep=sleeps.append, **kw), sleeps


def test_ok_and_dead_links(server):
    lc, _ = checker()
    ok = lc.check(server.link("ok"))
    assert ok.ok and ok.status == 200 and ok.method == "HEAD" and ok.redirect_to is None
    for name, code in (("missing", 404), ("gone", 410)):
        st = lc.check(server.link(name))
        assert not st.ok and st.status == code and st.error == f"HTTP {code}"
        assert st.attempts == 1  # a 404 is not retried
    assert server.link_hits["missing"] == 1


@pytest.mark.parametrize("name", ["moved", "moved308"])
def test_permanent_redirects_are_reported_with_the_new_address(server, name):
    lc, _ = checker()
    st = lc.check(server.link(name))
    assert st.ok and st.status == 200 and st.redirect_to == server.link("ok")


def test_temporary_redirects_are_followed_silently(server):
    lc, _ = checker()
    st = lc.check(server.link("temp"))
    assert st.ok and st.redirect_to is None and server.link_hits["ok"] == 1


@pytest.mark.parametrize(("name", "head_code"), [("nohead", 405), ("forbidden-head", 403)])
def test_get_when_head_is_refused(server, name, head_code):
    lc, _ = checker()
    st = lc.check(server.link(name))
    assert st.ok and st.method == "GET" and st.status == 200
    assert server.link_methods == [("HEAD", name), ("GET", name)]


def test_timeouts_are_retried_then_dead(server):
    lc, sleeps = checker(timeout_s=0.2, retries=1, backoff_s=0.5)
    st = lc.check(server.link("slow"))
    assert not st.ok and "timed out after 0.2 s" in st.error and st.attempts == 2
    assert sleeps == [0.5]


def test_5xx_is_retried_honouring_retry_after(server):
    lc, sleeps = checker(backoff_s=3.0)
    st = lc.check(server.link("flaky"))
    assert st.ok and st.attempts == 2 and server.link_hits["flaky"] == 2
    assert sleeps == [0.0]  # Retry-After: 0 wins over the 3 s backoff
    broken = lc.check(server.link("broken"))
    assert not broken.ok and broken.status == 500 and server.link_hits["broken"] == 3


def test_connection_refused_is_dead():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lc, _ = checker(retries=1)
    st = lc.check(f"http://127.0.0.1:{port}/x")
    assert not st.ok and "cannot connect" in st.error and st.attempts == 2


def test_checks_run_concurrently_and_each_url_once(server):
    server.slow_s = 0.4
    lc, _ = checker()
    urls = [f"{server.link('slow')}?i={i}" for i in range(6)] + [server.link("ok")] * 3
    results = lc.check_all(urls, concurrency=6)
    assert len(results) == 7 and all(st.ok for st in results.values())
    assert server.max_in_flight >= 3
    assert server.link_hits["ok"] == 1


def _catalog_with_links(tmp_path: Path, srv: FakeArxivServer, links: dict[str, dict[str, str]]) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(FIXTURE, root)
    for stem, paper_links in links.items():
        path = root / "papers" / f"{stem}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["links"] = {k: srv.link(v) for k, v in paper_links.items()}
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def test_cli_reports_dead_links_and_redirects_with_file_line_and_field(server, tmp_path, capsys):
    root = _catalog_with_links(
        tmp_path,
        server,
        {
            "2023-gong-figstep": {"paper": "ok", "code": "missing"},
            "2024-luo-jailbreakv-28k": {"paper": "moved", "code": "nohead"},
            "2024-wang-adashield": {"paper": "flaky", "code": "temp"},
        },
    )
    vocab = root / "vocab" / "models.yaml"
    data = yaml.safe_load(vocab.read_text(encoding="utf-8"))
    data["terms"][0]["url"] = server.link("gone")
    vocab.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

    code = main(["catalog", "links", "--root", str(root), "--timeout", "2", "--retries", "2", *MIRROR])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.strip().splitlines()
    figstep = next(line for line in lines if "2023-gong-figstep.yaml" in line)
    assert "links.code: dead link" in figstep and "HTTP 404" in figstep
    line_no = int(figstep.split(".yaml:")[1].split(":")[0])
    text = (root / "papers" / "2023-gong-figstep.yaml").read_text(encoding="utf-8").splitlines()
    assert "code:" in text[line_no - 1]
    moved = next(line for line in lines if "2024-luo-jailbreakv-28k.yaml" in line)
    assert "warning: links.paper" in moved and "moved permanently to " + server.link("ok") in moved
    assert any("models.yaml" in line and "terms[0].url" in line and "HTTP 410" in line for line in lines)
    assert not any("adashield" in line for line in lines)  # the flaky link recovered, temp is fine
    assert lines[-1] == "7 distinct links in 7 places: 2 dead, 1 permanently redirected"


def test_cli_exit_0_without_dead_links_and_github_annotations(server, tmp_path, capsys):
    root = _catalog_with_links(
        tmp_path,
        server,
        {
            "2023-gong-figstep": {"paper": "ok"},
            "2024-luo-jailbreakv-28k": {"paper": "moved308"},
            "2024-wang-adashield": {"paper": "forbidden-head"},
        },
    )
    assert main(["catalog", "links", "--root", str(root), "--format", "github", *MIRROR]) == 0
    out = capsys.readouterr().out
    assert "::warning file=" in out and "2024-luo-jailbreakv-28k.yaml,line=" in out
    assert main(["catalog", "links", "--root", str(root), "--concurrency", "0"]) == 2


@pytest.mark.parametrize(
    "ip",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "224.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_classified(ip):
    from tools.track.links import non_public_ip

    assert non_public_ip(ip)


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_classified(ip):
    from tools.track.links import non_public_ip

    assert not non_public_ip(ip)


def test_hostnames_are_judged_by_what_they_resolve_to():
    from tools.track.links import non_public_address

    fake_dns = {"intranet.example": ["10.0.0.5"], "public.example": ["93.184.216.34"]}.get
    resolve = lambda host, port: fake_dns(host) or []  # noqa: E731 - no real DNS in tests
    assert non_public_address("http://intranet.example/x", resolve) == "10.0.0.5"
    assert non_public_address("https://public.example/x", resolve) is None
    assert non_public_address("http://169.254.169.254/latest/meta-data", resolve) == "169.254.169.254"
    assert non_public_address("http://[::1]:8080/", resolve) == "::1"


def test_loopback_and_metadata_links_are_refused_without_a_request(server):
    lc = LinkChecker(timeout_s=2.0, retries=0, sleep=lambda s: None)  # no mirror allowed
    st = lc.check(server.link("ok"))
    assert not st.ok and st.status is None and "refused: 127.0.0.1 is a non-public address" in st.error
    assert "--allow-host 127.0.0.1" in st.error and server.link_hits.get("ok", 0) == 0
    meta = lc.check("http://169.254.169.254/latest/meta-data/")
    assert not meta.ok and "169.254.169.254" in meta.error


def test_a_redirect_into_a_private_address_is_refused(tmp_path):
    """A mirror (allowed) that redirects to the cloud metadata address and to another loopback port."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Redirector(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_HEAD(self):  # noqa: N802
            hits.append(self.path)
            target = {
                "/meta": "http://169.254.169.254/latest/meta-data/",
                "/other": "http://localhost:9/admin",
            }[self.path]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        lc = LinkChecker(timeout_s=2.0, retries=0, sleep=lambda s: None, allow_hosts=["127.0.0.1"])
        meta = lc.check(base + "/meta")
        assert (
            not meta.ok and "redirected to http://169.254.169.254/" in meta.error and "refused" in meta.error
        )
        other = lc.check(base + "/other")
        assert not other.ok and "redirected to http://localhost:9/admin: refused" in other.error
        assert hits == ["/meta", "/other"]  # only the allowed mirror was contacted
    finally:
        httpd.shutdown()
        httpd.server_close()
