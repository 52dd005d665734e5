"""A private OpenLDAP server for tests: its own cn=config, mdb database and loopback port, loaded from
directory.ldif. It never touches the system slapd (which need not run) nor /etc/ldap/slapd.d.

    config:  slapd.conf (written here) -> `slaptest -n 0 -f slapd.conf -F slapd.d` -> a cn=config directory
    data:    `slapadd -F slapd.d -b dc=example,dc=test -l directory.ldif` into an mdb database, offline
    serve:   `slapd -d 0 -h ldap://127.0.0.1:<free port>/ -F slapd.d` in the foreground, as a child process
    ready:   when a bind as the reader account succeeds; stopped with SIGTERM at the end of the session
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DIRECTORY_LDIF = HERE / "directory.ldif"
SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-ldap-password"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-ldap-password"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
# The group -> tenant role map the tests configure (NEXUS_LDAP_ROLE_MAP); the tenants are nexus_world's.
ROLE_MAP = {
    f"cn=developers,{GROUPS}": {"tenant": "acme", "role": "developer"},
    f"cn=viewers,{GROUPS}": {"tenant": "acme", "role": "viewer"},
    f"cn=globex-operators,{GROUPS}": {"tenant": "globex", "role": "operator"},
}
_SCHEMA_DIRS = (Path("/etc/ldap/schema"), Path("/etc/openldap/schema"))
_MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib64/openldap"), Path("/usr/lib/openldap"))


def password_of(uid: str) -> str:
    return f"{uid}-ldap-password"


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/sbin") / name
    return str(candidate) if candidate.exists() else None


def slapd_binary() -> str | None:
    return _tool("slapd")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Slapd:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.config_dir = workdir / "slapd.d"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "slapd.log"
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def _slapd_conf(self) -> str:
        schema_dir = next(d for d in _SCHEMA_DIRS if (d / "core.schema").exists())
        module_dir = next((d for d in _MODULE_DIRS if any(d.glob("back_mdb*"))), None)
        modules = f"modulepath {module_dir}\nmoduleload back_mdb\n" if module_dir else ""  # else built in
        schemas = "".join(f"include {schema_dir / name}.schema\n" for name in ("core", "cosine", "inetorgperson"))
        return (
            f"{schemas}{modules}"
            f"pidfile {self.workdir / 'slapd.pid'}\n"
            f"argsfile {self.workdir / 'slapd.args'}\n"
            "database mdb\n"
            "maxsize 33554432\n"
            f'suffix "{SUFFIX}"\n'
            f'rootdn "{ROOT_DN}"\n'
            f"rootpw {ROOT_PASSWORD}\n"
            f"directory {self.data_dir}\n"
            "index objectClass eq\n"
            "index uid eq\n"
            "index member eq\n"
            "access to attrs=userPassword by self write by anonymous auth by * none\n"
            "access to * by users read by * none\n"
        )

    def _run(self, *args: str) -> None:
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")

    def start(self, timeout_s: float = 15.0) -> None:
        self.config_dir.mkdir()
        self.data_dir.mkdir()
        conf = self.workdir / "slapd.conf"
        conf.write_text(self._slapd_conf())
        # -n 0: check and convert only cn=config; the mdb database does not exist until slapadd creates it.
        self._run(_tool("slaptest"), "-Q", "-n", "0", "-f", str(conf), "-F", str(self.config_dir))
        self._run(_tool("slapadd"), "-q", "-F", str(self.config_dir), "-b", SUFFIX, "-l", str(DIRECTORY_LDIF))
        for _attempt in range(3):  # a free port can be taken between choosing it and slapd binding it
            self.port = _free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [slapd_binary(), "-d", "0", "-h", f"{self.uri}/", "-F", str(self.config_dir)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_until_ready(timeout_s):
                return
        raise RuntimeError(f"slapd did not start:\n{self.log_path.read_text()[-4000:]}")

    def _wait_until_ready(self, timeout_s: float) -> bool:
        import ldap

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                connection = ldap.initialize(self.uri)
                connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 1.0)
                connection.simple_bind_s(READER_DN, READER_PASSWORD)
                connection.unbind_s()
                return True
            except ldap.LDAPError:
                time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def admin(self):
        """A connection bound as the directory's root, to change entries during a test."""
        import ldap

        connection = ldap.initialize(self.uri)
        connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        return connection

    def _group_change(self, operation: int, group: str, uid: str) -> None:
        connection = self.admin()
        try:
            connection.modify_s(f"cn={group},{GROUPS}", [(operation, "member", [f"uid={uid},{PEOPLE}".encode()])])
        finally:
            connection.unbind_s()

    def group_add(self, group: str, uid: str) -> None:
        import ldap

        self._group_change(ldap.MOD_ADD, group, uid)

    def group_remove(self, group: str, uid: str) -> None:
        import ldap

        self._group_change(ldap.MOD_DELETE, group, uid)

    def django_settings(self, **overrides) -> dict:
        """The settings Nexus derives from its NEXUS_LDAP_* variables, pointing at this server."""
        from apps.accounts.auth_config import ldap_settings

        values = {
            "uri": self.uri,
            "bind_dn": READER_DN,
            "bind_password": READER_PASSWORD,
            "user_search_base": PEOPLE,
            "group_search_base": GROUPS,
            "role_map": ROLE_MAP,
            **overrides,
        }
        return ldap_settings(**values)

    def environment(self) -> dict[str, str]:
        """The same configuration as environment variables, for processes started by e2e tests."""
        import json

        return {
            "NEXUS_LDAP_URI": self.uri,
            "NEXUS_LDAP_BIND_DN": READER_DN,
            "NEXUS_LDAP_BIND_PASSWORD": READER_PASSWORD,
            "NEXUS_LDAP_USER_SEARCH_BASE": PEOPLE,
            "NEXUS_LDAP_GROUP_SEARCH_BASE": GROUPS,
            "NEXUS_LDAP_ROLE_MAP": json.dumps(ROLE_MAP),
        }


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """A running private slapd for the whole session. Import this fixture into a conftest to use it."""
    if slapd_binary() is None:
        pytest.fail("slapd is not installed: deploy/scripts/setup.sh (run by make test) installs slapd and ldap-utils")
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
