"""`kkc restore SITE --from BACKUP --plan` (issue 17): the mariadb-operator Restore,
validated against its CRD, and the ordered steps around it, read from the rendered output;
nothing written; refused (KKC189) for provider kolla, an unknown Backup, a bad --at."""

from __future__ import annotations

import json
from pathlib import Path

from kkc import restore, validate
from kkc.site import load_site

HA = "site-a-ha"


def test_the_plan_of_a_galera_site(example_repo: Path, kkc) -> None:
    """One render, three reports; the example repository fixture fails a test that writes."""
    result = kkc(
        example_repo,
        "restore",
        HA,
        "--from",
        "mariadb-backup",
        "--at",
        "2026-12-08T02:15:00Z",
        "--database",
        "nova",
        "--plan",
        "-o",
        "json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    res = doc["restore"]
    assert res["metadata"] == {"name": "mariadb-restore-20261208t021500z", "namespace": "openstack"}
    assert res["spec"]["backupRef"] == {"name": "mariadb-backup"}
    assert res["spec"]["mariaDbRef"] == {"name": "mariadb", "waitForIt": True}
    assert (res["spec"]["targetRecoveryTime"], res["spec"]["database"]) == (
        "2026-12-08T02:15:00Z",
        "nova",
    )
    # admitted to MariaDB by the network policy (as the backup pods are)
    assert res["spec"]["podMetadata"]["labels"]["app.kubernetes.io/name"] == "mariadb-backup"
    assert validate.validate_objects([res], "1.31", None, "x") == ([], [])
    bad = {**res, "spec": {**res["spec"], "backupRef": {"nam": "x"}}}
    assert [p.code for p in validate.validate_objects([bad], "1.31", None, "x")[0]] == ["KKC302"]

    steps = doc["steps"]
    assert [s["title"] for s in steps] == [
        "Suspend the controller",
        "Stop the APIs and workers (stage services)",
        "Stop Keystone (stage identity)",
        "Restore Backup mariadb-backup",
        "Re-run the database Jobs (stage db)",
        "Give the site back to the controller, stage infra first",
        "Delete Restore/mariadb-restore-20261208t021500z",
    ]
    assert steps[0]["commands"] == ["argocd app set site-a-ha --sync-policy none"]
    assert steps[1]["commands"] == [
        "kubectl -n openstack scale deployment -l kkc.openstack.org/stage=services --replicas=0"
    ]
    assert "Deployment/nova-api" in steps[1]["objects"]
    assert "Deployment/keystone-api" not in steps[1]["objects"]
    assert steps[2]["objects"] == ["Deployment/keystone-api"]
    assert "Job/nova-db-sync" in steps[4]["objects"]

    plan = restore.RestorePlan(
        doc["site"],
        doc["namespace"],
        doc["engine"],
        doc["backup"],
        res,
        [restore.Step(s["title"], s["why"], s["commands"], s["objects"]) for s in steps],
    )
    text = restore.text_report(plan).splitlines()
    assert text[0] == (
        "site-a-ha: restore plan of Backup mariadb-backup (namespace openstack); nothing is written"
    )
    assert text[2].startswith("1. Suspend the controller: ")
    assert "kind: Restore" in text
    markdown = restore.markdown_report(plan)
    assert markdown.startswith("## Restore site-a-ha from Backup `mariadb-backup`\n")
    assert "### 7. Delete Restore/mariadb-restore-20261208t021500z" in markdown


def test_refusals(example_repo: Path, kkc) -> None:
    result = kkc(example_repo, "restore", "site-a", "--from", "mariadb-backup", "--plan")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "sites/site-a/site.yaml:37:5: KKC189 kkc restore --plan needs "
        "services.mariadb.provider: mariadb-operator (it plans a Restore of the operator's "
        "Backup); the kolla MariaDB has no Backup or Restore resource: restore a mariadb-dump "
        "by hand as docs/backup-restore.md#restoring-with-provider-kolla describes"
    ]
    result = kkc(example_repo, "restore", HA, "--from", "mariadb-backup")
    assert result.exit_code == 2
    assert result.stderr.startswith("kkc restore: kkc restore only plans: pass --plan")
    result = kkc(example_repo, "restore", HA, "--from", "mariadb-backup", "--at", "today", "--plan")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        '<command line>:1:1: KKC189 --at "today" is not an RFC 3339 time (e.g. '
        "2026-12-08T02:15:00Z)"
    ]
    result = kkc(example_repo, "restore", HA, "--from", "mariadb-bakup", "--plan")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        '<command line>:1:1: KKC189 --from "mariadb-bakup": the site\'s output has no Backup '
        'of that name (its Backups: mariadb-backup); did you mean "mariadb-backup"?'
    ]


def test_flux_is_suspended_and_resumed_stage_by_stage(example_repo: Path) -> None:
    site = load_site(example_repo, "site-b")  # Flux
    suspend, resume = restore._controller_steps(site, ["infra", "db", "services"])
    assert suspend.commands == [
        "flux -n flux-system suspend kustomization site-b-infra site-b-db site-b-services"
    ]
    assert resume.commands == [
        "flux -n flux-system resume kustomization site-b-infra",
        "flux -n flux-system resume kustomization site-b-db",
        "flux -n flux-system resume kustomization site-b-services",
    ]
