"""OpenStack option catalogs (kkc.catalog): the committed data of every release, and the
checker's findings with their exact messages. Offline: reads only the package data."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from kkc import catalog
from kkc.catalog import CONF_FILES, check_ini_text, check_options, load
from kkc.codes import CODES
from kkc.releases import RELEASES

PROJECT = Path(__file__).resolve().parent.parent
DATA = PROJECT / "compiler" / "kkc" / "data" / "catalogs"
ALL = sorted(RELEASES)
# the major version of each project per release (2025.1 Epoxy, 2026.1 Gazpacho, 2026.2 Hibiscus)
MAJORS = {
    "2025.1": {"keystone": 27, "nova": 31, "neutron": 26, "glance": 30,
               "openstack-placement": 13, "cinder": 26, "openstack-heat": 24},
    "2026.1": {"keystone": 29, "nova": 33, "neutron": 28, "glance": 32,
               "openstack-placement": 15, "cinder": 28, "openstack-heat": 26},
    "2026.2": {"keystone": 30, "nova": 34, "neutron": 29, "glance": 33,
               "openstack-placement": 16, "cinder": 29, "openstack-heat": 27},
}  # fmt: skip


def messages(findings: list[catalog.Finding]) -> list[str]:
    return [f"{f.code} {f.severity}: {f.message}" for f in findings]


def check(release: str, conf_file: str, *entries: tuple[str, str, str], **kw) -> list[str]:
    located = [(s, o, v, n) for n, (s, o, v) in enumerate(entries, start=1)]
    return messages(check_options(load(release, conf_file), located, **kw))


# --- the data -------------------------------------------------------------------------


def test_every_release_has_a_compact_deterministic_catalog_file() -> None:
    assert sorted(p.name for p in DATA.glob("*.json.gz")) == [f"{r}.json.gz" for r in ALL]
    total = 0
    for release in ALL:
        raw = (DATA / f"{release}.json.gz").read_bytes()
        total += len(raw)
        assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
        text = gzip.decompress(raw).decode()
        data = json.loads(text)
        assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert data["release"] == release
        assert sorted(data["files"]) == sorted(CONF_FILES)
        majors = {p: int(v.split(".")[0]) for p, v in data["packages"].items()}
        assert majors == MAJORS[release]
    assert total < 3 * 1024 * 1024


@pytest.mark.parametrize("release", ALL)
@pytest.mark.parametrize("conf_file", CONF_FILES)
def test_every_catalog_loads(release: str, conf_file: str) -> None:
    cat = load(release, conf_file)
    assert cat is load(release, conf_file)  # cached
    assert "DEFAULT" in cat.sections()
    assert sum(len(cat.options(s)) for s in cat.sections()) > 50


@pytest.mark.parametrize("release", ALL)
def test_catalogs_have_the_options_the_bases_use(release: str) -> None:
    ks = load(release, "keystone.conf")
    assert ks.lookup("token", "provider").type == "string"
    keys = ks.lookup("fernet_tokens", "max_active_keys")
    assert (keys.type, keys.min) == ("integer", 1)
    assert ks.lookup("database", "connection").secret
    assert not ks.lookup("token", "expiration").secret
    assert ks.lookup("cache", "backend").choices  # oslo.cache's back-ends

    nova = load(release, "nova.conf")
    ratio = nova.lookup("DEFAULT", "cpu_allocation_ratio")
    assert (ratio.type, ratio.min) == ("float", 0.0)
    assert nova.lookup("api_database", "connection").secret
    assert nova.lookup("pci", "alias").multi
    assert nova.lookup("DEFAULT", "host").type == "hostdomain"

    ml2 = load(release, "ml2_conf.ini")
    assert ml2.lookup("ml2", "mechanism_drivers").type == "list"
    assert ml2.lookup("ovn", "ovn_nb_connection") is not None
    # upstream keeps [ml2] out of neutron.conf; neutron-server reads both files
    assert load(release, "neutron.conf").lookup("ml2", "mechanism_drivers") is None
    assert load(release, "neutron.conf").lookup("DEFAULT", "core_plugin") is not None
    meta = load(release, "neutron_ovn_metadata_agent.ini")
    assert meta.lookup("ovn", "ovn_sb_connection") is not None
    assert meta.lookup("DEFAULT", "metadata_proxy_shared_secret").secret
    port = meta.lookup("DEFAULT", "nova_metadata_port")
    assert (port.type, port.min, port.max) == ("port", 0, 65535)

    assert load(release, "cinder.conf").lookup("DEFAULT", "enabled_backends").type == "list"
    assert load(release, "cinder.conf").lookup("backend_defaults", "rbd_pool") is not None
    assert load(release, "glance-api.conf").lookup("glance_store", "stores") is not None
    assert load(release, "placement.conf").lookup("placement_database", "connection").secret
    assert load(release, "heat.conf").lookup("oslo_concurrency", "lock_path") is not None


def test_old_names_are_known_as_deprecated_with_their_replacement() -> None:
    old = load("2025.1", "keystone.conf").lookup("DEFAULT", "logdir")
    assert (old.deprecated, old.replacement) == (True, ("DEFAULT", "log_dir"))
    assert load("2025.1", "keystone.conf").lookup("DEFAULT", "log_dir").deprecated is False


def test_section_names_match_like_oslo_config() -> None:
    cat = load("2025.1", "nova.conf")
    assert cat.lookup("Database", "connection") is not None  # groups ignore case
    assert not cat.has_section("default")  # ... except DEFAULT


def test_unknown_release_or_file() -> None:
    with pytest.raises(KeyError, match="2024.1"):
        load("2024.1", "nova.conf")
    with pytest.raises(KeyError, match="no option catalog for 'nova-api.conf'"):
        load("2025.1", "nova-api.conf")


# --- the checks, one broken case each ---------------------------------------------------


def test_unknown_option_and_section_with_suggestions() -> None:
    assert check("2025.1", "keystone.conf", ("token", "provder", "fernet")) == [
        'KKC130 error: [token] provder: unknown option; did you mean "provider"?'
    ]
    assert check("2025.1", "keystone.conf", ("tokn", "provider", "fernet"), ("tokn", "x", "y")) == [
        "KKC130 error: [tokn]: unknown section; did you mean [token]?"
    ]
    assert check("2025.1", "keystone.conf", ("zzzz", "a", "b")) == [
        "KKC130 error: [zzzz]: unknown section"
    ]
    # oslo.config reads the dest, with underscores
    assert check("2025.1", "nova.conf", ("DEFAULT", "log-dir", "/var/log")) == [
        'KKC130 error: [DEFAULT] log-dir: unknown option; did you mean "log_dir"?'
    ]


def test_wrong_type() -> None:
    assert check(
        "2025.1",
        "nova.conf",
        ("DEFAULT", "cpu_allocation_ratio", "high"),
        ("DEFAULT", "debug", "maybe"),
        ("DEFAULT", "osapi_compute_workers", "4.5"),
        ("DEFAULT", "osapi_compute_listen_port", "http"),
        ("libvirt", "live_migration_inbound_addr", "not an address"),
        ("filter_scheduler", "enabled_filters", "x y"),  # a list: any string
    ) == [
        'KKC131 error: [DEFAULT] cpu_allocation_ratio: expected a number, got "high"',
        "KKC131 error: [DEFAULT] debug: expected a boolean (true/false, yes/no, on/off, 1/0),"
        ' got "maybe"',
        'KKC131 error: [DEFAULT] osapi_compute_workers: expected an integer, got "4.5"',
        'KKC131 error: [DEFAULT] osapi_compute_listen_port: expected a port number, got "http"',
        "KKC131 error: [libvirt] live_migration_inbound_addr: expected an IP address or a"
        ' domain name, got "not an address"',
    ]
    assert check(
        "2025.1",
        "keystone.conf",
        ("DEFAULT", "public_endpoint", "identity.example.com"),
        ("DEFAULT", "public_endpoint", "https://identity.example.com:5000"),
        ("domain_config", "additional_whitelisted_options", "a:b,c"),
        ("domain_config", "additional_whitelisted_options", "a:b,c:d"),
    ) == [
        "KKC131 error: [DEFAULT] public_endpoint: expected a URI with a scheme and a host, got"
        ' "identity.example.com"',
        "KKC131 error: [domain_config] additional_whitelisted_options: expected key:value"
        ' pairs separated by commas, got "a:b,c"',
    ]


def test_good_values_and_substitutions_pass() -> None:
    assert (
        check(
            "2025.1",
            "nova.conf",
            ("DEFAULT", "cpu_allocation_ratio", "16.0"),
            ("DEFAULT", "debug", "True"),
            ("DEFAULT", "osapi_compute_workers", ""),  # empty: unset
            ("libvirt", "live_migration_inbound_addr", "10.0.0.5"),
            ("libvirt", "live_migration_inbound_addr", "compute_1.example.com"),
            ("libvirt", "live_migration_inbound_addr", "$my_ip"),  # oslo.config fills it in
            ("vnc", "server_proxyclient_address", "${DEFAULT.my_ip}"),
        )
        == []
    )


def test_out_of_range_and_not_a_choice() -> None:
    assert check(
        "2025.1",
        "keystone.conf",
        ("fernet_tokens", "max_active_keys", "0"),
        ("DEFAULT", "log_rotation_type", "weekly"),
        ("DEFAULT", "log_rotation_type", "SIZE"),  # oslo may ignore case: not reported
    ) == [
        "KKC132 error: [fernet_tokens] max_active_keys: 0 is below the minimum 1",
        'KKC132 error: [DEFAULT] log_rotation_type: "weekly" is not one of the allowed values:'
        " interval, size, none",
    ]
    assert check("2025.1", "nova.conf", ("DEFAULT", "osapi_compute_listen_port", "70000")) == [
        "KKC132 error: [DEFAULT] osapi_compute_listen_port: 70000 is above the maximum 65535"
    ]


def test_deprecated_is_a_warning_naming_the_replacement() -> None:
    assert check("2025.1", "keystone.conf", ("DEFAULT", "logdir", "/var/log/kolla")) == [
        "KKC133 warning: [DEFAULT] logdir: deprecated; use [DEFAULT] log_dir instead"
    ]
    assert check("2026.1", "ml2_conf.ini", ("ml2", "tenant_network_types", "geneve")) == [
        "KKC133 warning: [ml2] tenant_network_types: deprecated; use [ml2]"
        " project_network_types instead"
    ]
    assert check(
        "2025.1", "nova.conf", ("oslo_messaging_rabbit", "heartbeat_in_pthread", "false")
    ) == ["KKC133 warning: [oslo_messaging_rabbit] heartbeat_in_pthread: deprecated for removal"]


def test_secret_in_plain_text_is_an_error_without_echoing_the_value() -> None:
    found = check(
        "2025.1",
        "nova.conf",
        ("api_database", "connection", "mysql+pymysql://nova:hunter2@db/nova_api"),
        ("database", "connection", ""),  # empty: nothing disclosed
    )
    assert found == [
        "KKC134 error: [api_database] connection: secret option set in plain text (the value"
        " belongs in the service's secret drop-in)"
    ]
    assert "hunter2" not in "".join(found)
    # a malformed secret value is reported without the value as well
    bad = check("2025.1", "nova.conf", ("placement", "password", "x"))
    assert bad[0].startswith("KKC134 error: [placement] password: secret option")


def test_multi_valued_option_may_repeat() -> None:
    assert (
        check(
            "2025.1",
            "nova.conf",
            ("pci", "alias", '{"name": "a1", "product_id": "154d", "vendor_id": "8086"}'),
            ("pci", "alias", '{"name": "a2", "product_id": "1572", "vendor_id": "8086"}'),
            ("pci", "device_spec", '{"vendor_id": "8086"}'),
            ("pci", "device_spec", '{"vendor_id": "10de"}'),
        )
        == []
    )


# --- sections named by the deployer -----------------------------------------------------


def test_section_aliases_apply_a_group_to_a_dynamic_section() -> None:
    entries = (
        ("DEFAULT", "enabled_backends", "rbd-1"),
        ("rbd-1", "volume_driver", "cinder.volume.drivers.rbd.RBDDriver"),
        ("rbd-1", "rbd_pool", "volumes"),
        ("rbd-1", "rbd_pol", "volumes"),
    )
    assert check(
        "2025.1", "cinder.conf", *entries, section_aliases={"rbd-1": "backend_defaults"}
    ) == ['KKC130 error: [rbd-1] rbd_pol: unknown option; did you mean "rbd_pool"?']
    assert check("2025.1", "cinder.conf", *entries) == ["KKC130 error: [rbd-1]: unknown section"]
    with pytest.raises(ValueError, match="has no such group"):
        check("2025.1", "cinder.conf", *entries, section_aliases={"rbd-1": "no_such_group"})


def test_auth_plugin_options_in_keystoneauth_sections() -> None:
    assert check(
        "2025.1",
        "cinder.conf",
        ("nova", "auth_type", "password"),
        ("nova", "auth_url", "http://keystone:5000"),
        ("nova", "username", "cinder"),
        ("nova", "user_domain_id", "default"),
        ("nova", "usernam", "cinder"),
        ("keystone_authtoken", "www_authenticate_uri", "https://identity.example.com"),
        ("keystone_authtoken", "project_name", "service"),  # any plugin: no auth_type here
    ) == ['KKC130 error: [nova] usernam: unknown option; did you mean "username"?']
    assert check("2025.1", "cinder.conf", ("nova", "auth_type", "pasword")) == [
        'KKC132 error: [nova] auth_type: unknown auth plugin "pasword"; did you mean "password"?'
    ]
    # a section named by auth_section takes the plugin's options
    assert check(
        "2025.1",
        "nova.conf",
        ("keystone_authtoken", "auth_section", "ks_auth"),
        ("ks_auth", "auth_type", "password"),
        ("ks_auth", "username", "nova"),
        ("ks_auth", "rbd_pool", "x"),
    ) == ["KKC130 error: [ks_auth] rbd_pool: unknown option"]


def test_oslo_dynamic_groups_privsep_and_config_sources() -> None:
    assert check(
        "2025.1",
        "cinder.conf",
        ("privsep_entrypoint", "helper_command", "sudo cinder-rootwrap ..."),
        ("privsep_osbrick", "user", "root"),
        ("DEFAULT", "config_source", "remote"),
        ("remote", "driver", "remote_file"),
        ("remote", "uri", "https://config.example.com/cinder.conf"),
        ("remote", "bogus", "x"),
        # the generator's sample group is not a section by itself
        ("sample_remote_file_source", "uri", "https://x.example.com"),
    ) == [
        "KKC130 error: [remote] bogus: unknown option",
        "KKC130 error: [sample_remote_file_source]: unknown section",
    ]


# --- rendered INI -----------------------------------------------------------------------

NOVA_INI = """\
# Generated by kkc; do not edit.

