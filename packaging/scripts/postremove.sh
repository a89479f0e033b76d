#!/bin/sh
# @NAME@: after removal (deb postrm remove|purge|upgrade|..., rpm %postun 0|1).
# Purge (deb only; rpm has none) removes what installing and running
# created: the service's state directory (the leaf's config cache, which it
# fetches anew), and the oxcross user and group once no Oxcross package is
# left. It keeps what an operator may have put there: other files in
# /etc/oxcross, and files elsewhere owned by oxcross. dpkg itself removes
# the package's configuration files.
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

for bin in oxcross-leaf oxcross-origin oxcross-configserver; do
    [ -e /usr/bin/$bin ] && exit 0      # another Oxcross package still uses the user
done
if getent passwd oxcross >/dev/null; then
    userdel oxcross >/dev/null 2>&1 || echo "@NAME@: could not remove the user oxcross" >&2
fi
if getent group oxcross >/dev/null; then
    groupdel oxcross >/dev/null 2>&1 || echo "@NAME@: could not remove the group oxcross" >&2
fi
exit 0
