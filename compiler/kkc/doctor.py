"""`kkc doctor`: the kustomize engine kkc uses, its version, the other tools found, and
the CRD schemas custom resources are validated against (embedded, and --crd-dir's)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import git as gitpython
import kubernetes_validate

from . import __version__, cache, kustomize, validate
from .gitrepo import git_version
from .services import galera, rabbitmq_cluster

# Operators that sites may need in their cluster, by the site setting that needs them:
# (name, release, the site setting, the embedded controller whose CRDs kkc validates with).
OPERATORS = (
    (
        galera.OPERATOR,
        galera.OPERATOR_RELEASE,
        "services.mariadb.provider: mariadb-operator",
        "mariadb-operator/mariadb-operator",
    ),
    (
        rabbitmq_cluster.OPERATOR,
        rabbitmq_cluster.OPERATOR_RELEASE,
        "services.rabbitmq.provider: rabbitmq-operator",
        "rabbitmq/cluster-operator",
    ),
    (
        rabbitmq_cluster.TOPOLOGY_OPERATOR,
        rabbitmq_cluster.TOPOLOGY_OPERATOR_RELEASE,
        "services.rabbitmq.provider: rabbitmq-operator",
        "rabbitmq/messaging-topology-operator",
    ),
)


@dataclass
class Doctor:
    info: dict[str, str]  # tool -> what was found, in the order printed
    dir_kinds: list[dict[str, Any]]  # --crd-dir's kinds: {apiVersion, kind, overrides}
    embedded: list[dict[str, Any]]  # the CRD schemas embedded in kkc
    # the operators a site may need in its cluster: {name, release, neededBy, crds, commit}
    operators: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            **self.info,
            "crd-dir-kinds": self.dir_kinds,
            "crd-schemas": self.embedded,
            "operators": self.operators,
        }

    def lines(self) -> list[str]:
        out = [f"{k:20} {v}" for k, v in self.info.items()]
        for k in self.dir_kinds:
            what = "overrides the embedded schema" if k["overrides"] else "adds a kind"
            out.append(f"  {k['apiVersion']} {k['kind']}: {what}")
        out.append(f"{'crd-schemas':20} {len(self.embedded)} served CRD versions embedded in kkc")
        overridden = {(k["apiVersion"], k["kind"]) for k in self.dir_kinds}
        for k in self.embedded:
            src = k["source"]
            release = f" {src['version']}" if src["version"] else ""
            note = (
                " (overridden by crd-dir)"
                if (f"{k['group']}/{k['version']}", k["kind"]) in overridden
                else ""
            )
            out.append(
                f"  {k['group']}/{k['version']} {k['kind']}: "
                f"{src['repository']}@{src['commit'][:12]}{release}{note}"
            )
        out.append(
            f"{'operators':20} what sites may need in their cluster (kkc bootstrap names it)"
        )
        for op in self.operators:
            apis = ", ".join(sorted({c.split()[0] for c in op["crds"]}))
            out.append(
                f"  {op['name']} {op['release']}: needed with {op['neededBy']}; kkc validates "
                f"{apis} against {op['repository']}@{op['commit'][:12]}"
            )
        return out


def run(crd_dir: str | None) -> Doctor:
    """What `kkc doctor` reports; finding no kustomize engine is an environment error."""
    engine = kustomize.find_engine()
    embedded = validate.embedded_kinds()
    known = {(f"{k['group']}/{k['version']}", k["kind"]) for k in embedded}
    dir_kinds = [
        {"apiVersion": api, "kind": kind, "overrides": (api, kind) in known}
        for api, kind in (validate.crd_dir_kinds(crd_dir) if crd_dir else [])
    ]
    info = {
        "kkc": __version__,
        "python": platform.python_version(),
        "kustomize": engine.describe(),
        "git": git_version(),
        "gitpython": gitpython.__version__,
        "kubernetes-validate": kubernetes_validate.__version__,
        "cache": cache.describe(),
        "crd-dir": f"{crd_dir} ({len(dir_kinds)} served CRD versions, "
        f"{sum(k['overrides'] for k in dir_kinds)} overriding embedded ones)"
        if crd_dir
        else "not set (KKC_CRD_DIR): the embedded CRD schemas only",
    }
    return Doctor(info, dir_kinds, embedded, _operators(embedded))


def _operators(embedded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, release, needed_by, repository in OPERATORS:
        kinds = [k for k in embedded if k["source"]["repository"] == repository]
        out.append(
            {
                "name": name,
                "release": release,
                "neededBy": needed_by,
                "repository": repository,
                "commit": kinds[0]["source"]["commit"] if kinds else "",
                "crds": sorted({f"{k['group']}/{k['version']} {k['kind']}" for k in kinds}),
            }
        )
    return out
