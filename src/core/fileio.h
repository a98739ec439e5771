/* fileio — whole-file reads, atomic writes and the advisory lock that serialises every
 * writer of the config and state files (§2.5, Part A7).
 *
 * An atomic write puts the bytes in `<path>.<pid>.<12 hex>.tmp` in the same folder (mode
 * 0600), fsyncs it, renames it over `path`, then fsyncs the folder, so a reader sees the
 * old file or the new one and never a torn mix; the temp file is removed on failure. */
#ifndef MAXPOOL_CORE_FILEIO_H
#define MAXPOOL_CORE_FILEIO_H

#include <stddef.h>

/* Reads the whole file into a new NUL-terminated buffer (caller frees); returns 0,
 * -ENOENT when missing, or another negative errno. At most `max` bytes (0 = 64 MiB). */
int fileio_read(const char *path, char **out, size_t *len, size_t max);
/* Writes data atomically with mode 0600 (see above), creating parent folders (0700) as
 * needed; returns 0 or a negative errno. The final file is 0600 even if it was 0644. */
int fileio_write_atomic(const char *path, const void *data, size_t len);
/* Creates every missing folder of `dir` with mode 0700; returns 0 or a negative errno. */
int fileio_mkdirs(const char *dir);

/* An exclusive advisory lock on `<path>.lock` (flock), held by one process at a time. */
typedef struct fileio_lock {
    int fd;
} fileio_lock_t;

/* Blocks until the lock for `path` is held; returns 0 or a negative errno. Callers keep
 * it only for a read-modify-write, never across network calls. */
int fileio_lock(const char *path, fileio_lock_t *lk);
/* Releases a lock taken by fileio_lock (safe on a zeroed/failed lock). */
void fileio_unlock(fileio_lock_t *lk);

#endif
