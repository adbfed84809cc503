"""OpenStack config overrides: every source and precedence rule, kolla-ansible's merge
semantics, every catalog check with its exact message at the override's location, and
nothing written on bad input."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from helpers import commit, doc, tree, write
from kkc import catalog, lint, report
from kkc.outputs import compute
from kkc.site import load_site
from test_input_errors import assert_problems, run_build

SITE = "sites/site-a/site.yaml"
CONF = "sites/site-a/config"
COMPUTE = "stages/compute/config/nova-compute-kolla/nova.conf"
API = "stages/services/config/nova-api-kolla/nova.conf"
DB_SYNC = "stages/db/config/nova-db-sync-kolla/nova.conf"
DB_FINISH = "stages/finish/config/nova-online-migrations-kolla/nova.conf"
KEYSTONE = "stages/identity/config/keystone-api-kolla/keystone.conf"
ML2 = "stages/services/config/neutron-server-kolla/ml2_conf.ini"
ML2_DB_SYNC = "stages/db/config/neutron-db-sync-kolla/ml2_conf.ini"
ML2_DB_CONTRACT = "stages/finish/config/neutron-db-contract-kolla/ml2_conf.ini"
METADATA = "stages/compute/config/neutron-ovn-metadata-agent-kolla/neutron_ovn_metadata_agent.ini"
LAYOUT = (
    "use config/global.conf, config/<service>.conf, config/<service>/<component>.conf, "
    "config/<service>/<file> or config/<service>/<component>/<file>"
)


def configure(repo: Path, files: dict[str, str], site_yaml: str = "", fleet: str = "") -> None:
    """Replace site-a's config/ by ``files``; add ``site_yaml`` (indented two spaces: more
    files under the site's config:) and ``fleet`` (appended to sites/defaults.yaml)."""
    shutil.rmtree(repo / CONF, ignore_errors=True)
    for rel, text in files.items():
        write(repo, f"{CONF}/{rel}", text)
    if site_yaml:
        path = repo / SITE
        text = path.read_text()
        path.write_text(
            text.replace("  nova/nova-scheduler:\n", site_yaml + "  nova/nova-scheduler:\n")
        )
    if fleet:
        path = repo / "sites/defaults.yaml"
        path.write_text(path.read_text() + fleet)
    commit(repo, ["sites"])


def values(files: dict[str, bytes], rel: str, section: str, option: str) -> list[str]:
    return [
        v for s, o, v, _ in catalog.parse_ini(files[rel].decode()) if (s, o) == (section, option)
    ]


def line_of(repo: Path, rel: str, needle: str) -> int:
    lines = (repo / rel).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def where(repo: Path, rel: str, needle: str) -> str:
    """path:line:col of the first occurrence of ``needle``."""
    line = line_of(repo, rel, needle)
    col = (repo / rel).read_text().splitlines()[line - 1].index(needle) + 1
    return f"{rel}:{line}:{col}"


# --- sources and precedence -----------------------------------------------------------


def test_every_source_and_its_precedence(site_repo: Path) -> None:
    configure(
        site_repo,
        {
            "global.conf": "[DEFAULT]\ndebug = true\n",
            "nova.conf": "[DEFAULT]\ncpu_allocation_ratio = 3.0\n",
            "nova/nova-compute.conf": "[DEFAULT]\ncpu_allocation_ratio = 8.0\n",
        },
        site_yaml=(
            "  global:\n    DEFAULT: {instance_format: '[i %(uuid)s]'}\n"
            "  nova:\n    DEFAULT: {cpu_allocation_ratio: 2.0, ram_allocation_ratio: 1.0}\n"
            "  nova/nova-compute:\n    DEFAULT: {debug: false, reserved_host_memory_mb: 4096}\n"
        ),
        fleet="config:\n  nova:\n    DEFAULT: {cpu_allocation_ratio: 1.5, disk_allocation_ratio: 1.1}\n",
    )
    files = tree(site_repo, "site-a")
    # component file > service file > site YAML > fleet YAML > kkc's value
    assert values(files, COMPUTE, "DEFAULT", "cpu_allocation_ratio") == ["8.0"]
    assert values(files, API, "DEFAULT", "cpu_allocation_ratio") == ["3.0"]
    # bring-up Jobs get the service's overrides, not a component's
    assert values(files, DB_SYNC, "DEFAULT", "cpu_allocation_ratio") == ["3.0"]
    assert values(files, DB_SYNC, "DEFAULT", "reserved_host_memory_mb") == []
    assert values(files, DB_FINISH, "DEFAULT", "cpu_allocation_ratio") == ["3.0"]
    assert values(files, DB_FINISH, "DEFAULT", "reserved_host_memory_mb") == []
    # the fleet's other keys survive the site's YAML (layered like every key)
    assert values(files, API, "DEFAULT", "disk_allocation_ratio") == ["1.1"]
    assert values(files, API, "DEFAULT", "ram_allocation_ratio") == ["1.0"]
    assert values(files, COMPUTE, "DEFAULT", "reserved_host_memory_mb") == ["4096"]
    # files win over YAML at any level: global.conf beats YAML nova/nova-compute
    assert values(files, COMPUTE, "DEFAULT", "debug") == ["true"]
    # global applies to every service, replacing kkc's own value in place
    assert values(files, KEYSTONE, "DEFAULT", "debug") == ["true"]
    assert values(files, KEYSTONE, "DEFAULT", "instance_format") == ["[i %(uuid)s]"]
    keystone = catalog.parse_ini(files[KEYSTONE].decode())
    assert [o for s, o, _, _ in keystone if s == "DEFAULT"][:2] == ["use_stderr", "debug"]

    site = load_site(site_repo, "site-a")
    value, origins = site.explain("config.nova/nova-compute.DEFAULT.cpu_allocation_ratio")
    assert value == "8.0"
    assert [str(o) for o in origins] == [
        f"{CONF}/nova/nova-compute.conf:2:1 (set by layer config file)",
        f"{CONF}/nova.conf:2:1 (overridden; was set by layer config file)",
        f"{where(site_repo, SITE, 'cpu_allocation_ratio: 2.0')} (overridden; was set by layer site)",
    ]
    value, origins = site.explain("config.nova.DEFAULT.disk_allocation_ratio")
    assert (value, [str(o) for o in origins]) == (
        "1.1",
        [f"{where(site_repo, 'sites/defaults.yaml', 'disk_')} (set by layer fleet defaults)"],
    )


