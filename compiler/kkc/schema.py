"""The site definition schema (version 1), checked with Cerberus, and the translation of
Cerberus errors into located, stable problems."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from typing import Any

import cerberus
from cerberus import errors as cerrors

from .errors import Problem
from .releases import DISTROS, RELEASES

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
QUANTITY = r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
LABEL_KEY = r"([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
SECRET_REF = r"[A-Za-z0-9_./-]+"
# a password name as it ends an annotation name (kkc.openstack.org/rotation-<name>)
ROTATION_NAME = r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,52}[A-Za-z0-9])?"
STORE_NAME = r"[a-z][a-z0-9_]*"  # a secret of the store, like kolla passwords.yml names
_SCALARS = ["string", "integer", "float", "boolean"]
# a Go duration as Flux and Argo CD take it (5m, 1h30m, 90s)
DURATION = r"([0-9]+(\.[0-9]+)?(ms|s|m|h))+"
# a relative path inside the repository, without "." or ".." segments
GITOPS_PATH = r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*"
CIDR = r"[0-9a-fA-F.:]+/[0-9]{1,3}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PUBLIC_HOST_NAMES = [
    "cinder",
    "glance",
    "heat",
    "heat-cfn",
    "horizon",
    "keystone",
    "neutron",
    "nova",
    "novncproxy",
    "placement",
]

_QTY = {"type": "string", "regex": QUANTITY}
_RESOURCES = {
    "type": "dict",
    "schema": {
        part: {"type": "dict", "schema": {"cpu": _QTY, "memory": _QTY}}
        for part in ("requests", "limits")
    },
}


def _component(**extra: Any) -> dict[str, Any]:
    return {
        "type": "dict",
        "schema": {
            "replicas": {"type": "integer", "min": 1, "max": 15},
            "resources": _RESOURCES,
            **extra,
        },
    }


def _rbd(*, libvirt_secret: bool) -> dict[str, Any]:
    """A Ceph RBD back end: pool and user; for what the computes attach, the UUID of the
    libvirt secret that holds client.<user>'s key (a name, not a secret)."""
    schema: dict[str, Any] = {
        "pool": {"type": "string", "regex": r"[A-Za-z0-9_.-]+"},
        "user": {"type": "string", "regex": r"[A-Za-z0-9_.-]+"},
    }
    if libvirt_secret:
        schema["secretUuid"] = {"type": "string", "regex": UUID}
    return {"type": "dict", "schema": schema}


def _service(**components: Any) -> dict[str, Any]:
    return {"type": "dict", "schema": {"enabled": {"type": "boolean"}, **components}}


_STORAGE = {
    "type": "dict",
    "schema": {
        "size": _QTY,
        "storageClass": {"type": "string", "regex": DNS1123_SUBDOMAIN},
    },
}

