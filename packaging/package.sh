#!/usr/bin/env bash
# packaging/package.sh — build the host packages of relaypro from the static binaries in dist/
# (run ./build.sh first):
#
#   dist/relaypro_<version>_amd64.deb       dist/relaypro-<version>-1.x86_64.rpm
#   dist/relaypro_<version>_arm64.deb       dist/relaypro-<version>-1.aarch64.rpm
#
#   packaging/package.sh            all four
#   packaging/package.sh deb|rpm    one format, both architectures
#
# Install (the -E keeps the AIR_* variables, which seed /opt/relaypro/config.ini on the
# first install; an existing config.ini is never overwritten):
#
#   sudo -E dpkg -i relaypro_<version>_<arch>.deb
#   sudo -E rpm -i relaypro-<version>-1.<arch>.rpm
#   with AIR_CONSOLE_ADDRESS, AIR_ORGANIZATION_ID, AIR_DEPLOYMENT_TOKEN exported, e.g.
#   AIR_CONSOLE_ADDRESS=console.example.com AIR_ORGANIZATION_ID=42 \
#       AIR_DEPLOYMENT_TOKEN=... sudo -E dpkg -i relaypro_0.1.0_amd64.deb
#
# Contents: /usr/bin/relaypro; the systemd unit (packaging/relaypro.service) at
# /lib/systemd/system (deb) or /usr/lib/systemd/system (rpm); the man page relaypro(8)
# (packaging/manpage.sh); README, relaypro.ini.example and copyright under
# /usr/share/doc/relaypro; lintian overrides (deb). The scripts create the system user and
# group `relaypro` (home /opt/relaypro), the folder /opt/relaypro (relaypro:relaypro, 0750),
# seed the config from AIR_* (packaging/seed-config.sh, the same text in both formats), and
# enable + start the service when systemd is running; an upgrade hands over with SIGUSR2;
# removal stops it. `dpkg --purge` deletes the config and logs but keeps the CA bundle
# (/opt/relaypro/private, and the user owning it) unless RELAYPRO_PURGE_CA=yes is set;
# `rpm -e` keeps /opt/relaypro and the user. docs/packaging.md has the details and the
# lintian/rpmlint results.
#
# Needs dpkg-dev (dpkg-deb) and rpm (rpmbuild) from Debian; the rpms are built for either
# architecture on any host (prebuilt binaries, no strip, no debug packages, no brp scripts).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' Makefile)
[ -n "$VERSION" ] || { echo "package.sh: no VERSION in Makefile" >&2; exit 1; }
RELEASE=1
# Override with RELAYPRO_MAINTAINER="Name <mail>" (the default is a placeholder address).
MAINTAINER=${RELAYPRO_MAINTAINER:-"relaypro maintainers <relaypro@example.com>"}
SUMMARY="authenticated HTTPS relay to a management console"
# Reproducible timestamps: the last commit, else now.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

