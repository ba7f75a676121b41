/*
 * config_int.h — what the configuration's own files share: the one key table (its types,
 * defined in config_keys.c) and the loader's state (struct cfg_loader, owned by config.c).
 * Used by config.c (the load: defaults, the INI file, registration.ini, the combination
 * checks, the error that names file, line and key), config_keys.c (the table and each
 * key's parser), config_env.c (the AIR_* and RELAYPRO_* environment) and config_dump.c
 * (check-config). Not an interface for anyone else: include config.h instead.
 *
 * It does not include config.h (struct config is only pointed to here), so the config
 * files include both and no include cycle forms.
 */
#ifndef RELAYPRO_CONFIG_INT_H
#define RELAYPRO_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

struct config;

enum ktype {
	K_STR,     /* plain string */
	K_PATH,    /* file path, resolved against cfg->dir */
	K_PEM,     /* inline PEM or a path */
	K_INT,     /* integer within [min, max] */
	K_BOOL,
	K_SIZE,    /* bytes within [min, max] */
	K_DUR,     /* seconds within [max(min,1), max] */
	K_LIST,    /* comma-separated strings */
	K_HOSTS,   /* comma-separated host names / IP literals */
	K_PORTS,   /* comma-separated ports */
	K_CIDRS,   /* comma-separated CIDRs */
	K_TIME,    /* RFC 3339 */
	K_WORKERS, /* "auto" or 1..max */
	K_KEYTYPE, /* "ec" or "rsa" */
	K_CABITS,  /* 2048, 3072, 4096 */
	K_UUID,    /* 8-4-4-4-12 hex */
	K_LISTEN,  /* "ip:port", "[ip6]:port"; "" disables */
	K_ADDR,    /* "host" or "host:port" */
	K_USER     /* NAME, UID:GID or root (priv.h) */
};

#define F_SECRET 1u        /* check-config shows <set>, never the value */
#define CFG_DAY 86400      /* seconds */

/* One key of docs/configuration.md: section ("" = top level), name, type, where it lives in struct
 * config, its limits and flags. */
struct cfg_key {
	const char *section;
	const char *name;
	enum ktype type;
	size_t off;
	size_t size;
	int64_t min, max;
	unsigned flags;
};

/* The table, in check-config's order: CFG_NKEYS entries (config_keys.c checks the count
 * when it compiles, so the loader's per-key arrays always fit). */
#define CFG_NKEYS 47
extern const struct cfg_key config_keys[];

/* Parse value v for key k into cfg (relative paths against cfg->dir). ERR_OK, or an
 * error code with *why set to a short reason that never quotes v. */
int config_keys_set(struct config *cfg, size_t k, const char *v, const char **why);

/* The index of section.name (both case-insensitive), or -1. */
long config_keys_find(const char *section, const char *name);

/* 1 when some key lives in section (case-insensitive). */
int config_keys_section(const char *section);

/* v resolved against dir into out ("-", "", absolute paths and dir "" kept as they are).
 * ERR_OK, or ERR_NOSPACE when it does not fit in cap. */
int config_keys_path(const char *dir, const char *v, char *out, size_t cap);

/* 1 when h[0..n) is a host name or IP literal the relay can match (target.c). */
int config_keys_host_ok(const char *h, size_t n);

/* Where each key's value came from, for error messages. */
enum origin { FROM_DEFAULT, FROM_AIR, FROM_FILE, FROM_REG, FROM_LOGGER_CONF, FROM_ENV };

/* One load in progress (config.c: config_load). */
struct cfg_loader {
	struct config *cfg;
	char *err;
	size_t errlen;
	int failed;
	enum origin origin[CFG_NKEYS];
	int line[CFG_NKEYS];
	char envname[CFG_NKEYS][64];
	/* inih reading state */
	const char *src;        /* the file being read: the config file or registration.ini */
	enum origin src_origin; /* FROM_FILE or FROM_REG */
	const char *text;
	size_t textlen, pos;
	int lineno;
};

/* Record the load's error (only the first one counts) as a printf-style line in ld->err. */
void config_fail(struct cfg_loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Apply one value of key k from source o (line in a file, or the environment variable
 * envname); a bad value fails the load with the place and the reason. */
void config_apply(struct cfg_loader *ld, size_t k, const char *v, enum origin o, int line,
    const char *envname);

/* The environment over what the files set (config_env.c): AIR_* where nothing set the key,
 * RELAYPRO_LOGGER_CONF, then RELAYPRO_<KEY> and its aliases; any other RELAYPRO_* variable
 * fails the load. */
void config_env_apply(struct cfg_loader *ld);

#endif
