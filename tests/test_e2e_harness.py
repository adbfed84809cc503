"""The e2e harness's own pieces that run without root or OpenStack: the Kubernetes
Secrets stand-in (driven by the real base/keystone/db/scripts/keystone-keys.py) and the
Go-template subset of the Secret templates."""

from __future__ import annotations

import base64
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "e2e"))

from kkc_e2e import gotmpl  # noqa: E402
from kkc_e2e.kube import KubeStandIn  # noqa: E402

NS = "openstack-lab"


def load_keys_script():
    spec = importlib.util.spec_from_file_location(
        "keystone_keys", ROOT / "base" / "keystone" / "db" / "scripts" / "keystone-keys.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def keys(tmp_path, monkeypatch):
    """keystone-keys.py pointed at the stand-in; keystone-manage writes fixed keys."""
    module = load_keys_script()
    kube = KubeStandIn(tmp_path / "kube", NS)
    kube.__enter__()
    monkeypatch.setattr(module, "SA_DIR", str(kube.sa_dir))
    for k, v in kube.env.items():
        monkeypatch.setenv(k, v)
    repos = {
        "fernet_setup": tmp_path / "fernet",
        "credential_setup": tmp_path / "cred",
        "fernet_rotate": tmp_path / "fernet",
    }
    monkeypatch.setattr(
        module, "FERNET", ("keystone-fernet-keys", str(tmp_path / "fernet"), "fernet_setup")
    )
    monkeypatch.setattr(
        module,
        "CREDENTIAL",
        ("keystone-credential-keys", str(tmp_path / "cred"), "credential_setup"),
    )
    calls = []

    def fake_manage(action, *args):
        calls.append(action)
        repo = repos[action]
        repo.mkdir(exist_ok=True)
        if action == "fernet_rotate":
            existing = sorted(int(p.name) for p in repo.iterdir())
            (repo / str(max(existing) + 1)).write_bytes((repo / "0").read_bytes())
            (repo / "0").write_bytes(b"new-staged")
        else:
            (repo / "0").write_bytes(b"staged")
            (repo / "1").write_bytes(b"primary")

    monkeypatch.setattr(module, "keystone_manage", fake_manage)
    monkeypatch.setattr(module, "write_keys", lambda d, data: _write(d, data))
    yield module, kube, calls
    kube.__exit__(None, None, None)


def _write(directory, data):
    path = Path(directory)
    path.mkdir(exist_ok=True)
    for entry in path.iterdir():
        entry.unlink()
    for name, value in data.items():
        (path / name).write_bytes(base64.b64decode(value))


def test_setup_creates_both_secrets_and_a_rerun_changes_nothing(keys, monkeypatch, capsys):
    module, kube, calls = keys
    monkeypatch.setenv("KKC_KEYS_ACTION", "setup")
    assert module.main() == 0
    fernet = kube.store.get(NS, "keystone-fernet-keys")
    assert sorted(fernet["data"]) == ["0", "1"]
    assert (
        kube.store.get(NS, "keystone-credential-keys")["data"]["1"]
        == base64.b64encode(b"primary").decode()
    )
    version = fernet["metadata"]["resourceVersion"]
    assert calls == ["fernet_setup", "credential_setup"]
    assert module.main() == 0
    assert calls == ["fernet_setup", "credential_setup"]  # nothing run again
    assert kube.store.get(NS, "keystone-fernet-keys")["metadata"]["resourceVersion"] == version
    out = capsys.readouterr().out
    assert "keystone-keys: secret keystone-fernet-keys exists with 2 keys; nothing to do" in out
    assert "primary" not in out and base64.b64encode(b"primary").decode() not in out


def test_rotate_writes_back_with_the_resource_version_it_read(keys, monkeypatch, capsys):
    module, kube, calls = keys
    monkeypatch.setenv("KKC_KEYS_ACTION", "setup")
    assert module.main() == 0
    monkeypatch.setenv("KKC_KEYS_ACTION", "rotate")
    assert module.main() == 0
    assert sorted(kube.store.get(NS, "keystone-fernet-keys")["data"]) == ["0", "1", "2"]
    assert "rotated keystone-fernet-keys: 2 keys before, 3 after" in capsys.readouterr().out


def test_rotate_does_not_overwrite_a_concurrent_change(keys, monkeypatch, capsys):
    module, kube, calls = keys
    monkeypatch.setenv("KKC_KEYS_ACTION", "setup")
    assert module.main() == 0
    before = kube.store.get(NS, "keystone-fernet-keys")["data"]
    kube.store.conflicts_before_put = 1  # another writer changes the Secret meanwhile
    monkeypatch.setenv("KKC_KEYS_ACTION", "rotate")
    assert module.main() == 1
    assert kube.store.get(NS, "keystone-fernet-keys")["data"] == before
    assert (
        "keystone-keys: error: secret keystone-fernet-keys changed during rotation; "
        "not overwritten (the next run retries)"
    ) in capsys.readouterr().out
    assert ("PUT", f"/api/v1/namespaces/{NS}/secrets/keystone-fernet-keys", 409) in (
        kube.store.requests
    )


def test_setup_keeps_a_secret_created_concurrently(keys, monkeypatch, capsys):
    module, kube, calls = keys
    theirs = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "keystone-fernet-keys"},
        "data": {"0": base64.b64encode(b"theirs").decode()},
    }
    real_get = module.Kube.get
    first = {"done": False}

    def get_then_race(self, name):
        obj = real_get(self, name)
        if name == "keystone-fernet-keys" and not first["done"]:
            first["done"] = True
            kube.store.create(NS, theirs)  # created between our GET and our POST
        return obj

    monkeypatch.setattr(module.Kube, "get", get_then_race)
    monkeypatch.setenv("KKC_KEYS_ACTION", "setup")
    assert module.main() == 0
    assert kube.store.get(NS, "keystone-fernet-keys")["data"] == theirs["data"]
    assert "secret keystone-fernet-keys was created concurrently; keeping it" in (
        capsys.readouterr().out
    )