_WORKERS = {"type": "integer", "min": 1, "max": 64}
# Node agents (DaemonSets) choose their own nodes: services.<svc>.<component>.nodeSelector.
_AGENT_NODE_SELECTOR = {
    "type": "dict",
    "keysrules": {"type": "string", "regex": LABEL_KEY},
    "valuesrules": {"type": "string", "regex": LABEL_VALUE, "maxlength": 63},
}
_AGENT_TOLERATIONS = {
    "type": "list",
    "schema": {
        "type": "dict",
        "schema": {
            "key": {"type": "string", "regex": LABEL_KEY},
            "operator": {"type": "string", "allowed": ["Equal", "Exists"]},
            "value": {"type": "string", "regex": LABEL_VALUE},
            "effect": {
                "type": "string",
                "allowed": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
            },
            "tolerationSeconds": {"type": "integer", "min": 0},
        },
    },
}
CRON_SCHEDULE = r"(@(hourly|daily|weekly|monthly|yearly))|(\S+( \S+){4})"
# registry/repository:tag, optionally @sha256:digest (the tag is required: mariadb-operator
# reads the MariaDB version from it)
IMAGE_REF = (
    r"[a-z0-9]([-a-z0-9._/:]*[a-z0-9])?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[0-9a-f]{64})?"
)
# Scheduled logical backups of a mariadb-operator MariaDB (a k8s.mariadb.com Backup): where
# they go is the site's choice (one of s3 and persistentVolumeClaim; KKC113 without).
_MARIADB_BACKUP = {
    "type": "dict",
    "schema": {
        "enabled": {"type": "boolean"},
        "schedule": {"type": "string", "regex": CRON_SCHEDULE},
        "maxRetention": {"type": "string", "regex": DURATION},
        "compression": {"type": "string", "allowed": ["none", "gzip", "bzip2"]},
        "storage": {
            "type": "dict",
            "schema": {
                "s3": {
                    "type": "dict",
                    "schema": {
                        "bucket": {"type": "string", "regex": r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"},
                        "endpoint": {"type": "string", "regex": r"[A-Za-z0-9.-]+(:[0-9]{1,5})?"},
                        "region": {"type": "string", "regex": r"[a-z0-9-]+"},
                        "prefix": {"type": "string", "regex": r"[A-Za-z0-9._/-]+"},
                        "tls": {"type": "boolean"},
                    },
                },
                "persistentVolumeClaim": _STORAGE,
            },
        },
    },
}
# Kubernetes annotations (keys are qualified names; values are always strings).
_ANNOTATIONS = {
    "type": "dict",
    "keysrules": {"type": "string", "regex": LABEL_KEY},
    "valuesrules": {"type": "string"},
}

SCHEMA: dict[str, Any] = {
    "schemaVersion": {"type": "integer", "required": True, "allowed": [1]},
    "name": {"type": "string", "required": True, "regex": DNS1123_LABEL, "maxlength": 63},
    "description": {"type": "string"},
    "kubernetes": {
        "type": "dict",
        "required": True,
        "schema": {"version": {"type": "string", "required": True, "regex": r"1\.[0-9]+"}},
    },
    "namespace": {"type": "string", "required": True, "regex": DNS1123_LABEL, "maxlength": 63},
    "region": {"type": "string", "required": True, "regex": r"[A-Za-z0-9_-]+"},
    "openstack": {
        "type": "dict",
        "required": True,
        "schema": {
            "release": {"type": "string", "required": True, "allowed": sorted(RELEASES)},
            "distro": {"type": "string", "required": True, "allowed": DISTROS},
            "registry": {"type": "string", "required": True, "regex": r"[a-z0-9.-]+(:[0-9]+)?"},
            "namespace": {"type": "string", "required": True, "regex": r"[a-z0-9._/-]+"},
            "tagSuffix": {"type": "string", "regex": r"([-._A-Za-z0-9]*)"},
        },
    },
    "placement": {
        "type": "dict",
        "schema": {
            "nodeSelector": {
                "type": "dict",
                "keysrules": {"type": "string", "regex": LABEL_KEY},
                "valuesrules": {"type": "string", "regex": LABEL_VALUE, "maxlength": 63},
            },
            "tolerations": {
                "type": "list",
                "schema": {
                    "type": "dict",
                    "schema": {
                        "key": {"type": "string", "regex": LABEL_KEY},
                        "operator": {"type": "string", "allowed": ["Equal", "Exists"]},
                        "value": {"type": "string", "regex": LABEL_VALUE},
                        "effect": {
                            "type": "string",
                            "allowed": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                        },
                        "tolerationSeconds": {"type": "integer", "min": 0},
                    },
                },
            },
        },
    },
    "endpoints": {
        "type": "dict",
        "schema": {
            "scheme": {"type": "string", "allowed": ["http", "https"]},
            "hosts": {
                "type": "dict",
                "keysrules": {"type": "string", "allowed": PUBLIC_HOST_NAMES},
                "valuesrules": {"type": "string", "regex": DNS1123_SUBDOMAIN, "maxlength": 253},
            },
        },
    },
    # Ingress objects for the public endpoints (kkc.features.ingress; overlays/ingress).
    "ingress": {
        "type": "dict",
        "schema": {
            "enabled": {"type": "boolean"},
            "className": {"type": "string", "regex": DNS1123_SUBDOMAIN, "maxlength": 253},
            "annotations": _ANNOTATIONS,
            # per public endpoint (a key of endpoints.hosts): merged over ingress.annotations
            "endpoints": {
                "type": "dict",
                "keysrules": {"type": "string", "allowed": PUBLIC_HOST_NAMES},
                "valuesrules": {"type": "dict", "schema": {"annotations": _ANNOTATIONS}},
            },
        },
    },
    # cert-manager Certificates for the public host names, used by the Ingress objects
    # (kkc.features.tls; overlays/tls).
    "tls": {
        "type": "dict",
        "schema": {
            "enabled": {"type": "boolean"},
            "issuer": {
                "type": "dict",
                "schema": {
                    "kind": {"type": "string", "allowed": ["Issuer", "ClusterIssuer"]},
                    "name": {"type": "string", "regex": DNS1123_SUBDOMAIN, "maxlength": 253},
                    "group": {"type": "string", "regex": DNS1123_SUBDOMAIN, "maxlength": 253},
                },
            },
        },
    },
    "services": {
        "type": "dict",
        "schema": {
            # provider kolla: one Kolla mariadb-server; mariadb-operator: a Galera cluster of
            # the official MariaDB image (image), with scheduled backups (backup)
            "mariadb": _service(
                provider={"type": "string", "allowed": ["kolla", "mariadb-operator"]},
                image={"type": "string", "regex": IMAGE_REF},
                operatorNamespace={"type": "string", "regex": DNS1123_LABEL, "maxlength": 63},
                server=_component(storage=_STORAGE),
                backup=_MARIADB_BACKUP,
            ),
            # provider kolla: one Kolla rabbitmq; rabbitmq-operator: a RabbitmqCluster of the
            # official RabbitMQ image (image), a user and vhost per service
            "rabbitmq": _service(
                provider={"type": "string", "allowed": ["kolla", "rabbitmq-operator"]},
                image={"type": "string", "regex": IMAGE_REF},
                operatorNamespace={"type": "string", "regex": DNS1123_LABEL, "maxlength": 63},
                server=_component(storage=_STORAGE),
            ),
            "memcached": _service(
                server=_component(memoryMB={"type": "integer", "min": 64, "max": 65536})
            ),
            "keystone": _service(
                api=_component(workers={"type": "integer", "min": 1, "max": 64}),
                tokenExpiration={"type": "integer", "min": 300, "max": 604800},
                fernetRotationHours={"type": "integer", "allowed": [1, 2, 3, 4, 6, 8, 12, 24]},
            ),
            # Ephemeral disks: local (the node's /var/lib/nova/instances) or rbd (Ceph;
            # Secret nova-ceph, libvirt secrets on the computes).
            "nova": _service(
                backend={"type": "string", "allowed": ["local", "rbd"]},
                rbd=_rbd(libvirt_secret=True),
                api=_component(workers=_WORKERS),
                metadata=_component(workers=_WORKERS),
                conductor=_component(workers=_WORKERS),
                scheduler=_component(workers=_WORKERS),
                novncproxy=_component(),
                compute=_component(
                    virtType={"type": "string", "allowed": ["kvm", "qemu"]},
                    nodeSelector=_AGENT_NODE_SELECTOR,
                    tolerations=_AGENT_TOLERATIONS,
                ),
                libvirt=_component(),
                discoverHosts=_component(
                    schedule={"type": "string", "regex": CRON_SCHEDULE},
                ),
            ),
            # One volume back end; its cinder.conf section is backendName (default
            # "<backend>-1"). lvm: cinder-volume runs on the node volume.nodeSelector picks.
            "cinder": _service(
                backend={"type": "string", "allowed": ["rbd", "lvm"]},
                backendName={"type": "string", "regex": r"[A-Za-z0-9_-]{1,64}"},
                rbd=_rbd(libvirt_secret=True),
                lvm={
                    "type": "dict",
                    "schema": {
                        "volumeGroup": {"type": "string", "regex": r"[A-Za-z0-9_.+-]+"},
                        "targetHelper": {"type": "string", "allowed": ["lioadm", "tgtadm"]},
                    },
                },
                api=_component(workers=_WORKERS),
                scheduler=_component(),
                volume=_component(
                    nodeSelector=_AGENT_NODE_SELECTOR,
                    tolerations=_AGENT_TOLERATIONS,
                ),
            ),
            "heat": _service(
                api=_component(workers=_WORKERS),
                cfn=_component(workers=_WORKERS),
                engine=_component(workers=_WORKERS),
            ),
            # One image store: file (PersistentVolumeClaim glance-images, sized by storage)
            # or rbd (Ceph; Secret glance-ceph).
            "glance": _service(
                backend={"type": "string", "allowed": ["file", "rbd"]},
                storage=_STORAGE,
                rbd=_rbd(libvirt_secret=False),
                api=_component(workers=_WORKERS),
            ),
            "placement": _service(api=_component(workers=_WORKERS)),
            "horizon": _service(server=_component(workers=_WORKERS)),
            # neutron with ML2/OVN; OVN and Open vSwitch are part of it (kkc.services.ovn).
            "neutron": _service(
                server=_component(workers=_WORKERS),
                rpcServer=_component(workers=_WORKERS),  # uwsgi releases only
                periodicWorkers=_component(),  # uwsgi releases only
                ovnMaintenanceWorker=_component(),  # uwsgi releases only (1 replica)
                metadataAgent=_component(workers=_WORKERS),
                ovnNbDb=_component(storage=_STORAGE),
                ovnSbDb=_component(storage=_STORAGE),
                ovnNorthd=_component(),
                ovnController=_component(),
                ovsdb=_component(),
                vswitchd=_component(),
                # nodes of Open vSwitch, ovn-controller and the metadata agent
                nodeSelector=_AGENT_NODE_SELECTOR,
                tolerations=_AGENT_TOLERATIONS,
                bridgeMappings={
                    "type": "list",
                    "schema": {"type": "string", "regex": r"[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]{1,15}"},
                },
                tunnelInterface={"type": "string", "regex": r"([A-Za-z0-9_.:@-]{1,15})?"},
                gatewayChassis={"type": "boolean"},
            ),
        },
    },
    "secrets": {
        "type": "dict",
        "schema": {
            "backend": {"type": "string", "allowed": ["external-secrets", "existing"]},
            "store": {
                "type": "dict",
                "schema": {
                    "kind": {
                        "type": "string",
                        "required": True,
                        "allowed": ["SecretStore", "ClusterSecretStore"],
                    },
                    "name": {"type": "string", "required": True, "regex": DNS1123_SUBDOMAIN},
                },
            },
            "keyPrefix": {"type": "string", "regex": r"[A-Za-z0-9_./-]*"},
            "refreshInterval": {"type": "string", "regex": r"([0-9]+(s|m|h))+"},
            "refs": {
                "type": "dict",
                "valuesrules": {
                    "type": "dict",
                    "schema": {
                        "key": {"type": "string", "required": True, "regex": SECRET_REF},
                        "property": {"type": "string", "regex": SECRET_REF},
                    },
                },
            },
            # kkc rotate: kolla password name -> rotation generation (kkc.rotation); the
            # name ends an annotation name kkc.openstack.org/rotation-<name> (63 characters)
            "rotation": {
                "type": "dict",
                "keysrules": {"type": "string", "regex": ROTATION_NAME},
                "valuesrules": {"type": "integer", "min": 1},
            },
        },
    },
    # OpenStack config overrides (kkc.overrides): file -> section -> option -> value, where
    # file is "global", "<service>" or "<service>/<component>" (as under sites/<site>/config/),
    # either optionally followed by "/<file>" for another INI file ("neutron/ml2_conf.ini")
    "config": {
        "type": "dict",
        "keysrules": {
            "type": "string",
            "regex": r"[a-z][a-z0-9-]*(/[a-z][a-z0-9-]*)?(/[A-Za-z0-9_.-]*\.[A-Za-z0-9]+)?",
        },
        "valuesrules": {
            "type": "dict",
            "keysrules": {"type": "string", "regex": r"[^\[\]\s]+"},
            "valuesrules": {
                "type": "dict",
                "keysrules": {"type": "string", "regex": r"[^\[\]=:\s#;]+"},
                # a scalar, a list of scalars, or a secret reference {secret: <name>}: a
                # key of the site's secret store, named like kolla's passwords.yml entries
                "valuesrules": {
                    "anyof": [
                        {"type": _SCALARS},
                        {"type": "list", "schema": {"type": _SCALARS}},
                        {
                            "type": "dict",
                            "schema": {
                                "secret": {"type": "string", "required": True, "regex": STORE_NAME}
                            },
                        },
                    ]
                },
            },
        },
    },
    "overlays": {"type": "list", "schema": {"type": "string", "regex": DNS1123_LABEL}},
    # Features (off by default; the overlays of the same name switch them on).
    "monitoring": {
        "type": "dict",
        "schema": {
            "enabled": {"type": "boolean"},
            # the namespace Prometheus scrapes from (network-policy lets it in)
            "namespace": {"type": "string", "regex": DNS1123_LABEL, "maxlength": 63},
            # on every ServiceMonitor/PodMonitor: what the Prometheus instance selects
            "labels": {
                "type": "dict",
                "keysrules": {"type": "string", "regex": LABEL_KEY},
                "valuesrules": {"type": "string", "regex": LABEL_VALUE, "maxlength": 63},
            },
            "interval": {"type": "string", "regex": r"([0-9]+(ms|s|m|h))+"},
        },
    },
    "networkPolicy": {
        "type": "dict",
        "schema": {
            "enabled": {"type": "boolean"},
            # where the node agents' (hostNetwork) connections come from
            "nodeCIDRs": {"type": "list", "schema": {"type": "string", "regex": CIDR}},
            # the ingress controller's namespace: it reaches the public APIs
            "ingressNamespace": {"type": "string", "regex": DNS1123_LABEL, "maxlength": 63},
        },
    },
    # High availability of the stateless tier: every workload with more than one replica
    # gets pod anti-affinity over nodes (antiAffinity) and, with the overlay ha, is spread
    # across spread.topologyKey (zones) besides the nodes.
    "ha": {
        "type": "dict",
        "schema": {
            "enabled": {"type": "boolean"},
            "antiAffinity": {"type": "string", "allowed": ["preferred", "required"]},
            "spread": {
                "type": "dict",
                "schema": {
                    "topologyKey": {"type": "string", "regex": LABEL_KEY},
                    "maxSkew": {"type": "integer", "min": 1, "max": 10},
                    "whenUnsatisfiable": {
                        "type": "string",
                        "allowed": ["ScheduleAnyway", "DoNotSchedule"],
                    },
                },
            },
        },
    },
    "gitops": {
        "type": "dict",
        "schema": {
            "engine": {"type": "string", "allowed": ["argocd", "flux"]},
            "repoURL": {"type": "string", "regex": r"(https://|ssh://|git@|file://)\S+"},
            "revision": {"type": "string", "regex": r"[A-Za-z0-9._/-]+"},
            # where the site's output lives in the repository; default deploy/<site>
            "path": {"type": "string", "regex": GITOPS_PATH},
            # where the controller objects live; default argocd / flux-system by engine
            "namespace": {"type": "string", "regex": DNS1123_LABEL, "maxlength": 63},
            "project": {"type": "string", "regex": DNS1123_LABEL, "maxlength": 63},
            "automated": {"type": "boolean"},
            "prune": {"type": "boolean"},
            "selfHeal": {"type": "boolean"},
            "interval": {"type": "string", "regex": DURATION},
            "timeout": {"type": "string", "regex": DURATION},
            # Flux: a Secret in gitops.namespace with the credentials of a private repository
            "secretRef": {"type": "string", "regex": DNS1123_SUBDOMAIN, "maxlength": 253},
        },
    },
}


# kkc has no default release: a newer kkc must never move a site to another release.
RELEASE_MISSING = (
    "required key missing: kkc has no default OpenStack release; pin one in "
    "sites/{site}/site.yaml or in sites/defaults.yaml (supported: "
    f"{', '.join(sorted(RELEASES))})"
)


class _Validator(cerberus.Validator):  # type: ignore[misc]
    """Cerberus, with booleans refused where integers are expected."""

    types_mapping = {
        **cerberus.Validator.types_mapping,
        "integer": cerberus.TypeDefinition("integer", (int,), (bool,)),
    }


@functools.cache
def _validator() -> _Validator:
    """One validator per process: building one re-checks the whole schema (about half the
    cost of validating a layer); ``validate`` resets its state on each call."""
    return _Validator(SCHEMA)


def _flatten(errs: Any) -> Iterator[Any]:
    for err in errs:
        if err.is_group_error and err.rule == "anyof":
            # the alternatives of a config value: report against the one of the value's
            # type, or once that it is none of them
            children = list(_flatten(err.child_errors))
            wrong_type = [c for c in children if _is_alt_type(c)]
            yield from [c for c in children if c not in wrong_type] or wrong_type[-1:]
        elif err.is_group_error:
            yield from _flatten(err.child_errors)
        else:
            yield err


def _is_alt_type(err: Any) -> bool:
    """A type mismatch with one of the alternatives of an ``anyof`` (not inside it)."""
    return err.code == cerrors.BAD_TYPE.code and err.schema_path[-3] == "anyof"


def _schema_at(path: tuple[Any, ...]) -> dict[str, Any]:
    """The sub-schema (a dict of rules) for the mapping found at ``path``."""
    rules: dict[str, Any] = {"type": "dict", "schema": SCHEMA}
    for part in path:
        if "schema" in rules and isinstance(part, str) and rules.get("type") == "dict":
            rules = rules["schema"].get(part, {})
        elif "valuesrules" in rules:
            rules = rules["valuesrules"]
        elif "schema" in rules and rules.get("type") == "list":
            rules = rules["schema"]
        else:
            return {}
        if "anyof" in rules:  # a config value: the mapping form (a secret reference)
            rules = next((r for r in rules["anyof"] if r.get("type") == "dict"), rules)
    return rules


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _message(err: Any, site: str = "SITE") -> tuple[str, str]:
    """(code, message) for one Cerberus error. Never includes values of unknown keys."""
    field = dotted(err.document_path)
    if err.code == cerrors.UNKNOWN_FIELD.code:
        key = err.document_path[-1]
        sub = _schema_at(err.document_path[:-1]).get("schema", {})
        allowed = sorted(sub) if isinstance(sub, dict) else []
        near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f'; did you mean "{near[0]}"?' if near else f" (allowed: {', '.join(allowed)})"
        return "KKC110", f"{field}: unknown key{hint}"
    if err.code == cerrors.REQUIRED_FIELD.code:
        if tuple(err.document_path) == ("openstack", "release"):
            return "KKC113", f"{field}: {RELEASE_MISSING.format(site=site)}"
        return "KKC113", f"{field}: required key missing"
    if err.code == cerrors.BAD_TYPE.code:
        if err.constraint == "dict" and err.schema_path[-3:-2] == ("anyof",):
            return (
                "KKC111",
                f"{field}: must be a scalar, a list of scalars or a secret reference "
                "{secret: <name>}",
            )
        if isinstance(err.constraint, list) and len(err.constraint) > 1:
            return "KKC111", f"{field}: must be a scalar (string, number or boolean)"
        want = err.constraint if isinstance(err.constraint, str) else err.constraint[0]
        want = {"dict": "a mapping", "list": "a list"}.get(want, f"of {want} type")
        msg = f"{field}: must be {want}"
        if want == "of string type" and isinstance(err.value, float | int):
            msg += f" (YAML read {err.value} as a number: write it in quotes)"
        return "KKC111", msg
    if err.code == cerrors.UNALLOWED_VALUE.code:
        allowed = ", ".join(str(a) for a in err.constraint)
        if err.document_path == ("schemaVersion",):
            return (
                "KKC116",
                f"{field}: schema version {err.value} is not supported by kkc "
                f"(supported: {allowed})",
            )
        if err.document_path and err.document_path[-1] == "release":
            return (
                "KKC115",
                f'{field}: OpenStack release "{err.value}" is not supported (supported: {allowed})',
            )
        return "KKC112", f'{field}: "{err.value}" is not allowed (allowed: {allowed})'
    if err.code == cerrors.REGEX_MISMATCH.code:
        if err.document_path and err.document_path[-1] in ("name", "namespace"):
            return "KKC114", (
                f'{field}: "{err.value}" is not a DNS-1123 label (lowercase letters, '
                'digits and "-", starting and ending with a letter or digit, at most 63)'
            )
        return "KKC112", f'{field}: "{err.value}" does not match the expected format'
    if err.code == cerrors.MIN_VALUE.code:
        return "KKC112", f"{field}: must be at least {err.constraint} (got {err.value})"
    if err.code == cerrors.MAX_VALUE.code:
        return "KKC112", f"{field}: must be at most {err.constraint} (got {err.value})"
    if err.code == cerrors.MAX_LENGTH.code:
        return "KKC112", f"{field}: longer than {err.constraint} characters"
    text = cerrors.BasicErrorHandler.messages.get(err.code, "is invalid")
    try:
        text = text.format(*(err.info or ()), constraint=err.constraint, field=field, value="…")
    except (IndexError, KeyError):
        pass
    return "KKC112", f"{field}: {text}"


def _strip_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_strip_nulls(v) for v in node]
    return node