def test_a_later_layer_wins_over_a_more_specific_target(site_repo: Path) -> None:
    """Layers first (fleet < overlays < site), then global < service < component within a
    layer: the site's service-wide value beats a fleet default for one component."""
    configure(
        site_repo,
        {},
        site_yaml="  nova:\n    libvirt: {cpu_mode: host-model}\n",
        fleet="config:\n  nova/nova-compute:\n    libvirt: {cpu_mode: host-passthrough}\n",
    )
    files = tree(site_repo, "site-a")
    assert values(files, COMPUTE, "libvirt", "cpu_mode") == ["host-model"]
    value, origins = load_site(site_repo, "site-a").explain(
        "config.nova/nova-compute.libvirt.cpu_mode"
    )
    assert (value, [str(o) for o in origins]) == (
        "host-model",
        [
            f"{where(site_repo, SITE, 'cpu_mode: host-model')} (set by layer site)",
            f"{where(site_repo, 'sites/defaults.yaml', 'cpu_mode: host-passthrough')} "
            "(overridden; was set by layer fleet defaults)",
        ],
    )


def test_explain_on_the_command_line(site_repo: Path, kkc) -> None:
    result = kkc(
        site_repo, "show", "site-a", "--explain", "config.nova.DEFAULT.cpu_allocation_ratio"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        'config.nova.DEFAULT.cpu_allocation_ratio: "4.0"',
        f"  {CONF}/nova.conf:3:1 (set by layer config file)",
    ]


def test_explain_an_option_no_override_sets(site_repo: Path, kkc) -> None:
    """kkc's own value is traced to its line in the rendered file (as written, after the
    other overrides); an option nothing sets shows the release's oslo.config default."""
    result = kkc(
        site_repo, "show", "site-a", "--explain", "config.nova/nova-compute.libvirt.virt_type"
    )
    assert result.exit_code == 0, result.output
    rendered = f"deploy/site-a/{COMPUTE}"
    line = tree(site_repo, "site-a")[COMPUTE].decode().splitlines().index("virt_type = kvm") + 1
    assert result.stdout.splitlines() == [
        'config.nova/nova-compute.libvirt.virt_type: "kvm"',
        f"  {rendered}:{line}:1 (set by layer kkc (rendered by the base))",
    ]
    result = kkc(site_repo, "show", "site-a", "--explain", "config.keystone.DEFAULT.max_param_size")
    assert result.stdout.splitlines() == [
        "config.keystone.DEFAULT.max_param_size: 64",
        "  not set: the oslo.config default of keystone.conf in 2025.1",
    ]
    result = kkc(site_repo, "show", "site-a", "--explain", "config.keystone.DEFAULT.nosuch")
    assert result.exit_code == 2
    assert "config.keystone.DEFAULT.nosuch: no such key" in result.stderr


# --- kolla-ansible's merge semantics ---------------------------------------------------


def test_multi_valued_keys_lists_and_new_sections(site_repo: Path) -> None:
    configure(
        site_repo,
        {
            # repeated in one file: every value kept; replaces the YAML's values as a whole
            "nova.conf": '[pci]\nalias = {"name": "a"}\nalias = {"name": "b"}\n',
            "nova/nova-compute.conf": "[libvirt]\ncpu_mode = host-model\n",
        },
        site_yaml=(
            "  nova/nova-api:\n"
            '    pci: {alias: [\'{"name": "y"}\']}\n'
            "    oslo_policy: {policy_dirs: [policy.d, extra.d]}\n"
        ),
    )
    files = tree(site_repo, "site-a")
    # a multi-valued option keeps all values of the winning source
    assert values(files, API, "pci", "alias") == ['{"name": "a"}', '{"name": "b"}']
    assert values(files, COMPUTE, "pci", "alias") == ['{"name": "a"}', '{"name": "b"}']
    # YAML list: one line per value for a multi-valued option
    assert values(files, API, "oslo_policy", "policy_dirs") == ["policy.d", "extra.d"]
    # a section only in an override is appended at the end
    sections = [s for s, _, _, _ in catalog.parse_ini(files[COMPUTE].decode())]
    assert sections[-1] == "pci" and "libvirt" in sections[:-1]
    assert values(files, COMPUTE, "libvirt", "cpu_mode") == ["host-model"]