def test_stand_in_rejects_a_wrong_token(keys):
    import json
    import ssl
    import urllib.error
    import urllib.request

    module, kube, calls = keys
    ctx = ssl.create_default_context(cafile=str(kube.sa_dir / "ca.crt"))
    req = urllib.request.Request(
        f"https://127.0.0.1:{kube.port}/api/v1/namespaces/{NS}/secrets/x",
        headers={"Authorization": "Bearer wrong"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert err.value.code == 401
    assert json.load(err.value)["reason"] == "Unauthorized"


def test_templates_fill_keys_and_url_quote():
    data = {"password": "p@ss word/+", "database-password": "a:b"}
    assert gotmpl.render("x={{ .password }}", data) == "x=p@ss word/+"
    assert gotmpl.render('u={{ index . "database-password" | urlquery }}', data) == "u=a%3Ab"
    assert gotmpl.render("{{ .password | urlquery }}", data) == "p%40ss+word%2F%2B"


def test_templates_reject_unknown_keys_and_functions():
    with pytest.raises(gotmpl.TemplateError, match="template reads key 'nope'"):
        gotmpl.render("{{ .nope }}", {})
    with pytest.raises(gotmpl.TemplateError, match="unsupported template function 'b64enc'"):
        gotmpl.render("{{ .a | b64enc }}", {"a": "1"})
    with pytest.raises(gotmpl.TemplateError, match="unsupported template action"):
        gotmpl.render("{{ range . }}", {})


def _tarball(path: Path, top: str, files: dict[str, str]) -> None:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_image_tree_replays_the_dockerfile_copies_from_the_sdist(tmp_path):
    """What a Kolla image has in /etc/<service> besides config.json's files comes from
    the source tree (pip does not install etc/): the harness replays the Dockerfile
    chain's mkdir/cp/mv/COPY steps into /etc with the release's sdist."""
    from kkc_e2e import image

    docker = tmp_path / "docker"
    (docker / "openstack-base").mkdir(parents=True)
    (docker / "openstack-base" / "Dockerfile.j2").write_text(
        "FROM {{ namespace }}/{{ image_prefix }}base:{{ tag }}\nRUN mkdir -p /etc/other\n"
    )
    base = docker / "neutron" / "neutron-base"
    (base / "etc" / "extra").mkdir(parents=True)
    (base / "etc" / "extra" / "x.conf").write_text("x")
    (base / "Dockerfile.j2").write_text(
        "FROM {{ namespace }}/{{ image_prefix }}openstack-base:{{ tag }}\n"
        "COPY etc/extra /etc/neutron/extra\n"
        "COPY neutron_sudoers /etc/sudoers.d/kolla_neutron_sudoers\n"
        "RUN ln -s neutron-base-source/* neutron \\\n"
        "    && {{ macros.install_pip(pkgs) }} \\\n"
        "    && mkdir -p /etc/neutron \\\n"
        "    && cp -r /neutron/etc/* /etc/neutron/ \\\n"
        "    && cp -r /neutron/etc/neutron/* /etc/neutron/ \\\n"
        "    && cp /var/lib/kolla/venv/etc/pycadf/neutron_api_audit_map.conf /etc/neutron/ \\\n"
        "    && mv /etc/neutron/neutron/ /etc/neutron/plugins/ \\\n"
        "    && cp /neutron/README.rst /usr/share/doc/\n"
    )
    (docker / "neutron" / "neutron-server").mkdir()
    (docker / "neutron" / "neutron-server" / "Dockerfile.j2").write_text(
        "FROM {{ namespace }}/{{ image_prefix }}neutron-base:{{ tag }}\n"
        "{% set neutron_server_packages = [\n    'novnc-not-here'\n] %}\n"
    )
    venv = tmp_path / "venv"
    (venv / "etc" / "pycadf").mkdir(parents=True)
    (venv / "etc" / "pycadf" / "neutron_api_audit_map.conf").write_text("audit")
    (venv / "work" / "sdist").mkdir(parents=True)
    _tarball(
        venv / "work" / "sdist" / "neutron-28.0.2.tar.gz",
        "neutron-28.0.2",
        {
            "etc/api-paste.ini": "[composite:neutron]",
            "etc/rootwrap.conf": "[DEFAULT]",
            "etc/neutron/plugins/ml2/ml2_conf.ini": "",
            "README.rst": "",
        },
    )
    tree = image.stage("neutron-server", docker, venv, tmp_path / "debs", tmp_path / "out")
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    assert files == [
        "etc/neutron/api-paste.ini",
        "etc/neutron/extra/x.conf",
        "etc/neutron/neutron_api_audit_map.conf",
        "etc/neutron/plugins/ml2/ml2_conf.ini",
        "etc/neutron/plugins/neutron/plugins/ml2/ml2_conf.ini",
        "etc/neutron/rootwrap.conf",
    ]
    assert (tree / "etc/neutron/api-paste.ini").read_text() == "[composite:neutron]"
    # staged once per run
    assert image.stage("neutron-server", docker, venv, tmp_path / "debs", tmp_path / "out") == tree


def test_image_tree_unpacks_the_debian_packages_a_service_reads(tmp_path):
    from kkc_e2e import image

    docker = tmp_path / "docker" / "nova" / "nova-novncproxy"
    docker.mkdir(parents=True)
    (docker / "Dockerfile.j2").write_text(
        "FROM x/{{ image_prefix }}nova-base:{{ tag }}\n"
        "{% set nova_novncproxy_packages = [\n    'novnc'\n] %}\n"
    )
    venv = tmp_path / "venv"
    (venv / "work" / "sdist").mkdir(parents=True)
    with pytest.raises(image.ImageError, match=r"novnc: no novnc_\*\.deb in .*apt-get download"):
        image.stage("nova-novncproxy", tmp_path / "docker", venv, tmp_path / "debs", tmp_path / "o")


GOLDEN_A = ROOT / "tests" / "golden" / "site-a" / "deploy" / "stages"


def test_apache_vhosts_become_the_same_wsgi_application_under_uwsgi():
    """Rocky images run keystone, heat-api and horizon under httpd/mod_wsgi, which this
    Debian machine does not have: the harness serves the vhost's WSGI application with its
    port, process/thread counts, user and static Alias under uWSGI."""
    from kkc_e2e import apache

    keystone = (GOLDEN_A / "identity/config/keystone-api-kolla/wsgi-keystone.conf").read_text()
    assert apache.uwsgi_argv([keystone]) == [
        "uwsgi",
        "--master",
        "--die-on-term",
        "--need-app",
        "--shared-socket",
        "0.0.0.0:5000",
        "--http-socket",
        "=0",
        "--wsgi-file",
        "/var/lib/kolla/venv/bin/keystone-wsgi-public",
        "--processes",
        "4",
        "--threads",
        "1",
        "--buffer-size",
        "65535",
        "--add-header",
        "Connection: close",
        "--enable-threads",
        "--lazy-apps",
        "--uid",
        "keystone",
        "--gid",
        "keystone",
    ]
    horizon = (GOLDEN_A / "services/config/horizon-kolla/horizon-vhost.apache").read_text()
    argv = apache.uwsgi_argv([horizon])
    assert argv[argv.index("--shared-socket") + 1] == "0.0.0.0:80"
    assert argv[argv.index("--wsgi-file") + 1] == (
        "/var/lib/kolla/venv/lib/python3/site-packages/openstack_dashboard/wsgi.py"
    )
    assert argv[-2:] == [
        "--static-map",
        "/static=/var/lib/kolla/venv/lib/python3/site-packages/static",
    ]
    assert apache.is_httpd(["/usr/sbin/httpd", "-DFOREGROUND"])
    assert not apache.is_httpd(["uwsgi", "/etc/nova/nova-api-uwsgi.ini"])
    with pytest.raises(apache.ApacheError, match="no Listen and WSGIScriptAlias /"):
        apache.uwsgi_argv(["# Listen 80\nServerTokens Prod\n"])


def test_apache_vhosts_are_read_where_each_apache_reads_them(tmp_path):
    """httpd (Rocky) reads /etc/httpd/conf.d; apache2 (Ubuntu: keystone of 2025.1, whose
    config.json copies wsgi-keystone.conf to conf-enabled/) conf-enabled and
    sites-enabled, not the other's."""
    from kkc_e2e import apache

    for d, text in (
        ("etc/httpd/conf.d", "httpd"),
        ("etc/apache2/conf-enabled", "conf"),
        ("etc/apache2/sites-enabled", "site"),
    ):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "a.conf").write_text(text)
        (tmp_path / d / "a.load").write_text("not a .conf")
    assert apache.vhosts("/usr/sbin/httpd", tmp_path) == ["httpd"]
    assert apache.vhosts("/usr/sbin/apache2", tmp_path) == ["conf", "site"]
    assert apache.is_httpd(["/usr/sbin/apache2"])


def test_image_tree_takes_a_wheel_only_projects_files_from_the_installed_package(tmp_path):
    """horizon is installed from a wheel (no sdist): /horizon/openstack_dashboard/... of
    its Dockerfile is the installed package's data."""
    from kkc_e2e import image, venvs

    docker = tmp_path / "docker" / "horizon"
    docker.mkdir(parents=True)
    (docker / "Dockerfile.j2").write_text(
        "FROM x/{{ image_prefix }}openstack-base:{{ tag }}\n"
        "RUN mkdir -p /etc/openstack-dashboard \\\n"
        "    && cp -r /horizon/openstack_dashboard/conf/* /etc/openstack-dashboard/ \\\n"
        "    && cp /horizon/openstack_dashboard/local/local_settings.py.example "
        "/etc/openstack-dashboard/local_settings.py \\\n"
        "    && cp /horizon/manage.py /var/lib/kolla/venv/bin/manage.py\n"
    )
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages" / "openstack_dashboard"
    (site / "conf").mkdir(parents=True)
    (site / "conf" / "nova_policy.yaml").write_text("{}")
    (site / "local" / "local_settings.d").mkdir(parents=True)
    (site / "local" / "local_settings.py.example").write_text("DEBUG = False")
    (venv / "work" / "sdist").mkdir(parents=True)
    tree = image.stage("horizon", tmp_path / "docker", venv, tmp_path / "debs", tmp_path / "out")
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    assert files == [
        "etc/openstack-dashboard/local_settings.py",
        "etc/openstack-dashboard/nova_policy.yaml",
    ]
    (venv / "lib" / "python3").symlink_to("python3.11")
    venvs.dashboard_links(venv)
    venvs.dashboard_links(venv)  # idempotent
    local = site / "local"
    assert (
        str((local / "local_settings.d").readlink()) == "/etc/openstack-dashboard/local_settings.d"
    )
    assert str((local / "local_settings.py").readlink()) == (
        "/etc/openstack-dashboard/local_settings.py"
    )
    assert (site.parent / "static").is_dir()


def test_generated_secrets_agree_where_the_store_holds_one_value(tmp_path):
    """The RabbitMQ password of every service's Secret and rabbitmq-secrets' own are the
    same entry of the secret store (remote key, or the kolla password of an existing
    Secret): the harness gives them one value, or heat's AMQP login is refused."""
    from kkc_e2e import render

    secrets = [
        {
            "name": "rabbitmq-secrets",
            "source": "ExternalSecret rabbitmq-secrets",
            "keys": [
                {"key": "password", "remoteRef": {"key": "openstack/a/rabbitmq_password"}},
                {"key": "users.conf", "template": "default_pass = {{ .password }}\n"},
            ],
        },
        {
            "name": "heat-secrets",
            "source": "ExternalSecret heat-secrets",
            "keys": [
                {"key": "rabbitmq-password", "remoteRef": {"key": "openstack/a/rabbitmq_password"}},
                {"key": "keystone-password", "remoteRef": {"key": "openstack/a/heat_keystone"}},
            ],
        },
        {
            "name": "nova-secrets",
            "source": "Secret nova-secrets (existing)",
            "keys": [
                {"key": "rabbitmq-password", "kollaPassword": "rabbitmq_password"},
                {"key": "keystone-password", "kollaPassword": "nova_keystone_password"},
            ],
        },
        {
            "name": "glance-secrets",
            "source": "Secret glance-secrets (existing)",
            "keys": [{"key": "rabbitmq-password", "kollaPassword": "rabbitmq_password"}],
        },
    ]
    site = render.Site("s", "2026.1", tmp_path, [], secrets)
    values = render.generated_secrets(site)
    rabbit = values["rabbitmq-secrets"]["password"]
    assert values["heat-secrets"]["rabbitmq-password"] == rabbit
    assert values["rabbitmq-secrets"]["users.conf"] == f"default_pass = {rabbit}\n"
    assert values["heat-secrets"]["keystone-password"] != rabbit
    assert (
        values["nova-secrets"]["rabbitmq-password"] == values["glance-secrets"]["rabbitmq-password"]
    )
    assert (
        values["nova-secrets"]["keystone-password"] != values["nova-secrets"]["rabbitmq-password"]
    )


def test_established_counts_a_containers_connections_to_rabbitmq(tmp_path):
    """A worker that "stays up" must also hold an AMQP connection: counted from its
    processes' socket inodes in /proc/net/tcp (state 01, remote port 5672)."""
    from kkc_e2e import apis

    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    for pid, inodes in ((10, ["111", "222"]), (11, ["333"])):
        fd = proc / str(pid) / "fd"
        fd.mkdir(parents=True)
        for i, inode in enumerate(inodes):
            (fd / str(i)).symlink_to(f"socket:[{inode}]")
        (fd / "9").symlink_to("/dev/null")
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    row = "   0: 0100007F:9C40 0100007F:{port} {st} 00000000:00000000 00:00000000 00000000 0 0 {inode} 1\n"
    (proc / "net" / "tcp").write_text(
        head
        + row.format(port="1628", st="01", inode="111")  # 5672, established: counts
        + row.format(port="1628", st="06", inode="222")  # TIME_WAIT: no
        + row.format(port="0CEA", st="01", inode="333")  # 3306: no
        + row.format(port="1628", st="01", inode="999")  # another process: no
    )
    assert apis.established([10, 11], 5672, proc) == 1
    assert apis.established([11], 5672, proc) == 0


def test_rotation_gives_a_new_value_to_the_rotated_passwords_only(tmp_path):
    """The e2e rotation phase does the operator's part of a rotation with secrets.backend
    existing: a new value for each rotated kolla password, in every Secret that holds it,
    and the drop-ins that template it rendered again; nothing else changes."""
    from kkc_e2e import render, rotation

    secrets = [
        {
            "name": "placement-secrets",
            "source": "Secret placement-secrets (existing)",
            "keys": [
                {"key": "database-password", "kollaPassword": "placement_database_password"},
                {"key": "keystone-password", "kollaPassword": "placement_keystone_password"},
                {"key": "placement.conf", "template": 'c = {{ index . "database-password" }}\n'},
            ],
        },
    ]
    site = render.Site("s", "2026.1", tmp_path, [], secrets)
    before = render.generated_secrets(site)
    after = rotation.new_secrets(site, before, ("placement_database_password",))
    old, new = before["placement-secrets"], after["placement-secrets"]
    assert new["database-password"] != old["database-password"]
    assert new["keystone-password"] == old["keystone-password"]
    assert new["placement.conf"] == f"c = {new['database-password']}\n"
    assert before["placement-secrets"] is not new  # the old values stay for the refusal check
    assert rotation._value(site, before, "placement_database_password") == old["database-password"]


# -- the upgrade scenario ------------------------------------------------------------


def test_upgrade_hops_follow_kkcs_own_path_rules():
    """2025.1 -> 2026.2 goes through 2026.1 (the SLURP skip over 2025.2), as kkc's path
    rules say; a hop kkc refuses is never taken."""
    from kkc_e2e import upgrade

    assert upgrade.hops("2025.1", "2026.2") == ["2026.1", "2026.2"]
    assert upgrade.hops("2025.1", "2026.1") == ["2026.1"]
    assert upgrade.hops("2026.1", "2026.2") == ["2026.2"]
    assert upgrade.hops("2026.2", "2026.2") == []
    with pytest.raises(ValueError, match="no upgrade from 2026.2 towards 2025.1"):
        upgrade.hops("2026.2", "2025.1")


def _done(code: int, err: str, out: str = ""):
    import subprocess

    return subprocess.CompletedProcess([], code, out, err)


def test_upgrade_refusal_must_be_exit_2_and_one_line_naming_the_hop():
    from kkc_e2e import upgrade

    line = (
        "sites/s/site.yaml:12:3: KKC190 2025.1 -> 2026.2 skips 2025.2, 2026.1 (a SLURP "
        "release: a skip ends at the next SLURP release, 2026.1); upgrade to 2026.1 first\n"
    )
    assert upgrade.refusal_problem(_done(2, line), "2026.1") == ""
    assert upgrade.refusal_problem(_done(0, ""), "2026.1").startswith("exit 0, not 2")
    assert upgrade.refusal_problem(_done(1, line), "2026.1").startswith("exit 1, not 2")
    assert "2 lines on stderr" in upgrade.refusal_problem(_done(2, line + "more\n"), "2026.1")
    assert "does not name 2025.2" in upgrade.refusal_problem(_done(2, line), "2025.2")
    assert "stdout" in upgrade.refusal_problem(_done(2, line, "wrote deploy/"), "2026.1")


def test_generated_secrets_keep_their_values_across_an_upgrade(tmp_path):
    """After an upgrade the Secrets keep the values the databases and RabbitMQ were set
    up with; a key the new output adds gets a value, the store's value where it shares
    an entry with a kept key."""
    from kkc_e2e import render

    old = [
        {
            "name": "rabbitmq-secrets",
            "source": "Secret rabbitmq-secrets (existing)",
            "keys": [
                {"key": "password", "kollaPassword": "rabbitmq_password"},
                {"key": "users.conf", "template": "default_pass = {{ .password }}\n"},
            ],
        },
        {
            "name": "nova-secrets",
            "source": "Secret nova-secrets (existing)",
            "keys": [{"key": "database-password", "kollaPassword": "nova_database_password"}],
        },
    ]
    new = [
        old[0],
        {
            "name": "nova-secrets",
            "source": "Secret nova-secrets (existing)",
            "keys": [
                {"key": "database-password", "kollaPassword": "nova_database_password"},
                {"key": "rabbitmq-password", "kollaPassword": "rabbitmq_password"},
                {"key": "new-key"},
            ],
        },
    ]
    before = render.generated_secrets(render.Site("s", "2025.1", tmp_path, [], old))
    after = render.generated_secrets(render.Site("s", "2026.1", tmp_path, [], new), before)
    assert after["rabbitmq-secrets"] == before["rabbitmq-secrets"]
    nova = after["nova-secrets"]
    assert nova["database-password"] == before["nova-secrets"]["database-password"]
    assert nova["rabbitmq-password"] == before["rabbitmq-secrets"]["password"]
    assert nova["new-key"] not in {v for s in before.values() for v in s.values()}
    fresh = render.generated_secrets(render.Site("s", "2026.1", tmp_path, [], new))
    assert fresh["nova-secrets"]["database-password"] != nova["database-password"]


def test_schema_difference_names_what_a_second_run_changed():
    from kkc_e2e import schema

    before = ["column\tnova\tinstances\tid\tint(11)", "version\tnova_api\talembic_version\tb30f"]
    assert schema.difference(before, list(reversed(before))) == ""
    after = [before[0], "version\tnova_api\talembic_version\tc41a"]
    assert schema.difference(before, after) == (
        "1 lines gone, 1 new: - version nova_api alembic_version b30f; "
        "+ version nova_api alembic_version c41a"
    )


def test_e2e_choice_of_sites_and_the_upgrade_scenario():
    from kkc_e2e import __main__ as e2e

    every = list(e2e.SITES)
    assert e2e.choose(None, False, False) == (every, True)  # the default run: CI's
    assert e2e.choose(None, False, True) == (every, False)
    assert e2e.choose(None, True, False) == ([], True)
    assert e2e.choose(None, True, True) == ([], False)
    assert e2e.choose(["site-a"], False, False) == (["site-a"], False)
    assert e2e.choose(["site-a"], True, False) == (["site-a"], True)
    # the scenario's releases are the default sites' own: it adds no venv to CI's run
    assert e2e.venv_releases(every, True) == e2e.venv_releases(every, False)
    assert e2e.venv_releases([], True) == {"2025.1": False, "2026.1": False, "2026.2": False}
    # site-a (2025.1) runs horizon: its venv gets it, whatever the scenario needs
    assert e2e.venv_releases(["site-a"], True)["2025.1"] is True


class _Ctr:
    def __init__(self):
        self.spec, self.stopped = {}, False

    def alive(self):
        return not self.stopped

    def stop(self):
        self.stopped = True


def _run(tmp_path, objects):
    from kkc_e2e import bringup, pods, render

    env = pods.Env(tmp_path, tmp_path, tmp_path, "", {}, None, {}, "ns", files={})
    return bringup.Run(render.Site("s", "2026.1", tmp_path, objects, []), env)


def test_a_workload_rolls_only_when_its_pod_template_changed(tmp_path):
    """On an upgrade a workload whose template the new output changed stops (and starts
    again from the new output); an unchanged one keeps running; one the new output no
    longer has is pruned."""
    old = {"metadata": {"name": "api"}, "spec": {"template": {"spec": {"image": "a:1"}}}}
    new = {"metadata": {"name": "api"}, "spec": {"template": {"spec": {"image": "a:2"}}}}
    run = _run(tmp_path, [new])
    ctr, gone = _Ctr(), _Ctr()
    run.running += [ctr, gone]
    run.workloads = {"api": (old["spec"]["template"], [ctr]), "old-worker": ({}, [gone])}
    assert run.roll(old) is False and not ctr.stopped
    assert run.roll(new) is True and ctr.stopped and "api" not in run.workloads
    assert run.roll(new) is True  # nothing of it runs any more: it starts
    run.prune()
    assert gone.stopped and run.workloads == {} and run.running == []


def test_claims_outlive_their_pods_and_an_upgrade(tmp_path):
    """A StatefulSet's volumeClaimTemplates and a PersistentVolumeClaim volume are one
    directory per claim, shared by every pod (and every release) of the run."""
    from kkc_e2e import bringup, render

    sts = {
        "metadata": {"name": "mariadb"},
        "spec": {
            "template": {"spec": {"containers": [], "volumes": []}},
            "volumeClaimTemplates": [{"metadata": {"name": "mariadb-data"}}],
        },
    }
    dep = {
        "metadata": {"name": "glance-api"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [],
                    "volumes": [{"name": "images", "persistentVolumeClaim": {"claimName": "g"}}],
                }
            }
        },
    }
    run = _run(tmp_path / "one", [])
    spec, _ = run.pod(sts)
    assert spec["volumes"][-1]["claimDir"] == str(
        tmp_path / "one" / "claims" / "mariadb-data-mariadb-0"
    )
    spec, _ = run.pod(dep)
    assert spec["volumes"][0]["claimDir"] == str(tmp_path / "one" / "claims" / "g")
    assert "claimDir" not in dep["spec"]["template"]["spec"]["volumes"][0]  # a copy
    ns = {"kind": "Namespace", "metadata": {"name": "ns"}}
    site = render.Site("s", "2026.2", tmp_path, [ns], [])
    sc = tmp_path / "kolla" / "docker" / "base" / "set_configs.py"
    later = bringup.new_env(site, tmp_path / "two", tmp_path, sc, None, run.env)
    run2 = bringup.Run(site, later)
    spec, poddir = run2.pod(sts)
    assert spec["volumes"][-1]["claimDir"] == str(
        tmp_path / "one" / "claims" / "mariadb-data-mariadb-0"
    )
    assert poddir.name.startswith("003-")


