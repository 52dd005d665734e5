#!/usr/bin/env bash
# Install what Nexus needs on a fresh Debian machine: system packages (only the missing ones),
# the .venv with pinned requirements, and the `nexus` command. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

need=()
for pkg in libldap2-dev libsasl2-dev haproxy python3-venv; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
if (( ${#need[@]} )); then
  echo "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# OpenLDAP for the LDAP login tests: they start their own slapd (tests/ldap/), so the system one need not
# run. Preseeding debconf keeps the install from asking questions; the password only guards that
# unused system directory, so a random one is fine.
ldap_need=()
command -v slapd >/dev/null 2>&1 || [[ -x /usr/sbin/slapd ]] || ldap_need+=(slapd)
command -v ldapadd >/dev/null 2>&1 || ldap_need+=(ldap-utils)
if (( ${#ldap_need[@]} )); then
  echo "installing system packages: ${ldap_need[*]}"
  ldap_admin_password=$(head -c 18 /dev/urandom | base64)
  $SUDO debconf-set-selections <<DEBCONF
slapd slapd/no_configuration boolean false
slapd slapd/domain string example.test
slapd shared/organization string Example
slapd slapd/password1 password $ldap_admin_password
slapd slapd/password2 password $ldap_admin_password
slapd slapd/purge_database boolean true
slapd slapd/move_old_database boolean true
DEBCONF
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${ldap_need[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "installing Python requirements into .venv"
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi

# The Python client (clients/python), editable: the tests import this checkout's copy. Skipped when installed.
client_dir="$(pwd)/clients/python/"
if ! .venv/bin/python -c 'import sys, nexus_client; sys.exit(not nexus_client.__file__.startswith(sys.argv[1]))' \
    "$client_dir" 2>/dev/null; then
  echo "installing the Python client (clients/python) into .venv"
  .venv/bin/pip install -q --no-deps -e clients/python
fi

# `nexus` is `manage.py nexus` with this checkout's interpreter, callable from anywhere.
root=$(pwd)
cat > .venv/bin/nexus <<SH
#!/usr/bin/env bash
exec "$root/.venv/bin/python" "$root/manage.py" nexus "\$@"
SH
chmod +x .venv/bin/nexus

# And on the PATH: linked into ~/.local/bin when that directory is on the PATH and holds no other `nexus`
# (another checkout's link is left alone); otherwise `nexus up` prints the line that puts .venv/bin on the PATH.
local_bin="$HOME/.local/bin"
if [[ ":$PATH:" == *":$local_bin:"* && ! -e "$local_bin/nexus" && ! -L "$local_bin/nexus" ]]; then
  ln -s "$root/.venv/bin/nexus" "$local_bin/nexus"
  echo "linked $local_bin/nexus -> $root/.venv/bin/nexus"
fi