[DEFAULT]
debug = false
my_ip: 10.0.0.5
host = "compute-1.example.com"
enabled_apis = osapi_compute,
  metadata

[pci]
alias = {"name": "a1"}
alias = {"name": "a2"}

; a comment
[database]
max_retries = -1
connection_recyle_time = 10

[oslo_messaging_rabbit]
heartbeat_in_pthread = false
"""


def test_check_ini_text_reads_ini_like_oslo_config() -> None:
    found = check_ini_text("2025.1", "nova.conf", NOVA_INI)
    assert [(f.code, f.severity, f.location, f.message) for f in found] == [
        (
            "KKC310",
            "error",
            17,
            "[database] connection_recyle_time: unknown option; did you mean"
            ' "connection_recycle_time"? (nova.conf of 2025.1)',
        ),
        (
            "KKC133",
            "warning",
            20,
            "[oslo_messaging_rabbit] heartbeat_in_pthread: deprecated for removal",
        ),
    ]
    assert str(found[1]) == (
        "KKC133 [oslo_messaging_rabbit] heartbeat_in_pthread: deprecated for removal"
    )
    entries = catalog.parse_ini(NOVA_INI)
    assert ("DEFAULT", "host", "compute-1.example.com", 6) in entries
    assert ("DEFAULT", "enabled_apis", "osapi_compute,\nmetadata", 7) in entries
    assert ("DEFAULT", "my_ip", "10.0.0.5", 5) in entries


def test_check_ini_text_syntax_error() -> None:
    found = check_ini_text("2025.1", "nova.conf", "[DEFAULT]\ndebug\n")
    assert messages(found) == [
        "KKC310 error: not an INI file: line 2: no '=' or ':' in an assignment"
    ]
    assert found[0].location == 2
    assert messages(check_ini_text("2025.1", "nova.conf", "debug = true\n")) == [
        "KKC310 error: not an INI file: line 1: assignment before the first section"
    ]


def test_suggestions_ignore_case() -> None:
    """oslo.config names are case-sensitive; the suggestion for a wrong case is the
    right name, not a look-alike."""
    text = "[Default]\ndebug = true\n[DEFAULT]\nCPU_allocation_ratio = 2.0\n"
    assert messages(check_ini_text("2025.1", "nova.conf", text)) == [
        "KKC310 error: [Default]: unknown section; did you mean [DEFAULT]? (nova.conf of 2025.1)",
        "KKC310 error: [DEFAULT] CPU_allocation_ratio: unknown option; did you mean "
        '"cpu_allocation_ratio"? (nova.conf of 2025.1)',
    ]


def test_check_ini_text_knows_cinder_and_glance_back_ends() -> None:
    cinder = """\
