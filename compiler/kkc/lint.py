"""kkc's own rules on the rendered objects, beyond the schemas (exit 3 on failure).

- KKC307: every ConfigMap, Secret, Service, ServiceAccount and PersistentVolumeClaim that
  an object references exists in the output or is declared as provided outside it (a
  Secret that kkc expects in the cluster or that a kkc Job creates: `kkc secrets SITE`),
  and so does every key a pod reads from them and every Service port an Ingress names;
  mariadb-operator's resources count as pods here (their ``*SecretKeyRef`` keys, and the
  MariaDB a Backup names), and so do the RabbitMQ topology operator's (the RabbitmqCluster
  they name, a User's credentials Secret and its keys, a Permission's User and vhost).
- KKC308: every image is a Kolla image of the site's release, from the site's registry and
  with the release's tag (a digest alone is accepted in place of the tag); the image of a
  mariadb-operator MariaDB is an official MariaDB image with a version tag, that of a
  RabbitmqCluster an official RabbitMQ 4 image with a version tag.
- KKC309: every config.json (in a ConfigMap) is accepted by that release's set_configs.py.
- KKC310: every OpenStack INI file kkc renders uses only sections and options that exist
  in the option catalog of the site's release (deprecated options are warnings).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from . import catalog, kollacheck, overrides, upgradepath
from .errors import WARNING, Problem, warning
from .model import Site
from .outputs import Outputs
from .releases import image_tag
from .services import SecretSpec
from .validate import pod_images, pod_spec

_GO_TEMPLATE = re.compile(r"\{\{.*?\}\}")  # an ExternalSecret template's placeholder
PROVIDED_BY_KUBERNETES = {("ServiceAccount", "default")}
MARIADB_GROUP = "k8s.mariadb.com"  # mariadb-operator's resources (kkc.services.galera)
# the RabbitMQ operators' resources (kkc.services.rabbitmq_cluster)
RABBITMQ_GROUP = "rabbitmq.com"
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def _pod_refs(pod: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """(kind, name, key) of every object the pod spec needs, and of every key it reads from
    a ConfigMap or Secret (None: the whole object); optional references excluded."""
    yield "ServiceAccount", pod.get("serviceAccountName") or "default", None
    for secret in pod.get("imagePullSecrets") or []:
        yield "Secret", secret.get("name", ""), None
    for vol in pod.get("volumes") or []:
        for src in [vol, *((vol.get("projected") or {}).get("sources") or [])]:
            for field, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                ref = src.get(field)
                if ref and not ref.get("optional"):
                    name = ref.get("secretName") or ref.get("name", "")
                    yield kind, name, None
                    for item in ref.get("items") or []:
                        yield kind, name, item.get("key", "")
        if vol.get("persistentVolumeClaim"):
            yield "PersistentVolumeClaim", vol["persistentVolumeClaim"].get("claimName", ""), None
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for env in c.get("env") or []:
            ref = env.get("valueFrom") or {}
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if ref.get(field) and not ref[field].get("optional"):
                    yield kind, ref[field].get("name", ""), ref[field].get("key", "")
        for env in c.get("envFrom") or []:
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if env.get(field) and not env[field].get("optional"):
                    yield kind, env[field].get("name", ""), None


def _secret_key_refs(node: Any) -> Iterator[tuple[str, str, str | None]]:
    """Every ``*SecretKeyRef`` ({name, key}) under a mariadb-operator resource's spec that
    the operator does not generate (``generate: true``): the Secrets it reads."""
    if isinstance(node, list):
        for item in node:
            yield from _secret_key_refs(item)
    elif isinstance(node, dict):
        for field, value in sorted(node.items()):
            if field.endswith("SecretKeyRef") and isinstance(value, dict):
                if not value.get("generate"):
                    yield "Secret", value.get("name", ""), value.get("key", "")
            else:
                yield from _secret_key_refs(value)


def _workload_refs(obj: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    pod = pod_spec(obj) if obj.get("kind") in _WORKLOADS else None
    if pod:
        yield from _pod_refs(pod)
    if str(obj.get("apiVersion", "")).startswith(f"{MARIADB_GROUP}/"):
        yield from _secret_key_refs(obj.get("spec") or {})
        ref = (obj.get("spec") or {}).get("mariaDbRef")
        if ref and not ref.get("namespace"):
            yield "MariaDB", ref.get("name", ""), None
    if str(obj.get("apiVersion", "")).startswith(f"{RABBITMQ_GROUP}/"):
        yield from _rabbitmq_refs(obj.get("spec") or {})


def _rabbitmq_refs(spec: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """What a topology operator resource needs: its RabbitmqCluster (in the namespace), a
    User's credentials Secret (keys username and password), a Permission's User."""
    cluster = spec.get("rabbitmqClusterReference") or {}
    if cluster.get("name") and not cluster.get("namespace"):
        yield "RabbitmqCluster", cluster["name"], None
    if cluster.get("connectionSecret"):
        yield "Secret", cluster["connectionSecret"].get("name", ""), None
    imported = (spec.get("importCredentialsSecret") or {}).get("name")
    if imported:
        yield "Secret", imported, None
        yield "Secret", imported, "username"
        yield "Secret", imported, "password"
    user = (spec.get("userReference") or {}).get("name")
    if user:
        yield "User", user, None


def vhost_references(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str]]:
    """(Permission, vhost) of every topology operator Permission whose vhost no Vhost of
    ``objects`` creates on the same cluster."""
    rabbitmq = [o for o in objects if str(o.get("apiVersion", "")).startswith(RABBITMQ_GROUP)]

    def cluster(o: dict[str, Any]) -> str:
        return ((o.get("spec") or {}).get("rabbitmqClusterReference") or {}).get("name", "")

    vhosts = {
        (cluster(o), (o.get("spec") or {}).get("name")) for o in rabbitmq if o["kind"] == "Vhost"
    }
    for o in rabbitmq:
        vhost = (o.get("spec") or {}).get("vhost")
        if o["kind"] == "Permission" and (cluster(o), vhost) not in vhosts:
            yield o, str(vhost)


def _ingress_backends(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The ``service`` of every backend of an Ingress."""
    spec = obj.get("spec") or {}
    paths = [p for r in spec.get("rules") or [] for p in (r.get("http") or {}).get("paths") or []]
    for backend in [spec.get("defaultBackend") or {}] + [p.get("backend") or {} for p in paths]:
        if backend.get("service"):
            yield backend["service"]


