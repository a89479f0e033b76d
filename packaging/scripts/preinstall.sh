#!/bin/sh
# @NAME@: before unpacking (deb preinst install|upgrade, rpm %pre 1|2).
# Creates the oxcross system user and group that every Oxcross service runs
# as; the three packages share them.
set -e

if ! getent group oxcross >/dev/null; then
    groupadd --system oxcross
fi
if ! getent passwd oxcross >/dev/null; then
    useradd --system --gid oxcross --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Oxcross services" oxcross
fi
exit 0
