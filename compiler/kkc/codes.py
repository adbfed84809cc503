"""Stable problem codes. Each appears in the README; tests check the two agree."""

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
    # rendered output (exit 3)
    "KKC300": "kustomize build failed",
    "KKC301": "object fails the Kubernetes schema of the site's version",
    "KKC302": "custom resource fails its CRD schema",
    "KKC303": "no schema known for the object's apiVersion and kind",
    "KKC304": "object lacks the metadata kkc needs (kind, apiVersion, name)",
    "KKC305": "Secret with literal data in the output",
    "KKC306": "container image without a tag or digest",
    "KKC307": "dangling reference: a ConfigMap, Secret, Service, ServiceAccount or "
    "PersistentVolumeClaim neither in the output nor provided outside it",
    "KKC308": "image is not a Kolla image of the site's release",
    "KKC309": "config.json would be rejected by Kolla's set_configs.py of the release",
}
