#!/bin/sh
# @NAME@: after removal (deb postrm remove|purge|upgrade|..., RPM %postun 0|1).
# Purge (deb only; RPM has none) removes what running created: the service's
# state directory (the leaf's config cache, which it fetches anew). It keeps
# the oxcross user and group (as Debian's packages do: files an operator gave
# them may remain) and what an operator may have put in /etc/oxcross. dpkg
# itself removes the package's configuration files.
set -e

case "$1" in
    remove|purge|0) ;;
    *) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
[ "$1" = purge ] || exit 0

rm -rf /var/lib/@NAME@

exit 0