def test_yaml_list_for_a_list_option_is_comma_joined(site_repo: Path) -> None:
    configure(
        site_repo,
        {},
        site_yaml="  nova/nova-conductor:\n    DEFAULT: {enabled_apis: [osapi_compute, metadata]}\n",
    )
    files = tree(site_repo, "site-a")
    conductor = "stages/services/config/nova-conductor-kolla/nova.conf"
    assert values(files, conductor, "DEFAULT", "enabled_apis") == ["osapi_compute,metadata"]


def test_example_site_overrides_are_rendered(example_trees: Mapping) -> None:
    files = example_trees["site-a"]
    assert values(files, COMPUTE, "libvirt", "cpu_mode") == ["host-model"]
    assert values(files, API, "libvirt", "cpu_mode") == []
    scheduler = "stages/services/config/nova-scheduler-kolla/nova.conf"
    assert values(files, scheduler, "filter_scheduler", "enabled_filters") == [
        "ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,"
        "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,"
        "AggregateInstanceExtraSpecsFilter"
    ]


# --- catalog checks, at the override's location; nothing written -----------------------


def test_catalog_errors_in_a_file(site_repo: Path, kkc) -> None:
    configure(
        site_repo,
        {
            "nova.conf": (
                "[DEFAULT]\n"
                "cpu_alocation_ratio = 4.0\n"
                "ram_allocation_ratio = -1\n"
                "[libvirt]\n"
                "virt_type = xen2\n"
                "[DEFAULT]\n"
                "max_concurrent_builds = abc\n"
                "[neutron]\n"
                "password = s3cret\n"
                "[libvrt]\n"
                "cpu_mode = host-model\n"
            )
        },
    )
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        f'{CONF}/nova.conf:2:1: KKC130 [DEFAULT] cpu_alocation_ratio: unknown option; did you mean "cpu_allocation_ratio"? (nova.conf of 2025.1)',
        f"{CONF}/nova.conf:3:1: KKC132 [DEFAULT] ram_allocation_ratio: -1 is below the minimum 0",
        f'{CONF}/nova.conf:5:1: KKC132 [libvirt] virt_type: "xen2" is not one of the allowed values: kvm, lxc, qemu, parallels',
        f'{CONF}/nova.conf:7:1: KKC131 [DEFAULT] max_concurrent_builds: expected an integer, got "abc"',
        f"{CONF}/nova.conf:9:1: KKC134 [neutron] password: secret option set in plain text; reference a secret of the store instead, in YAML: config: {{nova: {{neutron: {{password: {{secret: <name>}}}}}}}}",
        f"{CONF}/nova.conf:10:1: KKC130 [libvrt]: unknown section; did you mean [libvirt]? (nova.conf of 2025.1)",
    )
    assert "s3cret" not in result.output


def test_unknown_section_is_reported_at_its_header(site_repo: Path, kkc) -> None:
    """Once per section, at the [section] line (of the occurrence its first option is
    in), in a file, in the global file and in YAML (at the section's key)."""
    configure(
        site_repo,
        {
            "nova.conf": (
                "[DEFAULT]\n"  # 1
                "debug = true\n"  # 2
                "\n"  # 3
                "# a typo\n"  # 4
                "[libvrt]\n"  # 5
                "\n"  # 6
                "cpu_mode = host-model\n"  # 7
                "virt_type = kvm\n"  # 8
                "[DEFAULT]\n"  # 9
                "[zzz_nothing]\n"  # 10
                "[libvrt]\n"  # 11
                "cpu_models = x\n"  # 12
            ),
            "global.conf": "[DEFAULT]\ndebug = true\n[nosuchsection]\na = 1\nb = 2\n",
        },
        site_yaml="  glance:\n    glance_stor:\n      default_store: file\n",
    )
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        f"{CONF}/global.conf:3:1: KKC130 [nosuchsection]: unknown section (in every service)",
        f"{CONF}/nova.conf:5:1: KKC130 [libvrt]: unknown section; did you mean [libvirt]? "
        "(nova.conf of 2025.1)",
        f"{where(site_repo, SITE, 'glance_stor:')}: KKC130 [glance_stor]: unknown section; "
        "did you mean [glance_store]? (glance-api.conf of 2025.1)",
    )


