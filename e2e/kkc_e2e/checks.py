"""Real requests against the APIs the harness started (urllib only; the service host
names of the catalog are sent to 127.0.0.1 inside the harness's network namespace)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request


class CheckError(Exception):
    pass


def local(url: str) -> str:
    """The URL with its host replaced by 127.0.0.1 (the port is kept)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


def call(
    method: str,
    url: str,
    token: str | None = None,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
    expect: tuple[int, ...] = (200,),
    raw: bool = False,
):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(local(url), data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, text, hdrs = resp.status, resp.read().decode(errors="replace"), resp.headers
    except urllib.error.HTTPError as exc:
        status, text, hdrs = exc.code, exc.read().decode(errors="replace"), exc.headers
    except OSError as exc:
        raise CheckError(f"{method} {url}: {exc}") from None
    if status not in expect:
        raise CheckError(f"{method} {url}: HTTP {status} {text[:300]}")
    if raw:
        return status, text, hdrs
    return json.loads(text) if text.strip() else {}


def token(auth_url: str, user: str, password: str, project: str) -> tuple[str, dict]:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }
    status, text, hdrs = call(
        "POST", f"{auth_url}/v3/auth/tokens", body=body, expect=(201,), raw=True
    )
    return hdrs["X-Subject-Token"], json.loads(text)["token"]


def endpoint(catalog_token: dict, service_type: str, interface: str = "internal") -> str:
    for svc in catalog_token.get("catalog", []):
        if svc["type"] == service_type:
            for ep in svc["endpoints"]:
                if ep["interface"] == interface:
                    return ep["url"]
    raise CheckError(f"no {interface} endpoint of type {service_type} in the catalog")


def call_bytes(
    method: str, url: str, token: str, data: bytes | None = None, expect: tuple[int, ...] = (200,)
) -> bytes:
    """A request whose body (sent or answered) is bytes: an image's data."""
    req = urllib.request.Request(local(url), data=data, method=method)
    req.add_header("X-Auth-Token", token)
    if data is not None:
        req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError as exc:
        raise CheckError(f"{method} {url}: {exc}") from None
    if status not in expect:
        raise CheckError(f"{method} {url}: HTTP {status} {body[:300]!r}")
    return body