def references(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    yield from ((kind, name) for kind, name, _key in _workload_refs(obj))
    if kind == "StatefulSet" and spec.get("serviceName"):
        yield "Service", spec["serviceName"]
    if kind == "RoleBinding":
        for subject in obj.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount" and not subject.get("namespace"):
                yield "ServiceAccount", subject.get("name", "")
    if kind == "Ingress":
        for service in _ingress_backends(obj):
            yield "Service", service.get("name", "")
        for tls in spec.get("tls") or []:
            if tls.get("secretName"):
                yield "Secret", tls["secretName"]


def key_references(obj: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(kind, name, key) of every key of a ConfigMap or Secret that a pod spec reads
    (env valueFrom, volume items); optional references excluded."""
    for kind, name, key in _workload_refs(obj):
        if key is not None:
            yield kind, name, key


def port_references(obj: dict[str, Any]) -> Iterator[tuple[str, str | int]]:
    """(Service name, port name or number) of every Ingress backend."""
    if obj.get("kind") == "Ingress":
        for service in _ingress_backends(obj):
            port = service.get("port") or {}
            yield service.get("name", ""), port.get("name") or port.get("number", "")


CERTIFICATE_KEYS = {"tls.crt", "tls.key", "ca.crt"}


def known_keys(
    objects: list[dict[str, Any]], secrets: list[SecretSpec]
) -> dict[tuple[str, str], set[str]]:
    """The keys of each ConfigMap and Secret the output has or kkc declares (``secrets``),
    where they are known (an ExternalSecret with dataFrom or templateFrom has keys kkc
    cannot know)."""
    keys: dict[tuple[str, str], set[str]] = {}
    for obj in objects:
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name", "")
        spec = obj.get("spec") or {}
        if kind in ("ConfigMap", "Secret"):
            fields = ("data", "binaryData") if kind == "ConfigMap" else ("data", "stringData")
            keys[(kind, name)] = {k for f in fields for k in obj.get(f) or {}}
        elif kind == "ExternalSecret":
            target = spec.get("target") or {}
            template = target.get("template") or {}
            if not spec.get("dataFrom") and not template.get("templateFrom"):
                keys[("Secret", target.get("name") or name)] = {
                    d.get("secretKey", "") for d in spec.get("data") or []
                } | set(template.get("data") or {})
        elif kind == "Certificate":
            keys[("Secret", spec.get("secretName", ""))] = set(CERTIFICATE_KEYS)
    for secret in secrets:
        if secret.keys:
            keys.setdefault(("Secret", secret.name), {k.key for k in secret.keys})
    return keys


def provided(
    site: Site, objects: list[dict[str, Any]], secrets: list[SecretSpec]
) -> set[tuple[str, str]]:
    """What exists once the output is applied: its objects, the PVCs of StatefulSet claim
    templates, ExternalSecret targets, and the Secrets kkc declares (``secrets``, as
    `kkc secrets` lists them)."""
    have = set(PROVIDED_BY_KUBERNETES)
    for obj in objects:
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name", "")
        have.add((kind, name))
        if kind == "ExternalSecret":
            have.add(("Secret", ((obj.get("spec") or {}).get("target") or {}).get("name") or name))
        if kind == "Certificate":
            have.add(("Secret", (obj.get("spec") or {}).get("secretName", "")))
    # the services' Secrets that kkc Jobs create or (secrets.backend: existing) the operator
    # does; with external-secrets the others exist only through an ExternalSecret above
    outside = site.get("secrets.backend") != "external-secrets"
    have |= {("Secret", s.name) for s in secrets if s.created_by or outside}
    return have


def check_references(
    site: Site,
    objects: list[dict[str, Any]],
    display: str,
    outputs: Outputs,
) -> list[Problem]:
    """KKC307 for the built ``objects``; ``outputs``: what the site's tree was rendered
    from (:func:`kkc.outputs.compute`), whose services' Secrets are provided outside the
    output."""
    secrets = outputs.service_secrets()
    have = provided(site, objects, secrets)
    keys = known_keys(objects, secrets)
    ports: dict[str, set[str | int]] = {
        (o.get("metadata") or {}).get("name", ""): {
            v
            for p in (o.get("spec") or {}).get("ports") or []
            for v in (p.get("name"), p.get("port"))
        }
        for o in objects
        if o.get("kind") == "Service"
    }
    problems = []

    def dangling(obj: dict[str, Any], message: str) -> None:
        problems.append(Problem(display, 1, 1, "KKC307", f"{_what(obj)} references {message}"))

    for obj in objects:
        for kind, name in sorted({ref for ref in references(obj) if ref not in have}):
            dangling(
                obj, f"{kind} {name!r}, which is neither in the output nor provided outside it"
            )
        for kind, name, key in sorted(set(key_references(obj))):
            if (kind, name) in have and key not in keys.get((kind, name), {key}):
                dangling(obj, f"key {key!r} of {kind} {name!r}, which has no such key")
        for name, port in sorted(set(port_references(obj)), key=str):
            if name in ports and port not in ports[name]:
                dangling(obj, f"port {port!r} of Service {name!r}, which has no such port")
    for obj, vhost in vhost_references(objects):
        dangling(obj, f"vhost {vhost!r}, which no Vhost of the output creates on its cluster")
    return problems


def _what(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name', '?')}"


def _image_problem(image: str, prefix: str, tag: str, release: str, distro: str) -> str | None:
    """Why ``image`` is not the site's Kolla image of that name (registry, name, tag)."""
    if not image.startswith(prefix):
        return (
            f'image "{image}" is not a Kolla image from the site\'s registry "{prefix}" '
            "(openstack.registry, openstack.namespace)"
        )
    name, _, got = image[len(prefix) :].split("@")[0].partition(":")
    why = kollacheck.image_problem(release, name, distro)
    if why is None and got != tag and not (got == "" and "@" in image):
        has = f'has tag "{got}"' if got else "has no tag"
        why = (
            f'image "{image}" {has}, not the tag of the site\'s release "{tag}" '
            "(openstack.release, openstack.distro, openstack.tagSuffix)"
        )
    return why


def rabbitmq_image_problem(image: str) -> str | None:
    """Why RabbitMQ's cluster operator would not run ``image`` in a RabbitmqCluster (for
    KKC308): it starts the image's own entrypoint with its configuration in
    /etc/rabbitmq/conf.d, which only the official RabbitMQ images have (not Kolla's
    rabbitmq, whose entrypoint is kolla_start); kkc requires RabbitMQ 4 (the quorum queue
    settings it renders, the upgrade ladder of kkc upgrade)."""
    if upgradepath.rabbitmq_image_version(image):
        return None
    return (
        f'image "{image}" is not an official RabbitMQ 4 image with a version tag '
        '("<registry>/rabbitmq:<4.minor[.patch]>[-management]", e.g. '
        "docker.io/library/rabbitmq:4.3.4-management): the cluster operator runs the image's "
        "own entrypoint, which only those have (services.rabbitmq.image)"
    )


_OPERATOR_IMAGE = re.compile(
    r"^(?:[^@]*/)?mariadb:(\d+\.\d+[0-9A-Za-z.-]*)(?:@sha256:[0-9a-f]{64})?$"
)


def operator_image_problem(image: str) -> str | None:
    """Why mariadb-operator would not run ``image`` in a MariaDB (message for KKC308): it
    runs the official MariaDB images only (``<registry>/mariadb:<version>``; not Kolla's
    mariadb-server) and reads the server version from the tag."""
    if _OPERATOR_IMAGE.match(image):
        return None
    return (
        f'image "{image}" is not an official MariaDB image with a version tag '
        '("<registry>/mariadb:<version>", e.g. docker.io/library/mariadb:11.8.8): '
        "mariadb-operator runs only those and reads the server version from the tag "
        "(services.mariadb.image)"
    )


def check_kolla(
    site: Site, objects: list[dict[str, Any]], display: str
) -> tuple[list[Problem], list[Problem]]:
    """Images and config.json documents against the Kolla release: (problems, warnings).
    A MariaDB of mariadb-operator and a RabbitmqCluster are judged by their operators'
    rules instead (their pods, created by the operators, are not in the output)."""
    release, distro = site.get("openstack.release"), site.get("openstack.distro")
    prefix = f"{site.get('openstack.registry')}/{site.get('openstack.namespace')}/"
    tag = image_tag(release, distro, site.get("openstack.tagSuffix") or "")
    problems, warnings = [], []
    for obj in objects:
        if obj.get("kind") == "MariaDB" and str(obj.get("apiVersion", "")).startswith(
            f"{MARIADB_GROUP}/"
        ):
            why = operator_image_problem(str((obj.get("spec") or {}).get("image", "")))
            if why:
                problems.append(Problem(display, 1, 1, "KKC308", f"{_what(obj)}: {why}"))
        if obj.get("kind") == "RabbitmqCluster" and str(obj.get("apiVersion", "")).startswith(
            f"{RABBITMQ_GROUP}/"
        ):
            why = rabbitmq_image_problem(str((obj.get("spec") or {}).get("image", "")))
            if why:
                problems.append(Problem(display, 1, 1, "KKC308", f"{_what(obj)}: {why}"))
        for image in sorted(set(pod_images(obj))):
            why = _image_problem(image, prefix, tag, release, distro)
            if why:
                problems.append(Problem(display, 1, 1, "KKC308", f"{_what(obj)}: {why}"))
        text = (
            (obj.get("data") or {}).get("config.json") if obj.get("kind") == "ConfigMap" else None
        )
        if text is None:
            continue
        for why in kollacheck.check_config_json(release, text):
            problems.append(Problem(display, 1, 1, "KKC309", f"{_what(obj)}: config.json {why}"))
        warnings += [
            warning(f"{_what(obj)}: config.json {why}")
            for why in kollacheck.config_json_warnings(release, text)
        ]
    return problems, warnings


def check_ini(
    site: Site,
    tree: dict[str, bytes],
    objects: list[dict[str, Any]],
    display: str,
    outputs: Outputs,
) -> tuple[list[Problem], list[Problem]]:
    """Every OpenStack INI file the output carries against the option catalog of the site's
    release: (problems, warnings). The files of ``tree`` (deploy/<site>/ relative paths)
    are reported at their line; what only the built ``objects`` hold (a ConfigMap a site
    patch changed) and the services' secret drop-ins (placeholders for their values) are
    reported at ``display``. ``outputs`` as for :func:`check_references`."""
    secrets = outputs.service_secrets()
    release = site.get("openstack.release")
    problems: list[Problem] = []
    warnings: list[Problem] = []
    # a deprecated option set by an override is reported at the override (kkc.overrides)
    overridden = overrides.overridden(site)

    def judge(conf: str, text: str, path: str, where: str = "", drop_in: bool = False) -> None:
        for f in catalog.check_ini_text(release, conf, text):
            if drop_in and f.code == "KKC134":
                continue  # a secret drop-in is where secret options belong
            line = f.location or 1
            at = (path, line) if not where else (display, 1)
            message = f"{where} line {line}: {f.message}" if where else f.message
            if f.severity == catalog.ERROR:
                problems.append(Problem(*at, 1, f.code, message))
            elif (f.section, f.option) not in overridden:
                warnings.append(Problem(*at, 1, f.code, message, WARNING))

    seen = set()
    for rel in sorted(tree):
        conf = rel.rsplit("/", 1)[-1]
        if conf in catalog.CONF_FILES:
            text = tree[rel].decode("utf-8")
            seen.add((conf, text))
            judge(conf, text, f"deploy/{site.name}/{rel}")
    for obj in objects:
        if obj.get("kind") != "ConfigMap":
            continue
        for conf, text in sorted((obj.get("data") or {}).items()):
            if conf in catalog.CONF_FILES and (conf, text) not in seen:
                seen.add((conf, text))
                judge(conf, text, display, f"{_what(obj)} {conf}")
    for spec in secrets:
        for key in spec.keys:
            if key.template and key.conf_file:
                text = _GO_TEMPLATE.sub("x", key.template)
                where = f"Secret/{spec.name} {key.key}"
                judge(key.conf_file, text, display, where, drop_in=True)
    return problems, warnings
