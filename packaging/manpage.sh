#!/bin/sh
# packaging/manpage.sh BINARY — print the relaypro(8) man page (roff) for BINARY.
#
# The command list and each command's usage come from the binary itself (`relaypro help`
# and `relaypro COMMAND --help`, one table in src/main.c), laid into packaging/relaypro.8.in
# at @COMMANDS@; @VERSION@ and @DATE@ are filled in too. So the man page cannot say other
# than the help text: packaging/package.sh runs this for the packages, and
# tests/integration/test_packages.py compares the installed page with a fresh run.
set -eu
bin=$1
here=$(dirname "$0")
version=$("$bin" version | awk '{print $2}')
date=$(LC_ALL=C date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)

# roff-safe text: backslashes doubled as \e, a leading . or ' guarded with \&
roff() {
	sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" -e 's/-/\\-/g'
}

commands() {
	# the names in `relaypro help`: indented lines of the "commands:" section
	"$bin" help | awk '/^commands:/{on=1;next} on&&/^$/{exit} on{sub(/^  /,""); split($0,a,/  +/); print a[1]}' |
		while IFS= read -r name; do
			# shellcheck disable=SC2086 # "ca show" is two words on purpose
			out=$("$bin" $name --help)
			synopsis=$(printf '%s\n' "$out" | sed -n '1s/^usage: //p')
			echo ".SS $(printf '%s\n' "$name" | roff)"
			echo ".B $(printf '%s\n' "$synopsis" | roff)"
			echo ".PP"
			printf '%s\n' "$out" | sed '1,2d' | roff | sed 's/^$/.PP/'
		done
}

cmds=$(mktemp)
trap 'rm -f "$cmds"' EXIT
commands >"$cmds"
awk -v version="$version" -v date="$date" -v cmds="$cmds" '
	/^@COMMANDS@$/ { while ((getline l < cmds) > 0) print l; next }
	{ gsub(/@VERSION@/, version); gsub(/@DATE@/, date); print }
' "$here/relaypro.8.in"
