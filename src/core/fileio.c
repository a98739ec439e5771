#include "core/fileio.h"
#include "core/crypto.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_read(const char *path, char **out, size_t *len, size_t max)
{
    if (!max) max = 64u << 20;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (st.st_size < 0 || (size_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *data = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max) {
                free(data);
                close(fd);
                return -EFBIG;
            }
            cap *= 2;
            data = xrealloc(data, cap);
        }
        ssize_t r = read(fd, data + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = -errno;
            free(data);
            close(fd);
            return e;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    data[n] = '\0';
    *out = data;
    if (len) *len = n;
    return 0;
}

int fileio_mkdirs(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    free(p);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    char *copy = xstrdup(path);
    char *d = xstrdup(dirname(copy));
    free(copy);
    return d;
}

int fileio_write_atomic(const char *path, const void *data, size_t len)
{
    char *dir = dir_of(path);
    int rc = fileio_mkdirs(dir);
    if (rc) {
        free(dir);
        return rc;
    }
    uint8_t rnd[6];
    if (crypto_random(rnd, sizeof rnd) != 0) memset(rnd, 0, sizeof rnd);
    char *tmp = xasprintf("%s.%ld.%02x%02x%02x%02x%02x%02x.tmp", path, (long)getpid(), rnd[0],
                          rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    /* fchmod: the umask may have removed bits we need, never added any; make it exact. */
    if (fchmod(fd, 0600) != 0 || (rc = write_all(fd, data, len)) != 0 || fsync(fd) != 0) {
        if (!rc) rc = -errno;
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0) {
        rc = -errno;
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        unlink(tmp);
        goto out;
    }
    /* Make the rename itself durable. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(dir);
    return rc;
}

int fileio_lock(const char *path, fileio_lock_t *lk)
{
    lk->fd = -1;
    char *dir = dir_of(path);
    int rc = fileio_mkdirs(dir);
    free(dir);
    if (rc) return rc;
    char *lp = xasprintf("%s.lock", path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lp);
    if (fd < 0) return -errno;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        rc = -errno;
        close(fd);
        return rc;
    }
    lk->fd = fd;
    return 0;
}

void fileio_unlock(fileio_lock_t *lk)
{
    if (lk->fd >= 0) {
        flock(lk->fd, LOCK_UN);
        close(lk->fd);
    }
    lk->fd = -1;
}
