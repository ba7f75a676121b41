/*
 * config_dump.c — check-config's output: the effective configuration, one "section.key =
 * value" line per key of the table, in the table's order. See config.h (config_dump).
 *
 * It owns the printed form of each type (durations in seconds, lists joined by commas,
 * times in RFC 3339). It only reads struct config and must never print a secret: keys
 * flagged F_SECRET show "<set>" or nothing, an inline PEM shows "<inline PEM>".
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "config_int.h"

static void
dump_line(int fd, const char *section, const char *name, const char *value)
{
	dprintf(fd, "%s%s%s = %s\n", section, *section ? "." : "", name, value);
}

/* see config.h */
void
config_dump(const struct config *cfg, int fd)
{
	size_t k;

	dprintf(fd, "# config file: %s\n", cfg->file[0] ? cfg->file : "(none: environment only)");
	for (k = 0; k < CFG_NKEYS; k++) {
		const struct cfg_key *key = &config_keys[k];
		const char *field = (const char *)cfg + key->off;
		char buf[CFG_STR * 4];
		int i, o = 0;

		buf[0] = 0;
		switch (key->type) {
		case K_STR: case K_PATH: case K_UUID: case K_KEYTYPE: case K_ADDR: case K_LISTEN:
		case K_USER:
			if (key->flags & F_SECRET)
				snprintf(buf, sizeof buf, "%s", *field ? "<set>" : "");
			else
				snprintf(buf, sizeof buf, "%s", field);
			break;
		case K_PEM:
			snprintf(buf, sizeof buf, "%s",
			    strstr(field, "-----BEGIN") ? "<inline PEM>" : field);
			break;
		case K_INT: case K_CABITS:
			snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)(const void *)field);
			break;
		case K_WORKERS:
			if (*(const int64_t *)(const void *)field == 0)
				snprintf(buf, sizeof buf, "auto");
			else
				snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)(const void *)field);
			break;
		case K_BOOL:
			snprintf(buf, sizeof buf, "%s", *(const int *)(const void *)field ? "true" : "false");
			break;
		case K_SIZE:
			snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)(const void *)field);
			break;
		case K_DUR:
			snprintf(buf, sizeof buf, "%llus", (unsigned long long)*(const uint64_t *)(const void *)field);
			break;
		case K_TIME: {
			int64_t t = *(const int64_t *)(const void *)field;
			if (t) {
				time_t tt = (time_t)t;
				struct tm tm;
				gmtime_r(&tt, &tm);
				strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
			}
			break;
		}
		case K_LIST: case K_HOSTS: case K_CIDRS: {
			const struct cfg_list *l = (const void *)field;
			for (i = 0; i < l->n && o < (int)sizeof buf; i++)
				o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%s", i ? "," : "", l->item[i]);
			break;
		}
		case K_PORTS: {
			const uint16_t *ports = (const uint16_t *)(const void *)field;
			int np = ports == cfg->allowed_udp_ports ? cfg->n_allowed_udp_ports :
			    cfg->n_allowed_ports;
			for (i = 0; i < np && o < (int)sizeof buf; i++)
				o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%u", i ? "," : "", ports[i]);
			break;
		}
		}
		dump_line(fd, key->section, key->name, buf);
	}
	dprintf(fd, "# CA bundle: %s\n", cfg->ca_bundle_file);
}
