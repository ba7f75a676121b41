/*
 * fileio.h — the few file operations several modules need, written once:
 * writing a whole buffer, replacing a file atomically, and warning about a secret file
 * that others can read.
 *
 * fileio_replace() writes a temporary file "<path>.tmp.<pid>" in the same folder, gives
 * it the mode (and, when allowed, the owner) of `like` or 0600, fsyncs it, renames it
 * over path and fsyncs the folder, so a crash at any moment leaves either the old file or
 * the new one, never a torn one. On failure the temporary file is removed and path is
 * untouched.
 */
#ifndef RELAYPRO_FILEIO_H
#define RELAYPRO_FILEIO_H

#include <stddef.h>
#include <sys/stat.h>

/* write(2) all of buf, retrying on EINTR. ERR_OK, or ERR_IO with errno set. */
int fileio_write_all(int fd, const void *buf, size_t len);

/* fsync the folder holding path, so a rename in it is durable. ERR_OK or ERR_IO. */
int fileio_sync_dir(const char *path);

/* Replace path with data[0..len) atomically (see above). ERR_OK, or an error with a
 * short reason in why (no file contents in it). */
int fileio_replace(const char *path, const void *data, size_t len, const struct stat *like,
    char *why, size_t whylen);

/* Remove "<path>.tmp.<pid>" files that a process killed mid-replace left beside path,
 * when that pid no longer runs (a live writer's file is left alone). They may hold a
 * private key (the CA bundle), so they must not outlive the crash. Returns how many were
 * removed; errors are ignored (this is cleanup). */
int fileio_sweep(const char *path);

/* Whether a file holding secrets, of status st, can be read or written by anyone beyond
 * the relay: by others, or by its group when that group is not the process's effective
 * group (a group of the relay's own, as Kubernetes' fsGroup or a user-private group, is
 * the relay). 1 with a phrase in why[0..cap) ("readable by others", "readable and
 * writable by group 65534 and others"), else 0. Execute bits do not count. */
int fileio_exposed(const struct stat *st, char *why, size_t cap);

#endif
