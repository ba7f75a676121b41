#!/bin/sh
# packaging/seed-config.sh — write relaypro's first configuration from the install-time
# variables AIR_CONSOLE_ADDRESS, AIR_ORGANIZATION_ID and AIR_DEPLOYMENT_TOKEN (they seed
# consoleAddress, organizationId and deploymentToken).
#
#   sh packaging/seed-config.sh CONFIG [OWNER]
#
# One source for both packages: packaging/package.sh embeds this file, unchanged, in the
# .deb postinst and the .rpm %post (with RELAYPRO_SEED_LIB=1, so only the function is
# defined there) and calls relaypro_seed_config /opt/relaypro/config.ini relaypro:relaypro.
#
# CONFIG is written only when it does not exist (an existing one is never touched), through
# a temporary file in the same folder renamed over it: mode 0600, owner OWNER (user:group)
# when given. Each value is written as it is, after "key = ": a console address with a port,
# IPv6 brackets, '=', ':', ';' or '#' inside a value are all kept (relaypro has no inline
# comments). A value is left out, with a line on standard error, when the relay could not
# read it back as given: a line break or another control character, blanks at either end
# (the INI reader trims them), a line over 197 characters, or an organizationId that is not
# decimal digits. Without any AIR_* value the file holds comments only. Plain POSIX sh.
relaypro_seed_config() {
	_rp_cfg=$1
	_rp_owner=${2:-}
	[ -e "$_rp_cfg" ] && return 0
	_rp_tmp="$_rp_cfg.seed.$$"
	rm -f "$_rp_tmp"
	(
		umask 077
		echo "; relaypro configuration, written at install time from the AIR_* variables."
		echo "; Every key: relaypro(8), /usr/share/doc/relaypro/relaypro.ini.example."
		echo "; The relay adds relayProId, and relayId, registeredTo and securityToken once"
		echo "; it has registered with the console."
		for _rp_key in consoleAddress organizationId deploymentToken; do
			case $_rp_key in
			consoleAddress) _rp_var=AIR_CONSOLE_ADDRESS; _rp_val=${AIR_CONSOLE_ADDRESS:-} ;;
			organizationId) _rp_var=AIR_ORGANIZATION_ID; _rp_val=${AIR_ORGANIZATION_ID:-} ;;
			deploymentToken) _rp_var=AIR_DEPLOYMENT_TOKEN; _rp_val=${AIR_DEPLOYMENT_TOKEN:-} ;;
			esac
			[ -n "$_rp_val" ] || continue
			_rp_why=""
			case $_rp_val in
			*[[:cntrl:]]*) _rp_why="it contains a line break or another control character" ;;
			[[:space:]]* | *[[:space:]]) _rp_why="it begins or ends with a blank" ;;
			esac
			if [ -z "$_rp_why" ] && [ $((${#_rp_key} + 3 + ${#_rp_val})) -gt 197 ]; then
				_rp_why="the line would be longer than 197 characters"
			fi
			if [ -z "$_rp_why" ] && [ "$_rp_key" = organizationId ]; then
				case $_rp_val in
				*[!0-9]*) _rp_why="it is not a decimal number" ;;
				esac
			fi
			if [ -n "$_rp_why" ]; then
				# the value itself is never echoed: it may be a secret
				echo "relaypro: $_rp_var not written to $_rp_cfg: $_rp_why" >&2
				continue
			fi
			echo "$_rp_key = $_rp_val"
		done
	) >"$_rp_tmp" || { rm -f "$_rp_tmp"; return 1; }
	if [ -n "$_rp_owner" ]; then
		chown "$_rp_owner" "$_rp_tmp" || { rm -f "$_rp_tmp"; return 1; }
	fi
	chmod 0600 "$_rp_tmp"
	mv -f "$_rp_tmp" "$_rp_cfg"
	echo "relaypro: wrote $_rp_cfg"
}

if [ -z "${RELAYPRO_SEED_LIB:-}" ]; then
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then
		echo "usage: sh packaging/seed-config.sh CONFIG [OWNER]" >&2
		exit 2
	fi
	relaypro_seed_config "$@"
fi