def test_catalog_errors_in_yaml_never_echo_secrets(site_repo: Path, kkc) -> None:
    configure(
        site_repo,
        {},
        site_yaml=(
            "  nova:\n"
            "    database: {connection: 'mysql+pymysql://nova:hunter2@db/nova'}\n"
            "    DEFAULT: {cpu_allocation_ratio: lots}\n"
        ),
    )
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        f"{where(site_repo, SITE, 'connection')}: KKC134 [database] connection: secret option set in plain text; reference a secret of the store instead, in YAML: config: {{nova: {{database: {{connection: {{secret: <name>}}}}}}}}",
        f'{where(site_repo, SITE, "cpu_allocation_ratio: lots")}: KKC131 [DEFAULT] cpu_allocation_ratio: expected a number, got "lots"',
    )
    assert "hunter2" not in result.output


def test_show_of_a_plain_secret_override_hides_its_value(site_repo: Path, kkc) -> None:
    """kkc show of a site that fails its override checks prints the definition, but not
    the value of a secret option set in plain text."""
    configure(
        site_repo,
        {},
        site_yaml="  nova:\n    database: {connection: 'mysql+pymysql://nova:hunter2@db/nova'}\n",
    )
    result = kkc(site_repo, "show", "site-a")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{where(site_repo, SITE, 'connection')}: KKC134 [database] connection: secret option "
        "set in plain text; reference a secret of the store instead, in YAML: config: "
        "{nova: {database: {connection: {secret: <name>}}}}",
    ]
    shown = yaml.safe_load(result.stdout)
    assert shown["config"]["nova"] == {"database": {"connection": "(value not shown)"}}
    assert shown["name"] == "site-a"
    assert "hunter2" not in result.output


def test_global_conf_serves_the_services_that_have_the_option(site_repo: Path) -> None:
    """kolla-ansible's global.conf goes to every service and oslo.config ignores what a
    service does not register: kkc renders a global option only where it exists."""
    configure(
        site_repo, {"global.conf": "[oslo_messaging_rabbit]\nheartbeat_timeout_threshold = 30\n"}
    )
    files = tree(site_repo, "site-a")
    assert values(files, API, "oslo_messaging_rabbit", "heartbeat_timeout_threshold") == ["30"]
    assert values(files, KEYSTONE, "oslo_messaging_rabbit", "heartbeat_timeout_threshold") == ["30"]
    placement = "stages/services/config/placement-api-kolla/placement.conf"
    assert "[oslo_messaging_rabbit]" not in files[placement].decode()


def test_global_option_no_service_has_is_an_error(site_repo: Path, kkc) -> None:
    configure(site_repo, {"global.conf": "[DEFAULT]\ndebgu = true\n"})
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        f'{CONF}/global.conf:2:1: KKC130 [DEFAULT] debgu: unknown option; did you mean "debug"? '
        "(in every service)",
    )


def test_deprecated_option_is_a_warning_naming_its_replacement(site_repo: Path) -> None:
    configure(site_repo, {"nova.conf": "[DEFAULT]\napi_paste_config = /etc/nova/api-paste.ini\n"})
    site = load_site(site_repo, "site-a")
    assert [report.line(w) for w in site.warnings] == [
        f"warning: {CONF}/nova.conf:2:1: KKC133 [DEFAULT] api_paste_config: deprecated; "
        "use [wsgi] api_paste_config instead"
    ]


def test_deprecated_warning_printed_once_by_render(site_repo: Path, kkc) -> None:
    configure(site_repo, {"nova.conf": "[DEFAULT]\napi_paste_config = /etc/nova/api-paste.ini\n"})
    result = kkc(site_repo, "render", "site-a")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "KKC133" in line]
    assert warnings == [
        f"warning: {CONF}/nova.conf:2:1: KKC133 [DEFAULT] api_paste_config: deprecated; "
        "use [wsgi] api_paste_config instead"
    ]


# --- files, services, components -------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "site_yaml", "expected"),
    [
        pytest.param(
            {"nova/nova-compte.conf": "[DEFAULT]\ndebug = true\n"},
            "",
            [
                f'{CONF}/nova/nova-compte.conf:1:1: KKC136 nova has no component "nova-compte"; did you mean "nova-compute"?'
            ],
            id="component-did-you-mean",
        ),
        pytest.param(
            {"nvoa.conf": "[DEFAULT]\ndebug = true\n"},
            "",
            [
                f'{CONF}/nvoa.conf:1:1: KKC136 no OpenStack service "nvoa" with config files; did you mean "nova"?'
            ],
            id="service-did-you-mean",
        ),
        pytest.param(
            {"nova.ini": "[DEFAULT]\ndebug = true\n"},
            "",
            [f"{CONF}/nova.ini:1:1: KKC136 not a config override file: {LAYOUT}"],
            id="stray-file",
        ),
        pytest.param(
            {"nova.conf": "[DEFAULT]\ndebug = true\n  continued\nno assignment here\n"},
            "",
            [f"{CONF}/nova.conf:4:1: KKC135 not an INI file: no '=' or ':' in an assignment"],
            id="bad-ini",
        ),
        pytest.param(
            {},
            "  nova/scheduler:\n    DEFAULT: {debug: true}\n",
            [
                '{site}:{line}:3: KKC136 config.nova/scheduler: nova has no component "scheduler"; did you mean "nova-scheduler"?'
            ],
            id="yaml-component",
        ),
    ],
)
def test_unknown_files(site_repo: Path, kkc, files, site_yaml, expected) -> None:
    configure(site_repo, files, site_yaml=site_yaml)
    line = line_of(site_repo, SITE, "nova/scheduler:") if site_yaml else 0
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(result, *(e.format(site=SITE, line=line) for e in expected))