def test_a_container_is_stopped_when_no_process_of_its_session_runs(tmp_path):
    """RabbitMQ's start script exits before the Erlang VM: stopping a container waits for
    every live process of its session (zombies are done), not only the first one."""
    from kkc_e2e import pods

    for pid, comm, state, sid in (
        (10, "rabbitmq-server", "Z", 10),
        (11, "beam.smp (x) y", "S", 10),
        (12, "epmd", "S", 12),
        (13, "inet_gethost", "Z", 10),
    ):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({comm}) {state} 1 {sid} {sid} 0 -1\n")
    (tmp_path / "self").mkdir()
    assert pods.session(10, tmp_path) == [11]
    assert pods.session(12, tmp_path) == [12]
    assert pods.session(99, tmp_path) == []


def test_a_generation_rotates_once_and_credentials_are_migrated_around_it(
    keys, monkeypatch, capsys
):
    """kkc rotate's key Jobs (KKC_KEYS_GENERATION): credential_migrate, credential_rotate,
    credential_migrate; a retried pod of the same generation migrates but does not rotate
    again; the fernet Job of a generation rotates once."""
    module, kube, calls = keys
    monkeypatch.setenv("KKC_KEYS_ACTION", "setup")
    assert module.main() == 0
    real = module.keystone_manage

    def manage(action, *args):
        if action == "credential_rotate":
            cred = Path(module.CREDENTIAL[1])
            (cred / "2").write_bytes((cred / "0").read_bytes())
            (cred / "0").write_bytes(b"new-staged")
            (cred / "1").unlink()  # the old primary stays only while max keys allow
        if action in ("credential_rotate", "credential_migrate"):
            calls.append(action)
            return
        real(action, *args)

    monkeypatch.setattr(module, "keystone_manage", manage)
    monkeypatch.setenv("KKC_KEYS_ACTION", "rotate-credential")
    monkeypatch.setenv("KKC_KEYS_GENERATION", "1")
    del calls[:]
    assert module.main() == 0
    assert calls == ["credential_migrate", "credential_rotate", "credential_migrate"]
    cred = kube.store.get(NS, "keystone-credential-keys")
    assert sorted(cred["data"]) == ["0", "2"]
    assert cred["metadata"]["annotations"]["kkc.openstack.org/rotated-generation"] == "1"
    assert module.main() == 0  # the pod retried: no second rotation
    assert calls[3:] == ["credential_migrate", "credential_migrate"]
    assert "keystone-credential-keys was rotated for generation 1 already" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv("KKC_KEYS_ACTION", "rotate")
    monkeypatch.setenv("KKC_KEYS_GENERATION", "4")
    assert module.main() == 0
    assert module.main() == 0
    assert sorted(kube.store.get(NS, "keystone-fernet-keys")["data"]) == ["0", "1", "2"]
    assert "keystone-fernet-keys was rotated for generation 4 already; nothing to do" in (
        capsys.readouterr().out
    )


