/*
 * cfgwrite.h — writing the registration result back into the INI file (docs/configuration.md).
 *
 * cfgwrite_update() rewrites the file so that the top-level keys relayId, registeredTo,
 * securityToken (and relayProId when given) hold the new values and deploymentToken is
 * gone. Everything else — other keys, comments, blank lines, sections, a UTF-8 BOM, each
 * line's own ending (CRLF stays CRLF) — is kept byte for byte. Keys are matched as
 * config.c and inih see them: case-insensitively, before the first [section] line, after
 * leading white space, with '=' or ':' as the delimiter; lines starting with ';' or '#'
 * are comments. A key already present keeps its line: only the value after the delimiter
 * (and the white space following it) is replaced. A missing key is added after the last
 * top-level key line (before the first section when there is none, at the end when there
 * are no sections), with the line ending the file uses (its first line's).
 *
 * Values are refused (ERR_INVAL) when they contain control characters (CR, LF, ...) or
 * start or end with white space (inih would strip it), the security token when empty,
 * and (ERR_RANGE) when the resulting line exceeds CFG_LINE_MAX, which config_load would
 * refuse. The file is replaced atomically: written to "<file>.tmp.<pid>" in the same
 * folder with the original's mode (and owner, when permitted), fsync'ed, renamed over
 * the original, then the folder is fsync'ed. A symbolic link is followed: its target is
 * replaced, the link stays. On any failure the original file is untouched and err says
 * why in one line (no secret in it); the caller then advises RELAYPRO_RELAY_ID /
 * RELAYPRO_SECURITY_TOKEN. Every buffer that held file text is wiped before it is freed.
 */
#ifndef RELAYPRO_CFGWRITE_H
#define RELAYPRO_CFGWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

int cfgwrite_update(const char *path, int64_t relay_id, const char *registered_to,
    const char *security_token, const char *relay_pro_id_or_null, char *err, size_t errlen);

/* Set only relayProId (docs/configuration.md: generated and saved when missing); every other line,
 * deploymentToken included, stays. Same atomic replacement and errors. */
int cfgwrite_set_relay_pro_id(const char *path, const char *relay_pro_id, char *err,
    size_t errlen);

/* Write <privateFolder>/registration.ini (docs/configuration.md) at path: a comment, then relayId,
 * registeredTo, securityToken and (when not NULL or empty) relayProId, one `key = value`
 * line each; the file is replaced whole, atomically, mode 0600; its folder is created
 * (0700) when missing. Same value rules and errors as cfgwrite_update. */
int cfgwrite_registration(const char *path, int64_t relay_id, const char *registered_to,
    const char *security_token, const char *relay_pro_id_or_null, char *err, size_t errlen);

/* Save a registration where the next start and reload read it: into cfg->file with
 * cfgwrite_update when there is one and it takes the write-back, else into cfg->reg_file
 * (registeredTo = cfg->console_address, relayProId = cfg->relay_pro_id). ERR_OK with the
 * path written in where (and in err, when registration.ini was used, why the config file
 * was not); else an error with both reasons in err and where empty. */
int cfgwrite_save(const struct config *cfg, int64_t relay_id, const char *security_token,
    char *where, size_t wherelen, char *err, size_t errlen);

#endif