def test_overrides_of_a_disabled_service_are_ignored(site_repo: Path) -> None:
    configure(site_repo, {"heat.conf": "[DEFAULT]\nnum_engine_workers = 2\n"})
    path = site_repo / SITE
    path.write_text(
        path.read_text().replace("  heat:\n    enabled: true\n", "  heat:\n    enabled: false\n")
    )
    files = tree(site_repo, "site-a")
    assert not any("heat" in rel for rel in files if rel.endswith(".conf"))


def test_config_files_change_the_site_digest(site_repo: Path) -> None:
    before = load_site(site_repo, "site-a").digest
    write(site_repo, f"{CONF}/nova.conf", "[DEFAULT]\ncpu_allocation_ratio = 2.0\n")
    assert load_site(site_repo, "site-a").digest != before


# --- the other INI files of a service (ml2_conf.ini, neutron_ovn_metadata_agent.ini) ----


ML2_SOURCES = {
    "neutron/ml2_conf.ini": "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:200\n",
    "neutron/neutron-server/ml2_conf.ini": (
        "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:300:400\n[ovn]\novn_l3_scheduler = chance\n"
    ),
}
ML2_YAML = (
    "  neutron/ml2_conf.ini:\n"
    "    ml2_type_vlan: {network_vlan_ranges: 'physnet1:1:2'}\n"
    "    ml2: {overlay_ip_version: 6}\n"
    "  neutron/neutron-ovn-metadata-agent/neutron_ovn_metadata_agent.ini:\n"
    "    DEFAULT: {metadata_workers: 4}\n"
)


def test_other_files_every_source_and_its_precedence(site_repo: Path) -> None:
    configure(
        site_repo,
        {**ML2_SOURCES, "global.conf": "[DEFAULT]\ndebug = true\n"},
        site_yaml=ML2_YAML,
    )
    files = tree(site_repo, "site-a")
    # component file > service file > YAML > kkc's value, in place
    assert values(files, ML2, "ml2_type_vlan", "network_vlan_ranges") == ["physnet1:300:400"]
    assert values(files, ML2, "ovn", "ovn_l3_scheduler") == ["chance"]
    # the bring-up Job with the file gets the service's overrides, not a component's
    assert values(files, ML2_DB_SYNC, "ml2_type_vlan", "network_vlan_ranges") == [
        "physnet1:100:200"
    ]
    assert values(files, ML2_DB_SYNC, "ovn", "ovn_l3_scheduler") == ["leastloaded"]
    assert values(files, ML2, "ml2", "overlay_ip_version") == ["6"]
    assert values(files, ML2_DB_SYNC, "ml2", "overlay_ip_version") == ["6"]
    assert values(files, METADATA, "DEFAULT", "metadata_workers") == ["4"]
    # global.conf is for the main files only
    assert values(files, ML2, "DEFAULT", "debug") == []
    assert values(files, METADATA, "DEFAULT", "debug") == []
    server_conf = "stages/services/config/neutron-server-kolla/neutron.conf"
    assert values(files, server_conf, "DEFAULT", "debug") == ["true"]
    assert values(files, server_conf, "ml2_type_vlan", "network_vlan_ranges") == []

    site = load_site(site_repo, "site-a")
    dotted = "config.neutron/neutron-server/ml2_conf.ini.ml2_type_vlan.network_vlan_ranges"
    value, origins = site.explain(dotted)
    assert value == "physnet1:300:400"
    assert [str(o) for o in origins] == [
        f"{CONF}/neutron/neutron-server/ml2_conf.ini:2:1 (set by layer config file)",
        f"{CONF}/neutron/ml2_conf.ini:2:1 (overridden; was set by layer config file)",
        f"{where(site_repo, SITE, 'network_vlan_ranges')} (overridden; was set by layer site)",
    ]
    # the main file's overrides and the other file's are told apart
    assert site.explain("config.neutron/neutron-server.ml2_type_vlan.network_vlan_ranges") == (
        None,
        [],
    )
    # a YAML key with a file name is shown whole
    value, origins = site.explain("config.neutron/ml2_conf.ini.ml2")
    assert value == {"overlay_ip_version": 6}
    assert [str(o) for o in origins] == [
        f"{where(site_repo, SITE, 'ml2:')} (set by layer site)",
        f"{where(site_repo, SITE, 'overlay_ip_version')} (set by layer site)",
    ]


