"""Stable problem codes. Each appears in docs/errors.md; tests/test_docs.py checks the two agree."""

CODES: dict[str, str] = {
    # input files (exit 2)
    "KKC100": "file cannot be read (missing, not a regular file)",
    "KKC101": "YAML syntax error",
    "KKC102": "duplicate key in a mapping",
    "KKC103": "too many YAML aliases or alias expansion too large (alias bomb)",
    "KKC104": "file is not valid UTF-8",
    "KKC105": "file is empty",
    "KKC106": "file is larger than the size limit",
    "KKC107": "document is not a mapping",
    "KKC110": "unknown key (with a did-you-mean suggestion)",
    "KKC111": "wrong type",
    "KKC112": "value not allowed (range, choice, pattern)",
    "KKC113": "required key missing",
    "KKC114": "name is not a DNS-1123 label",
    "KKC115": "unsupported OpenStack release or Kubernetes version",
    "KKC116": "unsupported schemaVersion",
    "KKC120": "an enabled service needs another service that is not enabled",
    "KKC121": "plain-text secret value where a secret reference is expected",
    "KKC122": "invalid site name or path (not a DNS-1123 label, or leaves sites/)",
    "KKC123": "site not found",
    "KKC124": "overlay not found",
    "KKC125": "site name does not match its directory",
    "KKC126": "unsupported configuration (a feature kkc does not implement yet)",
    "KKC127": "overlay component invalid (not a Component, resources in the every-stage "
    "component, or a directory that is not a stage)",
    "KKC128": "two overlays set one value differently, in their defaults or by their "
    "components' patches of one field of one object (warning; the later listed wins)",
    "KKC129": "overlay changes nothing for the site (warning, `kkc lint`)",
    "KKC145": "tls is enabled but ingress is not (TLS is terminated by the Ingress objects)",
    "KKC146": "endpoints.scheme disagrees with tls (tls is enabled and the scheme is http)",
    "KKC130": "unknown config section or option (with did-you-mean)",
    "KKC131": "config value has the wrong type",
    "KKC132": "config value out of range or not an allowed choice",
    "KKC133": "deprecated config option (warning; names its replacement)",
    "KKC134": "secret config option set in plain text",
    "KKC135": "config override file is not a valid INI file",
    "KKC136": "unknown config override file, service or component (with did-you-mean)",
    "KKC137": "secret reference in a config override that no secret drop-in carries alone "
    "(another file, a component sharing its drop-in), or a plain value over a secret reference",
    "KKC140": "site patch file is neither a strategic-merge nor a JSON 6902 patch",
    "KKC141": "site patch target is not in the site's output (with did-you-mean)",
    "KKC142": "site patch puts literal secret data into the output",
    "KKC143": "JSON 6902 operation of a site patch does not apply to its target",
    "KKC147": "kkc init: the site already exists (kkc init never overwrites a site)",
    "KKC148": "kkc init: unknown release, GitOps engine, service or --from site (lists the "
    "valid ones, with did-you-mean)",
    "KKC149": "kkc init: no release given and sites/defaults.yaml pins none (the release is "
    "a decision, never a default)",
    "KKC150": "empty secrets section or null secrets.backend (would switch the site to "
    "backend existing and remove its ExternalSecrets)",
    "KKC151": "secrets.keyPrefix is empty with ExternalSecrets: sites sharing the store would "
    "share passwords (warning)",
    "KKC152": "two sites read the same remote key of the secret store for a password "
    "(`kkc lint --all`, `kkc check --all`)",
    "KKC153": "kkc secrets --check: the file is neither ExternalSecrets JSON nor a list of "
    "remote keys",
    "KKC154": "kkc rotate or secrets.rotation names no password of the site (with "
    "did-you-mean), or a Secret that a kkc Job creates and rotates itself",
    "KKC155": "Nova's and Cinder's Ceph users and libvirt secret UUIDs disagree "
    "(one UUID per Ceph user)",
    # day-two safety, compared with the committed output (exit 2; warnings with
    # `kkc build --allow-destructive`)
    "KKC156": "change to a field the API server refuses to change in place (PVC spec other "
    "than a storage increase, StatefulSet volumeClaimTemplates/selector/serviceName, "
    "workload selector, Service clusterIP); names the way out",
    "KKC157": "ExternalSecret that owns its Secret (creationPolicy Owner) removed: the "
    "controller's prune deletes the Secret (`kkc build` refuses it without --allow-destructive)",
    "KKC158": "secret back end of a built site switched (`kkc build` refuses it without "
    "--allow-destructive)",
    "KKC159": "MariaDB provider of a built site switched (kolla <-> mariadb-operator): the new "
    "cluster starts empty (`kkc build` refuses it without --allow-destructive; migrate by "
    "dump and restore)",
    "KKC160": "GitOps setting the chosen engine cannot use (Flux: repoURL scheme, SSH URL "
    "without `secretRef`, name length; warning for Argo CD: `secretRef`, `interval`)",
    "KKC161": "sites of one ApplicationSet disagree in gitops.namespace (the ApplicationSet "
    "creates its Applications in its own namespace)",
    "KKC162": "gitops.repoURL is not the deploy repository's remote (warning, `kkc build "
    "--repo`: the controller would read another repository)",
    # command line (exit 2)
    "KKC163": "--jobs is not a positive number of worker processes",
    "KKC164": "--shard is not I/N with whole numbers 1 <= I <= N",
    "KKC170": "git revision or branch not found (--against, --branch, --since)",
    "KKC171": "CRD directory missing or without CRD files (--crd-dir, KKC_CRD_DIR)",
    "KKC172": "custom resources of a kind no schema covers, embedded or in --crd-dir "
    "(`kkc check`; --no-require-crds skips them with a warning)",
    "KKC186": "OVN database replicas not 1, 3 or 5 (a RAFT cluster needs an odd number of members)",
    "KKC187": "MariaDB replicas not odd and at least 3 with provider mariadb-operator (a "
    "Galera cluster needs a majority of an odd number of members)",
    "KKC188": "RabbitMQ replicas not odd with provider rabbitmq-operator (quorum queues "
    "need a majority of an odd number of members)",
    "KKC189": "kkc restore --plan refused: provider kolla (no Restore resource; the documented "
    "steps instead), a --from Backup the site's output has not, or an --at that is not RFC 3339",
    # kkc upgrade (exit 2)
    "KKC190": "upgrade path refused (kkc upgrade, or a build or check whose committed output "
    "is on another release): unsupported target release, the same release, a downgrade, or "
    "a skip that is not SLURP -> SLURP (names the release to go through)",
    "KKC191": "config override uses an option the target release removed (names the "
    "replacement when there is one)",
    "KKC192": "config override uses an option the target release renamed (warning; names "
    "the new name)",
    "KKC193": "config override uses an option the target release deprecated for removal (warning)",
    "KKC195": "upgrade moves RabbitMQ outside the allowed ladder (one minor version at a "
    "time, or a jump kolla-ansible lists)",
    # kkc set (exit 2)
    "KKC196": "kkc set: a path the schema does not know (with did-you-mean), a mapping or "
    "list where a value is expected, or an assignment that is not dotted.path=value",
    "KKC197": "kkc set: a plain-text value for a key that looks like a secret (refused, "
    "value not shown; names the secret-reference form)",
    "KKC198": "site.yaml cannot be edited in place (`kkc set`, `kkc upgrade`): the key's "
    "mapping is in flow style, or a scalar stands where the path needs a mapping",
    "KKC199": "kkc set: openstack.release changes only through kkc upgrade (which checks the path)",
    # rendered output (exit 3)
    "KKC300": "kustomize build failed",
    "KKC301": "object fails the Kubernetes schema of the site's version",
    "KKC302": "custom resource fails its CRD schema",
    "KKC303": "no schema known for the object's apiVersion and kind (custom resources: "
    "with --crd-dir, neither embedded nor in it)",
    "KKC304": "object lacks the metadata kkc needs (kind, apiVersion, name)",
    "KKC305": "Secret with literal data in the output",
    "KKC306": "container image without a tag or digest",
    "KKC307": "dangling reference: a ConfigMap, Secret, Service, ServiceAccount or "
    "PersistentVolumeClaim neither in the output nor provided outside it, or a key or port "
    "of one that it does not have",
    "KKC308": "image is not a Kolla image of the site's release (registry, name, tag), or a "
    "mariadb-operator MariaDB's image is not an official MariaDB image with a version tag",
    "KKC309": "config.json would be rejected by Kolla's set_configs.py of the release",
    "KKC310": "rendered INI file uses an option the release's catalog does not have",
    # committed output (`kkc check`, exit 1)
    "KKC327": "committed output file stale, missing or obsolete (recompiling changes it)",
    "KKC328": "committed output file edited by hand (differs from its digest in .kkc-files)",
    "KKC329": "file in deploy/<site>/ that kkc does not own (not in .kkc-files)",
    "KKC330": "site not built (no deploy/<site>/.kkc-files), or output of a site that no "
    "longer exists",
    "KKC331": "a kustomization entry leaves the repository (a deploy repository cannot hold it)",
    "KKC332": "output refers to a directory outside base/ and overlays/ (not copied into a "
    "deploy repository)",
}