def check(
    doc: Any,
    locate: Any,
    *,
    partial: bool,
    found: list[tuple[tuple[Any, ...], Problem]] | None = None,
    site: str = "SITE",
) -> list[Problem]:
    """Validate ``doc`` (plain data). ``locate(path, is_key, missing)`` returns
    (file, line, col); ``missing`` asks for the place where a required key should be added.

    ``partial`` validates one layer: no required keys, explicit nulls allowed (they delete).
    ``found`` gets (the path of the key at fault, its problem) of each problem.
    ``site``: the site's name, for the hints that name a command.
    """
    v = _validator()
    # the schema has no normalization rules (defaults, coercion, renames): skip that pass
    v.validate(_strip_nulls(doc) if partial else doc, update=partial, normalize=False)
    problems = []
    for err in _flatten(v._errors):
        code, msg = _message(err, site)
        path = tuple(err.document_path)
        missing = err.code == cerrors.REQUIRED_FIELD.code
        if missing:
            path = path[:-1]
        is_key = missing or err.code == cerrors.UNKNOWN_FIELD.code
        display, line, col = locate(path, is_key, missing)
        problems.append(Problem(display, line, col, code, msg))
        if found is not None:
            found.append((tuple(err.document_path), problems[-1]))
    return sorted(set(problems), key=lambda p: (p.line, p.col, p.code, p.message))