def test_other_file_explain_on_the_command_line(site_repo: Path, kkc) -> None:
    configure(site_repo, ML2_SOURCES)
    dotted = "config.neutron/ml2_conf.ini.ml2_type_vlan.network_vlan_ranges"
    result = kkc(site_repo, "show", "site-a", "--explain", dotted)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f'{dotted}: "physnet1:100:200"',
        f"  {CONF}/neutron/ml2_conf.ini:2:1 (set by layer config file)",
    ]


def test_other_file_overrides_change_only_that_file(site_repo: Path) -> None:
    configure(site_repo, {})
    before = tree(site_repo, "site-a")
    configure(site_repo, {"neutron/ml2_conf.ini": ML2_SOURCES["neutron/ml2_conf.ini"]})
    after = tree(site_repo, "site-a")
    assert sorted(rel for rel in {*before, *after} if before.get(rel) != after.get(rel)) == [
        ML2_DB_SYNC,
        ML2_DB_CONTRACT,
        ML2,
    ]


def test_example_site_overrides_ml2_conf(site_repo: Path) -> None:
    files = tree(site_repo, "site-a")
    for rel in (ML2, ML2_DB_SYNC, ML2_DB_CONTRACT):
        assert values(files, rel, "ml2_type_vlan", "network_vlan_ranges") == ["physnet1:100:2999"]


def test_other_file_is_checked_against_its_own_catalog(site_repo: Path, kkc) -> None:
    configure(
        site_repo,
        {
            "neutron/ml2_conf.ini": (
                "[ml2_type_vlan]\n"
                "network_vlan_range = physnet1\n"
                "[ovn]\n"
                "ovn_metadata_enabled = maybe\n"
                "[DEFAULT]\n"
                "core_plugin = ml2\n"
            )
        },
        site_yaml=(
            "  neutron/neutron-ovn-metadata-agent/neutron_ovn_metadata_agent.ini:\n"
            "    DEFAULT: {metadata_workers: many}\n"
        ),
    )
    result = run_build(kkc, site_repo, "site-a")
    ml2 = f"{CONF}/neutron/ml2_conf.ini"
    assert_problems(
        result,
        f'{ml2}:2:1: KKC130 [ml2_type_vlan] network_vlan_range: unknown option; did you mean "network_vlan_ranges"? (ml2_conf.ini of 2025.1)',
        f'{ml2}:4:1: KKC131 [ovn] ovn_metadata_enabled: expected a boolean (true/false, yes/no, on/off, 1/0), got "maybe"',
        # a neutron.conf option is unknown in ml2_conf.ini
        f"{ml2}:6:1: KKC130 [DEFAULT] core_plugin: unknown option (ml2_conf.ini of 2025.1)",
        f'{where(site_repo, SITE, "metadata_workers")}: KKC131 [DEFAULT] metadata_workers: expected an integer, got "many"',
    )


@pytest.mark.parametrize(
    ("files", "site_yaml", "expected"),
    [
        pytest.param(
            {"neutron/ml2.ini": "[ml2]\n"},
            "",
            f'{CONF}/neutron/ml2.ini:1:1: KKC136 neutron renders no other config file "ml2.ini"; did you mean "ml2_conf.ini"?',
            id="file-did-you-mean",
        ),
        pytest.param(
            {"nova/ml2_conf.ini": "[ml2]\n"},
            "",
            f'{CONF}/nova/ml2_conf.ini:1:1: KKC136 nova renders no other config file "ml2_conf.ini"; files: none',
            id="file-of-another-service",
        ),
        pytest.param(
            {"neutron/neutron-server/neutron_ovn_metadata_agent.ini": "[DEFAULT]\n"},
            "",
            f'{CONF}/neutron/neutron-server/neutron_ovn_metadata_agent.ini:1:1: KKC136 neutron has no component "neutron-server" with neutron_ovn_metadata_agent.ini; components: neutron-ovn-metadata-agent',
            id="component-without-the-file",
        ),
        pytest.param(
            {"neutron/neutron-server/neutron.conf": "[DEFAULT]\n"},
            "",
            f"{CONF}/neutron/neutron-server/neutron.conf:1:1: KKC136 neutron.conf is the main file of neutron: name it neutron.conf or neutron/<component>.conf",
            id="main-file-in-a-component-directory",
        ),
        pytest.param(
            {"neutron/neutron-server/ml2_conf": "[ml2]\n"},
            "",
            f"{CONF}/neutron/neutron-server/ml2_conf:1:1: KKC136 not a config override file: {LAYOUT}",
            id="stray-file-in-a-component-directory",
        ),
        pytest.param(
            {},
            "  neutron/neutron-srv/ml2_conf.ini:\n    ml2: {overlay_ip_version: 6}\n",
            '{where}: KKC136 config.neutron/neutron-srv/ml2_conf.ini: neutron has no component "neutron-srv" with ml2_conf.ini; did you mean "neutron-server"?',
            id="yaml-component-did-you-mean",
        ),
        pytest.param(
            {"global/ml2_conf.ini": "[ml2]\n"},
            "",
            f"{CONF}/global/ml2_conf.ini:1:1: KKC136 global overrides only the main files: name it global.conf",
            id="global-other-file",
        ),
        pytest.param(
            {},
            "  neutron/neutron.conf:\n    DEFAULT: {debug: true}\n",
            '{where}: KKC136 config.neutron/neutron.conf: neutron.conf is the main file of neutron: name it "neutron" or "neutron/<component>"',
            id="yaml-main-file",
        ),
    ],
)
def test_unknown_other_files(site_repo: Path, kkc, files, site_yaml, expected) -> None:
    configure(site_repo, files, site_yaml=site_yaml)
    at = where(site_repo, SITE, site_yaml.strip().split(":")[0]) if site_yaml else ""
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(result, expected.format(where=at))


