"""Keep keystone's fernet and credential keys in Kubernetes Secrets.

Runs as the config.json command of a keystone-image container (root, via
kolla_start), e.g. `/var/lib/kolla/venv/bin/python3
/var/lib/kkc/scripts/keystone-keys.py`, with the ServiceAccount keystone-keys.
KKC_KEYS_ACTION selects what to do:

  setup   For each key set (fernet, credential): if its Secret already holds
          keys, do nothing; otherwise run `keystone-manage <x>_setup` and
          store the generated key files in the Secret (keys "0", "1", ...).
  rotate  Copy keystone-fernet-keys into /etc/keystone/fernet-keys, run
          `keystone-manage fernet_rotate`, and write the result back with the
          resourceVersion that was read (a concurrent change makes it fail
          instead of overwriting; the next run starts again from the Secret).
  rotate-credential
          Copy keystone-credential-keys into /etc/keystone/credential-keys, run
          `keystone-manage credential_migrate` (every credential under the
          current primary key, which credential_rotate requires), then
          `credential_rotate` (the staged key 0, which every API pod already
          has, becomes primary; the old primary stays as secondary), write the
          keys back as `rotate` does, and run `credential_migrate` again: every
          credential is then encrypted with the new primary key. Needs
          keystone.conf with the database connection.

KKC_KEYS_GENERATION (the rotation generation of a `kkc rotate` Job; unset for
the CronJob) is recorded on the Secret (annotation kkc.openstack.org/
rotated-generation) with the rotated keys: a retried pod of the same
generation does not rotate again (the credential Job still migrates).

The Kubernetes API is called with the standard library only (in-cluster
token and CA). Key material is never printed: only names and counts.
"""
import base64
import json
import os
import pwd
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
FERNET = ("keystone-fernet-keys", "/etc/keystone/fernet-keys", "fernet_setup")
CREDENTIAL = ("keystone-credential-keys", "/etc/keystone/credential-keys",
              "credential_setup")
OWNER_ARGS = ["--keystone-user", "keystone", "--keystone-group", "keystone"]
GENERATION = "kkc.openstack.org/rotated-generation"
LABELS = {
    "app.kubernetes.io/name": "keystone",
    "app.kubernetes.io/component": "keys",
    "app.kubernetes.io/part-of": "openstack",
    "app.kubernetes.io/managed-by": "keystone-keys",
}


class KeysError(Exception):
    pass


class Kube:
    """Minimal client for namespaced Secrets of the pod's own namespace."""

    def __init__(self):
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise KeysError("not running in a Kubernetes pod "
                            "(KUBERNETES_SERVICE_HOST is unset)")
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        with open(f"{SA_DIR}/namespace", encoding="utf-8") as f:
            self.namespace = f.read().strip()
        self.base = f"https://{host}:{port}/api/v1/namespaces/{self.namespace}/secrets"
        self.context = ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt")

    def request(self, method, name=None, body=None):
        """Return (status, parsed JSON or None); never raises on HTTP errors."""
        # Re-read the token each time: projected tokens are rotated.
        with open(f"{SA_DIR}/token", encoding="utf-8") as f:
            token = f.read().strip()
        url = f"{self.base}/{name}" if name else self.base
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        })
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                status = json.load(exc)
            except ValueError:
                status = None
            return exc.code, status

    def get(self, name):
        code, obj = self.request("GET", name)
        if code == 404:
            return None
        if code != 200:
            raise KeysError(f"GET secret {name}: {describe(code, obj)}")
        return obj


def describe(code, status):
    # Kubernetes Status messages name objects and fields, never Secret data.
    message = (status or {}).get("message", "") if isinstance(status, dict) else ""
    return f"HTTP {code} {message[:300]}".rstrip()


def log(message):
    print(f"keystone-keys: {message}", flush=True)


def keystone_manage(*args):
    exe = shutil.which("keystone-manage") or "/var/lib/kolla/venv/bin/keystone-manage"
    log(f"running keystone-manage {args[0]}")
    result = subprocess.run([exe, *args, *OWNER_ARGS], check=False)
    if result.returncode != 0:
        raise KeysError(f"keystone-manage {args[0]} exited with {result.returncode}")


def read_keys(directory):
    """Key files of a repository as Secret data {"0": base64, ...}."""
    data = {}
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if entry.isdigit() and os.path.isfile(path):
            with open(path, "rb") as f:
                data[entry] = base64.b64encode(f.read()).decode("ascii")
    if "0" not in data:
        raise KeysError(f"{directory} holds no key 0 after keystone-manage")
    return data


