"""Check every URL of the catalog: concurrently, with timeouts and retries; HEAD first, GET when refused.

A link is *dead* when it answers 404/410 (or another 4xx other than 429), keeps answering 5xx/429, or keeps
failing to connect or timing out after the retries. A 301/308 answer is a *permanent redirect*: the link
works, but the file should name the new address. Temporary redirects (302/303/307) are followed silently.
Each problem names the file, the line and the field (``links.code``, ``terms[3].url``).

Only public addresses are checked: a URL (or a redirect) whose host is, or resolves to, a loopback, private,
link-local (169.254.169.254: cloud metadata), shared, reserved or multicast address is refused without a
request (:func:`non_public_address`), so a catalog entry cannot make the checker probe the machine's own
network. ``allow_hosts`` (``--allow-host``) exempts named hosts, e.g. a local mirror.

Retries go through the shared helper ``baselines.http``: the wait doubles from ``backoff_s``, a
``Retry-After`` header is honoured, and every wait is capped at ``max_wait_s`` (default 60 s), so one URL
waits at most ``retries * max_wait_s`` seconds in all.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from baselines import http
from tools.catalog.model import Catalog, CatalogIssue
from tools.track.arxiv import USER_AGENT

HEAD_REFUSED = frozenset({403, 405, 501})
PERMANENT = frozenset({301, 308})
TEMPORARY = frozenset({302, 303, 307})
RETRY = http.RETRY_STATUSES


@dataclass(frozen=True)
class LinkUse:
    """Where a URL appears: the file, the field and the location inside the file's data."""

    url: str
    path: Path
    field: str
    loc: tuple


@dataclass
class LinkStatus:
    """The outcome of checking one URL."""

    url: str
    ok: bool
    status: int | None = None
    error: str | None = None
    redirect_to: str | None = None  # the new address of a permanent redirect
    method: str = "HEAD"
    attempts: int = 0
    retry_after: str | None = None  # the Retry-After header of a 429/503 answer


def non_public_ip(ip: str) -> bool:
    """Whether ``ip`` is not a public internet address (loopback, private, link-local, shared, reserved,
    multicast, unspecified; an IPv4-mapped IPv6 address is judged by its IPv4 address)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (empty when it does not resolve: the request then fails as usual)."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})
    except (OSError, UnicodeError):
        return []


def non_public_address(url: str, resolve: Callable[[str, int], list[str]] = resolve_host) -> str | None:
    """The first non-public address that ``url``'s host is or resolves to (None: public, or unresolvable)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    if not host:
        return None
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        addresses = [host]
    except ValueError:
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        addresses = resolve(host, port)
    return next((a for a in addresses if non_public_ip(a)), None)


def catalog_links(catalog: Catalog) -> list[LinkUse]:
    """Every URL of the catalog: the papers' links and the vocabulary terms' urls, in file order."""
    uses = []
    for pid, paper in catalog.papers.items():
        for name, url in paper.links.model_dump().items():
            if url:
                uses.append(LinkUse(url, catalog.paper_path(pid), f"links.{name}", ("links", name)))
    for stem, vocab in catalog.vocab.items():
        for i, term in enumerate(vocab.terms):
            if term.url:
                path = catalog.root / "vocab" / f"{stem}.yaml"
                uses.append(LinkUse(term.url, path, f"terms[{i}].url ({term.id})", ("terms", i, "url")))
    return uses


