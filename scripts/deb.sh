#!/usr/bin/env bash
# deb.sh - builds the Debian package build/courant_VERSION_ARCH.deb (make deb).
#
# No debian/ source tree and no dpkg-buildpackage: the optimized build is
# installed into a staging root by `make install` (PREFIX=/usr,
# SYSCONFDIR=/etc, the unit in /lib/systemd/system as Debian 12 does), and
# dpkg-deb packs it with a generated DEBIAN/control:
#   Version   scripts/version.sh, made Debian-shaped (0.1.0-3-gabc1234-dirty
#             -> 0.1.0+3.gabc1234.dirty-1)
#   Depends   computed by dpkg-shlibdeps from the binary's shared libraries
#             (libc6, libsqlite3-0, libssl3, libjansson4, libhiredis0.14), or
#             the list below when dpkg-dev is not installed
#   conffiles /etc/courant/courant.conf (an administrator's edits survive
#             upgrades; dpkg asks before replacing it)
# plus postinst/prerm/postrm from packaging/debian (enable and start the unit
# where systemd runs; purge removes the state). Files are owned by root
# (dpkg-deb --root-owner-group), so neither root nor fakeroot is needed.
#
# Env: CC, CFLAGS as for make. Prints the path of the package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FALLBACK_DEPENDS="libc6 (>= 2.34), libhiredis0.14 (>= 0.14.0), libjansson4 (>= 2.14), libsqlite3-0 (>= 3.35.0), libssl3 (>= 3.0.0)"

make -s -j"$(nproc 2>/dev/null || echo 2)" build/courant build/courant.1 build/courant.conf.example >/dev/null
version=$(scripts/version.sh)
# Debian: upstream part starts with a digit, '-' only before the revision.
base=${version%%-*}
rest=${version#"$base"}
debver="$base${rest:++${rest#-}}"
debver="${debver//-/.}-1"
arch=$(dpkg --print-architecture)

stage=build/deb/root
rm -rf build/deb
mkdir -p "$stage/DEBIAN"
make -s install DESTDIR="$PWD/$stage" PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/courant"
gzip -9n "$stage/usr/share/man/man1/courant.1"
install -m 644 LICENSE "$stage/usr/share/doc/courant/copyright"
install -m 644 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
echo /etc/courant/courant.conf >"$stage/DEBIAN/conffiles"

depends=$FALLBACK_DEPENDS
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    # dpkg-shlibdeps wants a debian/control beside it: give it a minimal one.
    work=build/deb/shlibdeps
    mkdir -p "$work/debian"
    printf 'Source: courant\n\nPackage: courant\nArchitecture: any\n' >"$work/debian/control"
    line=$(cd "$work" && dpkg-shlibdeps -O "$OLDPWD/$stage/usr/bin/courant" 2>/dev/null)
    depends=${line#shlibs:Depends=}
else
    echo "deb.sh: dpkg-shlibdeps (dpkg-dev) not found: using the fixed Depends list" >&2
fi

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: courant
Version: $debver
Architecture: $arch
Maintainer: courant developers <courant@localhost>
Installed-Size: $size
Depends: $depends
Section: net
Priority: optional
Description: Server-Sent Events hub (Mercure protocol)
 courant fans events published over HTTP out to every subscriber of their
 topics, keeps history so reconnecting clients miss nothing (Last-Event-ID),
 and speaks the Mercure protocol. The package runs it as a hardened systemd
 service (courant.service) configured by /etc/courant/courant.conf, with its
 durable history in /var/lib/courant. The same binary is a command-line
 client: courant token, courant pub, courant sub.
CONTROL

(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"

out="build/courant_${debver}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