[DEFAULT]
enabled_backends = rbd-1,lvm-1

[rbd-1]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
backend_host = rbd:volumes
rbd_pool = volumes

[lvm-1]
volume_group = cinder-volumes
target_helper = lioadm

[privsep_entrypoint]
helper_command = sudo cinder-rootwrap /etc/cinder/rootwrap.conf privsep-helper
"""
    for release in ALL:
        assert check_ini_text(release, "cinder.conf", cinder) == []
    glance = """\
[DEFAULT]
enabled_backends = fast:rbd, local:file

[fast]
rbd_store_pool = images

[local]
filesystem_store_datadir = /var/lib/glance/images
rbd_store_pool = images

[os_glance_staging_store]
filesystem_store_datadir = /var/lib/glance/staging
"""
    # a file store takes the file store's options only
    assert messages(check_ini_text("2025.1", "glance-api.conf", glance)) == [
        "KKC310 error: [local] rbd_store_pool: unknown option (glance-api.conf of 2025.1)"
    ]


def _site_release(site: str) -> str:
    text = (PROJECT / "sites" / site / "site.yaml").read_text(encoding="utf-8")
    found = re.search(r'^\s*release:\s*"?([0-9.]+)"?', text, re.MULTILINE)
    assert found, f"sites/{site}/site.yaml has no openstack.release"
    return found.group(1)


def test_rendered_ini_files_of_the_golden_trees_use_only_current_options() -> None:
    checked = 0
    for site_dir in sorted((PROJECT / "tests" / "golden").iterdir()):
        if not (PROJECT / "sites" / site_dir.name / "site.yaml").exists():
            continue
        release = _site_release(site_dir.name)
        for path in sorted(site_dir.rglob("*")):
            if path.name in CONF_FILES and path.is_file():
                findings = [  # deprecations too: the bases use the current names
                    f"{path.relative_to(PROJECT)}:{f.location}: {f}"
                    for f in check_ini_text(release, path.name, path.read_text(encoding="utf-8"))
                ]
                assert findings == []
                checked += 1
    assert checked > 0


def test_codes_are_registered() -> None:
    for code in ("KKC130", "KKC131", "KKC132", "KKC133", "KKC134", "KKC310"):
        assert code in CODES