# -- the kubelet's restarts and the Job controller's retries (kkc_e2e.restart) ---------
def test_restart_back_off_doubles_from_10_s_to_its_cap_and_resets_after_a_long_run():
    from kkc_e2e.restart import CAP, RESET, BackOff

    b = BackOff()
    assert [b.next(1.0) for _ in range(5)] == [10.0, 20.0, 40.0, CAP, CAP] and CAP == 40.0
    assert b.next(RESET - 1) == CAP  # a run shorter than the reset keeps the back-off
    assert b.next(RESET) == 10.0  # ran 2 x the cap without exiting: forgotten
    assert b.next(0.0) == 20.0


class _Proc:
    def __init__(self, code=None):
        self.returncode = code

    def poll(self):
        return self.returncode


class _Supervised:
    """What restart.Supervisor reads and calls of a pods.Container."""

    def __init__(self, tag):
        import threading

        from kkc_e2e.restart import BackOff

        self.tag, self.lock, self.stopping = tag, threading.RLock(), False
        self.proc, self.restart_at, self.started_at = _Proc(), None, 0.0
        self.backoff, self.exits, self.restarts = BackOff(), [], 0
        self.calls = []

    def reap(self):
        self.calls.append("reap")

    def start(self):
        self.calls.append("start")
        self.proc = _Proc()

    def post_start(self):
        self.calls.append("postStart")