def test_other_file_changes_the_site_digest(site_repo: Path) -> None:
    before = load_site(site_repo, "site-a").digest
    write(site_repo, f"{CONF}/neutron/ml2_conf.ini", "[ml2]\noverlay_ip_version = 6\n")
    assert load_site(site_repo, "site-a").digest != before


# --- secret references: {secret: <name>} ----------------------------------------------

ES = "stages/infra/secrets/nova-secrets-externalsecret.yaml"
REFS = (
    "  nova:\n"
    "    key_manager: {fixed_key: {secret: nova_fixed_key}}\n"
    # not a secret option: allowed, it leaves the ConfigMaps for the drop-in
    "    keystone_authtoken: {www_authenticate_uri: {secret: nova_auth_uri}}\n"
    # an entry another key of nova-secrets is already filled from: that key is reused
    "    vendordata_dynamic_auth: {password: {secret: metadata_secret}}\n"
    "  nova/nova-compute:\n"
    "    vmware: {host_password: {secret: vmware_password}}\n"
)


def drop_in(spec: dict, key: str) -> list[tuple[str, str, str]]:
    text = spec["spec"]["target"]["template"]["data"][key]
    return [(s, o, v) for s, o, v, _ in catalog.parse_ini(text)]


def test_secret_references_go_into_the_drop_ins_only(site_repo: Path) -> None:
    configure(site_repo, {}, site_yaml=REFS)
    files = tree(site_repo, "site-a")
    es = doc(files, ES)
    data = {d["secretKey"]: d["remoteRef"] for d in es["spec"]["data"]}
    assert data["nova_fixed_key"] == {"key": "openstack/site-a/nova_fixed_key"}
    assert data["nova_auth_uri"] == {"key": "openstack/site-a/nova_auth_uri"}
    assert data["vmware_password"] == {"key": "openstack/site-a/vmware_password"}
    assert "metadata_secret" not in data
    fixed = ("key_manager", "fixed_key", '{{ index . "nova_fixed_key" }}')
    uri = ("keystone_authtoken", "www_authenticate_uri", '{{ index . "nova_auth_uri" }}')
    vendordata = ("vendordata_dynamic_auth", "password", '{{ index . "metadata-secret" }}')
    vmware = ("vmware", "host_password", '{{ index . "vmware_password" }}')
    # the service's references reach both drop-ins, nova-compute's only its own
    assert {fixed, uri, vendordata} <= set(drop_in(es, "nova.conf"))
    assert vmware not in drop_in(es, "nova.conf")
    assert {fixed, uri, vendordata, vmware} <= set(drop_in(es, "nova-compute.conf"))
    # never in a ConfigMap: the rendered value of www_authenticate_uri is taken out
    for rel in (API, COMPUTE, DB_SYNC):
        assert values(files, rel, "keystone_authtoken", "www_authenticate_uri") == []
        assert values(files, rel, "key_manager", "fixed_key") == []
    glance = "stages/services/config/glance-api-kolla/glance-api.conf"
    assert values(files, glance, "keystone_authtoken", "www_authenticate_uri") != []
    # the drop-ins pass the catalog check of the built output (KKC310)
    site = load_site(site_repo, "site-a")
    assert lint.check_ini(site, files, [], "out", compute(site)) == ([], [])


def test_secret_references_with_existing_secrets(site_repo: Path, kkc) -> None:
    path = site_repo / SITE
    path.write_text(path.read_text().replace("secrets:\n", "secrets:\n  backend: existing\n"))
    configure(site_repo, {}, site_yaml=REFS)
    assert not any(rel.endswith("externalsecret.yaml") for rel in tree(site_repo, "site-a"))
    result = kkc(site_repo, "secrets", "site-a")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index(
        "openstack/nova-secrets: Nova passwords, the metadata proxy secret and the nova.conf "
        "drop-ins (control plane: nova.conf; computes: nova-compute.conf, without databases)"
    )
    nova = lines[start : lines.index("", start) if "" in lines[start:] else None]
    assert (
        "  - nova_fixed_key: secret store entry nova_fixed_key (config override [key_manager] fixed_key)"
        in nova
    )
    assert (
        "  - vmware_password: secret store entry vmware_password (config override [vmware] host_password)"
        in nova
    )
    assert "      | fixed_key = <nova_fixed_key>" in nova
    assert "      | host_password = <vmware_password>" in nova
    assert "      | www_authenticate_uri = <nova_auth_uri>" in nova