WORK=$(mktemp -d "${TMPDIR:-/tmp}/relaypro-pkg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The binary for one Debian architecture, checked: present, static, and (when this host
# can run it, natively or under qemu) reporting the version we package.
binary_for() {
	local a=$1 b=dist/relaypro-linux-$1 out
	[ -f "$b" ] || { echo "package.sh: $b missing (run ./build.sh)" >&2; exit 1; }
	file -b "$b" | grep -q 'statically linked' || { echo "package.sh: $b is not static" >&2; exit 1; }
	out=""
	if [ "$a" = "$(dpkg --print-architecture)" ]; then
		out=$("$b" version)
	elif [ "$a" = arm64 ] && command -v qemu-aarch64-static >/dev/null; then
		out=$(qemu-aarch64-static "$b" version)
	fi
	if [ -n "$out" ] && [ "${out#relaypro "$VERSION" linux/"$a"}" = "$out" ]; then
		echo "package.sh: $b says '$out', want relaypro $VERSION linux/$a" >&2
		exit 1
	fi
	echo "$b"
}

# ---------------------------------------------------------------- shared script pieces
# Plain POSIX sh, used verbatim by both formats.

# Create the system group and user if missing (no login shell, home /opt/relaypro).
# shellcheck disable=SC2016 # expanded by the maintainer script, not here
SH_USER='
if ! getent group relaypro >/dev/null; then
	groupadd --system relaypro
fi
if ! getent passwd relaypro >/dev/null; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	[ -x "$nologin" ] || nologin=/bin/false
	useradd --system --gid relaypro --home-dir /opt/relaypro --no-create-home \
		--shell "$nologin" --comment "relaypro relay" relaypro
fi'

# /opt/relaypro (the user's home: relaypro hands it its state there), and the config
# seeded from AIR_* when it does not exist (packaging/seed-config.sh, embedded unchanged).
# A config always exists afterwards (the unit passes -c, and a missing file is an error).
SH_SEED="
install -d -m 0750 -o relaypro -g relaypro /opt/relaypro
RELAYPRO_SEED_LIB=1
$(cat packaging/seed-config.sh)
relaypro_seed_config /opt/relaypro/config.ini relaypro:relaypro"

# First install: enable and start, only when systemd runs this machine.
SH_START='
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	systemctl enable relaypro.service || true
	systemctl start relaypro.service || true
fi'

# Upgrade without dropping a connection: the running relay gets SIGUSR2 and starts the new
# /usr/bin/relaypro (already in place) with its listening sockets, then drains (README "Signals";
# the unit has NotifyAccess=all for the hand-over). A stopped but enabled service is
# started; if the running one cannot take SIGUSR2, it is restarted.
SH_UPGRADE='
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if systemctl is-active --quiet relaypro.service; then
		systemctl kill --kill-whom=main -s USR2 relaypro.service || systemctl restart relaypro.service || true
	elif systemctl is-enabled --quiet relaypro.service; then
		systemctl start relaypro.service || true
	fi
fi'

SH_STOP='
if [ -d /run/systemd/system ]; then
	systemctl stop relaypro.service || true
fi'

SH_DAEMON_RELOAD='
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi'

# Purge (deb): the config, registration and logs go; the CA bundle stays unless the
# operator asks (every Responder pinned that CA: a new one means re-pinning them all), and
# with it the user that owns it. RELAYPRO_PURGE_CA=yes removes /opt/relaypro and the user.
# shellcheck disable=SC2016 # expanded by the maintainer script, not here
SH_PURGE='
if [ -d /opt/relaypro ]; then
	if [ "${RELAYPRO_PURGE_CA:-}" != yes ] && [ -e /opt/relaypro/private/ca-bundle.pem ]; then
		find /opt/relaypro -mindepth 1 -maxdepth 1 ! -name private -exec rm -rf {} +
		echo "relaypro: kept /opt/relaypro/private/ca-bundle.pem (Responders pin this CA) and the relaypro user owning it"
		echo "relaypro: to remove them too: RELAYPRO_PURGE_CA=yes dpkg --purge relaypro"
	else
		rm -rf /opt/relaypro
	fi
fi
if [ ! -e /opt/relaypro ]; then
	if getent passwd relaypro >/dev/null; then
		userdel relaypro || true
	fi
	if getent group relaypro >/dev/null; then
		groupdel relaypro || true
	fi
fi'

# ---------------------------------------------------------------- documentation
write_copyright() {
	cat >"$1" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: relaypro
Comment: /usr/bin/relaypro is a static binary that also contains BearSSL, inih and the
 musl C library, whose notices follow.

Files: *
Copyright: relaypro authors
License: proprietary
 All rights reserved. No license has been granted yet.

Files: BearSSL (statically linked)
Copyright: 2016 Thomas Pornin <pornin@bolet.org>
License: MIT

Files: inih (statically linked)
Copyright: 2009 Ben Hoyt
License: BSD-3-clause
 Redistribution and use in source and binary forms, with or without modification, are
 permitted provided that the following conditions are met:
 .
 1. Redistributions of source code must retain the above copyright notice, this list of
    conditions and the following disclaimer.
 2. Redistributions in binary form must reproduce the above copyright notice, this list
    of conditions and the following disclaimer in the documentation and/or other
    materials provided with the distribution.
 3. Neither the name of the copyright holder nor the names of its contributors may be
    used to endorse or promote products derived from this software without specific
    prior written permission.
 .
 THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY
 EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF
 MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL
 THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,
 SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO,
 PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
 INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT,
 STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF
 THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

Files: musl (statically linked)
Copyright: 2005-2020 Rich Felker, et al.
License: MIT

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this
 software and associated documentation files (the "Software"), to deal in the Software
 without restriction, including without limitation the rights to use, copy, modify,
 merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
 permit persons to whom the Software is furnished to do so, subject to the following
 conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies
 or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
 PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
 HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
 CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR
 THE USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF
}

# ---------------------------------------------------------------- .deb
build_deb() {
	local a=$1 bin root out
	bin=$(binary_for "$a")
	root=$WORK/deb-$a
	out=dist/relaypro_${VERSION}_${a}.deb
	rm -rf "$root"
	install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
		"$root/usr/share/doc/relaypro" "$root/usr/share/man/man8" "$root/usr/share/lintian/overrides"
	install -m 0755 "$bin" "$root/usr/bin/relaypro"
	install -m 0644 packaging/relaypro.service "$root/lib/systemd/system/relaypro.service"
	# /opt/relaypro is not in the archive: postinst makes it, owned by relaypro (the build
	# host has no such user).
	install -m 0644 README.md "$root/usr/share/doc/relaypro/README.md"
	install -m 0644 packaging/relaypro.ini.example "$root/usr/share/doc/relaypro/relaypro.ini.example"
	gzip -n -9 <"$WORK/relaypro.8" >"$root/usr/share/man/man8/relaypro.8.gz"
	chmod 0644 "$root/usr/share/man/man8/relaypro.8.gz"
	install -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/relaypro"
	write_copyright "$root/usr/share/doc/relaypro/copyright"
	chmod 0644 "$root/usr/share/doc/relaypro/copyright"
	{
		echo "relaypro ($VERSION) unstable; urgency=medium"
		echo
		echo "  * Release $VERSION."
		echo
		echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
	} | gzip -n -9 >"$root/usr/share/doc/relaypro/changelog.gz"
	chmod 0644 "$root/usr/share/doc/relaypro/changelog.gz"

	cat >"$root/DEBIAN/control" <<EOF
Package: relaypro
Version: $VERSION
Architecture: $a
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Pre-Depends: passwd
Section: net
Priority: optional
Description: $SUMMARY
 relaypro lets endpoint agents that cannot reach their management console
 connect to it over TLS, authenticate, and open HTTP CONNECT tunnels to the
 console, and only to the console. One static binary, run by systemd as the
 relaypro user; configuration in /opt/relaypro/config.ini.
EOF

	# preinst: the user exists before the files are unpacked.
	cat >"$root/DEBIAN/preinst" <<EOF
#!/bin/sh
set -e
case "\$1" in
install | upgrade)
$SH_USER
	;;
esac
exit 0
EOF
	cat >"$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
case "\$1" in
configure)
$SH_USER
$SH_SEED
	if [ -z "\$2" ]; then
		# first install
