#!/bin/sh
# @NAME@: after unpacking (deb postinst configure [old-version], rpm %post 1|2).
# Creates the oxcross system user and group that every Oxcross service runs
# as (the three packages share them; no file of the packages is theirs, so
# no preinst needs them), as Debian's packages do in postinst. Purging never
# removes them: files an operator gave them may remain, and a new user with
# the same id would own them. Tells systemd about the unit; an upgrade restarts a running service with
# the new binary. A first install neither enables nor starts the service:
# it needs its settings first (the message below says where). Quiet where
# systemd does not run (containers, chroots, image builds).
set -e

unit=@NAME@.service
case "$1" in
    configure) upgrade=$2 ;;            # deb: $2 is the version upgraded from
    1) upgrade="" ;;                    # rpm: first install
    [0-9]*) upgrade=yes ;;              # rpm: upgrade
    *) exit 0 ;;                        # deb abort-upgrade, abort-remove, ...
esac

if ! getent group oxcross >/dev/null; then
    groupadd --system oxcross
fi
if ! getent passwd oxcross >/dev/null; then
    useradd --system --gid oxcross --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Oxcross services" oxcross
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if [ -n "$upgrade" ]; then
        systemctl try-restart "$unit" >/dev/null 2>&1 || true
    fi
fi

if [ -z "$upgrade" ]; then
    settings=/etc/sysconfig/@NAME@
    [ "$1" = configure ] && settings=/etc/default/@NAME@
    echo "@NAME@: settings are in $settings; then: systemctl enable --now $unit"
fi
exit 0
