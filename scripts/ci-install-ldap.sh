#!/usr/bin/env bash
# Installs the directory servers the LDAP integration tests start themselves (OpenLDAP slapd,
# Samba AD DC, ldap-utils, openssl). Idempotent and non-interactive. The tests never use the
# system services: they run their own slapd/samba on free ports from temp dirs, so any service
# the packages start is stopped and disabled here.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null || need+=(ldap-utils)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/samba ] || need+=(samba)
[ -e /usr/lib/x86_64-linux-gnu/samba/vfs/acl_xattr.so ] || dpkg -s samba-vfs-modules >/dev/null 2>&1 || need+=(samba-vfs-modules)
command -v samba-tool >/dev/null || need+=(samba-ad-provision)
dpkg -s samba-ad-provision >/dev/null 2>&1 || need+=(samba-ad-provision)

if [ ${#need[@]} -gt 0 ]; then
  # Preseed slapd so it does not prompt (the tests never use its default database).
  echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
  # Do not start services from maintainer scripts where policy-rc.d is honoured.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    slapd ldap-utils openssl samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind krb5-user >/dev/null
fi

# Stop and disable any system service the packages may have started.
for svc in slapd samba-ad-dc smbd nmbd winbind; do
  if command -v systemctl >/dev/null && systemctl list-unit-files "$svc.service" >/dev/null 2>&1; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
  if [ -x "/etc/init.d/$svc" ]; then
    $SUDO "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
  fi
done

# AppArmor may confine /usr/sbin/slapd to its system paths; the tests use temp dirs.
if command -v aa-status >/dev/null && [ -e /etc/apparmor.d/usr.sbin.slapd ]; then
  $SUDO ln -sf /etc/apparmor.d/usr.sbin.slapd /etc/apparmor.d/disable/ 2>/dev/null || true
  $SUDO apparmor_parser -R /etc/apparmor.d/usr.sbin.slapd 2>/dev/null || true
fi

/usr/sbin/slapd -VV 2>&1 | head -1
/usr/sbin/samba -V