$SH_START
	else
		# upgrade (or reinstall): \$2 is the version configured before
$SH_UPGRADE
	fi
	;;
esac
exit 0
EOF
	cat >"$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
case "\$1" in
remove | deconfigure)
$SH_STOP
	;;
esac
exit 0
EOF
	cat >"$root/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
case "\$1" in
remove)
$SH_DAEMON_RELOAD
	;;
purge)
	# The unit file is gone: drop what enabling it created, by hand.
	rm -f /etc/systemd/system/multi-user.target.wants/relaypro.service
	rm -rf /var/lib/systemd/deb-systemd-helper-enabled/relaypro.service.dsh-also
$SH_DAEMON_RELOAD
$SH_PURGE
	;;
esac
exit 0
EOF
	chmod 0755 "$root/DEBIAN/preinst" "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
	chmod 0644 "$root/DEBIAN/control"
	(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
		xargs -0 md5sum) >"$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/md5sums"
	dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
	echo "$out"
}

# ---------------------------------------------------------------- .rpm
build_rpm() {
	local a=$1 ra bin top out
	case "$a" in
	amd64) ra=x86_64 ;;
	arm64) ra=aarch64 ;;
	*) echo "package.sh: no rpm arch for $a" >&2; exit 1 ;;
	esac
	bin=$(binary_for "$a")
	top=$WORK/rpm-$a
	rm -rf "$top"
	mkdir -p "$top/SOURCES" "$top/SPECS" "$top/BUILD" "$top/RPMS" "$top/BUILDROOT"
	cp "$bin" "$top/SOURCES/relaypro"
	cp packaging/relaypro.service README.md packaging/relaypro.ini.example "$WORK/relaypro.8" "$top/SOURCES/"
	write_copyright "$top/SOURCES/copyright"

	# In a spec every % starts a macro (%% is one %): the shell text is escaped, so that
	# rpm -qp --scripts shows exactly what packaging/*.sh say.
	local r_user r_seed r_start r_upgrade r_reload
	r_user=${SH_USER//%/%%}
	r_seed=${SH_SEED//%/%%}
	r_start=${SH_START//%/%%}
	r_upgrade=${SH_UPGRADE//%/%%}
	r_reload=${SH_DAEMON_RELOAD//%/%%}
	cat >"$top/SPECS/relaypro.spec" <<EOF
# Generated by packaging/package.sh; prebuilt static binary, nothing is compiled here.
%global debug_package %{nil}
%define __strip /bin/true
%define __os_install_post %{nil}
%define _build_id_links none
%define _binary_payload w9.xzdio
%define _source_payload w9.xzdio
%define _unitdir /usr/lib/systemd/system

Name:           relaypro
Version:        $VERSION
Release:        $RELEASE
Summary:        Authenticated HTTPS relay to a management console
License:        LicenseRef-proprietary AND MIT AND BSD-3-Clause
Packager:       $MAINTAINER
Group:          System Environment/Daemons
AutoReqProv:    no
Requires(pre):  /usr/sbin/useradd, /usr/sbin/groupadd, /usr/bin/getent
Requires(post): /usr/bin/getent

%description
relaypro lets endpoint agents that cannot reach their management console
connect to it over TLS, authenticate, and open HTTP CONNECT tunnels to the
console, and only to the console. One static binary, run by systemd as the
relaypro user; configuration in /opt/relaypro/config.ini.

%prep
%build

%install
install -D -m 0755 %{_sourcedir}/relaypro %{buildroot}/usr/bin/relaypro
install -D -m 0644 %{_sourcedir}/relaypro.service %{buildroot}%{_unitdir}/relaypro.service
install -D -m 0644 %{_sourcedir}/README.md %{buildroot}/usr/share/doc/relaypro/README.md
install -D -m 0644 %{_sourcedir}/relaypro.ini.example %{buildroot}/usr/share/doc/relaypro/relaypro.ini.example
install -D -m 0644 %{_sourcedir}/relaypro.8 %{buildroot}/usr/share/man/man8/relaypro.8
bzip2 -9 %{buildroot}/usr/share/man/man8/relaypro.8
install -D -m 0644 %{_sourcedir}/copyright %{buildroot}/usr/share/licenses/relaypro/copyright

%pre
$r_user
exit 0

%post
$r_seed
if [ "\$1" -eq 1 ]; then
	# first install
$r_start
else
	# upgrade: \$1 is the number of relaypro packages installed now (2)
$r_upgrade
fi
exit 0

%preun
if [ "\$1" -eq 0 ]; then
	# erase (not upgrade)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now relaypro.service || true
	fi
fi
exit 0

%postun
$r_reload
if [ "\$1" -eq 0 ] && [ -d /opt/relaypro ]; then
	echo "relaypro: kept /opt/relaypro (config.ini, private/ca-bundle.pem: Responders pin this CA) and the relaypro user"
fi
exit 0

%files
%attr(0755,root,root) /usr/bin/relaypro
%attr(0644,root,root) %{_unitdir}/relaypro.service
%doc /usr/share/doc/relaypro/README.md
%doc /usr/share/doc/relaypro/relaypro.ini.example
%{_mandir}/man8/relaypro.8*
%license /usr/share/licenses/relaypro/copyright

%changelog
* $(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y') $MAINTAINER - $VERSION-$RELEASE
- Release $VERSION.
EOF
	rpmbuild --quiet -bb --target "$ra-linux" \
		--define "_topdir $top" --define "_tmppath $top/tmp" \
		--define "_rpmdir $top/RPMS" --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
		--define "use_source_date_epoch_as_buildtime 1" \
		--define "clamp_mtime_to_source_date_epoch 1" \
		"$top/SPECS/relaypro.spec" >"$top/rpmbuild.log" 2>&1 || {
		cat "$top/rpmbuild.log" >&2
		exit 1
	}
	out=dist/relaypro-$VERSION-$RELEASE.$ra.rpm
	mv -f "$top/RPMS/relaypro-$VERSION-$RELEASE.$ra.rpm" "$out"
	echo "$out"
}

# relaypro(8) from the binary's own help text: whichever binary runs here.
man_page() {
	local b
	for b in dist/relaypro-linux-amd64 dist/relaypro-linux-arm64; do
		if "$b" version >/dev/null 2>&1; then
			packaging/manpage.sh "$b" >"$WORK/relaypro.8"
			return
		fi
	done
	echo "package.sh: neither binary in dist/ runs here (needed for the man page)" >&2
	exit 1
}

command -v dpkg-deb >/dev/null || { echo "package.sh: dpkg-deb missing (apt-get install dpkg-dev)" >&2; exit 1; }
man_page
case "${1:-all}" in
all) for a in amd64 arm64; do build_deb "$a"; build_rpm "$a"; done ;;
deb) for a in amd64 arm64; do build_deb "$a"; done ;;
rpm) for a in amd64 arm64; do build_rpm "$a"; done ;;
*) echo "usage: packaging/package.sh [all|deb|rpm]" >&2; exit 2 ;;
esac
