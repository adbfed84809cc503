"""A small local stand-in for the Kubernetes API's namespaced Secrets endpoints, which
``base/keystone/db/scripts/keystone-keys.py`` talks to: GET, POST (409 AlreadyExists)
and PUT with optimistic concurrency (409 Conflict when metadata.resourceVersion is not
the stored one). HTTPS with a self-signed certificate for 127.0.0.1, a bearer token,
and the service-account directory (token, namespace, ca.crt) a pod would have."""

from __future__ import annotations

import copy
import json
import re
import secrets
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PATH = re.compile(r"^/api/v1/namespaces/([a-z0-9-]+)/secrets(?:/([a-z0-9.-]+))?$")


def _status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


class SecretStore:
    """Secrets by (namespace, name), each with an increasing resourceVersion."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str], dict] = {}
        self.version = 100
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.conflicts_before_put = 0  # tests: a concurrent writer changes the Secret

    def _bump(self, obj: dict) -> None:
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)

    def get(self, namespace: str, name: str) -> dict | None:
        with self.lock:
            obj = self.objects.get((namespace, name))
            return copy.deepcopy(obj) if obj else None

    def create(self, namespace: str, body: dict) -> tuple[int, dict]:
        name = body.get("metadata", {}).get("name", "")
        with self.lock:
            if (namespace, name) in self.objects:
                return 409, _status(409, "AlreadyExists", f'secrets "{name}" already exists')
            obj = copy.deepcopy(body)
            obj["metadata"]["namespace"] = namespace
            self._bump(obj)
            self.objects[(namespace, name)] = obj
            return 201, copy.deepcopy(obj)

    def replace(self, namespace: str, name: str, body: dict) -> tuple[int, dict]:
        with self.lock:
            current = self.objects.get((namespace, name))
            if current is None:
                return 404, _status(404, "NotFound", f'secrets "{name}" not found')
            if self.conflicts_before_put > 0:
                self.conflicts_before_put -= 1
                self._bump(current)
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                return 409, _status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on secrets "{name}": the object has '
                    "been modified; please apply your changes to the latest version and "
                    "try again",
                )
            obj = copy.deepcopy(body)
            obj["metadata"]["namespace"] = namespace
            self._bump(obj)
            self.objects[(namespace, name)] = obj
            return 200, copy.deepcopy(obj)


class KubeStandIn:
    """The HTTPS server on 127.0.0.1 (an ephemeral port) in a background thread."""

    def __init__(self, workdir: Path, namespace: str, store: SecretStore | None = None):
        self.store = store or SecretStore()
        self.namespace = namespace
        self.sa_dir = workdir / "serviceaccount"
        self.sa_dir.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        key, cert = workdir / "kube.key", workdir / "kube.crt"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=kubernetes",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        (self.sa_dir / "token").write_text(self.token)
        (self.sa_dir / "namespace").write_text(namespace)
        (self.sa_dir / "ca.crt").write_bytes(cert.read_bytes())
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KubeStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def env(self) -> dict[str, str]:
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.port)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _reply(self, code: int, body: dict) -> None:
                stand_in.store.requests.append((self.command, self.path, code))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> tuple[str, str | None] | None:
                if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                    self._reply(401, _status(401, "Unauthorized", "Unauthorized"))
                    return None
                match = PATH.match(self.path)
                if not match:
                    self._reply(
                        404,
                        _status(
                            404, "NotFound", "the server could not find the requested resource"
                        ),
                    )
                    return None
                if match.group(1) != stand_in.namespace:
                    self._reply(403, _status(403, "Forbidden", "forbidden"))
                    return None
                return match.group(1), match.group(2)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_GET(self) -> None:
                route = self._route()
                if route is None:
                    return
                ns, name = route
                obj = stand_in.store.get(ns, name) if name else None
                if obj is None:
                    self._reply(404, _status(404, "NotFound", f'secrets "{name}" not found'))
                else:
                    self._reply(200, obj)

            def do_POST(self) -> None:
                route = self._route()
                if route is None:
                    return
                ns, name = route
                if name:
                    self._reply(405, _status(405, "MethodNotAllowed", "POST on a name"))
                    return
                self._reply(*stand_in.store.create(ns, self._body()))

            def do_PUT(self) -> None:
                route = self._route()
                if route is None:
                    return
                ns, name = route
                body = self._body()
                if not name or body.get("metadata", {}).get("name") != name:
                    self._reply(400, _status(400, "BadRequest", "name mismatch"))
                    return
                self._reply(*stand_in.store.replace(ns, name, body))

        return Handler