def test_secret_reference_explain(site_repo: Path, kkc) -> None:
    configure(site_repo, {}, site_yaml=REFS)
    result = kkc(site_repo, "show", "site-a", "--explain", "config.nova.key_manager.fixed_key")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        'config.nova.key_manager.fixed_key: {"secret": "nova_fixed_key"}',
        f"  {where(site_repo, SITE, 'fixed_key')} (set by layer site)",
    ]


def test_secret_reference_targets(site_repo: Path, kkc) -> None:
    configure(
        site_repo,
        {},
        site_yaml=(
            "  nova/nova-api:\n"
            "    key_manager: {fixed_key: {secret: nova_fixed_key}}\n"
            "  neutron/ml2_conf.ini:\n"
            "    ml2: {mechanism_drivers: {secret: neutron_drivers}}\n"
        ),
    )
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        f'{where(site_repo, SITE, "fixed_key: {secret")}: KKC137 config.nova/nova-api.key_manager.fixed_key: nova-api shares its secret drop-in with other containers of nova: set the secret reference on "nova" (components with a drop-in of their own: nova-compute)',
        f"{where(site_repo, SITE, 'mechanism_drivers')}: KKC137 config.neutron/ml2_conf.ini.ml2.mechanism_drivers: a secret reference goes into the secret drop-in of neutron.conf, not into ml2_conf.ini",
    )


def test_secret_reference_catalog_errors(site_repo: Path, kkc) -> None:
    configure(
        site_repo,
        {"nova.conf": "[keystone_authtoken]\nwww_authenticate_uri = https://id.example.com\n"},
        site_yaml=(
            "  nova:\n"
            "    keystone_authtoken: {www_authenticate_uri: {secret: nova_auth_uri}}\n"
            "    DEFAULT: {debug: {secret: nova_debug}}\n"
            "    libvirt: {virt_type: {secret: nova_virt}}\n"
            "    key_manager: {fixd_key: {secret: nova_fixed_key}}\n"
        ),
    )
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        f"{CONF}/nova.conf:2:1: KKC137 [keystone_authtoken] www_authenticate_uri: set in plain text over the secret reference of {where(site_repo, SITE, 'www_authenticate_uri')}, which the secret drop-in would still apply: set the option one way",
        f"{where(site_repo, SITE, 'debug')}: KKC131 [DEFAULT] debug: a secret reference fills only string options; this one expects a boolean (true/false, yes/no, on/off, 1/0)",
        f"{where(site_repo, SITE, 'virt_type')}: KKC131 [libvirt] virt_type: a secret reference cannot fill an option with allowed values (kvm, lxc, qemu, parallels)",
        f'{where(site_repo, SITE, "fixd_key")}: KKC130 [key_manager] fixd_key: unknown option; did you mean "fixed_key"? (nova.conf of 2025.1)',
    )


@pytest.mark.parametrize(
    ("value", "needle", "expected"),
    [
        (
            "{secrt: nova_fixed_key}",
            "secrt",
            'KKC110 config.nova.key_manager.fixed_key.secrt: unknown key; did you mean "secret"?',
        ),
        (
            "{secret: Nova-Key}",
            "Nova-Key",
            'KKC112 config.nova.key_manager.fixed_key.secret: "Nova-Key" does not match the '
            "expected format",
        ),
        (
            "2024-01-01",  # a YAML date: none of the forms
            "2024",
            "KKC111 config.nova.key_manager.fixed_key: must be a scalar, a list of scalars or a "
            "secret reference {secret: <name>}",
        ),
        (
            "[{secret: nova_fixed_key}]",
            "{secret: nova",
            "KKC111 config.nova.key_manager.fixed_key[0]: must be a scalar (string, number or "
            "boolean)",
        ),
    ],
)
def test_secret_reference_syntax(site_repo: Path, kkc, value, needle, expected) -> None:
    configure(site_repo, {}, site_yaml=f"  nova:\n    key_manager:\n      fixed_key: {value}\n")
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(result, f"{where(site_repo, SITE, needle)}: {expected}")


def test_secret_option_in_an_ini_file_names_the_yaml_form(site_repo: Path, kkc) -> None:
    configure(
        site_repo,
        {
            "nova/nova-compute.conf": "[vmware]\nhost_password = s3cret\n",
            "nova/nova-api.conf": "[key_manager]\nfixed_key = s3cret\n",
        },
    )
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        f"{CONF}/nova/nova-api.conf:2:1: KKC134 [key_manager] fixed_key: secret option set in plain text; reference a secret of the store instead, in YAML: config: {{nova: {{key_manager: {{fixed_key: {{secret: <name>}}}}}}}}",
        f"{CONF}/nova/nova-compute.conf:2:1: KKC134 [vmware] host_password: secret option set in plain text; reference a secret of the store instead, in YAML: config: {{nova/nova-compute: {{vmware: {{host_password: {{secret: <name>}}}}}}}}",
    )
    assert "s3cret" not in result.output
