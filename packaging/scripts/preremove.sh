#!/bin/sh
# @NAME@: before removal (deb prerm remove|upgrade|..., rpm %preun 0|1).
# Removal (not an upgrade) stops and disables the service.
set -e

unit=@NAME@.service
case "$1" in
    remove|0) ;;
    *) exit 0 ;;                        # upgrade: postinstall restarts it
esac

if [ -d /run/systemd/system ]; then
    systemctl stop "$unit" >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1; then
    systemctl --no-reload disable "$unit" >/dev/null 2>&1 || true
fi
exit 0