def test_the_supervisor_restarts_an_exited_container_after_its_back_off():
    from kkc_e2e.restart import Supervisor

    now, lines = [0.0], []
    sup = Supervisor(lines.append, clock=lambda: now[0])
    conductor, stopped = _Supervised("nova-conductor"), _Supervised("placement-api")
    sup.watch(conductor)
    sup.watch(stopped)
    sup.tick()
    assert conductor.calls == [] and lines == []  # both run
    now[0] = 5.0
    conductor.proc.returncode = 1  # exits 5 s after its start
    stopped.stopping, stopped.proc.returncode = True, 0  # the harness stops this one
    sup.tick()
    assert conductor.calls == ["reap"] and conductor.restart_at == 15.0
    assert lines == ["nova-conductor exited with 1 after 5 s: restart in 10 s"]
    now[0] = 14.9
    sup.tick()
    assert conductor.calls == ["reap"]  # still in its back-off
    now[0] = 15.0
    sup.tick()
    assert conductor.calls == ["reap", "start", "postStart"]
    assert (conductor.restarts, conductor.exits, conductor.started_at) == (1, [1], 15.0)
    assert lines[-1] == "nova-conductor restarted (1 restarts)"
    now[0] = 16.0
    conductor.proc.returncode = 1  # again at once: the delay doubles
    sup.tick()
    assert conductor.restart_at == 36.0
    sup.forget(conductor)
    now[0] = 40.0
    sup.tick()
    assert conductor.restarts == 1 and stopped.calls == []  # forgotten, and stopped: no restart