class LinkChecker:
    """Checks URLs with a shared requests session; ``sleep`` is injectable for tests."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 1.0,
        max_redirects: int = 5,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        allow_hosts: Iterable[str] = (),
        resolve: Callable[[str, int], list[str]] = resolve_host,
    ) -> None:
        self.allow_hosts = {h.lower().strip("[]") for h in allow_hosts}
        self.resolve = resolve
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.max_redirects, self.sleep = max_redirects, sleep
        self.policy = http.RetryPolicy(
            retries=retries, backoff_s=backoff_s, backoff_max_s=max_wait_s, retry_after_max_s=max_wait_s
        )
        self.session = http.new_session(USER_AGENT, pool_size=32)

    def _request(self, method: str, url: str) -> requests.Response:
        resp = self.session.request(method, url, timeout=self.timeout_s, allow_redirects=False, stream=True)
        resp.close()  # only the status line and headers matter
        return resp

    def refused(self, url: str) -> str | None:
        """Why ``url`` is not requested (its host is, or resolves to, a non-public address), else None."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host in self.allow_hosts or (parts.netloc.lower() in self.allow_hosts):
            return None
        addr = non_public_address(url, self.resolve)
        if addr is None:
            return None
        return (
            f"refused: {host} is a non-public address ({addr}); links must point to the public web "
            f"(a local mirror: --allow-host {host})"
        )

    def _once(self, url: str) -> LinkStatus:
        """One attempt: HEAD (GET when HEAD is refused), following redirects by hand; a hop to a
        non-public address is refused before any request."""
        current, first_permanent = url, None
        for _hop in range(self.max_redirects + 1):
            why = self.refused(current)
            if why:
                if current != url:
                    why = f"redirected to {current}: {why}"
                return LinkStatus(url, False, None, why, first_permanent)
            method = "HEAD"
            resp = self._request("HEAD", current)
            if resp.status_code in HEAD_REFUSED:
                method = "GET"
                resp = self._request("GET", current)
            code = resp.status_code
            if code in PERMANENT | TEMPORARY and resp.headers.get("Location"):
                target = urljoin(current, resp.headers["Location"])
                if code in PERMANENT and current == url:
                    first_permanent = target
                current = target
                continue
            ok = 200 <= code < 400
            status = LinkStatus(url, ok, code, None if ok else f"HTTP {code}", first_permanent, method)
            if code in RETRY:
                status.retry_after = resp.headers.get("Retry-After")
            return status
        return LinkStatus(url, False, None, f"more than {self.max_redirects} redirects", first_permanent)

    def _attempt(self, url: str) -> LinkStatus:
        """One attempt; http.Retryable (carrying the status) for timeouts, connection errors, 429 and 5xx."""
        try:
            status = self._once(url)
        except requests.Timeout:
            status = LinkStatus(url, False, None, f"timed out after {self.timeout_s:g} s")
        except requests.RequestException as e:
            status = LinkStatus(url, False, None, f"cannot connect ({type(e).__name__})")
        else:
            if status.status not in RETRY:
                return status
            raise http.Retryable(status.error or "", http.parse_retry_after(status.retry_after), status)
        raise http.Retryable(status.error or "", None, status)

    def check(self, url: str) -> LinkStatus:
        """Check one URL, retrying timeouts, connection errors, 429 and 5xx answers."""
        try:
            status, attempts = http.call_with_retries(lambda: self._attempt(url), self.policy, sleep=self.sleep)
        except http.RetriesExhausted as e:
            status, attempts = e.last.payload, e.attempts
        status.attempts = attempts
        return status

    def check_all(self, urls: Iterable[str], concurrency: int = 8) -> dict[str, LinkStatus]:
        """Check distinct URLs in a thread pool; maps each URL to its status."""
        unique = list(dict.fromkeys(urls))
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return dict(zip(unique, pool.map(self.check, unique), strict=True))


def link_issues(uses: list[LinkUse], results: dict[str, LinkStatus]) -> list[CatalogIssue]:
    """Dead links as errors and permanent redirects as warnings, each located by file, line and field."""
    from tools.catalog.checks import read_doc

    docs: dict[Path, object] = {}
    issues = []
    for use in uses:
        st = results[use.url]
        if st.ok and not st.redirect_to:
            continue
        if use.path not in docs:
            docs[use.path] = read_doc(use.path)
        doc = docs[use.path]
        line = doc.line_of(use.loc) if hasattr(doc, "line_of") else None
        if not st.ok:
            why = st.error or f"HTTP {st.status}"
            msg = f"{use.field}: dead link {use.url} ({why}, {st.attempts} attempt(s))"
            issues.append(CatalogIssue(use.path, line, msg, "fix or remove the link"))
        else:
            msg = f"{use.field}: {use.url} moved permanently to {st.redirect_to}"
            issues.append(CatalogIssue(use.path, line, msg, "write the new address", "warning"))
    return issues