def write_keys(directory, data):
    """Replace the repository's content with the Secret's keys."""
    keystone = pwd.getpwnam("keystone")
    for name in data:
        if not name.isdigit():
            raise KeysError(f"unexpected key name {name!r} in the Secret")
    os.makedirs(directory, exist_ok=True)
    for entry in os.listdir(directory):
        os.remove(os.path.join(directory, entry))
    for name, value in data.items():
        path = os.path.join(directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(value))
        os.chown(path, keystone.pw_uid, keystone.pw_gid)
    os.chown(directory, keystone.pw_uid, keystone.pw_gid)
    os.chmod(directory, 0o700)


def setup(kube):
    for secret_name, directory, action in (FERNET, CREDENTIAL):
        existing = kube.get(secret_name)
        if existing and existing.get("data"):
            log(f"secret {secret_name} exists with {len(existing['data'])} keys; "
                "nothing to do")
            continue
        keystone_manage(action)
        data = read_keys(directory)
        if existing is None:
            body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": secret_name, "labels": LABELS},
                    "data": data}
            code, obj = kube.request("POST", body=body)
            if code == 409:
                # Another run created it meanwhile: keep theirs.
                if (kube.get(secret_name) or {}).get("data"):
                    log(f"secret {secret_name} was created concurrently; keeping it")
                    continue
            if code != 201:
                raise KeysError(f"creating secret {secret_name}: {describe(code, obj)}")
            log(f"created secret {secret_name} with {len(data)} keys")
        else:
            # The Secret exists but is empty (pre-created): fill it in.
            existing["data"] = data
            code, obj = kube.request("PUT", secret_name, existing)
            if code != 200:
                raise KeysError(f"updating secret {secret_name}: {describe(code, obj)}")
            log(f"filled empty secret {secret_name} with {len(data)} keys")


def load(kube, key_set):
    """The key set's Secret, its keys written into the repository directory."""
    secret_name, directory, _ = key_set
    secret = kube.get(secret_name)
    if not secret or not secret.get("data"):
        raise KeysError(f"secret {secret_name} is missing or empty; "
                        "run the keystone-keys-setup Job first")
    write_keys(directory, secret["data"])
    return secret


def rotated_already(secret):
    """Whether this Job's generation has rotated the Secret already (a retried pod)."""
    generation = os.environ.get("KKC_KEYS_GENERATION", "")
    notes = secret.get("metadata", {}).get("annotations") or {}
    return bool(generation) and notes.get(GENERATION) == generation


def store(kube, key_set, secret, command):
    """Run keystone-manage ``command`` on the repository and write the keys back with
    the resourceVersion that was read (a concurrent change fails instead of being
    overwritten; the next run starts again from the Secret)."""
    secret_name, directory, _ = key_set
    before = len(secret["data"])
    keystone_manage(command)
    secret["data"] = read_keys(directory)
    generation = os.environ.get("KKC_KEYS_GENERATION", "")
    if generation:
        meta = secret.setdefault("metadata", {})
        meta.setdefault("annotations", {})[GENERATION] = generation
    code, obj = kube.request("PUT", secret_name, secret)
    if code == 409:
        raise KeysError(f"secret {secret_name} changed during rotation; "
                        "not overwritten (the next run retries)")
    if code != 200:
        raise KeysError(f"updating secret {secret_name}: {describe(code, obj)}")
    log(f"rotated {secret_name}: {before} keys before, {len(secret['data'])} after")


def rotate(kube):
    secret = load(kube, FERNET)
    if rotated_already(secret):
        log(f"{FERNET[0]} was rotated for generation "
            f"{os.environ['KKC_KEYS_GENERATION']} already; nothing to do")
        return
    store(kube, FERNET, secret, "fernet_rotate")


def rotate_credential(kube):
    secret = load(kube, CREDENTIAL)
    keystone_manage("credential_migrate")
    if rotated_already(secret):
        log(f"{CREDENTIAL[0]} was rotated for generation "
            f"{os.environ['KKC_KEYS_GENERATION']} already")
    else:
        store(kube, CREDENTIAL, secret, "credential_rotate")
    keystone_manage("credential_migrate")


def main():
    action = os.environ.get("KKC_KEYS_ACTION", "")
    actions = {"setup": setup, "rotate": rotate, "rotate-credential": rotate_credential}
    if action not in actions:
        log(f"KKC_KEYS_ACTION must be one of {sorted(actions)}, got {action!r}")
        return 2
    try:
        actions[action](Kube())
    except (KeysError, OSError) as exc:
        log(f"error: {exc}")
        return 1
    log(f"{action} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