def test_a_job_is_retried_with_back_off_until_its_backoff_limit():
    from kkc_e2e.restart import retry_job

    waits = []
    codes = iter([1, 2, 0])
    done = retry_job(lambda: (next(codes), "log"), 6, waits.append)
    assert (done.ok, done.failures, waits) == (True, [1, 2], [10.0, 20.0])
    waits.clear()
    done = retry_job(lambda: (1, "the log"), 2, waits.append)
    assert (done.ok, done.failures, done.last, waits) == (False, [1, 1, 1], "the log", [10.0, 20.0])
    done = retry_job(lambda: (0, ""), 0, waits.append)
    assert (done.ok, done.failures) == (True, [])


def test_a_jobs_failed_container_restarts_in_its_pod_on_failure_and_in_a_new_pod_on_never(
    tmp_path, monkeypatch
):
    """restartPolicy OnFailure: the kubelet restarts the failed container in the same pod
    (the init container that completed is not run again); Never: the Job controller
    makes a new pod, which runs every container again."""
    from kkc_e2e import bringup

    ran, results = [], {}

    class Ctr:
        def __init__(self, env, spec, c, tag, poddir):
            self.tag, self.poddir, self.log = tag, poddir, tmp_path / "log"

        def run(self, timeout):
            ran.append((self.tag, self.poddir.name))
            return results[self.tag].pop(0)

        def tail(self):
            return "tail"

    monkeypatch.setattr(bringup, "Container", Ctr)
    monkeypatch.setattr(bringup.time, "sleep", lambda s: None)
    for policy in ("OnFailure", "Never"):
        job = {
            "metadata": {"name": "db-sync"},
            "spec": {
                "backoffLimit": 3,
                "template": {
                    "spec": {
                        "restartPolicy": policy,
                        "initContainers": [{"name": "init"}],
                        "containers": [{"name": "sync"}],
                    }
                },
            },
        }
        run = _run(tmp_path / policy, [])
        ran.clear()
        results.update({"db-sync-init": [0, 0, 0], "db-sync-sync": [1, 0]})
        assert run.run_job(job, 1) is True
        tags = [t for t, _ in ran]
        pods = [p for _, p in ran]
        if policy == "OnFailure":
            assert tags == ["db-sync-init", "db-sync-sync", "db-sync-sync"]
            assert len(set(pods)) == 1
        else:
            assert tags == ["db-sync-init", "db-sync-sync", "db-sync-init", "db-sync-sync"]
            assert pods[0] == pods[1] != pods[2] == pods[3]
        assert run.results[-1].detail == "completed after 1 failed attempts (exit 1)"
        assert run.restarts() == ["retried job db-sync run 1: 1 failed attempts (exit codes 1)"]
    results.update({"db-sync-init": [0] * 9, "db-sync-sync": [3] * 9})
    run = _run(tmp_path / "fails", [])
    assert run.run_job(job, 2) is False
    assert run.results[-1].detail.startswith("failed 4 times (exit 3, 3, 3, 3; backoffLimit 3)")


class _Up:
    def __init__(self, runs, gone=False):
        self.runs, self.exits, self.restarts, self._gone = list(runs), [], 0, gone

    def up_for(self):
        return self.runs.pop(0) if self.runs else self.runs_last

    def gone(self):
        return self._gone


def test_a_restarted_container_must_stay_up_from_its_new_start():
    from kkc_e2e import apis

    now = [0.0]

    def sleep(s):
        now[0] += s

    clock = lambda: now[0]  # noqa: E731
    # ran 30 s: up
    assert apis.stays_up(_Up([30.0]), 30, clock, sleep) is True
    # restarted: 0 s (in its back-off), then 10 s, ... until 30 s of its new run
    ctr = _Up([0.0, 0.0, 10.0, 30.0])
    assert apis.stays_up(ctr, 30, clock, sleep) is True and now[0] == 3.0
    # a crash loop never gets to 30 s
    loop = _Up([])
    loop.runs_last = 5.0
    assert apis.stays_up(loop, 30, clock, sleep) is False
    # a container that exited for good fails at once
    now[0] = 0.0
    assert apis.stays_up(_Up([0.0], gone=True), 30, clock, sleep) is False and now[0] == 0.0
